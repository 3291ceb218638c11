"""Stage `judge`: verdicts for every unique (dataset, truth, prediction) of a predictions table.

--predictions is a predictions parquet (PREDICTION_SCHEMA) or a folder searched recursively for
predictions.parquet files; format errors (null prediction) need no verdict. New verdicts go to the
store (params judge.store) as they arrive. Writes --out (VERDICT_TABLE_SCHEMA) only when every pair
has a verdict, and --stats always (the cascade's counts; `judges`: what each judge id is; `luck`:
speciarl.judge.luck's figures of each table with several rollouts per image); when pairs are left it
fails (exit 1) naming one such pair and why it has none, and a rerun asks only for those.
Errors and exit codes: speciarl.stage.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from speciarl.atomic import atomic_path, atomic_write_text
from speciarl.config import load_params
from speciarl.judge.cascade import JudgeService, describe_undecided
from speciarl.judge.luck import luck_of_predictions
from speciarl.predictions import PREDICTIONS_FILE, VERDICT_TABLE_SCHEMA
from speciarl.stage import RunFailure, run_stage

_COLUMNS = ["dataset", "ground_truth", "prediction"]


def main(argv: list[str] | None = None) -> int:
    return run_stage("judge", __doc__, run, argv, arguments=_arguments)


def _arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--llm", choices=["train", "eval"], required=True, help="judge.llm or judge.eval_llm")
    parser.add_argument("--predictions", required=True, type=Path, help="predictions parquet, or a folder of them")
    parser.add_argument("--out", required=True, type=Path, help="verdict table (parquet)")
    parser.add_argument("--stats", required=True, type=Path, help="judge statistics (JSON)")


def run(args: argparse.Namespace) -> None:
    params = load_params("judge", "data", path=args.params)
    pairs = read_pairs(args.predictions)
    with JudgeService.from_params(params["judge"], params["data"].prepared_dir, which=args.llm) as service:
        verdicts = service.resolve(pairs, progress=True)
        stats = service.stats
        stats["judges"] = service.judge_names()
        stats["luck"] = luck_of_predictions(args.predictions, verdicts, service.taxonomy_judge)
    stats["complete"] = stats["undecided"] == 0
    atomic_write_text(args.stats, json.dumps(stats, indent=1) + "\n")
    if not stats["complete"]:
        raise RunFailure(
            f"{stats['undecided']} of {stats['unique']} unique pairs have no verdict "
            f"({stats['failures']} LLM failures), {describe_undecided(stats)}; the others are "
            f"stored in {params['judge'].store}; rerun to judge the rest"
        )
    write_verdict_table(args.out, verdicts)
    print(
        f"judge: {stats['unique']} unique pairs ({stats['store_hits']} stored, {stats['exact']} exact, "
        f"{stats['taxonomy']} taxonomy, {stats['llm']} LLM) -> {args.out}"
    )


def read_pairs(path: Path) -> list[tuple[str, str, str]]:
    """(dataset, ground_truth, prediction) of every answered completion under `path`."""
    files = sorted(path.rglob(PREDICTIONS_FILE)) if path.is_dir() else [path]
    if not files or not files[0].exists():
        raise FileNotFoundError(
            f"no predictions at {path}" + (f" (no {PREDICTIONS_FILE} inside)" if path.is_dir() else "")
        )
    pairs = []
    for file in files:
        try:
            table = pq.read_table(file, columns=_COLUMNS)
        except (pa.ArrowInvalid, KeyError, OSError) as exc:
            raise ValueError(f"{file}: not a predictions table ({exc})") from None
        for index, (dataset, truth, prediction) in enumerate(
            zip(*(table.column(c).to_pylist() for c in _COLUMNS), strict=True)
        ):
            if prediction is None:
                continue  # a format error needs no verdict
            if dataset is None or truth is None:
                raise ValueError(f"{file}: row {index} has no dataset or ground_truth")
            pairs.append((dataset, truth, prediction))
    return pairs


def write_verdict_table(path: Path, verdicts: dict) -> None:
    rows = sorted(verdicts.items(), key=lambda item: item[0])
    table = pa.table(
        {
            "dataset": [key[0] for key, _ in rows],
            "ground_truth": [key[1] for key, _ in rows],
            "prediction": [key[2] for key, _ in rows],
            "category": [verdict.category.value for _, verdict in rows],
            "judge": [verdict.judge for _, verdict in rows],
        },
        schema=VERDICT_TABLE_SCHEMA,
    )
    with atomic_path(path) as temp:
        pq.write_table(table, temp)


if __name__ == "__main__":
    sys.exit(main())
