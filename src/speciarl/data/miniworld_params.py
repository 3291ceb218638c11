"""Schema of `data.miniworld` in params.yaml (owned by the mini world)."""

from __future__ import annotations

from pydantic import Field, model_validator

from speciarl.config import Section


class MiniWorldParams(Section):
    seed: int = Field(0, ge=0)
    image_size: int = Field(112, ge=28, le=1024, description="rendered side in pixels")
    train_per_domain: int = Field(9000, ge=1)
    test_per_domain: int = Field(500, ge=1)
    # Difficulty knobs. The hard groups separate their siblings by a tiny mark or a small hue shift.
    hard_detail: float = Field(
        0.05,
        gt=0.0,
        le=0.3,
        description="diameter of the hard groups' tiny mark (warbler crown patch, coupe hub cap) "
        "as a fraction of the object's size",
    )
    hue_step: float = Field(
        10.0, ge=0.0, le=60.0, description="hue difference in degrees between neighbouring siblings of the hue groups"
    )
    color_jitter: float = Field(
        2.5, ge=0.0, le=60.0, description="per-image standard deviation of the object's hue, in degrees"
    )
    # Nuisances: each image places, scales, rotates and lights the object differently.
    scale_min: float = Field(0.6, gt=0.1, le=1.0, description="smallest object size, fraction of the image side")
    scale_max: float = Field(0.95, gt=0.1, le=1.0, description="largest object size, fraction of the image side")
    max_rotation: float = Field(15.0, ge=0.0, le=45.0, description="degrees (cars tilt 0.4 of it)")
    noise: float = Field(5.0, ge=0.0, le=64.0, description="standard deviation of pixel noise (0-255 scale)")
    jpeg_quality: int = Field(90, ge=20, le=100)

    @model_validator(mode="after")
    def _scale_range(self) -> MiniWorldParams:
        if self.scale_min > self.scale_max:
            raise ValueError(f"scale_min ({self.scale_min}) must not exceed scale_max ({self.scale_max})")
        return self
