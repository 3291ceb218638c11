"""Helpers of the generation tests: a tiny two-class dataset and access to the stage scripts."""

from __future__ import annotations

import importlib.util
import io
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[2]
DATASET = "toy"
COLOURS = {"red square": (200, 30, 30), "blue square": (30, 30, 200)}
SPLIT_SIZES = {"train": 10, "test": 6}


def jpeg(colour: tuple[int, int, int], seed: int) -> bytes:
    noise = np.random.default_rng(seed).integers(-20, 20, (112, 112, 3))
    pixels = np.clip(np.array(colour) + noise, 0, 255).astype(np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="JPEG")
    return buffer.getvalue()


def load_stage(name: str):
    """The module stages/<name>.py (stage scripts are not a package)."""
    spec = importlib.util.spec_from_file_location(f"stage_{name}", ROOT / "stages" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
