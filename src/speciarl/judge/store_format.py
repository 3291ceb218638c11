"""On-disk format of the verdict store: writer segments and compacted base files.

A store is one directory of plain files (so `dvc add` can track it):

- `seg-<ns>-<pid>-<rand>.vlog`: a writer segment. Exactly one process appends to it, holding an
  exclusive flock on it while it is open, and no one ever appends to it again once that process
  closes it or dies. It starts with SEGMENT_HEADER, then blocks: `b"VBLK"`, payload length
  (u32 LE), CRC-32 of the payload (u32 LE), payload. The payload is zlib-compressed UTF-8 JSON of
  the columns (a dict of equal-length lists, at most 100k rows). A `put_many` call writes its
  blocks with one write and fsyncs them before it returns. A writer that closes its segment ends
  it with a block of no rows, so a finished segment's last verdicts are followed by an intact block.
  Reading: bytes that are not an intact block (short, bad magic or bad CRC) are skipped up to the
  next intact block, found by scanning for the magic. Skipped bytes followed by an intact block
  are damage (reported with file, offset, size and the block headers they hold, never dropped in
  silence); skipped bytes that run to the end of the file are a torn tail (a writer killed
  mid-write, or still writing) and are read again on the next look.
- `base-<ns>-<rand>.parquet`: an immutable compacted file (zstd, with page checksums), sorted by
  key, written under a temporary name and renamed into place. It keeps every conflicting verdict,
  so a key may have several rows.
- `.compact.lock`: an empty file that compactions flock, so that one runs at a time.
- `quarantine/`: segments that compaction could not read completely, moved there whole (their
  readable verdicts are in the base file), so that no byte a writer wrote is ever deleted.

Every row read is verified: its key must be the verdict_key of its truth, prediction and judge,
its category one of the six; base file pages are checked against their checksums. A block or file
that fails is an error (ValueError) naming the file: the store refuses to read it rather than
answer from it.

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
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from speciarl.atomic import atomic_path
from speciarl.judge.store_index import key_words
from speciarl.judge.store_verdict import verdict_key
from speciarl.labels import Category

COLUMNS = ("key", "ground_truth", "prediction", "category", "judge", "created")
Columns = dict[str, list]

SEGMENT_HEADER = b"SPECIARL VERDICT SEGMENT 1\n"
SEGMENT_NAME = re.compile(r"seg-\d{20}-\d+-[0-9a-f]{8}\.vlog")
BASE_NAME = re.compile(r"base-\d{20}-[0-9a-f]{8}\.parquet")
QUARANTINE = "quarantine"
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


@dataclass(frozen=True)
class Damage:
    """Unreadable bytes of a segment followed by an intact block: corruption, not a torn tail."""

    file: str
    offset: int
    size: int
    blocks: int  # block headers among the skipped bytes (at least the damaged block's own)

    def __str__(self) -> str:
        return f"{self.file}: {self.size} unreadable bytes at offset {self.offset} ({self.blocks} blocks skipped)"


def encode_block(columns: Columns) -> bytes:
    payload = zlib.compress(json.dumps(columns, ensure_ascii=False, separators=(",", ":")).encode("utf-8"), 1)
    return _BLOCK.pack(_BLOCK_MAGIC, len(payload), zlib.crc32(payload)) + payload


def write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


class SegmentRead:
    """The intact blocks of a segment from `offset` (0, or an `end` of an earlier read) on.

    `blocks()` decodes them one at a time, skipping unreadable bytes up to the next intact block
    (each such gap is added to `damages`); after it, `end` is the offset just past the last intact
    block (where the next read starts). Bytes in [end, size) are an incomplete or torn tail.
    """

    def __init__(self, path: Path, offset: int):
        with open(path, "rb") as f:
            f.seek(offset)
            self._data = f.read()
        self.path = path
        self.size = offset + len(self._data)
        self.end = self._offset = offset
        self.damages: list[Damage] = []
        self._position = 0  # in _data
        if offset == 0:
            head = self._data[: len(SEGMENT_HEADER)]
            if head == SEGMENT_HEADER:
                self._position = self.end = len(SEGMENT_HEADER)
            elif SEGMENT_HEADER.startswith(head):  # being created, or its creator died doing so
                self._data = b""
            elif self._next_block(0) is None:  # a damaged header is damage only if blocks follow
                raise ValueError(f"{path}: not a speciarl verdict segment (bad header)")

    def blocks(self) -> Iterator[Columns]:
        data = memoryview(self._data)
        while True:
            stop = self._intact_block_end(self._position)
            if stop is None:
                resume = self._next_block(self._position + 1)
                if resume is None:
                    return
                skipped = self._data.count(_BLOCK_MAGIC, self._position, resume)
                self.damages.append(
                    Damage(self.path.name, self._offset + self._position, resume - self._position, max(skipped, 1))
                )
                self._position = resume
                continue
            offset = self._offset + self._position
            columns = _decode_payload(self.path, offset, data[self._position + _BLOCK.size : stop])
            self._position = stop
            self.end = self._offset + stop
            yield columns

    def _intact_block_end(self, position: int) -> int | None:
        """Where the block at `position` ends, if one is there complete with a matching CRC."""
        if position + _BLOCK.size > len(self._data):
            return None
        magic, length, crc = _BLOCK.unpack_from(self._data, position)
        start = position + _BLOCK.size
        stop = start + length
        if magic != _BLOCK_MAGIC or stop > len(self._data) or zlib.crc32(memoryview(self._data)[start:stop]) != crc:
            return None
        return stop

    def _next_block(self, position: int) -> int | None:
        """The position of the first intact block at or after `position`, if any."""
        while (found := self._data.find(_BLOCK_MAGIC, position)) != -1:
            if self._intact_block_end(found) is not None:
                return found
            position = found + 1
        return None


def _decode_payload(path: Path, offset: int, payload: memoryview) -> Columns:
    where = f"{path}: block at offset {offset}"
    try:
        columns = json.loads(zlib.decompress(payload))
    except (zlib.error, UnicodeDecodeError, json.JSONDecodeError):
        raise ValueError(f"{where}: a block with a valid checksum holds unexpected data") from None
    if not isinstance(columns, dict) or set(columns) != set(COLUMNS) or len({len(columns[c]) for c in COLUMNS}) != 1:
        raise ValueError(f"{where}: a block with a valid checksum holds unexpected data")
    for name in _SHARED_COLUMNS:
        columns[name] = _share_equal(columns[name])
    _check_values(where, columns)
    return columns


def _share_equal(values: list[str]) -> list[str]:
    """The same list with equal strings replaced by one object."""
    first: dict[str, str] = {}
    return [first.setdefault(value, value) for value in values]


def _check_values(where: str | Path, columns: Columns) -> None:
    """Raise unless every row has a known category and the key of its truth, prediction and judge."""
    unknown = set(columns["category"]) - _CATEGORY_VALUES
    if unknown:
        raise ValueError(f"{where}: unknown verdict categories {sorted(map(str, unknown))}")
    if key_words(columns["key"]) is None:
        raise ValueError(f"{where}: a key that is not 32 lowercase hex digits")
    # the key is a hash of the row's content: recomputing it catches a damaged key, truth,
    # prediction or judge, and a writer that stored a verdict under another pair's key
    expected = list(map(verdict_key, columns["ground_truth"], columns["prediction"], columns["judge"]))
    if expected != columns["key"]:
        row = next(row for row, (key, wanted) in enumerate(zip(columns["key"], expected, strict=True)) if key != wanted)
        raise ValueError(
            f"{where}: verdict {columns['key'][row]} does not match its content "
            f"(truth {columns['ground_truth'][row]!r}, prediction {columns['prediction'][row]!r}, "
            f"judge {columns['judge'][row]!r}): damaged or forged"
        )


def write_base(path: Path, columns: Columns) -> None:
    """Write a sorted base file at `path` atomically (speciarl.atomic)."""
    table = pa.table(columns, schema=BASE_SCHEMA).sort_by([("key", "ascending")])
    with atomic_path(path) as temp:
        pq.write_table(
            table,
            temp,
            compression="zstd",
            use_dictionary=_SHARED_COLUMNS,
            row_group_size=_READ_ROWS,
            write_page_checksum=True,
        )


def read_base(path: Path) -> Iterator[Columns]:
    """The rows of a base file, in batches (a batch at a time keeps the peak memory low)."""
    try:
        with pq.ParquetFile(path, read_dictionary=_DICTIONARY_COLUMNS, page_checksum_verification=True) as base:
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
    except FileNotFoundError:
        raise  # removed by a compaction: the caller lists the files again
    except (pa.ArrowException, OSError) as exc:  # arrow reports a failed page checksum as an OSError
        raise ValueError(f"{path}: unreadable verdict base file ({exc})") from None
    pa.default_memory_pool().release_unused()  # arrow's allocator would keep the file's buffers


def _to_objects(column: pa.Array) -> list:
    if not pa.types.is_dictionary(column.type):
        return column.to_pylist()
    dictionary = column.dictionary.to_pylist()
    return list(map(dictionary.__getitem__, column.indices.to_pylist()))
