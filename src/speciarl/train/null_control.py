"""The null control's reward rate from the harvest: the base policy's mean SpeciaRL reward.

A null run (reward `null_control`) rewards each judged rollout with 1 at a fixed rate, at random: it
trains with the same knobs and about the same reward mean as SpeciaRL, but the reward says nothing
about the answer, so what it does to the policy is what the optimiser does on its own. With
`null_rate: auto` that rate is measured on the harvest (the base policy's rollouts that the judge
stage has judged): the mean SpeciaRL reward of the judged rollouts of the run's dataset, scored in
groups of the run's num_generations (the first ones of each harvested image), i.e. the reward mean
SpeciaRL itself starts training from.

Raises FileNotFoundError when the harvest file is missing and ValueError when it holds no judged
rollout of the dataset; the verdicts come from the judge (its verdict store), as during training.
"""

from __future__ import annotations

from pathlib import Path

import pyarrow.parquet as pq

from speciarl.labels import FORMAT_ERROR
from speciarl.rewards import speciarl_reward
from speciarl.train.reward_func import Judge, judge_answers

_COLUMNS = ["sample_id", "dataset", "ground_truth", "sample_index", "prediction", "format_error"]


def harvest_reward_rate(rollouts: str | Path, judge: Judge, dataset: str, num_generations: int) -> float:
    """Mean SpeciaRL reward (min_support 1) of the harvest's judged rollouts of `dataset` (module docstring)."""
    path = Path(rollouts)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: harvest not found (null_rate auto is measured on it; run the harvest stage)")
    rows = [row for row in pq.read_table(path, columns=_COLUMNS).to_pylist() if row["dataset"] == dataset]
    groups: dict[str, list[dict]] = {}
    for row in sorted(rows, key=lambda row: row["sample_index"]):
        group = groups.setdefault(row["sample_id"], [])
        if len(group) < num_generations:
            group.append(row)
    kept = [row for group in groups.values() for row in group]
    answers = [None if row["format_error"] else row["prediction"] for row in kept]
    categories = judge_answers(judge, [dataset] * len(kept), [row["ground_truth"] for row in kept], answers)
    rewards = speciarl_reward(categories, [row["sample_id"] for row in kept])
    pairs = zip(categories, rewards, strict=True)
    judged = [reward for category, reward in pairs if category not in (FORMAT_ERROR, None)]
    if not judged:
        raise ValueError(
            f"{path}: no judged rollout of dataset {dataset!r} to measure null_rate auto on; set the run's null_rate"
        )
    return sum(judged) / len(judged)
