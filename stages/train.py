"""Stage `train`: GRPO training of one run of params `train.runs` (python stages/train.py --run NAME).

Writes <train.out_dir>/<run>/adapter, train_metrics.json and curves.csv; a null run with null_rate
auto reads the harvest (harvest.out). A rerun after a crash resumes from the run's newest complete
checkpoint, if params, data, base model and judge are unchanged. Several GPUs: accelerate launch
--config_file configs/accelerate/ddp.yaml (or zero3.yaml) stages/train.py --run NAME.
Errors and exit codes: speciarl.stage.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys

from speciarl.config import ParamsError, load_params
from speciarl.judge.cascade import JudgeService
from speciarl.stage import run_stage
from speciarl.train.grpo import train_run


def main(argv: list[str] | None = None) -> int:
    return run_stage("train", __doc__, run, argv, arguments=_arguments)


def _arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--run", required=True, help="a run name under train.runs in params.yaml")


def run(args: argparse.Namespace) -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    params = load_params("data", "policy", "judge", "harvest", "train", path=args.params)
    train = params["train"]
    if args.run not in train.runs:
        raise ParamsError(f"{args.params}: train.runs.{args.run}: no such run (known: {', '.join(train.runs)})")
    prepared_dir = params["data"].prepared_dir
    with JudgeService.from_params(params["judge"], prepared_dir, which="train") as judge:
        metrics = train_run(
            args.run,
            train.runs[args.run],
            params["policy"],
            judge,
            prepared_dir,
            train.out_dir,
            train.run_seed(args.run),
            harvest_rollouts=params["harvest"].out,
        )
    print(json.dumps({key: metrics[key] for key in ("reward", "steps", "reward_mean_first", "reward_mean_last")}))


if __name__ == "__main__":
    sys.exit(main())
