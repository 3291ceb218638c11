"""A throwaway copy of the project for real pipeline runs: the tracked (and untracked, not ignored)
files without data/, report/ or dvc.lock, with the miniature profile (tests/pipeline/params_mini.yaml
merged over params.yaml), committed in a fresh git repo. Commands run with the project's .venv
first on PATH and the copy's own src/ on PYTHONPATH, so stages import the copy's code; a failing
command fails the test with the tail of its output."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import yaml
from tiny_world import deep_merge

REPO = Path(__file__).resolve().parents[1]
VENV_BIN = Path(sys.executable).parent


def env_for(cwd: Path) -> dict:
    return {**os.environ, "PATH": f"{VENV_BIN}{os.pathsep}{os.environ['PATH']}", "PYTHONPATH": str(cwd / "src")}


def run(cmd: list[str], cwd: Path) -> subprocess.CompletedProcess:
    result = subprocess.run(cmd, cwd=cwd, env=env_for(cwd), text=True, capture_output=True)
    assert result.returncode == 0, f"{' '.join(cmd)} failed:\n{result.stdout[-4000:]}\n{result.stderr[-4000:]}"
    return result


def git_commit(repo: Path, message: str) -> None:
    run(["git", "add", "-A"], repo)
    run(["git", "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", message], repo)


def build_miniature_repo(repo: Path) -> Path:
    listing = ["git", "ls-files", "--cached", "--others", "--exclude-standard"]
    files = subprocess.run(listing, cwd=REPO, text=True, capture_output=True, check=True).stdout.split()
    for name in files:
        src = REPO / name
        if src.is_file() and not name.startswith(("data/", "report/")) and name != "dvc.lock":
            (repo / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, repo / name)
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    deep_merge(params, yaml.safe_load((REPO / "tests/pipeline/params_mini.yaml").read_text()))
    (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    run(["git", "init", "-q"], repo)
    git_commit(repo, "miniature pipeline")
    return repo
