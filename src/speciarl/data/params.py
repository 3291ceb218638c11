"""Schema of the `data` section of params.yaml."""

from __future__ import annotations

from pydantic import Field

from speciarl.config import Section
from speciarl.data.miniworld_params import MiniWorldParams


class DataParams(Section):
    prepared_dir: str = "data/prepared"
    datasets: list[str] = ["miniworld"]
    miniworld: MiniWorldParams = MiniWorldParams()
    max_corrupt_fraction: float = Field(0.01, ge=0.0, le=1.0)
