"""Stage `train`: GRPO training of one run of params `train.runs` (python stages/train.py --run NAME).

Writes <train.out_dir>/<run>/adapter, train_metrics.json and curves.csv. A rerun after a crash
resumes from the run's newest complete checkpoint, if params, data, base model and judge are unchanged. Several GPUs: accelerate launch --config_file
configs/accelerate/ddp.yaml (or zero3.yaml) stages/train.py --run NAME.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys

from speciarl.config import DEFAULT_PARAMS, ParamsError, load_params
from speciarl.judge.cascade import JudgeService, VerdictStoreError
from speciarl.train.grpo import train_run
from speciarl.train.reward_func import JudgeOutageError


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", required=True, help="a run name under train.runs in params.yaml")
    parser.add_argument("--params", default=str(DEFAULT_PARAMS))
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    try:
        params = load_params("data", "policy", "judge", "train", path=args.params)
        train = params["train"]
        if args.run not in train.runs:
            raise ParamsError(f"{args.params}: train.runs.{args.run}: no such run (known: {', '.join(train.runs)})")
        prepared_dir = params["data"].prepared_dir
        with JudgeService.from_params(params["judge"], prepared_dir, which="train") as judge:
            metrics = train_run(
                args.run, train.runs[args.run], params["policy"], judge, prepared_dir, train.out_dir, train.seed
            )
    except (ParamsError, ValueError, FileNotFoundError, JudgeOutageError, VerdictStoreError) as exc:
        print(f"train: error: {exc}", file=sys.stderr)
        return 1
    print(json.dumps({key: metrics[key] for key in ("reward", "steps", "reward_mean_first", "reward_mean_last")}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
