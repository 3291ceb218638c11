"""Stage `evaluate`: every predictions run + the eval verdicts -> per-sample table, metrics, best-of-k plots.

Outputs under evaluate.out_dir: per_sample.parquet, metrics.json, best_of_k/<run>/<dataset>-<split>.csv.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import polars as pl

from speciarl.config import DEFAULT_PARAMS, ParamsError, load_section
from speciarl.evaluate.files import replaced_directory, write_json, write_parquet
from speciarl.evaluate.judge_free import load_similarity_model
from speciarl.evaluate.per_sample import PER_SAMPLE_FILE, build_per_sample
from speciarl.evaluate.summary import BEST_OF_K_DIR, METRICS_FILE, best_of_k, metrics_table, write_best_of_k


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--params", default=str(DEFAULT_PARAMS), help="params file (default: params.yaml)")
    args = parser.parse_args(argv)
    try:
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
        with replaced_directory(out_dir / BEST_OF_K_DIR) as folder:
            write_best_of_k(best_of_k(frame), folder)
        write_parquet(out_dir / PER_SAMPLE_FILE, per_sample)
        write_json(out_dir / METRICS_FILE, metrics)
    except (ParamsError, ValueError, FileNotFoundError) as exc:
        print(f"evaluate: error: {exc}", file=sys.stderr)
        return 1
    print(f"evaluate: {frame.height} predictions of {len(metrics)} runs -> {out_dir / METRICS_FILE}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
