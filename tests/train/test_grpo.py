"""Real GRPOTrainer runs on the tiny policy, with the reward going through the real store and cascade."""

import csv
import json
import shutil
from pathlib import Path
from types import SimpleNamespace

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from safetensors.torch import load_file, save_file
from transformers import TrainerCallback

from speciarl.data.prepared import read_split
from speciarl.judge.cascade import JudgeService
from speciarl.judge.params import TaxonomyJudgeParams
from speciarl.labels import Category
from speciarl.policy.loading import load_policy
from speciarl.train.grpo import CURVE_COLUMNS, SpeciaRLGRPOTrainer, check_whole_groups, train_run
from speciarl.train.params import GrpoParams, LoraParams, RunParams
from speciarl.train.reward_func import JudgeOutageError


def tiny_run(**overrides) -> RunParams:
    """The tiny run; overrides of GrpoParams fields go into its grpo block."""
    grpo = dict(
        num_generations=4,
        per_device_train_batch_size=8,  # 2 images x 4 rollouts per step
        max_completion_length=24,
        max_steps=3,
        save_steps=1,
        learning_rate=1e-3,
    )
    grpo.update({key: overrides.pop(key) for key in list(overrides) if key in GrpoParams.model_fields})
    return RunParams(**{"reward": "speciarl", "lora": LoraParams(r=8, alpha=16), **overrides, "grpo": grpo})


class RecordingJudge:
    """The real JudgeService, with the pairs of each call recorded (the data order).

    down_from_call: from that call on the judge is down (no verdicts). undecided_wrong: pairs the
    taxonomy cannot decide are judged wrong, standing in for an LLM judge that always answers.
    """

    def __init__(self, service: JudgeService, down_from_call: int | None = None, undecided_wrong: bool = False):
        self.service, self.down_from_call, self.undecided_wrong = service, down_from_call, undecided_wrong
        self.calls = []

    def judge_id(self, dataset):
        return self.service.judge_id(dataset)

    def judge(self, pairs):
        self.calls.append(list(pairs))
        if self.down_from_call is not None and len(self.calls) >= self.down_from_call:
            return [None] * len(pairs)
        verdicts = self.service.judge(pairs)
        return [Category.WRONG if v is None and self.undecided_wrong else v for v in verdicts]


class CrashAfterSave(TrainerCallback):
    """Simulates a kill right after the checkpoint of step `step` is written."""

    def __init__(self, step: int):
        self.step = step

    def on_save(self, args, state, control, **kwargs):
        if state.global_step == self.step:
            raise KeyboardInterrupt(f"killed after step {state.global_step}")


def read_curves(path: Path) -> list[dict]:
    with path.open() as handle:
        return list(csv.DictReader(handle))


def train(judge, run, out_dir, policy_params, prepared_dir, callbacks=None):
    return train_run("run", run, policy_params, judge, prepared_dir, out_dir, seed=0, callbacks=callbacks)


def test_grpo_run_writes_adapter_card_curves_and_metrics(tmp_path, policy_params, judge_params, prepared_dir):
    # No LLM judge here: answers the taxonomy cannot decide have no verdict, so None is allowed.
    with JudgeService.from_params(judge_params, prepared_dir) as service:
        judge = RecordingJudge(service)
        metrics = train(judge, tiny_run(max_none_fraction=1.0), tmp_path, policy_params, prepared_dir)
        stats = service.stats
    run_dir = tmp_path / "run"
    # the reward reached the cascade, and its verdicts went to the store
    assert judge.calls and stats["unique"] > 0
    assert stats["exact"] + stats["taxonomy"] > 0
    assert sum(1 for _ in Path(judge_params.store).rglob("*") if _.is_file()) > 0

    adapter = run_dir / "adapter"
    assert sorted(p.name for p in adapter.iterdir() if p.name.startswith(("adapter", "README"))) == [
        "README.md",
        "adapter_config.json",
        "adapter_model.safetensors",
    ]
    assert not (adapter / "training_args.bin").exists()
    card = (adapter / "README.md").read_text()
    assert policy_params.model in card and "`speciarl` reward" in card and "miniworld_a/train" in card
    weights = load_file(adapter / "adapter_model.safetensors")
    assert weights and all("language_model" in name for name in weights)
    assert not any("visual" in name for name in weights)

    curves = read_curves(run_dir / "curves.csv")
    assert [row["step"] for row in curves] == ["1", "2", "3"]
    assert list(curves[0]) == list(CURVE_COLUMNS)
    for row in curves:
        shares = [float(row[c]) for c in CURVE_COLUMNS if c.startswith("share_")]
        assert sum(shares) == pytest.approx(1.0)
        assert float(row["kl"]) >= 0 and float(row["completion_length"]) > 0
    assert list((run_dir / "tb").rglob("events.out.tfevents*"))
    assert json.loads((run_dir / "train_metrics.json").read_text()) == metrics
    assert metrics["steps"] == 3 and metrics["reward"] == "speciarl"
    assert not (run_dir / "checkpoints").exists()

    # the adapter loads back onto the base model
    model, _ = load_policy(policy_params.model, adapter=str(adapter))
    assert any("lora_A" in name for name, _ in model.named_parameters())


def test_resume_after_a_kill_is_exact(tmp_path, policy_params, judge_params, prepared_dir):
    # 4 images, 2 per step: the kill falls in the second epoch, whose order must be epoch 1's.
    run = tiny_run(subset_size=4, subset_seed=1, max_steps=4, max_none_fraction=1.0)
    with JudgeService.from_params(judge_params, prepared_dir) as service:
        whole = RecordingJudge(service)
        train(whole, run, tmp_path / "whole", policy_params, prepared_dir)
        killed = RecordingJudge(service)
        with pytest.raises(KeyboardInterrupt):
            train(killed, run, tmp_path / "killed", policy_params, prepared_dir, callbacks=[CrashAfterSave(3)])
        assert (tmp_path / "killed/run/checkpoints/checkpoint-3").is_dir()
        assert not (tmp_path / "killed/run/adapter").exists()
        resumed = RecordingJudge(service)
        train(resumed, run, tmp_path / "killed", policy_params, prepared_dir)

    assert killed.calls == whole.calls[:3]
    assert resumed.calls == whole.calls[3:]  # same data order and the same completions after the resume
    expected = load_file(tmp_path / "whole/run/adapter/adapter_model.safetensors")
    got = load_file(tmp_path / "killed/run/adapter/adapter_model.safetensors")
    assert expected.keys() == got.keys()
    for name in expected:
        assert (expected[name] - got[name]).abs().max().item() < 1e-5, name
    ignore = {"step_seconds", "reward_seconds"}
    strip = lambda rows: [{k: v for k, v in row.items() if k not in ignore} for row in rows]  # noqa: E731
    killed_curves, whole_curves = (read_curves(tmp_path / f"{name}/run/curves.csv") for name in ("killed", "whole"))
    assert strip(killed_curves) == strip(whole_curves)


def test_a_save_cut_off_by_a_kill_resumes_from_the_newest_complete_checkpoint(
    tmp_path, policy_params, judge_params, prepared_dir, monkeypatch
):
    run = tiny_run(max_steps=4, max_none_fraction=1.0)
    save_rng_state = SpeciaRLGRPOTrainer._save_rng_state

    def killed_mid_save(trainer, output_dir):
        if trainer.state.global_step == 4:
            raise KeyboardInterrupt("killed while saving checkpoint-4")
        save_rng_state(trainer, output_dir)

    checkpoints = tmp_path / "run" / "checkpoints"
    with JudgeService.from_params(judge_params, prepared_dir) as service:
        killed = RecordingJudge(service)
        with monkeypatch.context() as patch:
            patch.setattr(SpeciaRLGRPOTrainer, "_save_rng_state", killed_mid_save)
            with pytest.raises(KeyboardInterrupt):
                train(killed, run, tmp_path, policy_params, prepared_dir)
        torn = checkpoints / "checkpoint-4"
        assert (torn / "adapter_model.safetensors").is_file() and not (torn / "trainer_state.json").exists()
        resumed = RecordingJudge(service)
        metrics = train(resumed, run, tmp_path, policy_params, prepared_dir)
    assert resumed.calls == killed.calls[3:]  # step 4 again, exactly as before the kill
    assert metrics["steps"] == 4 and not checkpoints.exists()
    assert [row["step"] for row in read_curves(tmp_path / "run/curves.csv")] == ["1", "2", "3", "4"]


def test_a_changed_base_model_or_judge_is_another_run(tmp_path, policy_params, judge_params, prepared_dir):
    """A rerun resumes only the same run: with other base weights or another judge it starts afresh.

    Each rerun is killed after its first step's save: a resumed run would be past step 1 and finish.
    """
    base = tmp_path / "base"
    shutil.copytree(policy_params.model, base)
    policy = policy_params.model_copy(update={"model": str(base)})
    run = tiny_run(max_steps=2, max_none_fraction=1.0)
    other_judge = judge_params.model_copy(update={"taxonomy": TaxonomyJudgeParams(close_levels=2)})
    with (
        JudgeService.from_params(judge_params, prepared_dir) as service,
        JudgeService.from_params(other_judge, prepared_dir) as other_service,
    ):
        with pytest.raises(KeyboardInterrupt):
            train(RecordingJudge(service), run, tmp_path, policy, prepared_dir, callbacks=[CrashAfterSave(1)])

        weights = load_file(base / "model.safetensors")
        name = sorted(weights)[0]
        weights[name] = weights[name] + 0.01
        save_file(weights, base / "model.safetensors", metadata={"format": "pt"})
        with pytest.raises(KeyboardInterrupt):  # the base model changed: step 1 again
            train(RecordingJudge(service), run, tmp_path, policy, prepared_dir, callbacks=[CrashAfterSave(1)])

        with pytest.raises(KeyboardInterrupt):  # another judge: step 1 again
            train(RecordingJudge(other_service), run, tmp_path, policy, prepared_dir, callbacks=[CrashAfterSave(1)])

        same = RecordingJudge(other_service)  # nothing changed: resumes after step 1
        metrics = train(same, run, tmp_path, policy, prepared_dir, callbacks=[CrashAfterSave(1)])
    assert len(same.calls) == 1 and metrics["steps"] == 2


def test_judge_outage_saves_a_checkpoint_then_stops(tmp_path, policy_params, judge_params, prepared_dir):
    run = tiny_run(max_none_fraction=0.0, save_steps=2)
    with JudgeService.from_params(judge_params, prepared_dir) as service:
        down = RecordingJudge(service, down_from_call=2, undecided_wrong=True)
        outage = r"step 2: the judge gave no verdict for ([1-8]) of \1 answers .*checkpoint-1 saved"
        with pytest.raises(JudgeOutageError, match=outage):
            train(down, run, tmp_path, policy_params, prepared_dir)
        assert (tmp_path / "run/checkpoints/checkpoint-1").is_dir()
        assert not (tmp_path / "run/adapter").exists()
        # the judge is back: the rerun resumes after step 1 and finishes
        judge = RecordingJudge(service, undecided_wrong=True)
        metrics = train(judge, run, tmp_path, policy_params, prepared_dir)
    assert len(judge.calls) == 2 and metrics["steps"] == 3
    assert [row["step"] for row in read_curves(tmp_path / "run/curves.csv")] == ["1", "2", "3"]


def test_every_process_must_see_whole_groups():
    check_whole_groups(SimpleNamespace(generation_batch_size=16, world_size=2, num_generations=4))
    with pytest.raises(ValueError, match="each of the 2 processes gets 6 rollouts"):
        check_whole_groups(SimpleNamespace(generation_batch_size=12, world_size=2, num_generations=4))
    with pytest.raises(ValueError, match="multiple of num_generations"):
        GrpoParams(num_generations=4, per_device_train_batch_size=6)
    with pytest.raises(ValueError, match="save_steps"):
        GrpoParams(num_generations=4, per_device_train_batch_size=4, steps_per_generation=4, save_steps=1)


def write_harvest(path: Path, prepared_dir: str) -> float:
    """A hand-made harvest of two images (the columns the null rate reads); returns its mean SpeciaRL reward.

    Image 1: two right answers, one wrong, one format error, and a fifth rollout (beyond
    num_generations=4, so left out); image 2: four wrong answers. Judged rollouts' SpeciaRL rewards:
    1, 1, 0 and 0, 0, 0, 0: a rate of 2/7.
    """
    rows = read_split(prepared_dir, "miniworld_a", "train", columns=["sample_id", "label"]).to_pylist()
    first, second = rows[0], next(row for row in rows if row["label"] != rows[0]["label"])
    truth, wrong = first["label"], second["label"]
    answers = {first["sample_id"]: [truth, truth, wrong, None, truth], second["sample_id"]: [truth] * 4}
    truths = {first["sample_id"]: truth, second["sample_id"]: wrong}
    records = [
        {
            "sample_id": sample_id,
            "dataset": "miniworld_a",
            "ground_truth": truths[sample_id],
            "sample_index": index,
            "prediction": answer,
            "format_error": answer is None,
        }
        for sample_id, group in answers.items()
        for index, answer in reversed(list(enumerate(group)))
    ]
    pq.write_table(pa.Table.from_pylist(records), path)
    return 2 / 7


def test_null_control_trains_at_the_harvest_rate(tmp_path, policy_params, judge_params, prepared_dir):
    harvest = tmp_path / "rollouts.parquet"
    rate = write_harvest(harvest, prepared_dir)
    run = tiny_run(reward="null_control", max_steps=2, max_none_fraction=1.0)
    with JudgeService.from_params(judge_params, prepared_dir) as service:
        with pytest.raises(ValueError, match="null_rate auto is measured on the harvest"):
            train_run("null_control", run, policy_params, service, prepared_dir, tmp_path, seed=0)
        metrics = train_run(
            "null_control", run, policy_params, service, prepared_dir, tmp_path, seed=0, harvest_rollouts=harvest
        )
    assert metrics["reward"] == "null_control" and metrics["steps"] == 2
    assert metrics["null_rate"] == pytest.approx(rate)
    assert json.loads((tmp_path / "null_control/train_metrics.json").read_text())["null_rate"] == metrics["null_rate"]
    assert [row["step"] for row in read_curves(tmp_path / "null_control/curves.csv")] == ["1", "2"]
