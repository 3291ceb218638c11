"""speciarl.atomic: a write leaves the old content or the complete new one, and no temporary litter."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap

import pytest

from speciarl.atomic import (
    atomic_directory,
    atomic_path,
    atomic_write_bytes,
    atomic_write_text,
    remove_temps,
    temp_glob,
)


class Crash(Exception):
    pass


def test_a_write_replaces_the_file_and_leaves_only_it(tmp_path):
    path = tmp_path / "sub" / "out.json"
    atomic_write_text(path, "first\n")
    atomic_write_bytes(path, b"second")
    assert path.read_bytes() == b"second"
    assert os.listdir(path.parent) == ["out.json"]


def test_a_crash_mid_write_keeps_the_old_file_and_no_temporary(tmp_path):
    path = tmp_path / "out.parquet"
    path.write_bytes(b"old")
    with pytest.raises(Crash), atomic_path(path) as temp:
        temp.write_bytes(b"half of the new")
        raise Crash
    assert path.read_bytes() == b"old"
    assert os.listdir(tmp_path) == ["out.parquet"]


def test_a_crash_mid_folder_write_keeps_the_old_folder_and_no_temporary(tmp_path):
    folder = tmp_path / "report"
    atomic_write_text(folder / "report.md", "old")
    with pytest.raises(Crash), atomic_directory(folder) as temp:
        (temp / "report.md").write_text("new")
        raise Crash
    assert (folder / "report.md").read_text() == "old"
    assert os.listdir(tmp_path) == ["report"]

    with atomic_directory(folder) as temp:
        (temp / "plot.png").write_bytes(b"png")
    assert os.listdir(folder) == ["plot.png"]  # replaced as a whole, nothing of the old folder left
    assert os.listdir(tmp_path) == ["report"]


def test_temporaries_are_hidden_unique_siblings_with_plain_modes(tmp_path):
    path = tmp_path / "out.json"
    with atomic_path(path) as first, atomic_path(path) as second:
        assert first != second and first.parent == second.parent == tmp_path
        assert first.name.startswith(".out.json.") and first in tmp_path.glob(temp_glob("out.json"))
        umask = os.umask(0)
        os.umask(umask)
        assert first.stat().st_mode & 0o777 == 0o666 & ~umask
        first.write_text("one")
        second.write_text("two")
    assert path.read_text() == "one"  # the write that finishes last wins, whole
    assert os.listdir(tmp_path) == ["out.json"]


def test_a_killed_writer_leaves_the_old_file_and_a_temporary_that_remove_temps_finds(tmp_path):
    path = tmp_path / "out.bin"
    path.write_bytes(b"old")
    writer = textwrap.dedent(
        f"""
        import sys, time
        from speciarl.atomic import atomic_path
        with atomic_path({str(path)!r}) as temp, open(temp, "wb") as f:
            f.write(b"partial"); f.flush()
            print("writing", flush=True)
            time.sleep(60)
        """
    )
    process = subprocess.Popen([sys.executable, "-c", writer], stdout=subprocess.PIPE, text=True)
    assert process.stdout.readline() == "writing\n"
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert path.read_bytes() == b"old"
    assert len(list(tmp_path.glob(temp_glob(path.name)))) == 1
    remove_temps(path)
    assert os.listdir(tmp_path) == ["out.bin"]
