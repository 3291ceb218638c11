"""stages/train.py: the DVC entry point writes the outputs dvc.yaml declares, and fails in one line."""

import importlib.util
import json
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]


def load_stage():
    spec = importlib.util.spec_from_file_location("train_stage", REPO / "stages/train.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def write_params(tmp_path, prepared_dir, policy_dir) -> Path:
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    params["data"]["prepared_dir"] = prepared_dir
    params["policy"].update(model=policy_dir, dvc_dep=policy_dir, device="cpu")
    params["judge"]["store"] = str(tmp_path / "verdicts")
    run = dict(params["train"]["runs"]["speciarl"])
    run["grpo"] = {
        **run["grpo"],
        "num_generations": 4,
        "per_device_train_batch_size": 8,
        "max_completion_length": 16,
        "max_steps": 2,
        "save_steps": 1,
    }
    run.update(lora={"r": 8, "alpha": 16, "dropout": 0.0}, max_none_fraction=1.0)
    params["train"] = {"out_dir": str(tmp_path / "runs"), "seed": 0, "runs": {"mini": run}}
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(params))
    return path


def test_stage_writes_the_declared_outputs(tmp_path, prepared_dir, mixed_level_policy, capsys):
    params = write_params(tmp_path, prepared_dir, mixed_level_policy)
    assert load_stage().main(["--run", "mini", "--params", str(params)]) == 0
    run_dir = tmp_path / "runs/mini"
    assert (run_dir / "adapter/adapter_model.safetensors").is_file()
    assert json.loads((run_dir / "train_metrics.json").read_text())["steps"] == 2
    assert (run_dir / "curves.csv").read_text().count("\n") == 3
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["reward"] == "speciarl"


def test_stage_errors_are_one_line(tmp_path, prepared_dir, mixed_level_policy, capsys):
    params = write_params(tmp_path, prepared_dir, mixed_level_policy)
    assert load_stage().main(["--run", "nope", "--params", str(params)]) == 2
    error = capsys.readouterr().err.strip()
    assert error == f"train: error: {params}: train.runs.nope: no such run (known: mini)"
    raw = yaml.safe_load(params.read_text())
    raw["train"]["runs"]["mini"]["dataset"] = "miniworld_c"
    params.write_text(yaml.safe_dump(raw))
    assert load_stage().main(["--run", "mini", "--params", str(params)]) == 2
    error = capsys.readouterr().err.strip()
    assert error.startswith("train: error: prepared split miniworld_c/train is missing") and "\n" not in error
