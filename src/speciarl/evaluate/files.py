"""Atomic output writing: a file or folder appears complete or not at all."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import pyarrow as pa
import pyarrow.parquet as pq


_UMASK = os.umask(0)
os.umask(_UMASK)


@contextmanager
def _temporary_sibling(path: Path, directory: bool) -> Iterator[Path]:
    """A temporary path next to `path` (same filesystem, so os.replace is atomic), removed on failure."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if directory:
        tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".partial", dir=path.parent))
    else:
        handle, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".partial", dir=path.parent)
        os.close(handle)
        tmp = Path(name)
    # mkstemp/mkdtemp create owner-only entries; give them the modes a plain open()/mkdir() would.
    tmp.chmod((0o777 if directory else 0o666) & ~_UMASK)
    try:
        yield tmp
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True) if directory else tmp.unlink(missing_ok=True)
        raise


def write_json(path: str | Path, content: dict) -> None:
    path = Path(path)
    with _temporary_sibling(path, directory=False) as tmp:
        tmp.write_text(json.dumps(content, indent=2, sort_keys=False) + "\n")
        os.replace(tmp, path)


def write_parquet(path: str | Path, table: pa.Table) -> None:
    path = Path(path)
    with _temporary_sibling(path, directory=False) as tmp:
        pq.write_table(table, tmp)
        os.replace(tmp, path)


@contextmanager
def replaced_directory(path: str | Path) -> Iterator[Path]:
    """Yields an empty temporary folder; on success it replaces `path` (previous content removed)."""
    path = Path(path)
    with _temporary_sibling(path, directory=True) as tmp:
        yield tmp
        if path.exists():
            shutil.rmtree(path) if path.is_dir() and not path.is_symlink() else path.unlink()
        os.replace(tmp, path)
