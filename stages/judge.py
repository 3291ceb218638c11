"""Stage `judge`: verdicts for every unique (dataset, truth, prediction) of a predictions table.

--predictions is a predictions parquet (PREDICTION_SCHEMA) or a folder searched recursively for
predictions.parquet files; format errors (null prediction) need no verdict. New verdicts go to the
store (params judge.store) as they arrive. Writes --out (VERDICT_TABLE_SCHEMA) only when every pair
has a verdict, and --stats always; exits 1 when pairs are left, so a rerun asks only for those,
naming one such pair and why it has none. Bad input, or a verdict store that cannot be written,
exits 2 with one line.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from speciarl.config import DEFAULT_PARAMS, ParamsError, load_params
from speciarl.judge.cascade import JudgeService, VerdictStoreError, describe_undecided
from speciarl.judge.llm import LLMJudgeError
from speciarl.judge.server import ServerError
from speciarl.predictions import PREDICTIONS_FILE, VERDICT_TABLE_SCHEMA

_COLUMNS = ["dataset", "ground_truth", "prediction"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--llm", choices=["train", "eval"], required=True, help="judge.llm or judge.eval_llm")
    parser.add_argument("--predictions", required=True, type=Path, help="predictions parquet, or a folder of them")
    parser.add_argument("--out", required=True, type=Path, help="verdict table (parquet)")
    parser.add_argument("--stats", required=True, type=Path, help="judge statistics (JSON)")
    parser.add_argument("--params", default=str(DEFAULT_PARAMS), help="params file (default: params.yaml)")
    args = parser.parse_args(argv)
    try:
        params = load_params("judge", "data", path=args.params)
        pairs = read_pairs(args.predictions)
        with JudgeService.from_params(params["judge"], params["data"].prepared_dir, which=args.llm) as service:
            verdicts = service.resolve(pairs, progress=True)
            stats = service.stats
        stats["complete"] = stats["undecided"] == 0
        write_json(args.stats, stats)
        if not stats["complete"]:
            print(
                f"judge: error: {stats['undecided']} of {stats['unique']} unique pairs have no verdict "
                f"({stats['failures']} LLM failures), {describe_undecided(stats)}; the others are "
                f"stored in {params['judge'].store}; rerun to judge the rest",
                file=sys.stderr,
            )
            return 1
        write_verdict_table(args.out, verdicts)
    except (ParamsError, ValueError, FileNotFoundError, LLMJudgeError, ServerError, VerdictStoreError) as exc:
        print(f"judge: error: {exc}", file=sys.stderr)
        return 2
    print(
        f"judge: {stats['unique']} unique pairs ({stats['store_hits']} stored, {stats['exact']} exact, "
        f"{stats['taxonomy']} taxonomy, {stats['llm']} LLM) -> {args.out}"
    )
    return 0


def read_pairs(path: Path) -> list[tuple[str, str, str]]:
    """(dataset, ground_truth, prediction) of every answered completion under `path`."""
    files = sorted(path.rglob(PREDICTIONS_FILE)) if path.is_dir() else [path]
    if not files or not files[0].exists():
        raise FileNotFoundError(f"no predictions at {path}" + (f" (no {PREDICTIONS_FILE} inside)" if path.is_dir() else ""))
    pairs = []
    for file in files:
        try:
            table = pq.read_table(file, columns=_COLUMNS)
        except (pa.ArrowInvalid, KeyError, OSError) as exc:
            raise ValueError(f"{file}: not a predictions table ({exc})") from None
        for index, (dataset, truth, prediction) in enumerate(zip(*(table.column(c).to_pylist() for c in _COLUMNS))):
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
    path.parent.mkdir(parents=True, exist_ok=True)
    temp = path.with_name(path.name + ".tmp")
    pq.write_table(table, temp)
    os.replace(temp, path)


def write_json(path: Path, data: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    temp = path.with_name(path.name + ".tmp")
    temp.write_text(json.dumps(data, indent=1) + "\n")
    os.replace(temp, path)


if __name__ == "__main__":
    sys.exit(main())
