"""Stage `evaluate`: every predictions run + the eval verdicts -> per-sample table, metrics, best-of-k plots.

Outputs under evaluate.out_dir: per_sample.parquet, metrics.json, headline/<group>/<run>.json (the DVC
metrics), best_of_k/<run>/<dataset>-<split>.csv. Errors and exit codes: speciarl.stage.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import polars as pl
import pyarrow.parquet as pq

from speciarl.atomic import atomic_directory, atomic_path, atomic_write_text
from speciarl.config import load_section
from speciarl.evaluate.judge_free import load_similarity_model
from speciarl.evaluate.per_sample import PER_SAMPLE_FILE, build_per_sample
from speciarl.evaluate.summary import (
    BEST_OF_K_DIR,
    HEADLINE_DIR,
    METRICS_FILE,
    best_of_k,
    headline,
    metrics_table,
    write_best_of_k,
    write_headline,
)
from speciarl.stage import run_stage


def main(argv: list[str] | None = None) -> int:
    return run_stage("evaluate", __doc__, run, argv)


def run(args: argparse.Namespace) -> None:
    params = load_section("evaluate", args.params)
    per_sample = build_per_sample(
        params.predictions_dir,
        params.verdicts,
        lambda: load_similarity_model(params.similarity_model),
        params.similarity_batch_size,
    )
    frame = pl.from_arrow(per_sample)
    metrics = metrics_table(frame, params.groups)
    out_dir = Path(params.out_dir)
    with atomic_directory(out_dir / BEST_OF_K_DIR) as folder:
        write_best_of_k(best_of_k(frame), folder)
    with atomic_directory(out_dir / HEADLINE_DIR) as folder:
        write_headline(headline(metrics), folder)
    with atomic_path(out_dir / PER_SAMPLE_FILE) as temp:
        pq.write_table(per_sample, temp)
    atomic_write_text(out_dir / METRICS_FILE, json.dumps(metrics, indent=2) + "\n")
    print(f"evaluate: {frame.height} predictions of {len(metrics)} runs -> {out_dir / METRICS_FILE}")


if __name__ == "__main__":
    sys.exit(main())
