"""Atomic writes: whoever reads `path` finds its old content or the complete new content, never a mix.

Every write of a file or folder that another process, a rerun or DVC may read goes through here.
The new content is written to a temporary sibling in the same folder (same filesystem, so the
final rename is atomic), named `.<name>.<random>.partial`: hidden, and unique per write so that two
writers never share one. When the content is complete it is fsynced (a folder: every file and
folder inside), renamed over `path` with os.replace, and the parent folder is fsynced, so that the
rename also survives a power cut. Temporaries get the modes a plain open()/mkdir() would give
(the umask), not mkstemp's owner-only ones. This module imports nothing of the package.

Crash contract:
- An exception while the content is written removes the temporary; `path` keeps its old content
  (or stays absent).
- A killed process (SIGKILL, power cut) may leave its temporary behind, never a partial `path`.
  Temporaries match `temp_glob(name)`; an owner that knows no other writer is live removes them
  with `remove_temps`.
- A folder replacing an existing one takes two renames (the old folder aside, the new one in):
  a crash between them leaves `path` absent and the old folder in a temporary sibling; `path`
  never holds a mix of both.
"""

from __future__ import annotations

import os
import secrets
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

TEMP_SUFFIX = ".partial"
# The mask a plain open()/mkdir() applies (read once: os.umask can only be read by setting it).
_UMASK = os.umask(0)
os.umask(_UMASK)


def temp_glob(name: str) -> str:
    """The glob pattern of the temporaries of writes to `name` (which may itself hold wildcards)."""
    return f".{name}.*{TEMP_SUFFIX}"


def temp_sibling(path: str | Path, directory: bool = False) -> Path:
    """A new empty file (or folder) next to `path`, named uniquely after it; the parent is created."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    while True:
        temp = path.with_name(f".{path.name}.{secrets.token_hex(6)}{TEMP_SUFFIX}")
        try:
            if directory:
                temp.mkdir(mode=0o777)
            else:
                os.close(os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
            return temp
        except FileExistsError:
            continue


def fixed_temp_sibling(path: str | Path) -> Path:
    """The one temporary name of a write split over several processes, which must agree on it without
    talking (e.g. a model saved collectively by every rank); the caller ensures one such write at a time."""
    path = Path(path)
    return path.with_name(f".{path.name}.fixed{TEMP_SUFFIX}")


def discard(temp: str | Path) -> None:
    """Remove a temporary file or folder (absent is fine)."""
    temp = Path(temp)
    if temp.is_dir() and not temp.is_symlink():
        shutil.rmtree(temp, ignore_errors=True)
    else:
        temp.unlink(missing_ok=True)


def remove_temps(path: str | Path) -> None:
    """Remove the temporaries that killed writes to `path` left behind (no write to it may be live)."""
    path = Path(path)
    for stale in path.parent.glob(temp_glob(path.name)):
        discard(stale)


def fsync_path(path: str | Path) -> None:
    """Flush a file's content, or a folder's entries (a creation, rename or removal in it), to disk."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_tree(folder: str | Path) -> None:
    """fsync_path on every file and folder under `folder`, itself included."""
    for parent, _, files in os.walk(folder):
        for name in files:
            fsync_path(Path(parent, name))
        fsync_path(parent)


def publish(temp: str | Path, path: str | Path) -> None:
    """Make the complete temporary file or folder `temp` the content of `path` (see the crash contract)."""
    temp, path = Path(temp), Path(path)
    if temp.is_dir():
        fsync_tree(temp)
        if path.is_dir() and not path.is_symlink():
            old = temp_sibling(path, directory=True)
            os.replace(path, old)
            os.replace(temp, path)
            shutil.rmtree(old)
        else:
            if path.exists() or path.is_symlink():
                path.unlink()
            os.replace(temp, path)
    else:
        fsync_path(temp)
        os.replace(temp, path)
    fsync_path(path.parent)


@contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yields the path of an empty temporary file for a writer that opens files itself (parquet,
    safetensors, csv); when the block ends without an exception it becomes `path`."""
    temp = temp_sibling(path)
    try:
        yield temp
        publish(temp, path)
    except BaseException:
        discard(temp)
        raise


@contextmanager
def atomic_directory(path: str | Path) -> Iterator[Path]:
    """Yields an empty temporary folder; when the block ends without an exception it replaces `path`."""
    temp = temp_sibling(path, directory=True)
    try:
        yield temp
        publish(temp, path)
    except BaseException:
        discard(temp)
        raise


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    with atomic_path(path) as temp:
        temp.write_bytes(data)


def atomic_write_text(path: str | Path, text: str) -> None:
    """`text` as UTF-8, newlines as given."""
    atomic_write_bytes(path, text.encode("utf-8"))
