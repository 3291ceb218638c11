"""The mini world: the pipeline's default dataset, two domains of procedurally rendered images.

`miniworld_a` (birds, for RL training) and `miniworld_b` (cars, held out) each get a
taxonomy.json and `train` / `test` splits in the prepared layout. Classes and their looks are
in miniworld_classes, drawing in miniworld_draw. Every image is a function of (seed, domain,
split, index) alone, so the output is byte-identical for a seed whatever the number of workers.
"""

from __future__ import annotations

import multiprocessing
import os
from collections import Counter
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
from tqdm import tqdm

from speciarl.data import prepared
from speciarl.data.miniworld_classes import (
    DOMAINS,
    LEVELS,
    class_look,
    miniworld_classes,
    miniworld_groups,
    miniworld_taxonomy,
)
from speciarl.data.miniworld_draw import render_image
from speciarl.data.miniworld_params import MiniWorldParams

__all__ = ["SPLITS", "render_miniworld", "miniworld_taxonomy", "miniworld_classes", "miniworld_groups"]

SPLITS = ("train", "test")
CHUNK = 100  # images per pool task: large enough to amortise pickling, small enough for progress


def split_size(params: MiniWorldParams, split: str) -> int:
    return params.train_per_domain if split == "train" else params.test_per_domain


def split_labels(params: MiniWorldParams, dataset: str, split: str) -> list[str]:
    """The class of each image of a split: balanced (counts differ by at most one), seeded order."""
    classes = miniworld_classes(dataset)
    rng = np.random.default_rng([params.seed, DOMAINS.index(dataset), SPLITS.index(split)])
    extra = rng.permutation(len(classes))  # which classes get the remainder images
    labels = [classes[extra[i % len(classes)]] for i in range(split_size(params, split))]
    rng.shuffle(labels)
    return labels


def _render_chunk(dataset: str, split: str, settings: dict, items: list[tuple[int, str]]) -> list[bytes]:
    base = [settings["seed"], DOMAINS.index(dataset), SPLITS.index(split)]
    out = []
    for index, label in items:
        kind, look = class_look(dataset, label)
        out.append(render_image(kind, look, settings, np.random.default_rng([*base, index])))
    return out


def _default_workers() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def render_split(
    params: MiniWorldParams, prepared_dir: str | Path, dataset: str, split: str, pool: ProcessPoolExecutor | None
) -> dict:
    """Render one split and write it atomically; returns its manifest."""
    labels = split_labels(params, dataset, split)
    taxonomy = miniworld_taxonomy(dataset)
    settings = params.model_dump()
    items = list(enumerate(labels))
    chunks = [items[i : i + CHUNK] for i in range(0, len(items), CHUNK)]
    if pool is None:
        results = (_render_chunk(dataset, split, settings, chunk) for chunk in chunks)
    else:
        results = pool.map(_render_chunk, *zip(*((dataset, split, settings, chunk) for chunk in chunks), strict=True))
    with (
        prepared.SplitWriter(prepared_dir, dataset, split) as writer,
        tqdm(total=len(items), desc=f"render {dataset}/{split}", unit="img", leave=False) as progress,
    ):
        for chunk, images in zip(chunks, results, strict=True):
            for (index, label), image in zip(chunk, images, strict=True):
                writer.add(
                    {
                        "sample_id": prepared.sample_id(dataset, f"{split}/{index:06d}"),
                        "dataset": dataset,
                        "split": split,
                        "image": image,
                        "label": label,
                        "label_path": taxonomy.path(label),
                    }
                )
            progress.update(len(chunk))
        counts = Counter(labels)
        classes = miniworld_classes(dataset)
        return writer.commit(
            {
                "classes": classes,
                "counts": {label: counts[label] for label in classes},
                "levels": LEVELS,
                "groups": miniworld_groups(dataset),
                "params": settings,
            }
        )


def render_miniworld(params: MiniWorldParams, prepared_dir: str | Path, workers: int | None = None) -> dict[str, dict]:
    """Write `miniworld_a` and `miniworld_b` (taxonomy.json, train and test) under prepared_dir.

    Returns {"<dataset>/<split>": manifest}. `workers` processes render in parallel (default:
    the CPUs this process may use); the output does not depend on it.
    """
    workers = _default_workers() if workers is None else workers
    if workers < 1:
        raise ValueError(f"workers must be at least 1 (got {workers})")
    manifests = {}
    # spawn, not fork: the caller may hold threads (pyarrow, torch) that a forked child would inherit locked
    pool = ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn")) if workers > 1 else None
    try:
        for dataset in DOMAINS:
            path = prepared.taxonomy_path(prepared_dir, dataset)
            path.parent.mkdir(parents=True, exist_ok=True)
            miniworld_taxonomy(dataset).save(path)
            for split in SPLITS:
                manifests[f"{dataset}/{split}"] = render_split(params, prepared_dir, dataset, split, pool)
    finally:
        if pool is not None:
            pool.shutdown(cancel_futures=True)
    return manifests
