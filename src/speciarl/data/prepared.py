"""The prepared-data contract: parquet shards + manifest.json per dataset and split.

Layout under the prepared root (params `data.prepared_dir`):
    <dataset>/taxonomy.json
    <dataset>/<split>/part-00000.parquet, part-00001.parquet, ...
    <dataset>/<split>/manifest.json        written last: a split without it is not complete

Columns (SAMPLE_SCHEMA): sample_id, dataset, split, image (JPEG bytes), label, label_path.

The manifest is the contract: `num_shards` shards named part-00000.parquet upwards, `num_samples`
rows in all, and `content_hash` over every row's sample id, image and label in stored order.
Readers (read_split, iter_split) check a split against its manifest before returning anything and
refuse, with a ValueError naming the split and what differs, a split with a missing, stray or
changed shard; an unreadable manifest or shard is a ValueError naming its file.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Iterator
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from speciarl.atomic import discard, publish, remove_temps, temp_sibling

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
        remove_temps(self.final)  # of a killed write of this split: one writer per split at a time
        self.tmp = temp_sibling(self.final, directory=True)
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
        pq.write_table(table, self.tmp / shard_name(self._shards), compression="zstd")
        _hash_rows(self._hash, self._rows)
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
        publish(self.tmp, self.final)
        return full

    def abort(self) -> None:
        discard(self.tmp)

    def __enter__(self) -> SplitWriter:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is not None:
            self.abort()


def shard_name(index: int) -> str:
    return f"part-{index:05d}.parquet"


def _hash_rows(hasher, rows: Iterable[dict]) -> None:
    """Feed rows into the split's content hash (sample id, image digest, label; in stored order)."""
    for row in rows:
        hasher.update(row["sample_id"].encode())
        hasher.update(hashlib.sha256(row["image"]).digest())
        hasher.update(row["label"].encode())


def read_manifest(root: str | Path, dataset: str, split: str) -> dict:
    path = split_dir(root, dataset, split) / MANIFEST
    if not path.exists():
        raise FileNotFoundError(f"prepared split {dataset}/{split} is missing or incomplete (no {path})")
    try:
        manifest = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ValueError(f"{path}: corrupt manifest, not valid JSON ({exc}); run the prepare stage again") from None
    if not isinstance(manifest, dict):
        raise ValueError(f"{path}: corrupt manifest, not a JSON object; run the prepare stage again")
    missing = [key for key in ("num_samples", "num_shards", "content_hash") if key not in manifest]
    if missing:
        raise ValueError(f"{path}: corrupt manifest, {', '.join(missing)} missing; run the prepare stage again")
    return manifest


def check_split(root: str | Path, dataset: str, split: str) -> dict:
    """The split's manifest, once the shards on disk match it (names, row counts, content hash).

    ValueError naming the split and the first difference; costs one read of the sample ids,
    images and labels (about as much as reading the split).
    """
    manifest = read_manifest(root, dataset, split)
    folder = split_dir(root, dataset, split)

    def mismatch(what: str) -> ValueError:
        return ValueError(
            f"prepared split {dataset}/{split} ({folder}) does not match its manifest: {what}; "
            "run the prepare stage again"
        )

    expected = [shard_name(index) for index in range(manifest["num_shards"])]
    present = sorted(path.name for path in folder.glob("part-*.parquet"))
    for name in expected:
        if name not in present:
            raise mismatch(f"shard {name} is missing (the manifest lists {len(expected)})")
    for name in present:
        if name not in expected:
            raise mismatch(f"stray shard {name} is not in the manifest (it lists {len(expected)})")
    hasher, rows = hashlib.sha256(), 0
    for name in expected:
        try:
            shard = pq.ParquetFile(folder / name)
            for batch in shard.iter_batches(batch_size=1024, columns=["sample_id", "image", "label"]):
                _hash_rows(hasher, batch.to_pylist())
                rows += batch.num_rows
        except (pa.ArrowException, OSError) as exc:
            raise ValueError(
                f"{folder / name}: unreadable shard of {dataset}/{split} ({exc}); run the prepare stage again"
            ) from None
    if rows != manifest["num_samples"]:
        raise mismatch(f"the shards hold {rows} samples, the manifest {manifest['num_samples']}")
    if hasher.hexdigest() != manifest["content_hash"]:
        raise mismatch("the content hash differs (a shard was changed or replaced)")
    return manifest


def read_split(root: str | Path, dataset: str, split: str, columns: Iterable[str] | None = None) -> pa.Table:
    """The whole split as one Arrow table (columns optional), checked against its manifest."""
    manifest = check_split(root, dataset, split)
    files = [split_dir(root, dataset, split) / shard_name(index) for index in range(manifest["num_shards"])]
    cols = list(columns) if columns is not None else None
    if not files:
        return SAMPLE_SCHEMA.empty_table().select(cols) if cols else SAMPLE_SCHEMA.empty_table()
    return pa.concat_tables(pq.read_table(f, columns=cols) for f in files)


def iter_split(root: str | Path, dataset: str, split: str, batch_size: int = 256) -> Iterator[list[dict]]:
    """Batches of row dicts, in the stored order, from a split checked against its manifest."""
    manifest = check_split(root, dataset, split)
    for index in range(manifest["num_shards"]):
        for batch in pq.ParquetFile(split_dir(root, dataset, split) / shard_name(index)).iter_batches(
            batch_size=batch_size
        ):
            yield batch.to_pylist()
