"""Stage `report`: metrics.json + per_sample.parquet -> <report_dir>/report.md with PNG plots."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import polars as pl

from speciarl.config import DEFAULT_PARAMS, ParamsError, load_section
from speciarl.evaluate.files import replaced_directory
from speciarl.evaluate.per_sample import PER_SAMPLE_FILE
from speciarl.evaluate.report import REPORT_FILE, write_report
from speciarl.evaluate.summary import METRICS_FILE


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--params", default=str(DEFAULT_PARAMS), help="params file (default: params.yaml)")
    args = parser.parse_args(argv)
    try:
        params = load_section("evaluate", args.params)
        metrics_path = Path(params.out_dir) / METRICS_FILE
        per_sample_path = Path(params.out_dir) / PER_SAMPLE_FILE
        for path in (metrics_path, per_sample_path):
            if not path.is_file():
                raise FileNotFoundError(f"{path}: not found (run the evaluate stage first)")
        try:
            metrics = json.loads(metrics_path.read_text())
        except json.JSONDecodeError as exc:
            raise ValueError(f"{metrics_path}: not valid JSON ({exc})") from None
        per_sample = pl.read_parquet(per_sample_path, columns=["judge"])
        try:
            with replaced_directory(params.report_dir) as folder:
                write_report(metrics, per_sample, params.groups, folder)
        except KeyError as exc:
            raise ValueError(f"{metrics_path}: missing key {exc} (written by an older evaluate stage?)") from None
    except (ParamsError, ValueError, FileNotFoundError) as exc:
        print(f"report: error: {exc}", file=sys.stderr)
        return 1
    print(f"report: {Path(params.report_dir) / REPORT_FILE}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
