"""Luck figures of rollouts: how much of each image's best taxonomy level rests on one rollout.

SpeciaRL anchors each image's reward at the best level some rollout reached. With few classes per
level, a policy that guesses reaches a coarse level by luck; these figures show how often.

Every image (a sample_id of a dataset split) has N rollouts. A rollout reaches one level of the
taxonomy on the truth's lineage, or none:
- specific or more specific: the truth's own level (more specific counts as specific, as in the reward);
- less specific or generic: the level of the ancestor it names (its name or a synonym); when the
  taxonomy has no such name (an LLM verdict on free text), the coarsest level its verdict
  guarantees: `close_levels` above the truth's level for less specific, the root's for generic;
- wrong, abstain, a format error or no verdict: none.
A rollout that reaches a level also reaches every coarser one. An image's best level is the finest
level some rollout reached.

Per level L of the taxonomy (its `levels`, coarse to fine), over the `images` whose truth's lineage
has a node at L:
- nodes: k, the number of taxonomy nodes at L;
- reached: share of the images where at least one rollout reached L;
- chance: the share a uniformly guessing policy reaches, each of an image's N rollouts naming one of
  the k nodes at L at random: the mean over the images of 1 - (1 - 1/k)^N;
- best: share of the images whose best level is L;
- best_single: share of the images whose best level is L and was reached by exactly one rollout.

Output per predictions table with more than one rollout per image:
    {table path: {dataset: {split: {"images", "rollouts_per_image" (mean N), "levels": {L: FIGURES}}}}}
Datasets without a taxonomy are left out. A truth label that is not a class of its dataset's
taxonomy is a ValueError naming the dataset and the label.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from speciarl.data.taxonomy import Taxonomy
from speciarl.judge.cascade import PairKey, pair_key
from speciarl.judge.store import Verdict
from speciarl.judge.taxonomy_judge import TaxonomyJudge
from speciarl.labels import Category, normalize
from speciarl.predictions import PREDICTIONS_FILE

_COLUMNS = ["dataset", "split", "sample_id", "ground_truth", "prediction"]
_DIGITS = 6
_SHARES = ("reached", "chance", "best", "best_single")
_AT_TRUTH = frozenset({Category.SPECIFIC, Category.MORE_SPECIFIC})
_ABOVE_TRUTH = frozenset({Category.LESS_SPECIFIC, Category.GENERIC})

CategoryOf = Callable[[str, str, str], Category | None]
"""(dataset, ground truth, prediction) -> the verdict's category, None for no verdict."""
JudgeFor = Callable[[str], TaxonomyJudge]
"""dataset -> the taxonomy judge of the cascade (its taxonomy and close_levels)."""


def reached_level(
    taxonomy: Taxonomy, truth_node: str, prediction: str | None, category: Category | None, close_levels: int
) -> int | None:
    """Index in taxonomy.levels of the finest level the rollout reached on the truth's lineage, or None."""
    lineage = taxonomy.lineage(truth_node)
    truth_level = taxonomy.levels.index(lineage[-1].level)
    if category in _AT_TRUTH:
        return truth_level
    if category not in _ABOVE_TRUTH or prediction is None:
        return None
    found = set(taxonomy.find(prediction))
    named = [node for node in lineage[:-1] if node.id in found]
    if len(named) == 1:
        return taxonomy.levels.index(named[0].level)
    if category is Category.LESS_SPECIFIC:
        return max(truth_level - close_levels, taxonomy.levels.index(lineage[0].level))
    return taxonomy.levels.index(lineage[0].level)


def luck_figures(rows: list[dict], category_of: CategoryOf, judge: TaxonomyJudge) -> dict:
    """Figures of one dataset split (module docstring); `rows` are its rollouts (columns of _COLUMNS)."""
    taxonomy = judge.taxonomy
    # class labels as written, then normalised (as the judge reads them)
    classes = {normalize(label): node for label, node in taxonomy.classes.items()} | taxonomy.classes
    rollouts: dict[str, list[int | None]] = defaultdict(list)
    truths: dict[str, str] = {}
    for row in rows:
        truth_node = classes.get(row["ground_truth"]) or classes.get(normalize(row["ground_truth"]))
        if truth_node is None:
            raise ValueError(f"{taxonomy.dataset}: ground truth {row['ground_truth']!r} is not a class of its taxonomy")
        truths[row["sample_id"]] = truth_node
        prediction = row["prediction"]
        category = None if prediction is None else category_of(row["dataset"], row["ground_truth"], prediction)
        rollouts[row["sample_id"]].append(reached_level(taxonomy, truth_node, prediction, category, judge.close_levels))
    nodes_at = {level: sum(node.level == level for node in taxonomy.nodes.values()) for level in taxonomy.levels}
    totals: dict[str, dict[str, float]] = {level: defaultdict(float) for level in taxonomy.levels}
    for sample_id, reached in rollouts.items():
        hits = [level for level in reached if level is not None]
        best = max(hits, default=None)
        for node in taxonomy.lineage(truths[sample_id]):
            index = taxonomy.levels.index(node.level)
            figures = totals[node.level]
            figures["images"] += 1
            figures["reached"] += best is not None and best >= index
            figures["chance"] += 1 - (1 - 1 / nodes_at[node.level]) ** len(reached)
            figures["best"] += best == index
            figures["best_single"] += best == index and sum(level >= index for level in hits) == 1
    levels = {}
    for level, figures in totals.items():
        images = int(figures["images"])
        if images:
            levels[level] = {
                "nodes": nodes_at[level],
                "images": images,
                **{name: round(figures[name] / images, _DIGITS) for name in _SHARES},
            }
    return {
        "images": len(rollouts),
        "rollouts_per_image": round(sum(map(len, rollouts.values())) / len(rollouts), _DIGITS),
        "levels": levels,
    }


def luck_of_predictions(path: Path, verdicts: dict[PairKey, Verdict | None], judge_for: JudgeFor) -> dict:
    """Luck figures of every predictions table at `path` (a file, or a folder searched for
    predictions.parquet) that has more than one rollout per image; `verdicts`: JudgeService.resolve's result."""

    def category_of(dataset: str, truth: str, prediction: str) -> Category | None:
        verdict = verdicts.get(pair_key(dataset, truth, prediction))
        return None if verdict is None else verdict.category

    files = sorted(path.rglob(PREDICTIONS_FILE)) if path.is_dir() else [path]
    result: dict[str, dict] = {}
    for file in files:
        try:
            rows = pq.read_table(file, columns=_COLUMNS).to_pylist()
        except (pa.ArrowInvalid, KeyError, OSError) as exc:
            raise ValueError(f"{file}: not a predictions table ({exc})") from None
        per_image: dict[tuple, int] = defaultdict(int)
        for row in rows:
            per_image[(row["dataset"], row["split"], row["sample_id"])] += 1
        if max(per_image.values(), default=0) < 2:
            continue
        splits: dict[tuple[str, str], list[dict]] = defaultdict(list)
        for row in rows:
            splits[(row["dataset"], row["split"])].append(row)
        figures: dict[str, dict] = {}
        for (dataset, split), part in sorted(splits.items()):
            judge = judge_for(dataset)
            if judge.taxonomy.levels:
                figures.setdefault(dataset, {})[split] = luck_figures(part, category_of, judge)
        if figures:
            result[str(file)] = figures
    return result
