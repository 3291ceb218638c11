"""The verdict store: durable, append-only, shareable verdicts, looked up by key.

A verdict is stored once per key, where the key hashes the normalised truth, the normalised
prediction and the judge id (model, revision, prompt, schema version, decoding parameters), so a
pair is never judged twice by the same judge and a change of judge never reuses stale verdicts.

Every process that writes appends to its own segment file and fsyncs each `put_many` batch, so a
kill -9 loses at most the batch in flight, and several processes can write at once. All verdicts
are held in memory: a dict by key, and for batched lookups a sorted numpy index of the keys
(store_index.py). Compaction folds the segments of finished writers into one sorted parquet file.
The file format is described in store_format.py.

Two verdicts with the same key and different categories are a conflict: the earliest one (by
creation time, then category order, then judge id) is the verdict for that key, on every reader;
the others are kept on disk (compaction keeps them too) and reported by `stats` and `merge`.

Crashes and damage: put_many refuses a verdict whose key is not the verdict_key of its content
before writing anything. A segment's damaged bytes are skipped up to its next intact block and
listed by `stats` (logged when first seen); its other verdicts stay readable. Compaction never
deletes a byte it could not read: it moves such a segment, whole, into `quarantine/`. A base file
or block whose rows fail verification makes reading the store fail with an error naming it.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import secrets
import threading
import time
import weakref
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from speciarl.atomic import fsync_path, temp_glob
from speciarl.judge import store_format as fmt
from speciarl.judge.store_exchange import VerdictCheck, read_verdict_file, write_verdict_file
from speciarl.judge.store_index import SortedKeys
from speciarl.judge.store_verdict import Verdict, check_verdict, verdict_key
from speciarl.labels import Category

__all__ = [
    "CompactReport",
    "MergeReport",
    "Verdict",
    "VerdictStore",
    "merge_stores",
    "merge_verdicts",
    "verdict_key",
]

log = logging.getLogger(__name__)

COMPACTION_LOCK = ".compact.lock"
# rows per block: bounds the memory of encoding and reading one block
_BLOCK_ROWS = 100_000
# verdicts added since the lookup index was built that are looked up in the dict, beyond 1/4
_INDEX_SLACK = 4096
_SMALL_BATCH = 64
_CATEGORY_BY_VALUE = {category.value: category for category in Category}


def _precedence(verdict: Verdict) -> tuple:
    """Of two verdicts with one key, the smaller is the verdict; the same on every reader."""
    return verdict.created, verdict.category.rank, verdict.judge


@dataclass
class MergeReport:
    new: int = 0
    duplicates: int = 0
    # key, category of the verdict after the merge, category of the other one (both are stored)
    conflicts: list[tuple[str, Category, Category]] = field(default_factory=list)

    def __iadd__(self, other: MergeReport) -> MergeReport:
        self.new += other.new
        self.duplicates += other.duplicates
        self.conflicts.extend(other.conflicts)
        return self


@dataclass
class CompactReport:
    """What a compaction could not read: segments moved to quarantine/, with why."""

    torn: dict[str, int] = field(default_factory=dict)  # segment -> bytes of its torn tail
    damaged: dict[str, list[fmt.Damage]] = field(default_factory=dict)  # segment -> unreadable gaps

    @property
    def quarantined(self) -> list[str]:
        return sorted(set(self.torn) | set(self.damaged))


@dataclass
class _SegmentState:
    end: int  # where the next read starts
    size: int  # file size at the last read
    damages: list[fmt.Damage] = field(default_factory=list)


class _SegmentWriter:
    """The segment this process appends to, flock'ed while open so compaction leaves it alone."""

    def __init__(self, root: Path):
        self.pid = os.getpid()
        self.name = f"seg-{time.time_ns():020d}-{self.pid}-{secrets.token_hex(4)}.vlog"
        path = root / self.name
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND, 0o644)
        self._closer = weakref.finalize(self, os.close, fd)
        try:
            # lock before the header: compaction ignores files shorter than the header
            fcntl.flock(fd, fcntl.LOCK_EX)
            fmt.write_all(fd, fmt.SEGMENT_HEADER)
            os.fsync(fd)
            fsync_path(root)
        except BaseException:
            self.close()
            path.unlink(missing_ok=True)
            raise
        self.fd = fd
        self.size = len(fmt.SEGMENT_HEADER)

    def append(self, data: bytes) -> None:
        try:
            fmt.write_all(self.fd, data)
            os.fsync(self.fd)
        except BaseException:
            # never leave a partial block for a later block to follow: cut it off, use a new segment
            with contextlib.suppress(OSError):
                os.ftruncate(self.fd, self.size)
            self.close()
            raise
        self.size += len(data)

    @property
    def closed(self) -> bool:
        return not self._closer.alive

    def finish(self) -> None:
        """Close after a last block of no rows: damage in the last verdicts then reads as damage."""
        if not self.closed:
            # the verdicts are durable already: a failed last block only leaves the segment as a dead writer's
            with contextlib.suppress(OSError):
                self.append(fmt.encode_block({name: [] for name in fmt.COLUMNS}))
        self.close()

    def close(self) -> None:
        self._closer()


class VerdictStore:
    """A directory of verdicts; see the module docstring. Thread-safe; one instance per process is enough."""

    def __init__(self, root: str | Path, *, create: bool = True):
        self.root = Path(root)
        if self.root.exists() and not self.root.is_dir():
            raise ValueError(f"{self.root}: not a directory (a verdict store is a directory)")
        if create:
            self.root.mkdir(parents=True, exist_ok=True)
        elif not self.root.is_dir():
            raise FileNotFoundError(f"verdict store not found: {self.root}")
        self._lock = threading.RLock()
        self._verdicts: dict[str, Verdict] = {}
        # keys with verdicts of several categories: the earliest verdict of each category
        self._rivals: dict[str, dict[Category, Verdict]] = {}
        self._bases: set[str] = set()  # base files read
        self._segments: dict[str, _SegmentState] = {}
        self._writer: _SegmentWriter | None = None
        self._index: SortedKeys | None = None  # built on the first lookup; rebuilt as the store grows
        self.refresh()

    # ---- lookups

    def get_many(self, keys: Sequence[str]) -> dict[str, Verdict]:
        """The stored verdicts among `keys`; on a miss, first picks up what other processes wrote."""
        if not isinstance(keys, (list, tuple)):
            keys = list(keys)
        found = self._find(keys)
        if len(found) < len(keys) and self.refresh():
            found = self._find(keys)
        return found

    def _find(self, keys: Sequence[str]) -> dict[str, Verdict]:
        get = self._verdicts.get
        if len(keys) < _SMALL_BATCH:  # below this, numpy's per-call overhead outweighs the gain
            return {key: verdict for key in keys if (verdict := get(key)) is not None}
        index = self._index
        if index is None or len(self._verdicts) > index.size + index.size // 4 + _INDEX_SLACK:
            with self._lock:
                index = self._index = SortedKeys(self._verdicts)
        found, missed = index.find(keys) or ({}, keys)
        # verdicts added since the index was built, keys sharing their high bits, malformed keys
        found.update((key, verdict) for key in missed if (verdict := get(key)) is not None)
        return found

    def get(self, key: str) -> Verdict | None:
        return self.get_many([key]).get(key)

    def __contains__(self, key: object) -> bool:
        return key in self._verdicts

    def __len__(self) -> int:
        return len(self._verdicts)

    def iter_verdicts(self) -> Iterator[Verdict]:
        """Every verdict (one per key), in no particular order."""
        return iter(list(self._verdicts.values()))

    def conflicts(self) -> list[tuple[str, Category, Category]]:
        """(key, category of the verdict, category of a conflicting one) for every conflict on disk."""
        with self._lock:
            return [
                (key, self._verdicts[key].category, category)
                for key, rivals in sorted(self._rivals.items())
                for category in rivals
                if category is not self._verdicts[key].category
            ]

    # ---- writes

    def put_many(self, verdicts: Iterable[Verdict]) -> int:
        """Store the verdicts whose keys are new; durable when it returns. Returns how many were new.

        A verdict for a key that already has one is not stored; if its category differs, that is
        logged (the first verdict wins). Anything that is not a Verdict with a Category, or whose
        key is not the verdict_key of its truth, prediction and judge, is refused before anything
        is written.
        """
        batch = list(verdicts)
        _check_batch(batch)
        with self._lock:
            fresh: dict[str, Verdict] = {}
            for verdict in batch:
                kept = self._verdicts.get(verdict.key) or fresh.get(verdict.key)
                if kept is None:
                    fresh[verdict.key] = verdict
                elif kept.category is not verdict.category:
                    log.warning(
                        "verdict conflict for (%r, %r): kept %r by %s, refused %r by %s",
                        verdict.ground_truth,
                        verdict.prediction,
                        kept.category.value,
                        kept.judge,
                        verdict.category.value,
                        verdict.judge,
                    )
            if fresh:
                self._append(list(fresh.values()))
                self._verdicts.update(fresh)
            return len(fresh)

    def _append(self, verdicts: list[Verdict]) -> None:
        # encode everything first: an unencodable string must fail before a byte is written
        blocks = b"".join(
            fmt.encode_block(_columns(verdicts[start : start + _BLOCK_ROWS]))
            for start in range(0, len(verdicts), _BLOCK_ROWS)
        )
        writer = self._writer
        if writer is None or writer.closed or writer.pid != os.getpid():  # a forked child gets its own
            writer = self._writer = _SegmentWriter(self.root)
        writer.append(blocks)
        self._segments[writer.name] = _SegmentState(writer.size, writer.size)

    def close(self) -> None:
        """Finish this process's segment (it becomes compactable). The store stays readable."""
        with self._lock:
            if self._writer is not None and self._writer.pid == os.getpid():
                self._writer.finish()
            self._writer = None

    def __enter__(self) -> VerdictStore:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # ---- reading the directory

    def refresh(self) -> int:
        """Load what was written since the last look (other processes' blocks, new base files).

        Returns how many new keys it found.
        """
        with self._lock:
            # a compaction elsewhere may remove a file between listing and reading it; it renamed
            # the base file holding that file's verdicts into place first, so list again
            for _ in range(100):
                new, complete = self._read_new_files()
                if complete:
                    return new
            raise RuntimeError(f"{self.root}: files keep disappearing while reading the verdict store")

    def _list(self) -> tuple[list[str], list[str]]:
        try:
            names = os.listdir(self.root)
        except FileNotFoundError:
            raise FileNotFoundError(f"verdict store not found: {self.root}") from None
        bases = sorted(name for name in names if fmt.BASE_NAME.fullmatch(name))
        segments = sorted(name for name in names if fmt.SEGMENT_NAME.fullmatch(name))
        return bases, segments

    def _read_new_files(self) -> tuple[int, bool]:
        bases, segments = self._list()
        new = 0
        for name in bases:
            if name in self._bases:
                continue
            try:
                for columns in fmt.read_base(self.root / name):
                    new += self._absorb(columns)
            except FileNotFoundError:
                return new, False
            self._bases.add(name)
        for name in segments:
            state = self._segments.setdefault(name, _SegmentState(0, 0))
            try:
                if os.stat(self.root / name).st_size == state.size:
                    continue
                read = fmt.SegmentRead(self.root / name, state.end)
            except FileNotFoundError:
                return new, False
            for columns in read.blocks():
                new += self._absorb(columns)
            for damage in read.damages:
                log.warning("verdict store %s: %s; the verdicts before and after it are read", self.root, damage)
            state.damages.extend(read.damages)
            state.end, state.size = read.end, read.size
        self._bases.intersection_update(bases)
        for name in set(self._segments) - set(segments):
            del self._segments[name]
        return new, True

    def _absorb(self, columns: fmt.Columns) -> int:
        """Add rows read from a file; returns how many keys were new."""
        known = self._verdicts
        before = len(known)
        categories = map(_CATEGORY_BY_VALUE.__getitem__, columns["category"])
        made = list(
            map(
                Verdict,
                columns["key"],
                columns["ground_truth"],
                columns["prediction"],
                categories,
                columns["judge"],
                columns["created"],
            )
        )
        if not any(map(known.__contains__, columns["key"])):  # the usual case: all keys are new
            known.update(zip(columns["key"], made, strict=True))
            if len(known) - before == len(made):
                return len(made)
        for verdict in made:  # keys seen before: a file re-read after a compaction, or a conflict
            kept = known.setdefault(verdict.key, verdict)
            if kept is not verdict and (
                kept.category is not verdict.category or kept.created != verdict.created or kept.judge != verdict.judge
            ):
                self._settle(kept, verdict)
        return len(known) - before

    def _settle(self, kept: Verdict, other: Verdict) -> None:
        """Two verdicts for one key: the earliest of each category is kept, the earliest of all wins."""
        rivals = self._rivals.get(kept.key) or {kept.category: kept}
        same = rivals.get(other.category)
        if same is None or _precedence(other) < _precedence(same):
            rivals[other.category] = other
        if len(rivals) > 1:
            self._rivals[kept.key] = rivals
        winner = min(rivals.values(), key=_precedence)
        if winner is not kept:
            self._verdicts[kept.key] = winner
            self._index = None  # it may hold the former verdict

    # ---- maintenance

    def compact(self) -> CompactReport:
        """Fold every base file and the segments of finished writers into one sorted base file.

        Segments still open by a live writer are left as they are. Conflicting verdicts are kept.
        A finished segment with bytes that could not be read (a torn tail or damage) is moved to
        quarantine/ instead of being deleted; the report lists them.
        """
        report = CompactReport()
        with self._lock, _compaction_lock(self.root / COMPACTION_LOCK):
            self.close()
            for debris in self.root.glob(temp_glob("base-*")):  # of a compaction that crashed
                debris.unlink()
            bases, segments = self._list()
            with contextlib.ExitStack() as held:
                finished = [name for name in segments if _hold_if_finished(self.root / name, held)]
                self.refresh()
                if not finished and len(bases) <= 1:
                    return report
                for name in finished:
                    state = self._segments[name]
                    if state.end < state.size:
                        report.torn[name] = state.size - state.end
                    if state.damages:
                        report.damaged[name] = list(state.damages)
                target = None
                if self._verdicts:
                    target = f"base-{time.time_ns():020d}-{secrets.token_hex(4)}.parquet"
                    fmt.write_base(self.root / target, _columns(self._all_rows()))
                if report.quarantined:
                    quarantine = self.root / fmt.QUARANTINE
                    quarantine.mkdir(exist_ok=True)
                    for name in report.quarantined:
                        os.replace(self.root / name, quarantine / name)
                        log.warning("%s: kept in %s (bytes that could not be read)", name, quarantine)
                    fsync_path(quarantine)
                for name in bases + finished:
                    if name not in report.quarantined:
                        (self.root / name).unlink(missing_ok=True)
                fsync_path(self.root)
            self._bases = {target} if target else set()
            for name in finished:
                self._segments.pop(name, None)
        return report

    def _all_rows(self) -> list[Verdict]:
        """Every verdict, and the verdicts it conflicts with."""
        rows = list(self._verdicts.values())
        for key, rivals in self._rivals.items():
            rows.extend(rival for rival in rivals.values() if rival is not self._verdicts[key])
        return rows

    # ---- exchange

    def export(self, path: str | Path) -> int:
        """Write the verdict of every key to a .jsonl or .parquet file (atomically). Returns how many.

        Verdicts that lost a conflict are not exported.
        """
        with self._lock:
            self.refresh()
            return write_verdict_file(Path(path), self._verdicts.values())

    def import_(self, path: str | Path, check: VerdictCheck) -> int:
        """Add the verdicts of a .jsonl or .parquet file (see store_exchange), each passed to `check`
        first (nothing is added unless every row passes). Returns how many were new."""
        report = merge_verdicts(self, read_verdict_file(Path(path), check))
        for key, verdict_category, other in report.conflicts:
            log.warning(
                "%s: conflict for key %s: %r (the verdict) vs %r", path, key, verdict_category.value, other.value
            )
        return report.new

    def stats(self) -> dict:
        with self._lock:
            self.refresh()
            by_category = Counter(verdict.category for verdict in self._verdicts.values())
            by_judge = Counter(verdict.judge for verdict in self._verdicts.values())
            bases, segments = self._list()
            return {
                "verdicts": len(self._verdicts),
                "by_category": {category.value: by_category[category] for category in Category},
                "by_judge": dict(sorted(by_judge.items())),
                "conflicts": len(self._rivals),
                "base_files": len(bases),
                "segments": len(segments),
                "bytes_on_disk": sum(_size(self.root / name) for name in bases + segments),
                "torn_bytes": sum(state.size - state.end for state in self._segments.values()),
                "damaged": [
                    {
                        "file": damage.file,
                        "offset": damage.offset,
                        "bytes": damage.size,
                        "blocks_skipped": damage.blocks,
                    }
                    for state in self._segments.values()
                    for damage in state.damages
                ],
                "quarantined_files": len(_names(self.root / fmt.QUARANTINE)),
            }

    def __repr__(self) -> str:
        return f"VerdictStore({str(self.root)!r}, {len(self)} verdicts)"


def _columns(verdicts: list[Verdict]) -> fmt.Columns:
    return {
        "key": [v.key for v in verdicts],
        "ground_truth": [v.ground_truth for v in verdicts],
        "prediction": [v.prediction for v in verdicts],
        "category": [v.category.value for v in verdicts],
        "judge": [v.judge for v in verdicts],
        "created": [float(v.created) for v in verdicts],
    }


def _check_batch(batch: list[Verdict]) -> None:
    """Raise, naming the verdict's position, unless every verdict can be stored as it is."""
    for position, verdict in enumerate(batch):
        check_verdict(verdict, f"verdict {position}")
        if verdict.key != verdict_key(verdict.ground_truth, verdict.prediction, verdict.judge):
            # readers verify every key: a verdict stored under another pair's key would make the store unreadable
            raise ValueError(
                f"verdict {position}: key {verdict.key} is not the verdict_key of its truth, prediction and judge"
            )


def _names(folder: Path) -> list[str]:
    try:
        return os.listdir(folder)
    except FileNotFoundError:
        return []


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return 0


def _open_for_lock(path: Path, flags: int = 0) -> int:
    # a write mode is what an exclusive flock needs on NFS; files checked out by DVC may be read-only
    try:
        return os.open(path, os.O_RDWR | flags, 0o644)
    except PermissionError:
        return os.open(path, os.O_RDONLY | flags, 0o644)


@contextlib.contextmanager
def _compaction_lock(path: Path) -> Iterator[None]:
    fd = _open_for_lock(path, os.O_CREAT)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def _hold_if_finished(path: Path, held: contextlib.ExitStack) -> bool:
    """Lock a segment whose writer has finished (closed or died) and keep it locked; False if live."""
    try:
        fd = _open_for_lock(path)
    except FileNotFoundError:
        return False
    held.callback(os.close, fd)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    # shorter than the header: a writer that has not locked it yet, or died creating it
    return os.fstat(fd).st_size >= len(fmt.SEGMENT_HEADER)


def merge_verdicts(store: VerdictStore, verdicts: Iterable[Verdict]) -> MergeReport:
    """Store the verdicts `store` lacks; count the duplicates, store and report the conflicts.

    A verdict whose key `store` holds with another category is stored too, as a conflicting
    verdict: the store's precedence rule (the earliest) picks the verdict, the same whichever way
    two stores are merged, and no verdict of either side is lost.
    """
    batch = list(verdicts)
    _check_batch(batch)
    with store._lock:
        store.refresh()
        report = MergeReport()
        fresh: dict[str, Verdict] = {}
        rivals: dict[tuple[str, Category], tuple[Verdict, Category]] = {}  # -> (verdict, category it conflicts with)
        for verdict in batch:
            kept = store._verdicts.get(verdict.key) or fresh.get(verdict.key)
            if kept is None:
                fresh[verdict.key] = verdict
            elif kept.category is verdict.category:
                report.duplicates += 1
            elif verdict.category in store._rivals.get(verdict.key, {}) or (verdict.key, verdict.category) in rivals:
                report.conflicts.append((verdict.key, kept.category, verdict.category))  # stored already
            else:
                rivals[verdict.key, verdict.category] = verdict, kept.category
        if fresh or rivals:
            store._append([*fresh.values(), *(verdict for verdict, _ in rivals.values())])
            store._verdicts.update(fresh)
            for verdict, _ in rivals.values():
                store._settle(store._verdicts[verdict.key], verdict)
        report.new = len(fresh)
        for (key, category), (_, conflicting) in rivals.items():
            winner = store._verdicts[key].category
            report.conflicts.append((key, winner, conflicting if winner is category else category))
        return report


def merge_stores(into: str | Path, sources: list[str | Path], check: VerdictCheck) -> MergeReport:
    """Merge every verdict of `sources` (conflicting ones included) into the store `into` (created
    if missing). Every source verdict is passed to `check` before anything is stored."""
    for source in sources:
        if not Path(source).is_dir():
            raise FileNotFoundError(f"verdict store not found: {source}")
        if Path(source).resolve() == Path(into).resolve():
            raise ValueError(f"{source}: cannot merge a verdict store into itself")
    rows = []
    for source in sources:
        for verdict in VerdictStore(source, create=False)._all_rows():
            check(verdict, f"{source}: verdict {verdict.key}")
            rows.append(verdict)
    with VerdictStore(into) as target:
        return merge_verdicts(target, rows)
