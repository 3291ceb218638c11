"""Schema of the `train` section of params.yaml.

Every knob of one training run lives in its entry under `train.runs`, because the DVC stage is a
`foreach` over the runs and each run declares only its own entry: changing one run's knobs reruns
that run alone. Names follow TRL's GRPOConfig where one exists, so a reader can map them directly.

Batch sizes count completions (rollouts), as in TRL: one optimizer step uses
per_device_train_batch_size x processes x gradient_accumulation_steps completions; one generation
round samples per_device_train_batch_size x processes x steps_per_generation completions, i.e.
that divided by num_generations prompts.
"""

from __future__ import annotations

import re
from typing import Literal

from pydantic import Field, field_validator, model_validator

from speciarl.config import NonEmptyStr, Section
from speciarl.rewards import REWARDS

# peft matches a string target_modules as a regex against the full module name. Qwen2.5-VL puts the
# language model under `model.language_model` and the vision tower under `model.visual`: this
# selects every linear layer of the decoder (attention and MLP projections) and nothing in `visual`
# (nor lm_head, which LoRA does not adapt in the paper).
LANGUAGE_MODEL_LINEARS = r".*language_model.*\.(q_proj|k_proj|v_proj|o_proj|gate_proj|up_proj|down_proj)"


class LoraParams(Section):
    r: int = Field(64, ge=1)
    alpha: int = Field(32, ge=1)
    dropout: float = Field(0.0, ge=0.0, lt=1.0)
    target_modules: str = LANGUAGE_MODEL_LINEARS


class RunParams(Section):
    # reward: a name of speciarl.rewards.REWARDS; noise: probability of moving a verdict one rung (0 = off)
    reward: str = "speciarl"
    noise: float = Field(0.0, ge=0.0, le=1.0)
    # answers without a verdict get None rewards (and void their group); training stops (after a
    # checkpoint) when the judge leaves more than this share of a step's answers undecided
    max_none_fraction: float = Field(0.1, ge=0.0, le=1.0)

    # data: a prepared dataset split, optionally a random subset of it, and the policy prompt
    dataset: NonEmptyStr = "miniworld_a"
    split: NonEmptyStr = "train"
    subset_size: int | None = Field(None, ge=1)
    subset_seed: int = 42
    prompt: str = "general"

    # GRPO
    loss_type: Literal["grpo", "dr_grpo", "dapo"] = "grpo"
    scale_rewards: Literal["group", "batch", "none"] = "group"
    beta: float = Field(0.01, ge=0.0)
    epsilon: float = Field(0.2, gt=0.0)
    epsilon_high: float | None = Field(None, gt=0.0)
    num_generations: int = Field(10, ge=2)
    num_iterations: int = Field(1, ge=1)
    temperature: float = Field(1.0, gt=0.0)
    top_p: float = Field(1.0, gt=0.0, le=1.0)
    max_completion_length: int = Field(48, ge=1)

    # optimisation
    lora: LoraParams = LoraParams()
    learning_rate: float = Field(3e-5, gt=0.0)
    lr_scheduler_type: Literal["constant", "constant_with_warmup", "linear", "cosine"] = "constant"
    warmup_steps: int = Field(0, ge=0)
    per_device_train_batch_size: int = Field(10, ge=1)
    gradient_accumulation_steps: int = Field(1, ge=1)
    steps_per_generation: int | None = Field(None, ge=1)
    max_steps: int = Field(-1, ge=-1)  # -1: run num_train_epochs
    num_train_epochs: float = Field(1.0, gt=0.0)
    gradient_checkpointing: bool = False

    # checkpoints (for resume after a crash; deleted once the adapter is saved)
    save_steps: int = Field(10, ge=1)

    # generation on GPU when policy.backend is vllm (TRL's vLLM integration)
    vllm_mode: Literal["colocate", "server"] = "colocate"
    vllm_server_base_url: NonEmptyStr | None = None
    vllm_gpu_memory_utilization: float = Field(0.3, gt=0.0, le=1.0)

    @field_validator("reward")
    @classmethod
    def _known_reward(cls, name: str) -> str:
        if name not in REWARDS:
            raise ValueError(f"unknown reward {name!r} (allowed: {', '.join(REWARDS)})")
        return name

    @property
    def micro_batches_per_generation(self) -> int:
        return self.steps_per_generation or self.gradient_accumulation_steps

    @model_validator(mode="after")
    def _whole_groups(self) -> "RunParams":
        # Each process scores its own slice of a generation round; the SpeciaRL reward needs every
        # rollout of an image in that slice, so the slice must hold whole groups.
        local = self.per_device_train_batch_size * self.micro_batches_per_generation
        if local % self.num_generations:
            raise ValueError(
                f"per_device_train_batch_size x steps_per_generation (default gradient_accumulation_steps) "
                f"= {local} completions per process and round must be a multiple of num_generations "
                f"({self.num_generations}) so that every process sees whole groups"
            )
        # A checkpoint is exact only between generation rounds (TRL regenerates after a resume).
        micro_steps = self.micro_batches_per_generation * self.num_iterations
        if micro_steps % self.gradient_accumulation_steps:
            raise ValueError(
                f"steps_per_generation x num_iterations ({micro_steps}) must be a multiple of "
                f"gradient_accumulation_steps ({self.gradient_accumulation_steps})"
            )
        steps_per_round = micro_steps // self.gradient_accumulation_steps
        if self.save_steps % steps_per_round:
            raise ValueError(
                f"save_steps ({self.save_steps}) must be a multiple of the optimizer steps per generation "
                f"round ({steps_per_round}) so that a resume is exact"
            )
        return self


# A run name is a folder name under out_dir and a DVC stage key: no path separators, no leading dot.
RUN_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")


class TrainParams(Section):
    out_dir: NonEmptyStr = "data/runs"
    runs: dict[str, RunParams] = Field(
        {"speciarl": RunParams(reward="speciarl"), "binary": RunParams(reward="binary")}, min_length=1
    )
    seed: int = 0

    @field_validator("runs")
    @classmethod
    def _runs_are_folder_names(cls, runs: dict[str, RunParams]) -> dict[str, RunParams]:
        for name in runs:
            if not RUN_NAME.fullmatch(name):
                raise ValueError(f"run name {name!r} must be a folder name (letters, digits, '_', '.', '-')")
        return runs
