"""Verdict files for exchange: .jsonl (one object per line) or .parquet, chosen by the extension.

Columns: ground_truth, prediction (both normalised), category (one of the six values), judge, and
optionally key (verdict_key(ground_truth, prediction, judge): computed when absent, and a row
whose key is another one is refused) and created (unix time; the import time when absent). Export
writes all six. Reading checks every row, and passes it to the caller's check (which judges are
accepted, see store_checks), before returning any: the first bad row raises ValueError naming the
file and line or row.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from speciarl.atomic import atomic_path
from speciarl.judge.store_verdict import KEY_PATTERN, Verdict, verdict_key
from speciarl.labels import Category, normalize

VerdictCheck = Callable[[Verdict, str], None]
"""Raises ValueError, starting with the given location, for a verdict that must not be stored."""

REQUIRED = ("ground_truth", "prediction", "category", "judge")
OPTIONAL = ("key", "created")
EXTENSIONS = (".jsonl", ".parquet")
_CATEGORY_BY_VALUE = {category.value: category for category in Category}
_SCHEMA = pa.schema(
    [
        ("ground_truth", pa.string()),
        ("prediction", pa.string()),
        ("category", pa.string()),
        ("judge", pa.string()),
        ("key", pa.string()),
        ("created", pa.float64()),
    ]
)


def _extension(path: Path) -> str:
    if path.suffix not in EXTENSIONS:
        raise ValueError(f"{path}: unknown extension {path.suffix!r} (expected .jsonl or .parquet)")
    return path.suffix


def write_verdict_file(path: Path, verdicts: Iterable[Verdict]) -> int:
    """Write the verdicts, sorted by key, to a temporary name and rename it into place."""
    extension = _extension(path)
    rows = sorted(verdicts, key=lambda verdict: verdict.key)
    with atomic_path(path) as temp, open(temp, "wb") as f:
        if extension == ".jsonl":
            for verdict in rows:
                f.write(json.dumps(_record(verdict), ensure_ascii=False).encode("utf-8") + b"\n")
        else:
            columns = {name: [getattr(verdict, name) for verdict in rows] for name in _SCHEMA.names}
            columns["category"] = [category.value for category in columns["category"]]
            pq.write_table(pa.table(columns, schema=_SCHEMA), f, compression="zstd")
    return len(rows)


def _record(verdict: Verdict) -> dict:
    return {
        "ground_truth": verdict.ground_truth,
        "prediction": verdict.prediction,
        "category": verdict.category.value,
        "judge": verdict.judge,
        "key": verdict.key,
        "created": verdict.created,
    }


def read_verdict_file(path: Path, check: VerdictCheck) -> list[Verdict]:
    """Every row as a Verdict that passed `check`; the first bad row raises ValueError naming the file and line/row."""
    extension = _extension(path)
    rows = _jsonl_rows(path) if extension == ".jsonl" else _parquet_rows(path)
    now = time.time()
    verdicts = []
    for where, record in rows:
        verdict = _verdict(record, f"{path}: {where}", now)
        check(verdict, f"{path}: {where}")
        verdicts.append(verdict)
    return verdicts


def _jsonl_rows(path: Path) -> Iterator[tuple[str, dict]]:
    with open(path, encoding="utf-8") as f:
        for number, line in enumerate(f, start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as exc:
                raise ValueError(f"{path}: line {number}: not valid JSON ({exc.msg})") from None
            if not isinstance(record, dict):
                raise ValueError(f"{path}: line {number}: expected a JSON object, got {type(record).__name__}")
            yield f"line {number}", record


def _parquet_rows(path: Path) -> Iterator[tuple[str, dict]]:
    try:
        table = pq.read_table(path)
    except pa.ArrowException as exc:
        raise ValueError(f"{path}: not a readable parquet file ({exc})") from None
    missing = [name for name in REQUIRED if name not in table.column_names]
    if missing:
        raise ValueError(f"{path}: missing columns {missing} (needs {list(REQUIRED)})")
    names = [name for name in (*REQUIRED, *OPTIONAL) if name in table.column_names]
    columns = [table.column(name).to_pylist() for name in names]
    for number, values in enumerate(zip(*columns, strict=True), start=1):
        yield f"row {number}", dict(zip(names, values, strict=True))


def _verdict(record: dict, where: str, now: float) -> Verdict:
    for name in REQUIRED:
        if not isinstance(record.get(name), str):
            raise ValueError(f"{where}: {name} must be a string, got {record.get(name)!r}")
    for name in ("ground_truth", "prediction"):
        if normalize(record[name]) != record[name]:
            raise ValueError(
                f"{where}: {name} {record[name]!r} is not normalised (expected {normalize(record[name])!r})"
            )
    category = _CATEGORY_BY_VALUE.get(record["category"])
    if category is None:
        raise ValueError(
            f"{where}: category {record['category']!r} is not one of {list(_CATEGORY_BY_VALUE)} "
            "(errors are never verdicts)"
        )
    if not record["judge"]:
        raise ValueError(f"{where}: judge is empty")
    key = verdict_key(record["ground_truth"], record["prediction"], record["judge"])
    given = record.get("key")
    if given is not None and (not isinstance(given, str) or not KEY_PATTERN.fullmatch(given)):
        raise ValueError(f"{where}: key {given!r} is not 32 lowercase hex digits")
    if given is not None and given != key:
        raise ValueError(
            f"{where}: key {given} belongs to another pair (this record's truth, prediction and judge give {key})"
        )
    created = record.get("created")
    if created is None:
        created = now
    elif isinstance(created, bool) or not isinstance(created, (int, float)) or not math.isfinite(created):
        raise ValueError(f"{where}: created must be a unix time, got {created!r}")
    return Verdict(key, record["ground_truth"], record["prediction"], category, record["judge"], float(created))
