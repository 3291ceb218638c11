"""Helpers of the real-vLLM tests: the skip marks, the tiny training run, and running a stage script
as a user would (a subprocess with a clean environment)."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest
from tiny_world import MINIWORLD_DATASET

ROOT = Path(__file__).resolve().parents[2]
DATASET = MINIWORLD_DATASET  # the domain the tests train and predict on
# Every test module here: `pytestmark = VLLM_TESTS`.
VLLM_TESTS = [
    pytest.mark.vllm,
    pytest.mark.skipif(
        importlib.util.find_spec("vllm") is None,
        reason="vLLM is not installed (scripts/setup_vllm_cpu.sh builds .venv-vllm)",
    ),
]
# vLLM on CPU: 1 GiB of KV cache is plenty for the tiny policy (the default reserves more).
os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", "1")

TINY_RUN = {
    "reward": "speciarl",
    "lora": {"r": 8, "alpha": 16},
    "grpo": {
        "num_generations": 4,
        "per_device_train_batch_size": 8,
        "max_completion_length": 24,
        "max_steps": 4,
        "save_steps": 1,
        "learning_rate": 1e-2,
    },
    "max_none_fraction": 1.0,
}


# TRL's colocated engine in this test process sets these (and holds the rendezvous port); a stage
# started from here must not inherit them, or it joins that process group instead of starting alone.
DISTRIBUTED_ENV = ("RANK", "LOCAL_RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT")


def stage_env() -> dict[str, str]:
    """This process's environment as a user's shell would have it: no torch.distributed settings."""
    return {key: value for key, value in os.environ.items() if key not in DISTRIBUTED_ENV}


def run_stage(stage: str, *args: str, timeout: float = 900) -> subprocess.CompletedProcess:
    """`python stages/<stage>.py ARGS` in this interpreter's environment; fails the test on a non-zero exit."""
    result = subprocess.run(
        [sys.executable, str(ROOT / "stages" / f"{stage}.py"), *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=stage_env(),
    )
    assert result.returncode == 0, f"{stage} exited {result.returncode}:\n{result.stderr[-4000:]}"
    return result
