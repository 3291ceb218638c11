"""Fixtures of the real-vLLM tests: a small rendered mini world, a warm-started tiny policy, and
params files that run the stage scripts against them as a user would (subprocesses).

These tests need the CPU vLLM environment (scripts/setup_vllm_cpu.sh, run by scripts/test_vllm.sh)
and are skipped with a reason elsewhere. The policy is warm-started long enough that its greedy
answers are well-formed and differ between images, so that agreement between backends means
something (an untrained model's near-tied logits would make it a coin toss).
"""

from __future__ import annotations

import copy
import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
# Every test module here: `pytestmark = VLLM_TESTS`.
VLLM_TESTS = [
    pytest.mark.vllm,
    pytest.mark.skipif(importlib.util.find_spec("vllm") is None,
                       reason="vLLM is not installed (scripts/setup_vllm_cpu.sh builds .venv-vllm)"),
]
DATASET = "miniworld_a"
IMAGE_SIZE = 56
TRAIN_IMAGES, TEST_IMAGES = 16, 40
# vLLM on CPU: 1 GiB of KV cache is plenty for the tiny policy (the default reserves more).
os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", "1")


@pytest.fixture(scope="session")
def prepared_dir(tmp_path_factory) -> Path:
    from speciarl.data.miniworld import render_miniworld
    from speciarl.data.miniworld_params import MiniWorldParams

    root = tmp_path_factory.mktemp("prepared")
    params = MiniWorldParams(train_per_domain=TRAIN_IMAGES, test_per_domain=TEST_IMAGES, image_size=IMAGE_SIZE)
    render_miniworld(params, root, workers=1)
    return root


@pytest.fixture(scope="session")
def warm_policy(tmp_path_factory, prepared_dir) -> Path:
    """The tiny Qwen2.5-VL, supervised on domain A's training images for 120 epochs (about 35 s)."""
    import torch

    from speciarl.data.prepared import read_split
    from speciarl.data.taxonomy import Taxonomy
    from speciarl.policy.loading import load_policy
    from speciarl.policy.params import TinyArch
    from speciarl.policy.prompts import PROMPTS, get_prompt
    from speciarl.policy.sft import Example, completion_text, train_sft
    from speciarl.policy.tiny import DEFAULT_SYSTEM, build_tiny_policy, save_policy

    arch = TinyArch(vocab_size=1024, text_layers=2, text_intermediate=256, vision_depth=1, image_size=IMAGE_SIZE)
    taxonomy = Taxonomy.load(prepared_dir / DATASET / "taxonomy.json")
    rows = read_split(prepared_dir, DATASET, "train", columns=["image", "label"]).to_pylist()
    mix = {"generic": 0.1, "group": 0.3, "fine": 0.6}
    examples = [Example(row["image"], taxonomy, row["label"], mix) for row in rows]
    corpus = [*PROMPTS.values(), DEFAULT_SYSTEM, "system user assistant"]
    corpus += [completion_text("bird", node.name) for node in taxonomy.nodes.values()]
    out = tmp_path_factory.mktemp("policy") / "base"
    build_tiny_policy(out, corpus, arch, seed=0)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        model, processor = load_policy(str(out))
        train_sft(model, processor, examples, get_prompt("general"), epochs=120, batch_size=8, lr=3e-3, seed=0,
                  progress=False)
    finally:
        torch.set_num_threads(threads)
    save_policy(model, processor, out)
    return out


def merge(base: dict, override: dict) -> dict:
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            merge(base[key], value)
        else:
            base[key] = value
    return base


TINY_RUN = {
    "reward": "speciarl", "num_generations": 4, "per_device_train_batch_size": 8, "max_completion_length": 24,
    "max_steps": 4, "save_steps": 1, "learning_rate": 1e-2, "lora": {"r": 8, "alpha": 16},
    "max_none_fraction": 1.0,
}


@pytest.fixture()
def write_params(tmp_path, prepared_dir, warm_policy):
    """Writes the repo's params.yaml with the tiny world merged over it (plus `overrides`); returns its path."""

    def write(name: str = "params.yaml", **overrides) -> Path:
        params = yaml.safe_load((ROOT / "params.yaml").read_text())
        work = tmp_path / Path(name).stem
        tiny = {
            "data": {"prepared_dir": str(prepared_dir)},
            "policy": {
                "model": str(warm_policy), "device": "cpu", "max_new_tokens": 32, "batch_size": 16,
                "vllm": {"max_model_len": 512, "enforce_eager": True},
            },
            "harvest": {"out": str(work / "harvest.parquet"), "dataset": DATASET, "n": 4, "max_images": 8},
            "predict": {"out_dir": str(work / "predictions"), "splits": [f"{DATASET}/test", "miniworld_b/test"]},
            "judge": {"store": str(work / "verdicts")},
            "train": {"out_dir": str(work / "runs"), "runs": {"speciarl": dict(TINY_RUN)}},
        }
        params = merge(merge(params, tiny), copy.deepcopy(overrides))
        path = tmp_path / name
        path.write_text(yaml.safe_dump(params, sort_keys=False))
        return path

    return write


# TRL's colocated engine in this test process sets these (and holds the rendezvous port); a stage
# started from here must not inherit them, or it joins that process group instead of starting alone.
DISTRIBUTED_ENV = ("RANK", "LOCAL_RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT")


def stage_env() -> dict[str, str]:
    """This process's environment as a user's shell would have it: no torch.distributed settings."""
    return {key: value for key, value in os.environ.items() if key not in DISTRIBUTED_ENV}


def run_stage(stage: str, *args: str, timeout: float = 900) -> subprocess.CompletedProcess:
    """`python stages/<stage>.py ARGS` in this interpreter's environment; fails the test on a non-zero exit."""
    result = subprocess.run(
        [sys.executable, str(ROOT / "stages" / f"{stage}.py"), *args], cwd=ROOT, capture_output=True, text=True,
        timeout=timeout, env=stage_env(),
    )
    assert result.returncode == 0, f"{stage} exited {result.returncode}:\n{result.stderr[-4000:]}"
    return result
