"""Reading a dataset's official download: an archive, a folder of archives, or an extracted folder.

A `Layout` finds the files a loader names. It looks in the source folder (or the extraction of the
source archive), one folder level down as well (archives usually wrap everything in a top folder),
and, when a file is still missing, in the archives the loader says may hold it. Archives are
extracted once into the cache with a path filter that rejects absolute paths, "..", links that point
outside, and device files; the extraction is moved into place only when complete.
"""

from __future__ import annotations

import hashlib
import tarfile
import zlib
from collections.abc import Sequence
from pathlib import Path

from speciarl.atomic import atomic_directory, remove_temps

ARCHIVE_SUFFIXES = (".tar", ".tgz", ".tar.gz", ".tar.bz2", ".tar.xz")
COMPLETE = ".complete"


def is_archive(path: Path) -> bool:
    return path.name.endswith(ARCHIVE_SUFFIXES)


def extract(archive: Path, cache_dir: Path) -> Path:
    """Extract `archive` into a folder of `cache_dir` named after it; reuse it if already complete."""
    archive = Path(archive)
    stat = archive.stat()
    # a changed archive (size or time) gets a fresh folder instead of stale files
    tag = hashlib.sha1(f"{archive.resolve()}|{stat.st_size}|{stat.st_mtime_ns}".encode()).hexdigest()[:12]
    dest = Path(cache_dir) / f"{archive.name}-{tag}"
    if (dest / COMPLETE).exists():
        return dest
    # leftovers of an extraction that was killed are never complete: remove them
    remove_temps(dest)
    try:
        with atomic_directory(dest) as tmp, tarfile.open(archive) as tar:
            for member in tar:
                _check_member_name(archive, member.name)
                try:
                    tar.extract(member, tmp, filter="data")
                except tarfile.FilterError as exc:
                    raise ValueError(f"{archive}: unsafe archive member {member.name!r} rejected ({exc})") from None
            (tmp / COMPLETE).write_text(str(archive.resolve()))
    except (tarfile.TarError, EOFError, OSError, zlib.error) as exc:
        raise ValueError(f"{archive}: cannot read the archive ({exc})") from None
    return dest


def _check_member_name(archive: Path, name: str) -> None:
    # tarfile's "data" filter would silently strip a leading "/"; an official archive never has one,
    # so such a member (or a ".." component) means a tampered archive: refuse it outright.
    parts = name.replace("\\", "/").split("/")
    if name.startswith(("/", "\\")) or ".." in parts:
        raise ValueError(f"{archive}: unsafe archive member {name!r} rejected (absolute path or '..')")


class Layout:
    """The files of one dataset source, wherever the download put them."""

    def __init__(self, dataset: str, source: str | Path, cache_dir: str | Path):
        self.dataset = dataset
        self.source = Path(source)
        self.cache_dir = Path(cache_dir)
        if not self.source.exists():
            raise FileNotFoundError(f"{dataset}: source not found: {self.source} (set data.{dataset}.source)")
        if self.source.is_dir():
            self.roots = [self.source]
        elif is_archive(self.source):
            self.roots = [extract(self.source, self.cache_dir)]
        else:
            raise ValueError(
                f"{dataset}: source {self.source} is neither a folder nor an archive ({', '.join(ARCHIVE_SUFFIXES)})"
            )

    def _search(self, relative: str) -> Path | None:
        for root in self.roots:
            candidates = [root] + sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
            for base in candidates:
                if (base / relative).exists():
                    return base / relative
        return None

    def find(self, relative: str, archives: Sequence[str] = ()) -> Path:
        """The path of `relative` (a file or folder of the official layout); extracts `archives` if needed."""
        found = self._search(relative)
        for name in archives:
            if found is not None:
                break
            for root in list(self.roots):
                candidate = root / name
                if candidate.is_file():
                    extracted = extract(candidate, self.cache_dir)
                    if extracted not in self.roots:
                        self.roots.append(extracted)
            found = self._search(relative)
        if found is None:
            hint = f" or inside {' / '.join(archives)}" if archives else ""
            raise FileNotFoundError(f"{self.dataset}: {relative} not found in {self.source}{hint} (wrong layout?)")
        return found

    def require(self, relatives: Sequence[str], archives: Sequence[str] = ()) -> dict[str, Path]:
        """Find every named file first, so a wrong layout fails before any work, naming the missing one."""
        return {relative: self.find(relative, archives) for relative in relatives}
