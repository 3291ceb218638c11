"""On-disk format of the verdict store: writer segments and compacted base files.

A store is one directory of plain files (so `dvc add` can track it):

- `seg-<ns>-<pid>-<rand>.vlog`: a writer segment. Exactly one process appends to it, holding an
  exclusive flock on it while it is open, and no one ever appends to it again once that process
  closes it or dies. It starts with SEGMENT_HEADER, then blocks: `b"VBLK"`, payload length
  (u32 LE), CRC-32 of the payload (u32 LE), payload. The payload is zlib-compressed UTF-8 JSON of
  the columns (a dict of equal-length lists, at most 100k rows). A `put_many` call writes its
  blocks with one write and fsyncs them before it returns; a block that is short or fails its CRC
  is a torn tail (a writer killed mid-write) and it and everything after it are ignored.
- `base-<ns>-<rand>.parquet`: an immutable compacted file (zstd), sorted by key, written under a
  temporary name and renamed into place. It keeps every conflicting verdict, so a key may have
  several rows.
- `.compact.lock`: an empty file that compactions flock, so that one runs at a time.

Columns are plain lists: key, ground_truth, prediction, category (the category's string value),
judge, created (unix time, float).
"""

from __future__ import annotations

import json
import os
import re
import struct
import zlib
from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from speciarl.judge.store_index import key_words
from speciarl.labels import Category

COLUMNS = ("key", "ground_truth", "prediction", "category", "judge", "created")
Columns = dict[str, list]

SEGMENT_HEADER = b"SPECIARL VERDICT SEGMENT 1\n"
SEGMENT_NAME = re.compile(r"seg-\d{20}-\d+-[0-9a-f]{8}\.vlog")
BASE_NAME = re.compile(r"base-\d{20}-[0-9a-f]{8}\.parquet")
TEMP_SUFFIX = ".tmp"
_READ_ROWS = 100_000

_BLOCK = struct.Struct("<4sII")
_BLOCK_MAGIC = b"VBLK"
_FORMAT_KEY = b"speciarl.verdicts.format"
_FORMAT_VERSION = b"1"
_STRING_COLUMNS = ("key", "ground_truth", "prediction", "category", "judge")
# equal strings share one Python object in memory (a store holds millions of repeats)
_SHARED_COLUMNS = ["ground_truth", "prediction", "category", "judge"]
# few distinct values: read from parquet as dictionaries, each value made a Python string once
_DICTIONARY_COLUMNS = ["ground_truth", "category", "judge"]
_CATEGORY_VALUES = frozenset(category.value for category in Category)
BASE_SCHEMA = pa.schema(
    [(name, pa.string()) for name in _STRING_COLUMNS] + [("created", pa.float64())],
    metadata={_FORMAT_KEY: _FORMAT_VERSION},
)


def fsync_dir(path: Path) -> None:
    """Make a file creation, rename or removal in `path` durable."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def encode_block(columns: Columns) -> bytes:
    payload = zlib.compress(json.dumps(columns, ensure_ascii=False, separators=(",", ":")).encode("utf-8"), 1)
    return _BLOCK.pack(_BLOCK_MAGIC, len(payload), zlib.crc32(payload)) + payload


def write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


class SegmentRead:
    """The complete blocks of a segment from `offset` (0, or an `end` of an earlier read) on.

    `blocks()` decodes them one at a time; after it, `end` is the offset just past the last
    complete block (where the next read starts). Bytes in [end, size) are an incomplete or torn tail.
    """

    def __init__(self, path: Path, offset: int):
        with open(path, "rb") as f:
            f.seek(offset)
            self._data = memoryview(f.read())
        self.path = path
        self.size = offset + len(self._data)
        self.end = self._offset = offset
        self._position = 0  # in _data
        if offset == 0:
            head = bytes(self._data[: len(SEGMENT_HEADER)])
            if head != SEGMENT_HEADER:
                if SEGMENT_HEADER.startswith(head):  # being created, or its creator died doing so
                    self._data = self._data[:0]
                    return
                raise ValueError(f"{path}: not a speciarl verdict segment (bad header)")
            self._position = self.end = len(SEGMENT_HEADER)

    def blocks(self) -> Iterator[Columns]:
        data = self._data
        while self._position + _BLOCK.size <= len(data):
            magic, length, crc = _BLOCK.unpack_from(data, self._position)
            start = self._position + _BLOCK.size
            stop = start + length
            if magic != _BLOCK_MAGIC or stop > len(data) or zlib.crc32(data[start:stop]) != crc:
                return
            columns = _decode_payload(self.path, data[start:stop])
            self._position = stop
            self.end = self._offset + stop
            yield columns


def _decode_payload(path: Path, payload: memoryview) -> Columns:
    columns = json.loads(zlib.decompress(payload))
    if not isinstance(columns, dict) or set(columns) != set(COLUMNS) or len({len(columns[c]) for c in COLUMNS}) != 1:
        raise ValueError(f"{path}: a block with a valid checksum holds unexpected data")
    for name in _SHARED_COLUMNS:
        columns[name] = _share_equal(columns[name])
    _check_values(path, columns)
    return columns


def _share_equal(values: list[str]) -> list[str]:
    """The same list with equal strings replaced by one object."""
    first: dict[str, str] = {}
    return [first.setdefault(value, value) for value in values]


def _check_values(path: Path, columns: Columns) -> None:
    unknown = set(columns["category"]) - _CATEGORY_VALUES
    if unknown:
        raise ValueError(f"{path}: unknown verdict categories {sorted(map(str, unknown))}")
    if key_words(columns["key"]) is None:
        raise ValueError(f"{path}: a key that is not 32 lowercase hex digits")


def write_base(path: Path, columns: Columns) -> None:
    """Write a sorted base file at `path` atomically (temporary name, fsync, rename, fsync dir)."""
    table = pa.table(columns, schema=BASE_SCHEMA).sort_by([("key", "ascending")])
    temp = path.with_name(path.name + TEMP_SUFFIX)
    with open(temp, "wb") as f:
        pq.write_table(table, f, compression="zstd", use_dictionary=_SHARED_COLUMNS, row_group_size=_READ_ROWS)
        f.flush()
        os.fsync(f.fileno())
    os.replace(temp, path)
    fsync_dir(path.parent)


def read_base(path: Path) -> Iterator[Columns]:
    """The rows of a base file, in batches (a batch at a time keeps the peak memory low)."""
    try:
        with pq.ParquetFile(path, read_dictionary=_DICTIONARY_COLUMNS) as base:
            metadata = base.schema_arrow.metadata or {}
            if metadata.get(_FORMAT_KEY) != _FORMAT_VERSION or base.schema_arrow.names != list(COLUMNS):
                raise ValueError(f"{path}: not a speciarl verdict base file (format {metadata.get(_FORMAT_KEY)!r})")
            # one thread: arrow's per-thread allocator heaps would keep tens of MiB after the read
            for batch in base.iter_batches(batch_size=_READ_ROWS, use_threads=False):
                if any(column.null_count for column in batch.columns):
                    raise ValueError(f"{path}: verdict base file with missing values")
                columns = {name: _to_objects(batch.column(name)) for name in COLUMNS}
                columns["prediction"] = _share_equal(columns["prediction"])
                _check_values(path, columns)
                yield columns
    except pa.ArrowException as exc:
        raise ValueError(f"{path}: unreadable verdict base file ({exc})") from None
    pa.default_memory_pool().release_unused()  # arrow's allocator would keep the file's buffers


def _to_objects(column: pa.Array) -> list:
    if not pa.types.is_dictionary(column.type):
        return column.to_pylist()
    dictionary = column.dictionary.to_pylist()
    return list(map(dictionary.__getitem__, column.indices.to_pylist()))
