"""examples/grpo_with_speciarl_reward.py: its defaults are params.yaml's, and it trains with plain TRL.

The run uses the root conftest's small mini world and mixed-level policy, so that the reward really
reaches the judge (closed-world taxonomy) and the rollouts of an image get different verdicts.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "grpo_with_speciarl_reward.py"
# example option -> key of params.yaml's train.runs.speciarl (images_per_step and seed apart)
SAME_AS_RUN = {
    "reward": "reward",
    "dataset": "dataset",
    "split": "split",
    "num_generations": "num_generations",
    "max_steps": "max_steps",
    "learning_rate": "learning_rate",
    "loss_type": "loss_type",
    "beta": "beta",
    "epsilon": "epsilon",
    "temperature": "temperature",
    "max_completion_length": "max_completion_length",
    "lora_r": "r",
    "lora_alpha": "alpha",
    "max_none_fraction": "max_none_fraction",
}


@pytest.fixture(scope="module")
def example():
    spec = importlib.util.spec_from_file_location("grpo_with_speciarl_reward", EXAMPLE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def leaves(mapping: dict) -> dict:
    """Every leaf key of a nested mapping (a run's knobs may be grouped in sub-blocks)."""
    found = {}
    for key, value in mapping.items():
        found.update(leaves(value) if isinstance(value, dict) else {key: value})
    return found


def test_defaults_are_the_params_of_the_speciarl_run(example):
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    run = leaves(params["train"]["runs"]["speciarl"])
    defaults = vars(example.parse_args([]))
    differ = {name: (defaults[name], run[key]) for name, key in SAME_AS_RUN.items() if defaults[name] != run[key]}
    assert not differ, f"example default != params.yaml (option: (example, params)): {differ}"
    assert defaults["images_per_step"] * defaults["num_generations"] == run["per_device_train_batch_size"]
    assert defaults["seed"] == params["train"]["seed"]
    assert (defaults["model"], defaults["prepared_dir"]) == (params["policy"]["model"], params["data"]["prepared_dir"])


def test_example_trains_with_plain_trl(mixed_level_policy, prepared_dir, tmp_path):
    command = [
        sys.executable,
        str(EXAMPLE),
        "--model",
        mixed_level_policy,
        "--prepared-dir",
        prepared_dir,
        "--output-dir",
        str(tmp_path),
        "--max-steps",
        "2",
        "--images-per-step",
        "2",
        "--num-generations",
        "4",
        "--max-completion-length",
        "24",
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run(command, capture_output=True, text=True, timeout=600, cwd=tmp_path, env=env)
    assert done.returncode == 0, done.stderr[-3000:]
    summary = json.loads(done.stdout.strip().splitlines()[-1])
    assert summary["steps"] == 2 and len(summary["reward_mean"]) == 2
    verdicts = summary["verdicts"]
    assert verdicts["none"] == 0  # the closed world decides every answer
    assert sum(verdicts.values()) == pytest.approx(1.0)
    assert verdicts["format_error"] < 1  # answers reached the judge
    assert (tmp_path / "adapter" / "adapter_model.safetensors").is_file()
    assert any((tmp_path / "verdicts").iterdir())


def test_example_names_a_missing_model_or_judge_model(example, tmp_path):
    with pytest.raises(FileNotFoundError, match=f"^model path not found: {tmp_path / 'absent'}$"):
        example.main(["--model", str(tmp_path / "absent"), "--output-dir", str(tmp_path)])
    with pytest.raises(ValueError, match="^--llm-model is required with --llm-endpoint$"):
        example.make_judge(example.parse_args(["--llm-endpoint", "http://127.0.0.1:1/v1"]))
