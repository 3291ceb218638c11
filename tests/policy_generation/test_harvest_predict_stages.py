"""The `harvest` and `predict` stage scripts end to end on the tiny policy, crashes and bad input."""

from pathlib import Path

import pyarrow.parquet as pq
import pytest
import torch
from generation_world import DATASET, SPLIT_SIZES, load_stage
from peft import LoraConfig, get_peft_model

from speciarl.config import load_params
from speciarl.data.prepared import read_split
from speciarl.policy import rollouts
from speciarl.policy.loading import load_policy
from speciarl.predictions import PREDICTION_SCHEMA, PREDICTIONS_FILE

HARVEST = load_stage("harvest")
PREDICT = load_stage("predict")
BATCHES = 5  # batch_size 4: test split 6 images -> 2 batches, train split 10 images -> 3 batches


class CountingBackend:
    """Wraps the real backend; counts calls and can simulate a crash after `crash_after` calls."""

    def __init__(self, backend, crash_after=None):
        self.backend, self.crash_after, self.calls = backend, crash_after, 0

    def generate(self, images, prompt_text, sampling):
        if self.crash_after is not None and self.calls == self.crash_after:
            raise RuntimeError("power cut")
        self.calls += 1
        return self.backend.generate(images, prompt_text, sampling)


@pytest.fixture
def counted(monkeypatch):
    """Installs a CountingBackend around every backend the stages make; returns the list of them."""
    made = []
    real = rollouts.make_backend

    def install(crash_after=None):
        def make(policy, adapter=None):
            made.append(CountingBackend(real(policy, adapter), crash_after))
            return made[-1]

        monkeypatch.setattr(rollouts, "make_backend", make)
        return made

    return install


def test_harvest_writes_best_of_n_rollouts_of_a_seeded_subset(write_params, prepared, capsys):
    params_path = write_params()
    assert HARVEST.main(["--params", str(params_path)]) == 0
    out = load_params("harvest", path=params_path)["harvest"].out
    table = pq.read_table(out)
    assert table.schema.equals(PREDICTION_SCHEMA)
    rows = table.to_pylist()
    assert len(rows) == 6 * 3 and len({r["sample_id"] for r in rows}) == 6
    train_ids = set(read_split(prepared, DATASET, "train", columns=["sample_id"]).column("sample_id").to_pylist())
    assert {r["sample_id"] for r in rows} <= train_ids
    assert [r["sample_index"] for r in rows[:3]] == [0, 1, 2]
    assert all(r["policy_id"] == "base" and r["prompt_name"] == "general" and r["temperature"] == 1.0 for r in rows)
    assert all(r["format_error"] == (r["prediction"] is None) for r in rows)
    assert "18 completions" in capsys.readouterr().out
    assert sorted(p.name for p in Path(out).parent.iterdir()) == ["rollouts.parquet"]  # parts are gone


def test_predict_greedy_on_every_split(write_params, tmp_path):
    params_path = write_params()
    assert PREDICT.main(["--policy", "base", "--prompt", "specific", "--params", str(params_path)]) == 0
    folder = tmp_path / "predictions" / "base-specific"
    assert sorted(p.name for p in folder.iterdir()) == [PREDICTIONS_FILE]  # parts are gone
    rows = pq.read_table(folder / PREDICTIONS_FILE).to_pylist()
    assert len(rows) == SPLIT_SIZES["test"] + SPLIT_SIZES["train"]
    assert [r["split"] for r in rows] == ["test"] * 6 + ["train"] * 10  # params order, stored order
    assert {(r["sample_index"], r["temperature"], r["top_p"], r["prompt_name"]) for r in rows} == {
        (0, 0.0, 1.0, "specific")
    }


def test_predict_resumes_after_a_crash_with_the_same_result(write_params, tmp_path, counted):
    crashed = write_params(predict={"out_dir": str(tmp_path / "crashed")})
    made = counted(crash_after=2)
    with pytest.raises(RuntimeError, match="power cut"):
        PREDICT.main(["--policy", "base", "--best-of-n", "--params", str(crashed)])
    folder = tmp_path / "crashed" / "base-best_of_n"
    assert not (folder / PREDICTIONS_FILE).exists()  # parts alone never look complete
    assert len(list((folder / "parts").glob("part-*.parquet"))) == 2

    counted()  # no more crashes
    assert PREDICT.main(["--policy", "base", "--best-of-n", "--params", str(crashed)]) == 0
    assert made[-1].calls == BATCHES - 2  # finished batches are skipped
    resumed = pq.read_table(folder / PREDICTIONS_FILE)

    straight = write_params(predict={"out_dir": str(tmp_path / "straight")})
    assert PREDICT.main(["--policy", "base", "--best-of-n", "--params", str(straight)]) == 0
    assert made[-1].calls == BATCHES
    uninterrupted = pq.read_table(tmp_path / "straight" / "base-best_of_n" / PREDICTIONS_FILE)
    assert resumed.num_rows == (6 + 10) * 2
    assert resumed.equals(uninterrupted)


def test_parts_of_another_configuration_are_discarded(write_params, tmp_path, counted):
    test_only = [f"{DATASET}/test"]  # 2 batches
    made = counted(crash_after=1)
    with pytest.raises(RuntimeError):
        PREDICT.main(["--policy", "base", "--best-of-n", "--params", str(write_params(predict={"splits": test_only}))])
    counted()
    changed = write_params(predict={"splits": test_only, "seed": 1})
    assert PREDICT.main(["--policy", "base", "--best-of-n", "--params", str(changed)]) == 0
    assert made[-1].calls == 2
    rows = pq.read_table(tmp_path / "predictions" / "base-best_of_n" / PREDICTIONS_FILE).to_pylist()
    assert len({r["sample_id"] for r in rows}) == SPLIT_SIZES["test"]


def test_predict_a_trained_run_loads_its_adapter(write_params, tmp_path, untrained_policy):
    model, _ = load_policy(str(untrained_policy))
    torch.manual_seed(0)
    lora = get_peft_model(model, LoraConfig(r=4, target_modules=["q_proj", "v_proj"], init_lora_weights=False))
    lora.save_pretrained(tmp_path / "runs" / "r1" / "adapter")
    params_path = write_params(predict={"splits": [f"{DATASET}/test"]})
    assert PREDICT.main(["--policy", "r1", "--prompt", "general", "--params", str(params_path)]) == 0
    assert PREDICT.main(["--policy", "base", "--prompt", "general", "--params", str(params_path)]) == 0
    trained = pq.read_table(tmp_path / "predictions" / "r1-general" / PREDICTIONS_FILE).to_pylist()
    base = pq.read_table(tmp_path / "predictions" / "base-general" / PREDICTIONS_FILE).to_pylist()
    assert {r["policy_id"] for r in trained} == {"r1"}
    assert [r["raw_text"] for r in trained] != [r["raw_text"] for r in base]


@pytest.mark.parametrize(
    "args, overrides, message",
    [
        (["--policy", "base", "--prompt", "be_nice"], {}, "unknown prompt 'be_nice' (known: general"),
        (["--policy", "base", "--prompt", "general"], {"policy": {"model": "/nowhere/model"}}, "/nowhere/model"),
        (["--policy", "base", "--prompt", "general"], {"predict": {"splits": [f"{DATASET}/empty"]}}, "toy/empty"),
        (
            ["--policy", "base", "--prompt", "general"],
            {"predict": {"splits": [f"{DATASET}/nope"]}},
            "toy/nope is missing",
        ),
        (["--policy", "r9", "--prompt", "general"], {}, "no adapter for run 'r9'"),
    ],
)
def test_predict_bad_input_is_one_clear_line_and_writes_nothing(
    write_params, tmp_path, capsys, args, overrides, message
):
    params_path = write_params(**overrides)
    assert PREDICT.main([*args, "--params", str(params_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("predict: error:") and message in err and "\n" not in err
    assert not list(tmp_path.glob(f"predictions/*/{PREDICTIONS_FILE}"))


def test_harvest_bad_input(write_params, capsys):
    assert HARVEST.main(["--params", str(write_params(harvest={"split": "empty"}))]) == 2
    assert "toy/empty" in capsys.readouterr().err
    assert HARVEST.main(["--params", str(write_params(harvest={"prompt": "nope"}))]) == 2
    assert "harvest.prompt" in capsys.readouterr().err
