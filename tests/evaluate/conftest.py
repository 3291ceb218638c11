"""The hand-made evaluation world (evaluate_world.py) written into a tmp dir, with its params.yaml."""

import json

import pytest
import yaml
from evaluate_world import JUDGE_NAMES, verdict_rows, write_predictions, write_training_runs, write_verdicts


@pytest.fixture
def world(tmp_path) -> dict:
    """A predictions folder, a verdict table and a params.yaml pointing at them (all under tmp_path)."""
    predictions_dir = tmp_path / "data" / "predictions"
    verdicts = tmp_path / "data" / "eval" / "judged" / "verdicts.parquet"
    write_predictions(predictions_dir)
    # a repeated identical verdict row is harmless
    write_verdicts(verdicts, verdict_rows() + verdict_rows()[:1])
    judge_stats = tmp_path / "data" / "eval" / "judged" / "judge_stats.json"
    judge_stats.write_text(json.dumps({"judges": JUDGE_NAMES, "luck": {}}))
    write_training_runs(tmp_path / "data" / "runs")
    params = tmp_path / "params.yaml"
    evaluate = {
        "out_dir": str(tmp_path / "data" / "eval"),
        "report_dir": str(tmp_path / "report"),
        "predictions_dir": str(predictions_dir),
        "verdicts": str(verdicts),
        "judge_stats": str(judge_stats),
        "harvest_judge_stats": None,
        "runs_dir": str(tmp_path / "data" / "runs"),
        "groups": {
            "domain_a": ["miniworld_a"],
            "domain_b": ["miniworld_b"],
            "both": ["miniworld_a", "miniworld_b"],
            "fine_grained": ["flowers102"],  # nothing evaluated: the group is left out
        },
    }
    params.write_text(yaml.safe_dump({"evaluate": evaluate}))
    return {
        "params": params,
        "predictions_dir": predictions_dir,
        "verdicts": verdicts,
        "out_dir": tmp_path / "data" / "eval",
        "report_dir": tmp_path / "report",
    }
