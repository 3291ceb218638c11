"""Schema of the `data` section of params.yaml."""

from __future__ import annotations

from pydantic import Field

from speciarl.config import Section


class MiniWorldParams(Section):
    seed: int = 0
    image_size: int = Field(112, ge=28, le=1024, description="rendered side in pixels")
    train_per_domain: int = Field(2000, ge=1)
    test_per_domain: int = Field(500, ge=1)


class DataParams(Section):
    prepared_dir: str = "data/prepared"
    datasets: list[str] = ["miniworld"]
    miniworld: MiniWorldParams = MiniWorldParams()
    max_corrupt_fraction: float = Field(0.01, ge=0.0, le=1.0)
