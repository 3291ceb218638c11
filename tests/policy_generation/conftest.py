"""Fixtures: a tiny two-class prepared dataset built in a tmp folder, and params.yaml files that run the
stages on it with the root conftest's `untrained_policy`."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import yaml
from generation_world import COLOURS, DATASET, SPLIT_SIZES, jpeg

from speciarl.data.prepared import SplitWriter, sample_id


@pytest.fixture(scope="session")
def prepared(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("prepared")
    labels = list(COLOURS)
    for split, size in SPLIT_SIZES.items():
        with SplitWriter(root, DATASET, split, shard_rows=4) as writer:
            for i in range(size):
                label = labels[i % 2]
                writer.add(
                    {
                        "sample_id": sample_id(DATASET, f"{split}/{i}"),
                        "dataset": DATASET,
                        "split": split,
                        "image": jpeg(COLOURS[label], i),
                        "label": label,
                        "label_path": ["shape", label],
                    }
                )
            writer.commit({})
    with SplitWriter(root, DATASET, "empty") as writer:
        writer.commit({})
    return root


@pytest.fixture
def write_params(tmp_path, untrained_policy, prepared):
    """Writes a params.yaml for the tiny world (with overrides per section) and returns its path."""

    def write(**overrides) -> Path:
        params = {
            "data": {"prepared_dir": str(prepared)},
            "policy": {
                "model": str(untrained_policy),
                "max_new_tokens": 6,
                "batch_size": 4,
                "device": "cpu",
                "cpu_threads": 1,
            },
            "harvest": {
                "out": str(tmp_path / "harvest" / "rollouts.parquet"),
                "dataset": DATASET,
                "split": "train",
                "n": 3,
                "max_images": 6,
            },
            "predict": {
                "out_dir": str(tmp_path / "predictions"),
                "splits": [f"{DATASET}/test", f"{DATASET}/train"],
                "best_of_n": {"n": 2},
            },
            "train": {"out_dir": str(tmp_path / "runs")},
        }
        for section, values in overrides.items():
            params[section] = {**params.get(section, {}), **values}
        path = tmp_path / "params.yaml"
        path.write_text(yaml.safe_dump(params))
        return path

    return write


@pytest.fixture(autouse=True, scope="module")
def _restore_torch_threads():
    """policy.cpu_threads sets torch's global thread count; other test modules must not inherit it."""
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)
