"""Schemas of the `bootstrap`, `policy`, `harvest` and `predict` sections of params.yaml."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, ValidationInfo, field_validator, model_validator

from speciarl.config import NonEmptyStr, ParamsError, Section, UniqueList
from speciarl.policy.prompts import get_prompt

# "owner/name" with no further slashes: what the hub accepts as a model id.
HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")
# What dvc.yaml tracks in place of a hub model's (absent) local folder: DVC cannot drop a dependency
# by a condition (a deps entry cannot interpolate a list), so an unchanging file stands in.
HUB_MODEL_DEP = "configs/hub_model.md"


def is_hub_id(model: str) -> bool:
    """True for a hub model id; a path that exists, or that no hub id could be, is a local folder."""
    return bool(HUB_ID.match(model)) and not Path(model).exists()


def _known_prompt(name: str) -> str:
    get_prompt(name)  # ValueError naming the known prompts
    return name


class TinyArch(Section):
    """Sizes of the mini world's tiny Qwen2.5-VL (speciarl.policy.tiny); ~1.17M parameters by default."""

    vocab_size: int = Field(1024, ge=300, description="BPE target (a small corpus may give fewer tokens)")
    text_layers: int = Field(4, ge=1)
    text_hidden: int = Field(128, ge=8)
    text_heads: int = Field(4, ge=1)
    text_kv_heads: int = Field(2, ge=1)
    text_intermediate: int = Field(384, ge=8)
    max_positions: int = Field(1024, ge=64)
    vision_depth: int = Field(2, ge=1)
    vision_hidden: int = Field(64, ge=8)
    vision_heads: int = Field(2, ge=1)
    vision_intermediate: int = Field(128, ge=8)
    patch_size: int = Field(14, ge=1)
    merge_size: int = Field(2, ge=1)
    image_size: int = Field(112, ge=28, description="every image is resized to this side: (side / 28)^2 image tokens")
    rope_theta: float = Field(10000.0, gt=0)

    @model_validator(mode="after")
    def _shapes_fit(self) -> TinyArch:
        if self.text_hidden % self.text_heads or (self.text_hidden // self.text_heads) % 4:
            raise ValueError(
                f"text_hidden ({self.text_hidden}) must split into text_heads whose size is a multiple of 4"
            )
        if self.text_heads % self.text_kv_heads:
            raise ValueError(
                f"text_heads ({self.text_heads}) must be a multiple of text_kv_heads ({self.text_kv_heads})"
            )
        if self.vision_hidden % self.vision_heads:
            raise ValueError(f"vision_hidden ({self.vision_hidden}) must be a multiple of vision_heads")
        if self.image_size % (self.patch_size * self.merge_size):
            raise ValueError(f"image_size ({self.image_size}) must be a multiple of patch_size * merge_size")
        return self

    @property
    def image_tokens(self) -> int:
        return (self.image_size // (self.patch_size * self.merge_size)) ** 2

    @property
    def mrope_section(self) -> list[int]:
        """Rotary half-dims split over (time, height, width) in Qwen2.5-VL's proportions 1/4, 3/8, 3/8."""
        half = self.text_hidden // self.text_heads // 2
        temporal = half // 4
        height = (half - temporal) // 2
        return [temporal, height, half - temporal - height]


class BootstrapMeasureParams(Section):
    """How the warm start is measured (the targets of the bootstrap issue)."""

    split: str = "test"
    images_per_domain: int | None = Field(200, ge=1, description="seeded subset of each domain's split; null = all")
    best_of: int = Field(16, ge=1)
    temperature: float = Field(1.0, gt=0.0)
    max_new_tokens: int = Field(32, ge=1)
    batch_size: int = Field(50, ge=1, description="images per generate call (x best_of sequences when sampling)")


class BootstrapParams(Section):
    # The bootstrap stage runs once per entry (dvc.yaml foreach): [base] builds the tiny policy into
    # out_dir (the mini world); [] leaves the stage out, for any other policy (the paper recipe).
    build: list[Literal["base"]] = Field(["base"], max_length=1)
    out_dir: NonEmptyStr = "data/models/base"
    metrics: NonEmptyStr = "data/models/bootstrap_metrics.json"
    seed: int = 0
    datasets: UniqueList[NonEmptyStr] = Field(["miniworld_a", "miniworld_b"], min_length=1)
    split: NonEmptyStr = "train"
    arch: TinyArch = TinyArch()
    # Probability of each taxonomy level for a warm-start target, per group difficulty (as listed
    # in the split manifest), whatever the prompt. Fine-leaning where siblings are easy to tell
    # apart; in hard groups the fine share is spread over near-identical siblings, so greedy answers
    # name the group there, and sampling finds fine labels greedy decoding leaves out.
    label_mix: dict[str, dict[str, float]] = {
        "easy": {"generic": 0.1, "group": 0.1, "fine": 0.8},
        "medium": {"generic": 0.1, "group": 0.25, "fine": 0.65},
        "hard": {"generic": 0.15, "group": 0.35, "fine": 0.5},
    }
    synonym_prob: float = Field(0.1, ge=0.0, le=1.0, description="chance a target label is a synonym, where one exists")
    vision_epochs: int = Field(12, ge=0, description="epochs of vision tower pretraining before the SFT; 0 = none")
    vision_batch_size: int = Field(16, ge=1)
    vision_lr: float = Field(3e-3, gt=0.0)
    vision_threads: int | None = Field(
        None, ge=1, description="torch CPU threads of the vision pretraining; null = torch's default"
    )
    sft_trains_vision: bool = Field(False, description="false: the SFT leaves the pretrained vision tower as it is")
    epochs: int = Field(4, ge=1)
    batch_size: int = Field(16, ge=1)
    lr: float = Field(3e-3, gt=0.0)
    warmup_fraction: float = Field(0.05, ge=0.0, lt=1.0)
    weight_decay: float = Field(0.0, ge=0.0)
    threads: int | None = Field(
        None,
        ge=1,
        description="torch CPU threads of the SFT and the measurement; null = torch's default",
    )
    measure: BootstrapMeasureParams = BootstrapMeasureParams()

    @field_validator("label_mix")
    @classmethod
    def _mix_is_a_distribution(cls, mix: dict[str, dict[str, float]]) -> dict[str, dict[str, float]]:
        for difficulty, weights in mix.items():
            if any(weight < 0 for weight in weights.values()) or sum(weights.values()) <= 0:
                raise ValueError(f"{difficulty}: level weights must be >= 0 with a positive sum (got {weights})")
        return mix


class VllmParams(Section):
    """Engine settings of the vllm backend (GPU only)."""

    gpu_memory_utilization: float = Field(0.85, gt=0.0, le=1.0)
    tensor_parallel_size: int = Field(1, ge=1)
    max_model_len: int = Field(4096, ge=64)
    max_lora_rank: int = Field(64, ge=1)
    enforce_eager: bool = False
    # Prompt tokens one engine step may take; null = vLLM's default. On CPU, raise it above
    # policy.batch_size x n x prompt length: vLLM's CPU sampler cannot rewind a seeded request
    # whose prefill was split over steps ("CPU Generator does not use offset").
    max_num_batched_tokens: int | None = Field(None, ge=64)


class PolicyParams(Section):
    # A local path or a hub id (Qwen/Qwen2.5-VL-7B-Instruct for the paper recipe).
    model: NonEmptyStr = "data/models/base"
    # The path dvc.yaml lists as the policy's dependency of harvest, train and predict: `model`
    # itself when it is a local folder; HUB_MODEL_DEP (no local files to track) for a hub id.
    # params.yaml states it (dvc.yaml reads it there); left out, it follows from `model`.
    dvc_dep: NonEmptyStr = "data/models/base"
    backend: Literal["transformers", "vllm"] = "transformers"
    dtype: Literal["float32", "bfloat16", "float16"] = "float32"
    device: Literal["auto", "cpu", "cuda"] = "auto"
    # torch threads when generating on CPU; null = torch's default (one per core)
    cpu_threads: int | None = Field(None, ge=1)
    trust_remote_code: bool = False
    max_new_tokens: int = Field(48, ge=1)
    # Images per generate call, and per part file of a resumable run.
    batch_size: int = Field(32, ge=1)
    # Image resize bounds of the Qwen2.5-VL processor (pixels, rounded to 28x28 patches);
    # null keeps what the saved processor says. 448x448 = 200704.
    min_pixels: int | None = Field(None, ge=784)
    max_pixels: int | None = Field(None, ge=784)
    vllm: VllmParams = VllmParams()

    @model_validator(mode="before")
    @classmethod
    def _dvc_dep_follows_the_model(cls, data: Any) -> Any:
        if isinstance(data, dict) and "dvc_dep" not in data and isinstance(data.get("model"), str):
            data = {**data, "dvc_dep": HUB_MODEL_DEP if is_hub_id(data["model"]) else data["model"]}
        return data

    @field_validator("dvc_dep")
    @classmethod
    def _dvc_dep_tracks_the_model(cls, dvc_dep: str, info: ValidationInfo) -> str:
        model = info.data.get("model")
        if model is None or dvc_dep == model or (dvc_dep == HUB_MODEL_DEP and is_hub_id(model)):
            return dvc_dep
        expected = f"{model!r} or, for the hub id, {HUB_MODEL_DEP!r}" if is_hub_id(model) else repr(model)
        raise ValueError(f"must be {expected} for policy.model {model!r}: DVC would track another policy")

    @model_validator(mode="after")
    def _pixel_bounds_ordered(self) -> PolicyParams:
        if self.min_pixels is not None and self.max_pixels is not None and self.min_pixels > self.max_pixels:
            raise ValueError(f"min_pixels ({self.min_pixels}) is larger than max_pixels ({self.max_pixels})")
        return self


class HarvestParams(Section):
    out: NonEmptyStr = "data/harvest/rollouts.parquet"
    dataset: NonEmptyStr = "miniworld_a"
    split: NonEmptyStr = "train"
    prompt: str = "general"
    n: int = Field(10, ge=1)
    temperature: float = Field(1.0, ge=0.0)
    top_p: float = Field(1.0, gt=0.0, le=1.0)
    seed: int = 0
    # Images drawn (seeded) from the split; null = all of it.
    max_images: int | None = Field(256, ge=1)

    _prompt_known = field_validator("prompt")(_known_prompt)


class BestOfNParams(Section):
    prompt: str = "general"
    n: int = Field(16, ge=1)
    temperature: float = Field(0.6, ge=0.0)
    top_p: float = Field(0.95, gt=0.0, le=1.0)

    _prompt_known = field_validator("prompt")(_known_prompt)


class PredictParams(Section):
    out_dir: NonEmptyStr = "data/predictions"
    splits: UniqueList[str] = Field(["miniworld_a/test", "miniworld_b/test"], min_length=1)
    base_prompts: UniqueList[str] = ["general"]
    best_of_n: BestOfNParams = BestOfNParams()
    seed: int = 0

    @field_validator("base_prompts")
    @classmethod
    def _prompts_known(cls, names: list[str]) -> list[str]:
        return [_known_prompt(name) for name in names]

    @field_validator("splits")
    @classmethod
    def _splits_named(cls, splits: list[str]) -> list[str]:
        for entry in splits:
            dataset, _, split = entry.partition("/")
            if not dataset or not split or "/" in split:
                raise ValueError(f"{entry!r} is not of the form 'dataset/split'")
        return splits


def check_policy_source(bootstrap: BootstrapParams, policy: PolicyParams, path: str | Path) -> None:
    """The tiny policy is built (bootstrap.build) exactly when it is the policy the stages use."""
    if bootstrap.build and policy.model != bootstrap.out_dir:
        raise ParamsError(
            f"{path}: bootstrap.build: lists base, but policy.model ({policy.model}) is not bootstrap.out_dir "
            f"({bootstrap.out_dir}): the tiny policy would be built for nothing (set bootstrap.build: [])"
        )
    if not bootstrap.build and policy.model == bootstrap.out_dir:
        raise ParamsError(
            f"{path}: bootstrap.build: is empty, but policy.model is bootstrap.out_dir ({bootstrap.out_dir}), "
            "which no stage would build (set bootstrap.build: [base])"
        )
