"""Schema of `data.miniworld` in params.yaml (owned by the mini world)."""

from __future__ import annotations

from pydantic import Field

from speciarl.config import Section


class MiniWorldParams(Section):
    seed: int = 0
    image_size: int = Field(112, ge=28, le=1024, description="rendered side in pixels")
    train_per_domain: int = Field(2000, ge=1)
    test_per_domain: int = Field(500, ge=1)
