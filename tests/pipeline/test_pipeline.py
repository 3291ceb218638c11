"""The whole pipeline, for real: `dvc repro` on the miniature profile in a fresh git repo, then
what users do next: change one training param, share verdicts through a DVC remote."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
VENV_BIN = Path(sys.executable).parent


def merge(base: dict, override: dict) -> dict:
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            merge(base[key], value)
        else:
            base[key] = value
    return base


def run(cmd: list[str], cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PATH": f"{VENV_BIN}{os.pathsep}{os.environ['PATH']}", "PYTHONPATH": str(cwd / "src")}
    result = subprocess.run(cmd, cwd=cwd, env=env, text=True, capture_output=True)
    assert result.returncode == 0, f"{' '.join(cmd)} failed:\n{result.stdout[-4000:]}\n{result.stderr[-4000:]}"
    return result


def git_commit(repo: Path, message: str) -> None:
    run(["git", "add", "-A"], repo)
    run(["git", "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", message], repo)


def stages_run(output: str) -> set[str]:
    return set(re.findall(r"Running stage '([^']+)'", output))


@pytest.fixture(scope="module")
def pipeline_repo(tmp_path_factory) -> Path:
    """A fresh repo with the project's tracked files and the miniature params, after `dvc repro`."""
    repo = tmp_path_factory.mktemp("pipeline") / "repo"
    files = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard"],
        cwd=REPO, text=True, capture_output=True, check=True,
    ).stdout.split()
    for name in files:
        src = REPO / name
        if src.is_file() and not name.startswith(("data/", "report/")) and name != "dvc.lock":
            (repo / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, repo / name)
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    merge(params, yaml.safe_load((REPO / "tests/pipeline/params_mini.yaml").read_text()))
    (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    run(["git", "init", "-q"], repo)
    git_commit(repo, "miniature pipeline")
    result = run(["dvc", "repro"], repo)
    assert {"prepare", "bootstrap", "harvest", "judge@harvest", "train@speciarl", "train@binary",
            "predict_base@general", "predict_best_of_n", "judge@eval", "evaluate", "report"} <= stages_run(result.stdout)
    git_commit(repo, "pipeline run")
    return repo


def test_repro_produces_metrics_and_report(pipeline_repo):
    metrics = json.loads((pipeline_repo / "data/eval/metrics.json").read_text())
    assert {"base-general", "base-specific", "base-best_of_n", "speciarl-general", "binary-general"} <= set(metrics)
    domain_b = metrics["speciarl-general"]["greedy"]["groups"]["domain_b"]["test"]
    assert 0.0 <= domain_b["correctness"] <= 1.0
    report = (pipeline_repo / "report/report.md").read_text()
    assert "SpeciaRL" in report and ".png" in report
    assert "changed" not in run(["dvc", "status"], pipeline_repo).stdout


def test_training_param_change_reruns_only_that_run_and_downstream(pipeline_repo):
    params = yaml.safe_load((pipeline_repo / "params.yaml").read_text())
    params["train"]["runs"]["binary"]["learning_rate"] *= 2
    (pipeline_repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    ran = stages_run(run(["dvc", "repro"], pipeline_repo).stdout)
    assert "train@binary" in ran
    assert ran <= {"train@binary", "predict_trained@binary", "judge@eval", "evaluate", "report"}, ran
    git_commit(pipeline_repo, "binary lr x2")


def test_shared_verdicts_make_a_second_clone_judge_nothing(pipeline_repo, tmp_path):
    remote = tmp_path / "remote"
    run(["dvc", "remote", "add", "-d", "shared", str(remote)], pipeline_repo)
    run(["dvc", "add", "data/verdicts"], pipeline_repo)
    git_commit(pipeline_repo, "share verdicts")
    run(["dvc", "push"], pipeline_repo)

    clone = tmp_path / "clone"
    run(["git", "clone", "-q", str(pipeline_repo), str(clone)], tmp_path)
    run(["dvc", "pull"], clone)
    assert "changed" not in run(["dvc", "status"], clone).stdout
    # judge@eval: its pairs come from greedy answers, which even the miniature policy formats well.
    run(["dvc", "repro", "--force", "--single-item", "judge@eval"], clone)
    stats = json.loads((clone / "data/eval/judged/judge_stats.json").read_text())
    assert stats["unique"] > 0
    assert stats["store_hits"] == stats["unique"]
    assert stats["exact"] == stats["taxonomy"] == stats["llm_calls"] == 0
