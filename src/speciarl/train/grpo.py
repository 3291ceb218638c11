"""One GRPO training run with TRL: params -> GRPOConfig + LoRA -> GRPOTrainer -> adapter, curves, metrics.

Layout of a run folder (train.out_dir/<run>):
    adapter/             the final LoRA adapter (safetensors) and its model card README.md
    train_metrics.json   final numbers (DVC metrics)
    curves.csv           one row per optimizer step (DVC plots)
    tb/                  TensorBoard logs (when grpo.report_to lists tensorboard, the default)
    checkpoints/         Trainer checkpoints while the run is unfinished: a rerun after a crash
                         resumes from the last complete one exactly (optimizer, scheduler, RNG, data
                         position), if the run's fingerprint is unchanged

A checkpoint is complete once its marker file is written, last, after every process saved its part
and every file was flushed; a save cut off by a kill leaves a folder without it, which the rerun
removes before resuming from the newest complete one. The run fingerprint covers everything the
result depends on: the run's and the policy's params, the reward's options (a null run's rate
included), the base model's files (weights, config, processor), the prepared split's content, the
judge id, the prompt text, the seed and the library versions. Checkpoints under another
fingerprint are removed and the run starts afresh.

Multi-GPU: launch stages/train.py with `accelerate launch --config_file configs/accelerate/ddp.yaml`
(or zero3.yaml); every process runs this same code.
"""

from __future__ import annotations

import csv
import hashlib
import json
import logging
import math
import shutil
from pathlib import Path
from typing import Any

import peft
import torch
import transformers
import trl
from accelerate import PartialState
from peft import LoraConfig
from transformers import TrainerCallback, set_seed
from transformers.integrations import TensorBoardCallback
from transformers.trainer_utils import PREFIX_CHECKPOINT_DIR, get_last_checkpoint
from trl import GRPOConfig, GRPOTrainer
from trl.trainer.utils import RepeatSampler

import speciarl
from speciarl.atomic import atomic_path, atomic_write_text, discard, fixed_temp_sibling, fsync_path, fsync_tree, publish
from speciarl.model_card import adapter_card
from speciarl.policy.generation import set_image_size, vllm_engine_options
from speciarl.policy.loading import load_policy, load_processor, model_content_hash
from speciarl.policy.params import PolicyParams
from speciarl.policy.processor import vision_token_ids
from speciarl.policy.prompts import get_prompt
from speciarl.rewards import reward_options
from speciarl.train.data import build_train_dataset, split_fingerprint
from speciarl.train.null_control import harvest_reward_rate
from speciarl.train.params import LoraParams, RunParams
from speciarl.train.reward_func import VERDICT_NAMES, Judge, JudgeOutageError, make_reward_func
from speciarl.train.vllm_generation import vllm_generation_class

logger = logging.getLogger(__name__)

ADAPTER_DIR = "adapter"
CHECKPOINTS_DIR = "checkpoints"
CURVES_FILE = "curves.csv"
METRICS_FILE = "train_metrics.json"
TENSORBOARD_DIR = "tb"
FINGERPRINT_FILE = "run_fingerprint.json"
CHECKPOINT_COMPLETE = "speciarl_checkpoint_complete"

# curves.csv column -> key in the Trainer's log history
CURVE_COLUMNS: dict[str, str] = {
    "step": "step",
    "epoch": "epoch",
    "reward_mean": "reward",
    "reward_std": "reward_std",
    "zero_std_group_share": "reward/zero_std_group_share",
    "zero_std_completion_share": "frac_reward_zero_std",
    "none_share": "reward/none_share",
    **{f"share_{name.replace(' ', '_')}": f"verdicts/{name}" for name in VERDICT_NAMES},
    "kl": "kl",
    "entropy": "entropy",
    "completion_length": "completions/mean_length",
    "clipped_ratio": "completions/clipped_ratio",
    "loss": "loss",
    "grad_norm": "grad_norm",
    "learning_rate": "learning_rate",
    "step_seconds": "step_time",
    "reward_seconds": "reward/seconds",
}
FINAL_WINDOW = 5  # final metrics average the last steps, so one noisy step does not decide them


class _EpochSeededRepeatSampler(RepeatSampler):
    """TRL's sampler reseeded per epoch: a run resumed in epoch e draws epoch e's order, not epoch 0's."""

    def set_epoch(self, epoch: int) -> None:
        if self.shuffle:
            self.generator.manual_seed((self.seed or 0) + epoch)


class SpeciaRLGRPOTrainer(GRPOTrainer):
    """GRPOTrainer whose data order survives a resume in any epoch (the Trainer calls set_epoch).

    With `use_vllm`, generation goes through SpeciaRLVLLMGeneration (speciarl.train.vllm_generation:
    TRL's class with the fixes a vision-language policy needs); `vllm_engine_options` are extra
    `vllm.LLM` arguments for the colocated engine.
    """

    def __init__(self, *args, vllm_engine_options: dict | None = None, **kwargs):
        with vllm_generation_class(vllm_engine_options or {}):
            super().__init__(*args, **kwargs)

    def _get_train_sampler(self, dataset=None):
        return _EpochSeededRepeatSampler(
            data_source=self.train_dataset if dataset is None else dataset,
            mini_repeat_count=self.num_generations,
            batch_size=self.args.generation_batch_size // self.num_generations,
            repeat_count=self.num_iterations * self.args.steps_per_generation,
            shuffle=self.shuffle_dataset,
            seed=self.args.seed,
        )


class CurvesCallback(TrainerCallback):
    """Rewrites curves.csv from the log history at every log: after a resume it holds exactly the kept steps."""

    def __init__(self, path: Path):
        self.path = path

    def on_log(self, args, state, control, **kwargs):
        if state.is_world_process_zero:
            write_curves(state.log_history, self.path)


def write_curves(log_history: list[dict], path: Path) -> None:
    rows = [entry for entry in log_history if "reward" in entry]
    with atomic_path(path) as temp, temp.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(CURVE_COLUMNS)
        for entry in rows:
            writer.writerow(["" if entry.get(key) is None else entry[key] for key in CURVE_COLUMNS.values()])


def tensorboard_callback(log_dir: Path) -> TensorBoardCallback:
    callback = TensorBoardCallback()
    callback.logging_dir = str(log_dir)  # read when training begins, on the main process only
    return callback


def lora_config(params: LoraParams) -> LoraConfig:
    return LoraConfig(
        r=params.r,
        lora_alpha=params.alpha,
        lora_dropout=params.dropout,
        target_modules=params.target_modules,
        task_type="CAUSAL_LM",
    )


def use_cpu(policy: PolicyParams) -> bool:
    return policy.device == "cpu" or not torch.cuda.is_available()


def grpo_config(run: RunParams, policy: PolicyParams, seed: int, output_dir: Path, suppressed: list[int]) -> GRPOConfig:
    """TRL's GRPOConfig for one run: its grpo block plus the fields speciarl sets (params.PROJECT_FIELDS).

    `suppressed`: vision token ids the policy must never generate.
    """
    if policy.backend == "vllm":
        # vLLM's SamplingParams has no suppress list; a -100 logit bias does the same.
        no_vision = {"logit_bias": {token: -100.0 for token in suppressed}}
    else:
        no_vision = {"suppress_tokens": suppressed}
    grpo = run.grpo.model_dump()
    # TensorBoard through tensorboard_callback, into the run folder; the other backends through TRL
    grpo["report_to"] = [backend for backend in run.grpo.report_to if backend != "tensorboard"]
    return GRPOConfig(
        **grpo,
        output_dir=str(output_dir),
        seed=seed,
        data_seed=seed,
        use_cpu=use_cpu(policy),
        bf16=policy.dtype == "bfloat16" and not use_cpu(policy),
        fp16=False,
        generation_kwargs=no_vision,
        save_strategy="steps",
        save_total_limit=2,
        logging_steps=1,
        disable_tqdm=False,
        use_vllm=policy.backend == "vllm",
        vllm_tensor_parallel_size=policy.vllm.tensor_parallel_size,
        vllm_max_model_length=policy.vllm.max_model_len,
    )


def check_whole_groups(config: GRPOConfig) -> None:
    """Every process scores whole groups: its share of a generation round is a multiple of num_generations."""
    local = config.generation_batch_size // config.world_size
    if config.generation_batch_size % config.world_size or local % config.num_generations:
        raise ValueError(
            f"each of the {config.world_size} processes gets {config.generation_batch_size / config.world_size:g} "
            f"rollouts per generation round, not a multiple of num_generations ({config.num_generations}): "
            "raise per_device_train_batch_size or steps_per_generation"
        )


def run_fingerprint(
    run: RunParams, policy: PolicyParams, seed: int, data_hash: str, judge_id: str, options: dict[str, Any]
) -> str:
    """Hash of everything the run's result depends on (module docstring); reads the base model's files."""
    payload = {
        "run": run.model_dump(),
        "reward_options": options,
        "policy": policy.model_dump(),
        "base_model": model_content_hash(policy.model),
        "prompt": get_prompt(run.prompt),
        "judge": judge_id,
        "seed": seed,
        "data": data_hash,
        "versions": [
            speciarl.__version__,
            trl.__version__,
            transformers.__version__,
            torch.__version__,
            peft.__version__,
        ],
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()


def prepare_checkpoints(checkpoints: Path, fingerprint: str) -> str | None:
    """The newest complete checkpoint to resume from, if this very configuration wrote it.

    Checkpoints of another fingerprint are removed, and so are torn ones (no completion marker).
    """
    state = PartialState()
    marker = checkpoints / FINGERPRINT_FILE
    if state.is_main_process:
        if checkpoints.exists() and _stored_fingerprint(marker) != fingerprint:
            logger.warning(
                "checkpoints in %s come from other params, data, base model or judge: starting afresh", checkpoints
            )
            shutil.rmtree(checkpoints)
        checkpoints.mkdir(parents=True, exist_ok=True)
        for folder in sorted(checkpoints.glob(f"{PREFIX_CHECKPOINT_DIR}-*")):
            if folder.is_dir() and not (folder / CHECKPOINT_COMPLETE).is_file():
                logger.warning("removing %s: its save was cut off before it completed", folder)
                shutil.rmtree(folder)
        _write_json(marker, {"fingerprint": fingerprint})
    state.wait_for_everyone()
    return get_last_checkpoint(str(checkpoints))


def _stored_fingerprint(marker: Path) -> str | None:
    """The fingerprint recorded with the checkpoints; None when absent or unreadable (a torn write)."""
    try:
        stored = json.loads(marker.read_text())
    except (OSError, ValueError):
        return None
    return stored.get("fingerprint") if isinstance(stored, dict) else None


def mark_complete(checkpoint: Path) -> None:
    """Flush a saved checkpoint to disk, then write its completion marker; every process calls it."""
    state = PartialState()
    state.wait_for_everyone()  # each process has written its part (RNG state, sharded weights)
    if state.is_main_process:
        fsync_tree(checkpoint)
        marker = checkpoint / CHECKPOINT_COMPLETE
        marker.write_text(f"{checkpoint.name}\n")
        fsync_path(marker)
        fsync_path(checkpoint)
    state.wait_for_everyone()


class CheckpointCompleteCallback(TrainerCallback):
    """Marks each periodic checkpoint complete: the Trainer calls on_save once the whole save is done."""

    def on_save(self, args, state, control, **kwargs):
        mark_complete(Path(args.output_dir) / f"{PREFIX_CHECKPOINT_DIR}-{state.global_step}")


def run_reward_options(run: RunParams, judge: Judge, harvest_rollouts: str | Path | None) -> dict[str, Any]:
    """The options of the run's reward (speciarl.rewards.get_reward): min_support for the speciarl
    rewards, the rate for the null control (`auto`: measured on the harvest, speciarl.train.null_control)."""
    accepted = reward_options(run.reward)
    options: dict[str, Any] = {}
    if "min_support" in accepted:
        options["min_support"] = run.min_support
    if "rate" in accepted:
        if run.null_rate != "auto":
            options["rate"] = run.null_rate
        elif harvest_rollouts is None:
            raise ValueError("null_rate auto is measured on the harvest: pass its rollouts file, or set null_rate")
        else:
            options["rate"] = harvest_reward_rate(harvest_rollouts, judge, run.dataset, run.grpo.num_generations)
    return options


def train_run(
    run_name: str,
    run: RunParams,
    policy: PolicyParams,
    judge: Judge,
    prepared_dir: str | Path,
    out_dir: str | Path,
    seed: int,
    callbacks: list[TrainerCallback] | None = None,
    harvest_rollouts: str | Path | None = None,
) -> dict[str, Any]:
    """Train one run (resuming its last checkpoint if any) and write adapter, curves and metrics.

    `seed`: the run's training seed (TrainParams.run_seed): GRPOConfig's seed and data_seed, the LoRA
    initialisation, and the noise and null reward draws. `harvest_rollouts` (the harvest stage's
    parquet) is read only by a null run with null_rate auto.
    Returns the final metrics; a null run's include the `null_rate` it used. Raises
    JudgeOutageError, after saving a checkpoint, when the judge leaves more of a step's answers
    without a verdict than run.max_none_fraction allows.
    """
    run_dir = Path(out_dir) / run_name
    checkpoints = run_dir / CHECKPOINTS_DIR
    data_hash = split_fingerprint(prepared_dir, run)
    dataset = build_train_dataset(prepared_dir, run)

    if use_cpu(policy) and policy.cpu_threads is not None:
        torch.set_num_threads(policy.cpu_threads)
    # The config before the model: under DeepSpeed ZeRO-3 it makes from_pretrained load the weights sharded.
    suppressed = vision_token_ids(load_processor(policy.model, policy.trust_remote_code))
    config = grpo_config(run, policy, seed, checkpoints, suppressed)
    check_whole_groups(config)
    model, processor = load_policy(policy.model, dtype=policy.dtype, trust_remote_code=policy.trust_remote_code)
    set_image_size(processor, policy.min_pixels, policy.max_pixels)
    # After loading: a hub model's files are then all in the local cache, where its content is hashed.
    options = run_reward_options(run, judge, harvest_rollouts)
    fingerprint = run_fingerprint(run, policy, seed, data_hash, judge.judge_id(run.dataset), options)
    resume = prepare_checkpoints(checkpoints, fingerprint)
    reward_func = make_reward_func(
        run.reward,
        judge,
        options=options,
        num_generations=run.grpo.num_generations,
        noise=run.noise,
        seed=seed,
        max_none_fraction=run.max_none_fraction,
    )
    set_seed(seed)  # LoRA weights are initialised before the Trainer seeds anything
    trainer = SpeciaRLGRPOTrainer(
        model=model,
        reward_funcs=[reward_func],
        args=config,
        train_dataset=dataset,
        processing_class=processor,
        peft_config=lora_config(run.lora),
        vllm_engine_options=vllm_engine_options(policy),
        callbacks=[
            CheckpointCompleteCallback(),  # first: a checkpoint is marked before any other callback runs
            CurvesCallback(run_dir / CURVES_FILE),
            *([tensorboard_callback(run_dir / TENSORBOARD_DIR)] if "tensorboard" in run.grpo.report_to else []),
            *(callbacks or []),
        ],
    )
    if resume:
        logger.info("resuming %s from %s", run_name, resume)
    try:
        trainer.train(resume_from_checkpoint=resume)
    except JudgeOutageError as exc:
        saved = save_checkpoint_now(trainer)
        raise JudgeOutageError(f"{exc}; checkpoint {saved} saved, rerun to resume once the judge answers") from None

    metrics = final_metrics(trainer.state.log_history, run, len(dataset))
    if "rate" in options:
        metrics["null_rate"] = options["rate"]
    if trainer.accelerator.is_main_process:
        write_curves(trainer.state.log_history, run_dir / CURVES_FILE)
    card = adapter_card(run_name, run, policy, data_hash, len(dataset), metrics, run_dir / ADAPTER_DIR)
    save_adapter(trainer, run_dir / ADAPTER_DIR, card)
    if trainer.accelerator.is_main_process:
        _write_json(run_dir / METRICS_FILE, metrics)
        shutil.rmtree(checkpoints)  # the run is complete: nothing left to resume
    return metrics


def save_checkpoint_now(trainer: GRPOTrainer) -> Path:
    """A complete checkpoint of the last finished step (kept as is when the periodic save already wrote it)."""
    path = Path(trainer.args.output_dir) / f"{PREFIX_CHECKPOINT_DIR}-{trainer.state.global_step}"
    if not (path / CHECKPOINT_COMPLETE).is_file():
        trainer._save_checkpoint(trainer.model, trial=None)
        mark_complete(path)
    return path


def save_adapter(trainer: GRPOTrainer, adapter_dir: Path, card: str) -> None:
    """The LoRA adapter (safetensors) plus model card, moved into place in one rename."""
    tmp = fixed_temp_sibling(adapter_dir)  # every process must name the same folder
    if trainer.accelerator.is_main_process:
        discard(tmp)
    trainer.save_model(str(tmp))  # collective under ZeRO-3: every process takes part
    if not trainer.accelerator.is_main_process:
        return
    (tmp / "training_args.bin").unlink(missing_ok=True)  # a pickle; the card records the params
    (tmp / "README.md").write_text(card)
    publish(tmp, adapter_dir)


def final_metrics(log_history: list[dict], run: RunParams, num_prompts: int) -> dict[str, Any]:
    """Steps, runtime and the mean of each curve over the first and the last FINAL_WINDOW steps."""
    steps = [entry for entry in log_history if "reward" in entry]
    summary = next((entry for entry in reversed(log_history) if "train_runtime" in entry), {})
    metrics: dict[str, Any] = {
        "reward": run.reward,
        "steps": steps[-1]["step"] if steps else 0,
        "prompts": num_prompts,
        "runtime_seconds": summary.get("train_runtime"),
    }
    for column, key in CURVE_COLUMNS.items():
        if column in ("step", "epoch", "learning_rate"):
            continue
        for window, entries in (("first", steps[:FINAL_WINDOW]), ("last", steps[-FINAL_WINDOW:])):
            values = [entry[key] for entry in entries if entry.get(key) is not None and not math.isnan(entry[key])]
            metrics[f"{column}_{window}"] = sum(values) / len(values) if values else None
    return metrics


def _write_json(path: Path, payload: dict) -> None:
    atomic_write_text(path, json.dumps(payload, indent=1, sort_keys=True) + "\n")
