"""Schema of the `train` section of params.yaml.

Every knob of one training run lives in its entry under `train.runs`, because the DVC stage is a
`foreach` over the runs and each run declares only its own entry: changing one run's knobs reruns
that run alone. A run has speciarl's own keys (reward, its options and noise, the judge-outage
limit, its seed, the data, LoRA) and one `grpo` block: the arguments of TRL's `GRPOConfig`, handed
to it as they are. Any GRPOConfig field may be set there; an unknown name is an error listing the
close ones, and the fields the project sets itself (output folder, seed, precision, logging,
checkpoint plumbing, vLLM switch and engine size) are refused with the key that sets them. A run's
training seed is its `seed`, or train.seed when that is null (TrainParams.run_seed, the one place
that decides). The fields declared in GrpoParams are checked as strictly as speciarl relies on them
and have speciarl's defaults (pinned, so that a TRL upgrade does not change a run); any other field
keeps TRL's default and is checked against GRPOConfig's type for it.

Batch sizes count completions (rollouts), as in TRL: one optimizer step uses
per_device_train_batch_size x processes x gradient_accumulation_steps completions; one generation
round samples per_device_train_batch_size x processes x steps_per_generation completions, i.e.
that divided by num_generations prompts.
"""

from __future__ import annotations

import dataclasses
import difflib
import functools
import re
import typing
from typing import Any, Literal

from pydantic import ConfigDict, Field, TypeAdapter, ValidationError, field_validator, model_validator

from speciarl.config import NonEmptyStr, Section, UniqueList
from speciarl.rewards import reward_options

# peft matches a string target_modules as a regex against the full module name. Qwen2.5-VL puts the
# language model under `model.language_model` and the vision tower under `model.visual`: this
# selects every linear layer of the decoder (attention and MLP projections) and nothing in `visual`
# (nor lm_head, which LoRA does not adapt in the paper).
LANGUAGE_MODEL_LINEARS = r".*language_model.*\.(q_proj|k_proj|v_proj|o_proj|gate_proj|up_proj|down_proj)"

# GRPOConfig fields speciarl sets itself (speciarl.train.grpo.grpo_config), and where to change them.
PROJECT_FIELDS: dict[str, str] = {
    "output_dir": "checkpoints go to <train.out_dir>/<run>/checkpoints",
    "seed": "set the run's seed (or train.seed for every run)",
    "data_seed": "set the run's seed (or train.seed for every run)",
    "use_cpu": "set policy.device",
    "bf16": "set policy.dtype",
    "fp16": "set policy.dtype",
    "generation_kwargs": "speciarl sets it to keep vision tokens out of the answers",
    "use_vllm": "set policy.backend",
    "vllm_tensor_parallel_size": "set policy.vllm.tensor_parallel_size",
    "vllm_max_model_length": "set policy.vllm.max_model_len",
    "logging_strategy": "curves.csv and the metrics need a log every step",
    "logging_steps": "curves.csv and the metrics need a log every step",
    "disable_tqdm": "speciarl shows the progress bar",
    "save_strategy": "checkpoints are saved every grpo.save_steps steps, for an exact resume",
    "save_total_limit": "speciarl keeps the last two checkpoints and removes them once the adapter is saved",
    "save_only_model": "a resume needs the optimizer, scheduler and RNG state",
    "resume_from_checkpoint": "a rerun resumes from the run's newest complete checkpoint by itself",
    "remove_unused_columns": "the reward reads the dataset's sample_id, ground_truth and dataset columns",
}
REPORT_BACKENDS = ("tensorboard", "wandb", "trackio")


@functools.cache
def grpo_config_fields() -> dict[str, Any]:
    """GRPOConfig's field name -> type, from the installed TRL (imported on first use: it loads torch)."""
    from trl import GRPOConfig

    types = typing.get_type_hints(GRPOConfig)
    return {field.name: types[field.name] for field in dataclasses.fields(GRPOConfig) if field.init}


class LoraParams(Section):
    r: int = Field(64, ge=1)
    alpha: int = Field(32, ge=1)
    dropout: float = Field(0.0, ge=0.0, lt=1.0)
    target_modules: str = LANGUAGE_MODEL_LINEARS


class GrpoParams(Section):
    """The arguments of trl.GRPOConfig for one run (module docstring)."""

    model_config = ConfigDict(extra="allow")

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

    # logs: TensorBoard goes to the run folder's tb/; wandb and trackio through TRL's integrations
    report_to: UniqueList[Literal[REPORT_BACKENDS]] = ["tensorboard"]

    # generation on GPU when policy.backend is vllm (TRL's vLLM integration)
    vllm_mode: Literal["colocate", "server"] = "colocate"
    vllm_server_base_url: NonEmptyStr | None = None
    vllm_gpu_memory_utilization: float = Field(0.3, gt=0.0, le=1.0)

    @field_validator("report_to", mode="before")
    @classmethod
    def _report_to_list(cls, value: Any) -> Any:
        # TRL's spellings: one backend as a string, "none" for none
        if value == "none":
            return []
        return [value] if isinstance(value, str) else value

    @model_validator(mode="before")
    @classmethod
    def _trl_fields(cls, values: Any) -> Any:
        """Extra keys must be GRPOConfig fields the project leaves to the user, with values of the field's type."""
        if not isinstance(values, dict):
            return values
        fields = grpo_config_fields()
        checked = dict(values)
        for key, value in values.items():
            if key in cls.model_fields:
                continue
            if key in PROJECT_FIELDS:
                raise ValueError(f"{key!r} is set by speciarl, not here: {PROJECT_FIELDS[key]}")
            if key not in fields:
                close = difflib.get_close_matches(str(key), list(fields), n=3, cutoff=0.6)
                hint = f" (close: {', '.join(close)})" if close else ""
                raise ValueError(f"{key!r} is not a field of trl.GRPOConfig{hint}")
            try:
                checked[key] = TypeAdapter(fields[key]).validate_python(value)
            except ValidationError as exc:
                raise ValueError(f"{key}: {exc.errors()[0]['msg']} (got {value!r})") from None
        return checked

    @property
    def micro_batches_per_generation(self) -> int:
        return self.steps_per_generation or self.gradient_accumulation_steps

    @model_validator(mode="after")
    def _whole_groups(self) -> GrpoParams:
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


class RunParams(Section):
    # reward: a name of speciarl.rewards.REWARDS; noise: probability of moving a verdict one rung (0 = off)
    reward: str = "speciarl"
    # speciarl rewards: rollouts that must reach a rung for it to be the group's best (1 = the paper)
    min_support: int = Field(1, ge=1)
    # null reward: P(reward 1) of a judged rollout; auto = the base policy's mean SpeciaRL reward on
    # the harvest (its judged rollouts of this run's dataset, in groups of num_generations)
    null_rate: float | Literal["auto"] = "auto"
    noise: float = Field(0.0, ge=0.0, le=1.0)
    # answers without a verdict get None rewards (and void their group); training stops (after a
    # checkpoint) when the judge leaves more than this share of a step's answers undecided
    max_none_fraction: float = Field(0.25, ge=0.0, le=1.0)
    # this run's training seed (GRPOConfig's seed and data_seed, LoRA init, the noise and null
    # reward draws); null = train.seed. A seed study sets it per run (configs/seed_study.yaml).
    seed: int | None = Field(None, ge=0)

    # data: a prepared dataset split, optionally a random subset of it, and the policy prompt
    dataset: NonEmptyStr = "miniworld_a"
    split: NonEmptyStr = "train"
    subset_size: int | None = Field(None, ge=1)
    subset_seed: int = 42
    prompt: str = "general"

    lora: LoraParams = LoraParams()
    grpo: GrpoParams = GrpoParams()

    @field_validator("reward", mode="before")
    @classmethod
    def _known_reward(cls, name: Any) -> Any:
        if isinstance(name, str):
            reward_options(name)  # ValueError listing the rewards for an unknown name
        return name

    @field_validator("null_rate", mode="before")
    @classmethod
    def _rate(cls, rate: Any) -> Any:
        number = isinstance(rate, (int, float)) and not isinstance(rate, bool)
        if rate != "auto" and not (number and 0.0 <= rate <= 1.0):
            raise ValueError("must be auto or a rate in [0, 1]")
        return rate

    @model_validator(mode="after")
    def _options_of_this_reward(self) -> RunParams:
        options = reward_options(self.reward)
        if self.min_support != 1 and "min_support" not in options:
            raise ValueError(f"min_support applies to the speciarl rewards, not to {self.reward!r}")
        if self.null_rate != "auto" and "rate" not in options:
            raise ValueError(f"null_rate applies to the null_control reward, not to {self.reward!r}")
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

    def run_seed(self, name: str) -> int:
        """The training seed of run `name`: the run's own seed, or train.seed when it sets none."""
        seed = self.runs[name].seed
        return self.seed if seed is None else seed
