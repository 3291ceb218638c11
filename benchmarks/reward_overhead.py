"""Reward overhead on the mini world: time in the reward function as a share of the GRPO step (target < 2 %).

    python benchmarks/reward_overhead.py [--params params.yaml] [--run speciarl] [--steps 10]

Runs the real training path (speciarl.train.grpo.train_run with the run's params, shortened to
--steps steps) on the bootstrapped base policy and the prepared mini world, with the judge of
params.yaml working on a temporary copy of the verdict store (the pipeline's store is not
touched). The reward function times itself every step (curves.csv column reward_seconds: answer
extraction, store lookups, judging misses, storing verdicts, grouping, metrics); TRL times the
whole step (step_seconds: generation, scoring, forward and backward). Prints both and their ratio.
"""

from __future__ import annotations

import argparse
import csv
import shutil
import sys
import tempfile
from pathlib import Path

from speciarl.config import load_params
from speciarl.judge.cascade import JudgeService
from speciarl.train.grpo import CURVES_FILE, train_run


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--run", default="speciarl")
    parser.add_argument("--steps", type=int, default=10)
    args = parser.parse_args()
    params = load_params("data", "policy", "judge", "harvest", "train", path=args.params)
    policy, judge_params, train = params["policy"], params["judge"], params["train"]
    prepared_dir = params["data"].prepared_dir
    if not (Path(policy.model) / "config.json").exists() or not Path(prepared_dir).exists():
        print(f"needs the base policy {policy.model} and {prepared_dir}: run `dvc repro bootstrap`", file=sys.stderr)
        return 2
    run = train.runs[args.run]
    grpo = run.grpo.model_copy(update={"max_steps": args.steps, "save_steps": args.steps})
    run = run.model_copy(update={"grpo": grpo})
    work = Path(tempfile.mkdtemp(prefix="reward_overhead-"))
    store = work / "verdicts"
    if Path(judge_params.store).exists():
        shutil.copytree(judge_params.store, store)
    judge_params = judge_params.model_copy(update={"store": str(store)})
    with JudgeService.from_params(judge_params, prepared_dir, which="train") as judge:
        harvest = params["harvest"].out
        train_run(
            args.run,
            run,
            policy,
            judge,
            prepared_dir,
            work / "runs",
            train.run_seed(args.run),
            harvest_rollouts=harvest,
        )
        stats = judge.stats
    with (work / "runs" / args.run / CURVES_FILE).open() as handle:
        rows = list(csv.DictReader(handle))
    steps = [float(row["step_seconds"]) for row in rows]
    rewards = [float(row["reward_seconds"]) for row in rows]
    completions = run.grpo.per_device_train_batch_size * run.grpo.micro_batches_per_generation
    print(f"{len(rows)} steps of {completions} completions ({run.reward} reward, {args.run} run of {args.params})")
    print(f"step    mean {sum(steps) / len(steps):8.3f} s   (min {min(steps):.3f}, max {max(steps):.3f})")
    low, high = 1000 * min(rewards), 1000 * max(rewards)
    print(f"reward  mean {1000 * sum(rewards) / len(rewards):8.2f} ms  (min {low:.2f}, max {high:.2f})")
    print(f"reward share of the step: {100 * sum(rewards) / sum(steps):.2f} % (target < 2 %)")
    print(
        "judge: {unique} unique pairs asked, {store_hits} store hits, {exact} exact, {taxonomy} taxonomy, "
        "{llm} LLM, {undecided} undecided".format(**stats)
    )
    shutil.rmtree(work)
    return 0


if __name__ == "__main__":
    sys.exit(main())
