"""Stage `judge` (stages/judge.py) run as DVC runs it, on mini world taxonomies and predictions."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml
from judge_fakes import API_KEY

from speciarl.data.miniworld_classes import miniworld_taxonomy
from speciarl.judge.store import VerdictStore
from speciarl.predictions import PREDICTION_SCHEMA, VERDICT_TABLE_SCHEMA

STAGE = Path(__file__).parents[2] / "stages" / "judge.py"
KEY_ENV = "STAGE_JUDGE_KEY"

# (dataset, truth, raw answer or None for a format error, expected category; None = only the LLM can tell)
ANSWERS = [
    ("miniworld_a", "grey-headed sparrow", "Grey-Headed Sparrow", "specific"),
    ("miniworld_a", "grey-headed sparrow", "grey-headed sparrow", "specific"),  # same normalised pair
    ("miniworld_a", "grey-headed sparrow", "gray-headed sparrow", "specific"),  # the fine class's synonym
    ("miniworld_a", "grey-headed sparrow", "sparrow", "less specific"),
    ("miniworld_a", "grey-headed sparrow", "bird", "generic"),
    ("miniworld_a", "grey-headed sparrow", "orange-headed sparrow", "wrong"),
    ("miniworld_a", "grey-headed sparrow", "None", "abstain"),
    ("miniworld_a", "grey-headed sparrow", "sparrow or parrot", "wrong"),
    ("miniworld_a", "grey-headed sparrow", None, None),
    ("miniworld_a", "grey-headed sparrow", "b1rd", None),
    ("miniworld_a", "grey-necked egret", "a tall red bird", None),
    ("miniworld_b", "Vector Arrow sedan", "Vector sedan", "less specific"),
    ("miniworld_b", "Vector Arrow sedan", "automobile", "generic"),
    ("miniworld_b", "Vector Arrow sedan", "Vector Arrow saloon", "specific"),  # the fine class's synonym
    ("miniworld_b", "Vector Arrow sedan", "Vector Dart sedan", "wrong"),
]
LLM_PAIRS = {("grey-headed sparrow", "b1rd"): "wrong", ("grey-necked egret", "a tall red bird"): "generic"}


def write_predictions(path: Path, rows: list[tuple]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    columns = {name: [] for name in PREDICTION_SCHEMA.names}
    for index, (dataset, truth, answer, _) in enumerate(rows):
        values = dict(
            sample_id=f"s{index}",
            dataset=dataset,
            split="test",
            ground_truth=truth,
            policy_id="base",
            prompt_name="general",
            prompt_text="classify",
            sample_index=0,
            raw_text=f"<answer>{answer}</answer>" if answer else "no tag",
            prediction=answer,
            format_error=answer is None,
            seed=0,
            temperature=0.0,
            top_p=1.0,
        )
        for name in columns:
            columns[name].append(values[name])
    pq.write_table(pa.table(columns, schema=PREDICTION_SCHEMA), path)


@pytest.fixture
def workspace(tmp_path):
    for dataset in ("miniworld_a", "miniworld_b"):
        (tmp_path / "prepared" / dataset).mkdir(parents=True)
        miniworld_taxonomy(dataset).save(tmp_path / "prepared" / dataset / "taxonomy.json")
    write_predictions(tmp_path / "predictions" / "run1" / "predictions.parquet", ANSWERS[:8])
    write_predictions(tmp_path / "predictions" / "run2" / "predictions.parquet", ANSWERS[8:])
    (tmp_path / "predictions" / "run2" / "notes.parquet").write_text("not a predictions file")
    return tmp_path


def run_stage(workspace: Path, judge: dict, llm: str = "train") -> tuple[subprocess.CompletedProcess, dict]:
    (workspace / "params.yaml").write_text(yaml.safe_dump({"data": {"prepared_dir": "prepared"}, "judge": judge}))
    result = subprocess.run(
        [
            sys.executable,
            str(STAGE),
            "--llm",
            llm,
            "--predictions",
            "predictions",
            "--out",
            "out/verdicts.parquet",
            "--stats",
            "out/judge_stats.json",
        ],
        cwd=workspace,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, KEY_ENV: API_KEY},
    )
    stats_file = workspace / "out" / "judge_stats.json"
    return result, json.loads(stats_file.read_text()) if stats_file.exists() else {}


def test_stage_decides_by_taxonomy_then_completes_with_the_llm(workspace, fake_server, monkeypatch):
    unique = {(d, t.lower(), a.lower()) for d, t, a, _ in ANSWERS if a is not None}  # the answers normalise so

    first, stats = run_stage(workspace, {"store": "verdicts"})  # no LLM configured
    assert first.returncode == 1 and "2 of 13 unique pairs have no verdict" in first.stderr
    assert not (workspace / "out" / "verdicts.parquet").exists()  # never a table that looks complete
    assert (stats["pairs"], stats["unique"], stats["exact"], stats["taxonomy"], stats["undecided"]) == (
        14,
        13,
        1,
        10,
        2,
    )
    assert stats["complete"] is False
    assert len(VerdictStore(workspace / "verdicts")) == 11

    server = fake_server({"labels": {"\t".join(p): c for p, c in LLM_PAIRS.items()}})
    llm = {"endpoint": server.url, "model": "fake-judge", "api_key_env": KEY_ENV, "backoff_s": 0.01}
    second, stats = run_stage(workspace, {"store": "verdicts", "llm": llm})
    assert second.returncode == 0, second.stderr
    assert (stats["store_hits"], stats["llm"], stats["llm_calls"], stats["complete"]) == (11, 2, 2, True)
    table = pq.read_table(workspace / "out" / "verdicts.parquet")
    assert table.schema.equals(VERDICT_TABLE_SCHEMA)
    rows = {(r["dataset"], r["ground_truth"], r["prediction"]): r for r in table.to_pylist()}
    assert set(rows) == unique
    expected = {(d, t.lower(), a.lower()): c for d, t, a, c in ANSWERS if a is not None}
    expected.update({("miniworld_a", t, p): c for (t, p), c in LLM_PAIRS.items()})
    assert {key: row["category"] for key, row in rows.items()} == expected
    assert rows[("miniworld_a", "grey-headed sparrow", "sparrow")]["judge"].startswith("taxonomy:")
    assert rows[("miniworld_a", "grey-headed sparrow", "b1rd")]["judge"].startswith("llm:")

    # The evaluation judge is another judge: its verdicts are its own, the cheap levels are shared.
    # (In this process from here on, to save interpreter start-ups.)
    monkeypatch.chdir(workspace)
    monkeypatch.setenv(KEY_ENV, API_KEY)
    eval_judge = {"store": "verdicts", "llm": llm, "eval_llm": {**llm, "revision": "stronger"}}
    (workspace / "params.yaml").write_text(yaml.safe_dump({"data": {"prepared_dir": "prepared"}, "judge": eval_judge}))
    argv = ["--llm", "eval", "--predictions", "predictions", "--out", "eval/v.parquet", "--stats", "eval/s.json"]
    stage = load_stage()
    assert stage.main(argv) == 0
    stats = json.loads((workspace / "eval" / "s.json").read_text())
    assert (stats["store_hits"], stats["llm"]) == (11, 2)
    assert stage.main(argv) == 0
    stats = json.loads((workspace / "eval" / "s.json").read_text())
    assert (stats["store_hits"], stats["llm_calls"]) == (13, 0)
    assert server.stats()["requests"] == 4


def load_stage():
    spec = importlib.util.spec_from_file_location("judge_stage", STAGE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_stage_bad_input_is_one_line(workspace, monkeypatch, capsys):
    stage = load_stage()  # in this process: the entry point itself ran above
    monkeypatch.chdir(workspace)
    argv = ["--llm", "train", "--predictions", "predictions", "--out", "out/v.parquet", "--stats", "out/s.json"]

    def run(judge: dict) -> tuple[int, str]:
        (workspace / "params.yaml").write_text(yaml.safe_dump({"data": {"prepared_dir": "prepared"}, "judge": judge}))
        code = stage.main(argv)
        return code, capsys.readouterr().err

    code, err = run({"store": "verdicts", "llm": {"endpoint": "http://127.0.0.1:9/v1"}})
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert "judge.llm: Value error, model is required when endpoint or serve is set" in err

    code, err = run({"store": "verdicts", "taxonomy": {"close_level": 2}})
    assert code == 2 and "judge.taxonomy.close_level: unknown key" in err

    code, err = run(
        {
            "store": "verdicts",
            "llm": {"endpoint": "http://127.0.0.1:9/v1", "model": "m", "api_key_env": "NO_SUCH_VAR_X"},
        }
    )
    assert code == 2 and "environment variable NO_SUCH_VAR_X (judge.llm.api_key_env) is not set" in err

    (workspace / "predictions" / "run1" / "predictions.parquet").write_bytes(b"PAR1 broken")
    code, err = run({"store": "verdicts"})
    assert code == 2 and "run1/predictions.parquet: not a predictions table" in err
    assert not (workspace / "out" / "v.parquet").exists()


def test_a_pair_without_verdict_is_named_with_its_cause(workspace, monkeypatch, capsys):
    stage = load_stage()
    monkeypatch.chdir(workspace)
    argv = ["--llm", "train", "--predictions", "predictions", "--out", "out/v.parquet", "--stats", "out/s.json"]

    def run(judge: dict) -> tuple[int, str]:
        (workspace / "params.yaml").write_text(yaml.safe_dump({"data": {"prepared_dir": "prepared"}, "judge": judge}))
        code = stage.main(argv)
        return code, capsys.readouterr().err.strip().splitlines()[-1]  # after the progress bar

    code, err = run({"store": "verdicts"})  # no LLM configured
    assert code == 1 and err.startswith("judge: error: ")
    assert (
        "2 of 13 unique pairs have no verdict (0 LLM failures), e.g. miniworld_a: 'grey-headed sparrow' vs 'b1rd' "
        "(the taxonomy cannot decide it and no LLM judge is configured (judge.llm))"
    ) in err

    monkeypatch.setenv(KEY_ENV, API_KEY)
    unreachable = {
        "endpoint": "http://127.0.0.1:9/v1",
        "model": "m",
        "api_key_env": KEY_ENV,
        "max_attempts": 1,
        "constrain": "none",
    }
    code, err = run({"store": "verdicts", "llm": unreachable})
    assert code == 1 and err.startswith("judge: error: ")
    cause = json.loads((workspace / "out" / "s.json").read_text())["failure_examples"][0]["error"]
    assert cause and f"(2 LLM failures), e.g. miniworld_a: 'grey-headed sparrow' vs 'b1rd' ({cause})" in err


def test_a_read_only_store_is_a_one_line_error(workspace, monkeypatch, capsys):
    stage = load_stage()
    monkeypatch.chdir(workspace)
    store = workspace / "verdicts"
    store.mkdir()
    store.chmod(0o555)
    # root ignores permission bits: refuse file creation in the store as the kernel does for anyone else
    real_open = os.open

    def open_as_user(path, flags, *args, **kwargs):
        if flags & os.O_CREAT and Path(path).resolve().parent == store.resolve():
            raise PermissionError(13, "Permission denied", str(path))
        return real_open(path, flags, *args, **kwargs)

    monkeypatch.setattr(os, "open", open_as_user)
    (workspace / "params.yaml").write_text(
        yaml.safe_dump({"data": {"prepared_dir": "prepared"}, "judge": {"store": "verdicts"}})
    )
    try:
        code = stage.main(
            ["--llm", "train", "--predictions", "predictions", "--out", "out/v.parquet", "--stats", "out/s.json"]
        )
    finally:
        store.chmod(0o755)
    err = capsys.readouterr().err.strip()
    assert code == 1 and "\n" not in err  # a failure at run time (speciarl.stage)
    assert err.startswith("judge: error: verdict store verdicts cannot be written: Permission denied (verdicts/seg-")
    assert not (workspace / "out" / "v.parquet").exists()
