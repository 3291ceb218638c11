"""The training prompts: one row per image of a prepared split, in the shape GRPOTrainer and the reward need."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
from datasets import Dataset, Features, Image, List, Value

from speciarl.data.prepared import read_manifest, read_split
from speciarl.policy.prompts import build_messages, get_prompt
from speciarl.train.params import RunParams

TRAIN_FEATURES = Features(
    {
        "prompt": List({"role": Value("string"), "content": List({"type": Value("string"), "text": Value("string")})}),
        "image": Image(),
        "sample_id": Value("string"),
        "ground_truth": Value("string"),
        "dataset": Value("string"),
    }
)


def build_train_dataset(prepared_dir: str | Path, run: RunParams) -> Dataset:
    """Rows (prompt, image, sample_id, ground_truth, dataset) of `run.dataset`/`run.split`.

    With `run.subset_size`, a random subset drawn with `run.subset_seed` (the paper: 3,000 CUB
    training images, seed 42). Images stay JPEG bytes until the trainer decodes a batch.
    """
    table = read_split(prepared_dir, run.dataset, run.split, columns=["sample_id", "image", "label"])
    if table.num_rows == 0:
        raise ValueError(f"prepared split {run.dataset}/{run.split} in {prepared_dir} is empty")
    ids = table.column("sample_id").to_pylist()
    if len(set(ids)) != len(ids):
        duplicate = next(i for i, n in Counter(ids).items() if n > 1)
        raise ValueError(f"prepared split {run.dataset}/{run.split}: sample_id {duplicate!r} is not unique")
    if run.subset_size is not None:
        if run.subset_size > table.num_rows:
            raise ValueError(
                f"subset_size {run.subset_size} is larger than {run.dataset}/{run.split} ({table.num_rows} samples)"
            )
        rows = np.random.default_rng(run.subset_seed).permutation(table.num_rows)[: run.subset_size]
        table = table.take(np.sort(rows))
    prompt = build_messages(get_prompt(run.prompt))
    columns = {
        "prompt": [prompt] * table.num_rows,
        "image": [{"bytes": data, "path": None} for data in table.column("image").to_pylist()],
        "sample_id": table.column("sample_id").to_pylist(),
        "ground_truth": table.column("label").to_pylist(),
        "dataset": [run.dataset] * table.num_rows,
    }
    return Dataset.from_dict(columns, features=TRAIN_FEATURES)


def split_fingerprint(prepared_dir: str | Path, run: RunParams) -> str:
    """The prepared split's content hash, so checkpoints of other data are never resumed."""
    return read_manifest(prepared_dir, run.dataset, run.split)["content_hash"]
