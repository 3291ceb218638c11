"""The prepared-data contract: parquet shards + manifest.json per dataset and split.

Layout under the prepared root (params `data.prepared_dir`):
    <dataset>/taxonomy.json
    <dataset>/<split>/part-00000.parquet, part-00001.parquet, ...
    <dataset>/<split>/manifest.json        written last: a split without it is not complete

Columns (SAMPLE_SCHEMA): sample_id, dataset, split, image (JPEG bytes), label, label_path.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path
from typing import Iterable, Iterator

import pyarrow as pa
import pyarrow.parquet as pq

SAMPLE_SCHEMA = pa.schema(
    [
        ("sample_id", pa.string()),
        ("dataset", pa.string()),
        ("split", pa.string()),
        ("image", pa.binary()),
        ("label", pa.string()),
        ("label_path", pa.list_(pa.string())),
    ]
)
MANIFEST = "manifest.json"
TAXONOMY = "taxonomy.json"


def split_dir(root: str | Path, dataset: str, split: str) -> Path:
    return Path(root) / dataset / split


def taxonomy_path(root: str | Path, dataset: str) -> Path:
    return Path(root) / dataset / TAXONOMY


def sample_id(dataset: str, key: str) -> str:
    """Stable id from the dataset name and the sample's own key in the source (e.g. its relative path)."""
    return f"{dataset}-{hashlib.sha1(key.encode()).hexdigest()[:16]}"


class SplitWriter:
    """Writes one split into a temporary folder and moves it into place only on `commit()`.

    A crash or an exception leaves the previous complete split (if any) untouched and no
    half-written folder that looks complete.
    """

    def __init__(self, root: str | Path, dataset: str, split: str, shard_rows: int = 2000):
        self.final = split_dir(root, dataset, split)
        self.tmp = self.final.with_name(f".{self.final.name}.partial-{os.getpid()}")
        if self.tmp.exists():
            shutil.rmtree(self.tmp)
        self.tmp.mkdir(parents=True)
        self.dataset, self.split, self.shard_rows = dataset, split, shard_rows
        self._rows: list[dict] = []
        self._shards = 0
        self._count = 0
        self._hash = hashlib.sha256()

    def add(self, row: dict) -> None:
        self._rows.append(row)
        if len(self._rows) >= self.shard_rows:
            self._flush()

    def _flush(self) -> None:
        if not self._rows:
            return
        table = pa.Table.from_pylist(self._rows, schema=SAMPLE_SCHEMA)
        pq.write_table(table, self.tmp / f"part-{self._shards:05d}.parquet", compression="zstd")
        for row in self._rows:
            self._hash.update(row["sample_id"].encode())
            self._hash.update(hashlib.sha256(row["image"]).digest())
            self._hash.update(row["label"].encode())
        self._count += len(self._rows)
        self._shards += 1
        self._rows = []

    def commit(self, manifest: dict) -> dict:
        self._flush()
        full = {
            "dataset": self.dataset,
            "split": self.split,
            "num_samples": self._count,
            "num_shards": self._shards,
            "content_hash": self._hash.hexdigest(),
            **manifest,
        }
        (self.tmp / MANIFEST).write_text(json.dumps(full, indent=1, ensure_ascii=False, sort_keys=True))
        if self.final.exists():
            shutil.rmtree(self.final)
        os.replace(self.tmp, self.final)
        return full

    def abort(self) -> None:
        shutil.rmtree(self.tmp, ignore_errors=True)

    def __enter__(self) -> "SplitWriter":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is not None:
            self.abort()


def read_manifest(root: str | Path, dataset: str, split: str) -> dict:
    path = split_dir(root, dataset, split) / MANIFEST
    if not path.exists():
        raise FileNotFoundError(f"prepared split {dataset}/{split} is missing or incomplete (no {path})")
    return json.loads(path.read_text())


def read_split(root: str | Path, dataset: str, split: str, columns: Iterable[str] | None = None) -> pa.Table:
    """The whole split as one Arrow table (columns optional)."""
    read_manifest(root, dataset, split)
    files = sorted(split_dir(root, dataset, split).glob("part-*.parquet"))
    cols = list(columns) if columns is not None else None
    if not files:
        return SAMPLE_SCHEMA.empty_table().select(cols) if cols else SAMPLE_SCHEMA.empty_table()
    return pa.concat_tables(pq.read_table(f, columns=cols) for f in files)


def iter_split(root: str | Path, dataset: str, split: str, batch_size: int = 256) -> Iterator[list[dict]]:
    """Batches of row dicts, in the stored order."""
    read_manifest(root, dataset, split)
    for f in sorted(split_dir(root, dataset, split).glob("part-*.parquet")):
        for batch in pq.ParquetFile(f).iter_batches(batch_size=batch_size):
            yield batch.to_pylist()
