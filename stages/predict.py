"""Stage `predict`: a policy's predictions on every evaluation split in params `predict.splits`.

    python stages/predict.py --policy base --prompt NAME     greedy, base model
    python stages/predict.py --policy base --best-of-n       predict.best_of_n samples, base model
    python stages/predict.py --policy RUN --prompt NAME      greedy, base model + <train.out_dir>/RUN/adapter

Writes <predict.out_dir>/<policy>-<prompt or best_of_n>/predictions.parquet. Resumable after a crash.
Images that cannot be decoded are skipped and counted, up to params data.max_corrupt_fraction of a split.
Errors and exit codes: speciarl.stage.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from speciarl.config import load_params, load_section
from speciarl.stage import run_stage

BASE = "base"


def main(argv: list[str] | None = None) -> int:
    return run_stage("predict", __doc__, run, argv, arguments=_arguments)


def _arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--policy", required=True, help="'base', or the name of a training run")
    mode = parser.add_mutually_exclusive_group(required=True)
    mode.add_argument("--prompt", help="prompt name for greedy predictions")
    mode.add_argument("--best-of-n", action="store_true", help="sample predict.best_of_n completions per image")


def run(args: argparse.Namespace) -> None:
    # imported here, where its cost is paid only once the arguments are fine
    from speciarl.policy.rollouts import predict

    params = load_params("policy", "predict", "data", path=args.params)
    adapter = None
    if args.policy != BASE:
        adapter = Path(load_section("train", args.params).out_dir) / args.policy / "adapter"
        if not adapter.is_dir():
            raise FileNotFoundError(f"no adapter for run {args.policy!r} at {adapter} (train it first)")
    out = predict(
        params["policy"],
        params["predict"],
        params["data"].prepared_dir,
        policy_id=args.policy,
        adapter=adapter,
        prompt_name=args.prompt,
        best_of_n=args.best_of_n,
        max_corrupt_fraction=params["data"].max_corrupt_fraction,
    )
    print(f"predict: {out}")


if __name__ == "__main__":
    sys.exit(main())
