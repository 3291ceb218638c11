"""workflow/Snakefile for real: the miniature profile run by Snakemake (local profile, 2 cores) and
by `dvc repro`, each in its own copy of the project, end with the same metrics; then what users do
next in the Snakemake copy: change one run's params, share the verdict store.

Both tools run at once in one module fixture (a few minutes each on 2 cores)."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from dvc.repo import Repo
from dvc.stage import PipelineStage
from miniature_repo import VENV_BIN, build_miniature_repo, env_for, run

pytestmark = [pytest.mark.slow, pytest.mark.timeout(1800)]

SNAKEMAKE = [str(VENV_BIN / "snakemake"), "--workflow-profile", "workflow/profiles/local", "--cores", "2"]


def planned_jobs(repo: Path) -> set[str]:
    """The rules a dry run would run (the default target's rule `all` left out)."""
    listing = run([*SNAKEMAKE, "--dry-run"], repo).stdout
    return set(re.findall(r"^rule (\w+):$", listing, flags=re.M)) - {"all"}


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict[str, Path]:
    """{tool: a copy of the project where that tool ran the whole miniature pipeline}."""
    base = build_miniature_repo(tmp_path_factory.mktemp("miniature") / "repo")
    repos = {tool: tmp_path_factory.mktemp(tool) / "repo" for tool in ("dvc", "snakemake")}
    for repo in repos.values():
        shutil.copytree(base, repo)
    commands = {"dvc": ["dvc", "repro"], "snakemake": SNAKEMAKE}
    jobs = {
        tool: subprocess.Popen(
            commands[tool], cwd=repo, env=env_for(repo), text=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
        )
        for tool, repo in repos.items()
    }
    for tool, job in jobs.items():
        output, _ = job.communicate()
        assert job.returncode == 0, f"{tool} failed:\n{output[-6000:]}"
    return repos


def test_snakemake_runs_every_stage_and_ends_with_dvcs_metrics(runs):
    with Repo(str(runs["dvc"])) as repo:
        outs = [out.def_path for stage in repo.index.stages if isinstance(stage, PipelineStage) for out in stage.outs]
    assert len(outs) > 15
    missing = [out for out in outs if not (runs["snakemake"] / out).exists()]
    assert not missing, missing
    dvc_metrics = (runs["dvc"] / "data/eval/metrics.json").read_bytes()
    assert (runs["snakemake"] / "data/eval/metrics.json").read_bytes() == dvc_metrics


def test_one_runs_learning_rate_reruns_that_run_and_downstream_only(runs):
    repo = runs["snakemake"]
    assert planned_jobs(repo) == set()
    (repo / "params.yaml").touch()  # the file's mtime is no trigger: only the values each rule declares
    assert planned_jobs(repo) == set()

    params = yaml.safe_load((repo / "params.yaml").read_text())
    params["train"]["runs"]["binary"]["grpo"]["learning_rate"] *= 2
    (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    assert planned_jobs(repo) == {"train__binary", "predict_trained__binary", "judge__eval", "evaluate", "report"}

    params["train"]["runs"]["binary"]["grpo"]["learning_rate"] /= 2
    (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    assert planned_jobs(repo) == set()


def test_every_step_of_the_readmes_verdict_sharing_keeps_the_workflow_up_to_date(runs, tmp_path):
    """The commands of the README's "Verdicts: cascade, store, sharing", in order; the store is no
    rule's input, so sharing it reruns nothing. This copy has no dvc.lock (Snakemake ran it), so
    the colleague pulls the store by name: a bare `dvc pull` also wants the pipeline's outs."""
    repo = runs["snakemake"]
    run(["dvc", "remote", "add", "-d", "shared", str(tmp_path / "remote")], repo)
    assert planned_jobs(repo) == set()
    run(["speciarl", "verdicts", "compact", "--store", "data/verdicts"], repo)
    assert planned_jobs(repo) == set()
    run(["dvc", "add", "data/verdicts"], repo)
    assert planned_jobs(repo) == set()
    run(["git", "add", "data/verdicts.dvc", ".dvc/config"], repo)
    run(["dvc", "push"], repo)
    assert planned_jobs(repo) == set()
    run(["git", "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "share verdicts"], repo)

    # a colleague's clone (it holds no outputs: every job is planned)
    clone = tmp_path / "clone"
    run(["git", "clone", "-q", str(repo), str(clone)], tmp_path)
    run(["dvc", "pull", "data/verdicts"], clone)
    assert (clone / "data/verdicts").is_dir()
    assert "train__binary" in planned_jobs(clone)

    # pulling a colleague's store over local verdicts that are not shared yet
    (repo / "data/verdicts").rename(repo / "data/verdicts.local")
    assert planned_jobs(repo) == set()
    run(["dvc", "pull", "data/verdicts"], repo)
    run(["speciarl", "verdicts", "merge", "--into", "data/verdicts", "data/verdicts.local"], repo)
    shutil.rmtree(repo / "data/verdicts.local")
    run(["speciarl", "verdicts", "compact", "--store", "data/verdicts"], repo)
    run(["dvc", "add", "data/verdicts"], repo)
    run(["dvc", "push"], repo)
    assert planned_jobs(repo) == set()
