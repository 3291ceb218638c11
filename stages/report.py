"""Stage `report`: metrics.json + per_sample.parquet + judge stats + training curves and model cards
-> <report_dir>/report.md with PNG plots, reward_curves.csv and model_cards/<run>/README.md.

Errors and exit codes: speciarl.stage.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from speciarl.atomic import atomic_directory
from speciarl.config import load_section
from speciarl.evaluate.per_sample import PER_SAMPLE_FILE
from speciarl.evaluate.report import REPORT_FILE, read_inputs, write_report
from speciarl.evaluate.summary import METRICS_FILE
from speciarl.stage import run_stage


def main(argv: list[str] | None = None) -> int:
    return run_stage("report", __doc__, run, argv)


def run(args: argparse.Namespace) -> None:
    params = load_section("evaluate", args.params)
    metrics_path = Path(params.out_dir) / METRICS_FILE
    inputs = read_inputs(params, metrics_path, Path(params.out_dir) / PER_SAMPLE_FILE)
    try:
        with atomic_directory(params.report_dir) as folder:
            write_report(inputs, folder)
    except KeyError as exc:
        raise ValueError(f"{metrics_path}: missing key {exc} (written by an older evaluate stage?)") from None
    print(f"report: {Path(params.report_dir) / REPORT_FILE}")


if __name__ == "__main__":
    sys.exit(main())
