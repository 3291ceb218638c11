"""Schemas of the `bootstrap`, `policy`, `harvest` and `predict` sections of params.yaml."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from speciarl.config import Section


class BootstrapParams(Section):
    out_dir: str = "data/models/base"
    seed: int = 0


class PolicyParams(Section):
    model: str = "data/models/base"
    backend: Literal["transformers", "vllm"] = "transformers"
    dtype: Literal["float32", "bfloat16", "float16"] = "float32"
    trust_remote_code: bool = False
    max_new_tokens: int = Field(48, ge=1)


class HarvestParams(Section):
    out: str = "data/harvest/rollouts.parquet"
    dataset: str = "miniworld_a"
    split: str = "train"
    prompt: str = "general"
    n: int = Field(10, ge=1)
    temperature: float = Field(1.0, ge=0.0)
    top_p: float = Field(1.0, gt=0.0, le=1.0)
    seed: int = 0


class BestOfNParams(Section):
    prompt: str = "general"
    n: int = Field(16, ge=1)
    temperature: float = Field(0.6, ge=0.0)
    top_p: float = Field(0.95, gt=0.0, le=1.0)


class PredictParams(Section):
    out_dir: str = "data/predictions"
    splits: list[str] = ["miniworld_a/test", "miniworld_b/test"]
    base_prompts: list[str] = ["general"]
    best_of_n: BestOfNParams = BestOfNParams()
    seed: int = 0
