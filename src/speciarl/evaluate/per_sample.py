"""The per-sample verdict table: every prediction of every run, joined with its verdict.

Inputs: `<predictions_dir>/<run>/predictions.parquet` (PREDICTION_SCHEMA; run names base-<prompt>,
base-best_of_n, <train run>-general) and the eval judge's verdict table (VERDICT_TABLE_SCHEMA).
A prediction is looked up by (dataset, normalize(ground_truth), normalize(prediction)); a format
error (null prediction) is the outcome "format_error" and needs no verdict; any other prediction
without a verdict is an error naming the run and the pair, never dropped.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq

from speciarl.evaluate.judge_free import cosine_similarities, text_inclusion
from speciarl.labels import FORMAT_ERROR, Category, normalize
from speciarl.predictions import PREDICTION_SCHEMA, PREDICTIONS_FILE, VERDICT_TABLE_SCHEMA

PER_SAMPLE_SCHEMA = pa.schema(
    [
        ("run", pa.string()),
        ("dataset", pa.string()),
        ("split", pa.string()),
        ("sample_id", pa.string()),
        ("sample_index", pa.int32()),
        ("ground_truth", pa.string()),  # as in the predictions (not normalised)
        ("prediction", pa.string()),  # the parsed answer; null for a format error
        ("category", pa.string()),  # a Category value or "format_error"
        ("judge", pa.string()),  # who decided the verdict; null for a format error
        ("text_inclusion", pa.bool_()),  # judge-free metrics; null for a format error
        ("similarity", pa.float32()),
    ]
)

PER_SAMPLE_FILE = "per_sample.parquet"
BEST_OF_N_SUFFIX = "best_of_n"
_PREDICTION_COLUMNS = ("sample_id", "dataset", "split", "ground_truth", "sample_index", "prediction", "format_error")
_PREDICTION_SUBSCHEMA = pa.schema([PREDICTION_SCHEMA.field(name) for name in _PREDICTION_COLUMNS])
_KEY = ("dataset", "truth_key", "prediction_key")
_SHOWN_MISSING = 5


def is_best_of_n(run: str) -> bool:
    """Runs named <policy>-best_of_n hold N sampled completions per image, evaluated as best-of-N."""
    return run.endswith(f"-{BEST_OF_N_SUFFIX}")


def list_runs(predictions_dir: str | Path) -> dict[str, Path]:
    """{run name: predictions file} for every run folder; a folder without the file is an error."""
    root = Path(predictions_dir)
    if not root.is_dir():
        raise FileNotFoundError(f"{root}: predictions folder not found")
    runs = {}
    for folder in sorted(path for path in root.iterdir() if path.is_dir() and not path.name.startswith(".")):
        file = folder / PREDICTIONS_FILE
        if not file.is_file():
            raise ValueError(f"{folder}: no {PREDICTIONS_FILE} (an unfinished predict run?)")
        runs[folder.name] = file
    if not runs:
        raise ValueError(f"{root}: no runs (expected <run>/{PREDICTIONS_FILE} folders)")
    return runs


def _read_table(path: Path, schema: pa.Schema, contract: str) -> pl.DataFrame:
    """The columns of `schema` from a parquet file, cast to it; any problem is a ValueError naming the file."""
    try:
        missing = [name for name in schema.names if name not in pq.read_schema(path).names]
        if missing:
            raise ValueError(f"{path}: missing column(s) {', '.join(missing)} (see {contract})")
        return pl.from_arrow(pq.read_table(path, columns=schema.names).cast(schema))
    except (pa.ArrowException, OSError) as exc:
        raise ValueError(f"{path}: not a readable {contract} table ({exc})") from None


def read_predictions(run: str, file: Path) -> pl.DataFrame:
    """One run's predictions, checked: required columns, no nulls in keys, consistent format errors."""
    frame = _read_table(file, _PREDICTION_SUBSCHEMA, "PREDICTION_SCHEMA")
    if frame.is_empty():
        raise ValueError(f"{file}: no predictions")
    for name in ("sample_id", "dataset", "split", "ground_truth", "sample_index", "format_error"):
        if frame[name].null_count():
            raise ValueError(f"{file}: column {name} has null values")
    inconsistent = frame.filter(pl.col("format_error") != pl.col("prediction").is_null())
    if not inconsistent.is_empty():
        row = inconsistent.row(0, named=True)
        raise ValueError(
            f"{file}: sample {row['sample_id']} index {row['sample_index']}: format_error={row['format_error']} "
            f"but prediction={row['prediction']!r} (a format error has a null prediction, and only it)"
        )
    duplicated = frame.filter(frame.select("dataset", "split", "sample_id", "sample_index").is_duplicated())
    if not duplicated.is_empty():
        row = duplicated.row(0, named=True)
        raise ValueError(f"{file}: sample {row['sample_id']} index {row['sample_index']} appears more than once")
    return frame.with_columns(pl.lit(run).alias("run"))


def read_verdicts(path: str | Path) -> pl.DataFrame:
    """The verdict table keyed by (dataset, truth_key, prediction_key); conflicting duplicates are an error."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: verdict table not found (run the judge stage on the predictions)")
    verdicts = _read_table(path, VERDICT_TABLE_SCHEMA, "VERDICT_TABLE_SCHEMA").rename(
        {"ground_truth": "truth_key", "prediction": "prediction_key"}
    )
    for name in ("dataset", "truth_key", "prediction_key", "category"):
        if verdicts[name].null_count():
            raise ValueError(f"{path}: column {name} has null values")
    unknown = verdicts.filter(~pl.col("category").is_in([category.value for category in Category]))
    if not unknown.is_empty():
        row = unknown.row(0, named=True)
        raise ValueError(f"{path}: unknown category {row['category']!r} for {_describe(row)}")
    verdicts = verdicts.unique(subset=[*_KEY, "category"], keep="first", maintain_order=True)
    conflicting = verdicts.filter(verdicts.select(_KEY).is_duplicated())
    if not conflicting.is_empty():
        row = conflicting.row(0, named=True)
        categories = conflicting.join(pl.DataFrame([row]).select(_KEY), on=_KEY)["category"].to_list()
        raise ValueError(f"{path}: conflicting verdicts {categories} for {_describe(row)}")
    return verdicts


def _describe(row: dict) -> str:
    return f"{row['dataset']}: truth {row['truth_key']!r}, prediction {row['prediction_key']!r}"


def _normalized(frame: pl.DataFrame, column: str) -> pl.Series:
    """normalize() of each value (null stays null), computed once per distinct text."""
    distinct = frame[column].drop_nulls().unique().to_list()
    mapping = pl.DataFrame(
        {column: distinct, "normalized": [normalize(text) for text in distinct]},
        schema={column: pl.String, "normalized": pl.String},
    )
    return frame.select(column).join(mapping, on=column, how="left", maintain_order="left")["normalized"]


def attach_verdicts(predictions: pl.DataFrame, verdicts: pl.DataFrame, verdicts_path: str | Path) -> pl.DataFrame:
    """Predictions with `category` and `judge`; a prediction without a verdict raises ValueError."""
    keyed = predictions.with_columns(
        truth_key=_normalized(predictions, "ground_truth"), prediction_key=_normalized(predictions, "prediction")
    )
    # Null keys (format errors) never match in a polars join, so they keep a null category.
    joined = keyed.join(verdicts, on=list(_KEY), how="left", maintain_order="left")
    unjudged = joined.filter(pl.col("prediction").is_not_null() & pl.col("category").is_null())
    if not unjudged.is_empty():
        pairs = unjudged.unique(subset=["run", *_KEY], maintain_order=True)
        first = pairs.head(_SHOWN_MISSING).iter_rows(named=True)
        shown = "; ".join(f"run {row['run']}, {_describe(row)}" for row in first)
        more = f" (and {pairs.height - _SHOWN_MISSING} more)" if pairs.height > _SHOWN_MISSING else ""
        raise ValueError(
            f"{verdicts_path}: no verdict for {pairs.height} (dataset, truth, prediction) pair(s): {shown}{more}; "
            "judge these predictions first (the judge stage)"
        )
    return joined.with_columns(pl.col("category").fill_null(FORMAT_ERROR))


def attach_judge_free(frame: pl.DataFrame, similarity_model, batch_size: int) -> pl.DataFrame:
    """Adds text_inclusion and similarity (null for format errors), each distinct pair computed once."""
    answered = frame.filter(pl.col("prediction_key").is_not_null())
    pairs = answered.select("truth_key", "prediction_key").unique(maintain_order=True)
    truths, predictions = pairs["truth_key"].to_list(), pairs["prediction_key"].to_list()
    scores = pairs.with_columns(
        text_inclusion=pl.Series(
            [text_inclusion(t, p) for t, p in zip(truths, predictions, strict=True)], dtype=pl.Boolean
        ),
        similarity=pl.Series(cosine_similarities(similarity_model, truths, predictions, batch_size), dtype=pl.Float32),
    )
    return frame.join(scores, on=["truth_key", "prediction_key"], how="left", maintain_order="left")


def check_same_samples(frame: pl.DataFrame) -> None:
    """Every run that covers a dataset split covers the same images: a comparison across runs needs it."""
    images = frame.select("run", "dataset", "split", "sample_id").unique()
    for (dataset, split), part in images.group_by("dataset", "split", maintain_order=True):
        per_run = {run: set(ids["sample_id"].to_list()) for (run,), ids in part.group_by("run")}
        reference_run = min(per_run)
        for run, ids in sorted(per_run.items()):
            if ids != per_run[reference_run]:
                raise ValueError(
                    f"{dataset}/{split}: run {run} has {len(ids)} images, run {reference_run} has "
                    f"{len(per_run[reference_run])}, {len(ids ^ per_run[reference_run])} differ "
                    "(stale or unfinished predictions? rerun predict)"
                )


def build_per_sample(
    predictions_dir: str | Path,
    verdicts_path: str | Path,
    load_similarity_model: Callable[[], object],
    batch_size: int = 256,
) -> pa.Table:
    """The per-sample verdict table (PER_SAMPLE_SCHEMA) of every run under `predictions_dir`.

    `load_similarity_model()` returns the sentence-transformers model; it is called only once every
    prediction is known to have a verdict, so bad inputs fail fast.
    """
    runs = list_runs(predictions_dir)
    predictions = pl.concat([read_predictions(run, file) for run, file in runs.items()], how="vertical")
    check_same_samples(predictions)
    joined = attach_verdicts(predictions, read_verdicts(verdicts_path), verdicts_path)
    scored = attach_judge_free(joined, load_similarity_model(), batch_size)
    table = scored.select(PER_SAMPLE_SCHEMA.names).sort("run", "dataset", "split", "sample_id", "sample_index")
    return table.to_arrow().cast(PER_SAMPLE_SCHEMA)
