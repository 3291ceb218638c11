"""The paper recipe through `dvc repro`, on CPU: `speciarl params apply configs/paper_recipe.yaml`,
then small local stand-ins (tests/pipeline/recipe_standins.yaml: a tiny policy folder in place of the
hub id, a CUB archive in the official layout, a closed-world judge, a few training steps). The
recipe's pipeline has no bootstrap stage, and the stages that load the policy depend on its folder."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest
import yaml
from data_real.layouts import build_cub
from miniature_repo import build_miniature_repo, git_commit, run

pytestmark = [pytest.mark.slow, pytest.mark.timeout(1800)]

STAGES = {
    "prepare",
    "harvest",
    "judge@harvest",
    "train@speciarl",
    "train@binary",
    "predict_base@general",
    "predict_best_of_n",
    "predict_trained@speciarl",
    "predict_trained@binary",
    "judge@eval",
    "evaluate",
    "report",
}
POLICY_STAGES = {
    "harvest",
    "train@speciarl",
    "train@binary",
    "predict_base@general",
    "predict_best_of_n",
    "predict_trained@speciarl",
    "predict_trained@binary",
}


def test_paper_recipe_runs_through_dvc_with_local_stand_ins(tmp_path, mixed_level_policy):
    repo = build_miniature_repo(tmp_path / "repo")
    shutil.copytree(mixed_level_policy, repo / "models/tiny")
    (repo / "data/raw").mkdir(parents=True)
    shutil.copy(build_cub(tmp_path / "cub", per_class=5), repo / "data/raw/CUB_200_2011.tgz")
    applied = run(["speciarl", "params", "apply", "configs/paper_recipe.yaml"], repo).stdout
    assert 'bootstrap.build: ["base"] -> []' in applied
    run(["speciarl", "params", "apply", "tests/pipeline/recipe_standins.yaml"], repo)
    git_commit(repo, "paper recipe with local stand-ins")

    assert not [line for line in run(["dvc", "stage", "list"], repo).stdout.splitlines() if "bootstrap" in line]
    ran = set(re.findall(r"Running stage '([^']+)'", run(["dvc", "repro"], repo).stdout))
    assert ran == STAGES
    lock = yaml.safe_load((repo / "dvc.lock").read_text())["stages"]
    for stage in POLICY_STAGES:
        deps = {dep["path"] for dep in lock[stage]["deps"]}
        assert "models/tiny" in deps and "data/models/base" not in deps, (stage, deps)
    metrics = json.loads((repo / "data/eval/metrics.json").read_text())
    assert {"base-general", "base-best_of_n", "speciarl-general", "binary-general"} <= set(metrics)
    assert (repo / "report/report.md").is_file()
    assert not Path(repo / "data/models/base").exists()
    assert "changed" not in run(["dvc", "status"], repo).stdout
