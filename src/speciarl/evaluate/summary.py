"""From the per-sample verdict table to metrics: per run, mode, dataset and split, and per group.

Modes: "greedy" evaluates sample 0 of every image of a greedy run; "best_of_n" evaluates, for a
best-of-N run, the best verdict among the image's N samples (more specific ranked first, format
error last; ties go to the lowest sample index). A group averages the per-dataset metrics (HM too:
computed per dataset, then averaged) of those of its datasets that were evaluated.

metrics.json layout (numbers only, so `dvc metrics show` lists every leaf):
    {run: {mode: {"datasets": {dataset: {split: DATASET}}, "groups": {group: {split: GROUP}}}}}
    DATASET = {n, samples_per_image, correctness, specificity, hm, score, text_inclusion,
               similarity, counts: {outcome: int}, distribution: {outcome: share}}
    GROUP   = {n, n_datasets, correctness, specificity, hm, score, text_inclusion, similarity,
               distribution: {outcome: mean share}}

The headline (the DVC metrics, so that `dvc metrics show` is one short table): one file per group
and run, <headline>/<group>/<run>.json = {split: {specificity, correctness, hm, score}}, the group
numbers of metrics.json for the run's mode. Datasets in no group have no headline file.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import polars as pl

from speciarl.evaluate.per_sample import is_best_of_n
from speciarl.metrics import OUTCOMES, outcome_rank, summarize

METRICS_FILE = "metrics.json"
HEADLINE_DIR = "headline"
HEADLINE = ("specificity", "correctness", "hm", "score")
# DVC plots: <run>/<dataset>-<split>.csv with columns k, correctness, specificity, hm, score
BEST_OF_K_DIR = "best_of_k"
GREEDY, BEST_OF_N = "greedy", "best_of_n"
SCALARS = ("correctness", "specificity", "hm", "score", "text_inclusion", "similarity")
_IMAGE = ("run", "dataset", "split", "sample_id")
_DIGITS = 6
_CURVE_METRICS = ("correctness", "specificity", "hm", "score")


def _with_rank(frame: pl.DataFrame) -> pl.DataFrame:
    ranks = pl.DataFrame({"category": list(OUTCOMES), "rank": [outcome_rank(value) for value in OUTCOMES]})
    return frame.join(ranks, on="category", how="left", maintain_order="left")


def best_samples(frame: pl.DataFrame) -> pl.DataFrame:
    """Per image, the row with the best verdict (ties: lowest sample index)."""
    return (
        _with_rank(frame)
        .sort(*_IMAGE, "rank", "sample_index")
        .group_by(_IMAGE, maintain_order=True)
        .first()
        .drop("rank")
    )


def selected_predictions(per_sample: pl.DataFrame) -> pl.DataFrame:
    """The prediction that counts for each run x image, with its `mode` and samples per image."""
    best_of_n_run = pl.col("run").is_in([run for run in per_sample["run"].unique().to_list() if is_best_of_n(run)])
    samples = per_sample.group_by(_IMAGE).agg(pl.len().cast(pl.Int64).alias("samples_per_image"))
    first = per_sample.filter(~best_of_n_run & (pl.col("sample_index") == 0))
    greedy = first.with_columns(pl.lit(GREEDY).alias("mode"))
    best = best_samples(per_sample.filter(best_of_n_run)).with_columns(pl.lit(BEST_OF_N).alias("mode"))
    chosen = pl.concat([greedy, best.select(greedy.columns)], how="vertical")
    return chosen.join(samples, on=list(_IMAGE), how="left").with_columns(
        pl.when(pl.col("mode") == GREEDY).then(1).otherwise(pl.col("samples_per_image")).alias("samples_per_image")
    )


def dataset_metrics(rows: pl.DataFrame) -> dict:
    """Metrics of one dataset split's selected predictions. Judge-free metrics count format errors as 0."""
    summary = summarize(rows["category"].to_list())
    n = rows.height
    return {
        "n": n,
        "samples_per_image": int(rows["samples_per_image"].max()),
        **{name: round(summary[name], _DIGITS) for name in ("correctness", "specificity", "hm", "score")},
        "text_inclusion": round(float(rows["text_inclusion"].fill_null(False).cast(pl.Float64).mean()), _DIGITS),
        "similarity": round(float(rows["similarity"].fill_null(0.0).cast(pl.Float64).mean()), _DIGITS),
        "counts": summary["counts"],
        "distribution": {value: round(count / n, _DIGITS) for value, count in summary["counts"].items()},
    }


def group_metrics(datasets: dict[str, dict[str, dict]], groups: dict[str, list[str]]) -> dict[str, dict[str, dict]]:
    """{group: {split: averages}} over the group's datasets evaluated on that split."""
    result: dict[str, dict[str, dict]] = {}
    for group, members in groups.items():
        splits = sorted({split for member in members for split in datasets.get(member, {})})
        for split in splits:
            parts = [datasets[member][split] for member in members if split in datasets.get(member, {})]
            result.setdefault(group, {})[split] = {
                "n": sum(part["n"] for part in parts),
                "n_datasets": len(parts),
                **{name: round(sum(part[name] for part in parts) / len(parts), _DIGITS) for name in SCALARS},
                "distribution": {
                    value: round(sum(part["distribution"][value] for part in parts) / len(parts), _DIGITS)
                    for value in OUTCOMES
                },
            }
    return result


def metrics_table(per_sample: pl.DataFrame, groups: dict[str, list[str]]) -> dict:
    """The metrics.json content (layout in the module docstring)."""
    metrics: dict[str, dict] = {}
    chosen = selected_predictions(per_sample)
    for (run, mode), rows in sorted(chosen.group_by("run", "mode"), key=lambda item: item[0]):
        datasets: dict[str, dict[str, dict]] = {}
        for (dataset, split), part in sorted(rows.group_by("dataset", "split"), key=lambda item: item[0]):
            datasets.setdefault(dataset, {})[split] = dataset_metrics(part)
        metrics.setdefault(run, {})[mode] = {"datasets": datasets, "groups": group_metrics(datasets, groups)}
    return metrics


def headline(metrics: dict) -> dict[tuple[str, str], dict[str, dict[str, float]]]:
    """{(group, run): {split: {specificity, correctness, hm, score}}} from the metrics.json content."""
    result: dict[tuple[str, str], dict[str, dict[str, float]]] = {}
    for run, modes in metrics.items():
        for mode in modes.values():
            for group, splits in mode["groups"].items():
                result[(group, run)] = {
                    split: {name: entry[name] for name in HEADLINE} for split, entry in splits.items()
                }
    return dict(sorted(result.items()))


def write_headline(content: dict[tuple[str, str], dict[str, dict[str, float]]], folder: Path) -> None:
    """One JSON file per group and run: <folder>/<group>/<run>.json."""
    for (group, run), splits in content.items():
        path = Path(folder) / group / f"{run}.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(splits, indent=2) + "\n")


def best_of_k(per_sample: pl.DataFrame) -> dict[tuple[str, str, str], list[dict]]:
    """For each best-of-N run and dataset split: metrics of best-of-k over samples 0..k-1, k = 1, 2, 4, ..., N."""
    curves: dict[tuple[str, str, str], list[dict]] = {}
    runs = [run for run in per_sample["run"].unique().sort().to_list() if is_best_of_n(run)]
    for run in runs:
        frame = per_sample.filter(pl.col("run") == run)
        for (dataset, split), part in sorted(frame.group_by("dataset", "split"), key=lambda item: item[0]):
            n = int(part["sample_index"].max()) + 1
            ks = sorted({*(2**power for power in range(n.bit_length()) if 2**power <= n), n})
            rows = []
            for k in ks:
                summary = summarize(best_samples(part.filter(pl.col("sample_index") < k))["category"].to_list())
                rounded = {name: round(summary[name], _DIGITS) for name in _CURVE_METRICS}
                rows.append({"k": k, **rounded})
            curves[(run, dataset, split)] = rows
    return curves


def write_best_of_k(curves: dict[tuple[str, str, str], list[dict]], folder: Path) -> None:
    """One CSV per best-of-N run and dataset split: <folder>/<run>/<dataset>-<split>.csv."""
    for (run, dataset, split), rows in curves.items():
        path = Path(folder) / run / f"{dataset}-{split}.csv"
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("w", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)
