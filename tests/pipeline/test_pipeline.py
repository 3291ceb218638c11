"""The whole pipeline, for real: `dvc repro` on the miniature profile in a fresh git repo, then
what users do next: dry runs in a fresh clone, change one training param, share verdicts through
a DVC remote."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml
from miniature_repo import build_miniature_repo, git_commit, run

pytestmark = [pytest.mark.slow, pytest.mark.timeout(1800)]

STAGES = {
    "prepare",
    "bootstrap@base",
    "harvest",
    "judge@harvest",
    "train@speciarl",
    "train@binary",
    "train@null_control",
    "predict_base@general",
    "predict_base@specific",
    "predict_best_of_n",
    "predict_trained@speciarl",
    "predict_trained@binary",
    "predict_trained@null_control",
    "judge@eval",
    "evaluate",
    "report",
}


def stages_run(output: str) -> set[str]:
    return set(re.findall(r"Running stage '([^']+)'", output))


@pytest.fixture(scope="module")
def pipeline_repo(tmp_path_factory) -> Path:
    """A fresh repo with the project's tracked files and the miniature params, after `dvc repro`."""
    repo = build_miniature_repo(tmp_path_factory.mktemp("pipeline") / "repo")
    result = run(["dvc", "repro"], repo)
    assert stages_run(result.stdout) == STAGES
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


def test_dry_runs_work_in_a_fresh_clone(pipeline_repo, tmp_path):
    """A clone holds no data: DVC 3.67's dry run hashes the deps of each stage it would run, and
    fails on a dep that only an upstream run would create. --allow-missing
    asks what changed against the commit (nothing: every folder dep is missing, not modified);
    --force-downstream prints every stage the clone would run, with a param set or not."""
    clone = tmp_path / "clone"
    run(["git", "clone", "-q", str(pipeline_repo), str(clone)], tmp_path)
    assert not (clone / "data/predictions").exists()
    unchanged = run(["dvc", "repro", "--dry", "--allow-missing"], clone).stdout
    assert stages_run(unchanged) == set() and "Data and pipelines are up to date" in unchanged
    assert stages_run(run(["dvc", "repro", "--dry", "--force-downstream"], clone).stdout) == STAGES
    experiment = [
        "dvc",
        "exp",
        "run",
        "--dry",
        "--force-downstream",
        "-S",
        "train.runs.binary.grpo.learning_rate=0.002",
    ]
    assert stages_run(run(experiment, clone).stdout) == STAGES
    assert not (clone / "data/prepared").exists()


def test_training_param_change_reruns_only_that_run_and_downstream(pipeline_repo):
    params = yaml.safe_load((pipeline_repo / "params.yaml").read_text())
    params["train"]["runs"]["binary"]["grpo"]["learning_rate"] *= 2
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
