"""workflow/Snakefile and dvc.yaml describe the same pipeline.

Each side is read with its own tool: DVC's resolved stages and graph (dvc.repo.Repo), and what
Snakemake plans (`snakemake -n -F -p` job listing and `--d3dag`) with the local profile.
"""

import json
import re
import subprocess
from pathlib import Path, PurePosixPath

import pytest
from dvc.dependency.param import ParamsDependency
from dvc.repo import Repo
from dvc.stage import PipelineStage
from miniature_repo import build_miniature_repo, run

REPO = Path(__file__).resolve().parents[2]
SNAKEMAKE = str(REPO / ".venv" / "bin" / "snakemake")
PROFILE = ["--workflow-profile", "workflow/profiles/local"]


def snakemake(*args: str) -> subprocess.CompletedProcess:
    done = subprocess.run([SNAKEMAKE, *args], cwd=REPO, capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stdout + done.stderr
    return done


def rel(path: str) -> str:
    return Path(path).resolve().relative_to(REPO).as_posix()


@pytest.fixture(scope="module")
def dvc_side() -> dict:
    """{stage address: {cmd, deps, outs, upstream}} as DVC resolves dvc.yaml (params left out)."""
    stages = {}
    with Repo(str(REPO)) as repo:
        graph = repo.index.graph
        for stage in repo.index.stages:
            stages[stage.addressing] = {
                "cmd": stage.cmd,
                "deps": {rel(dep.fs_path) for dep in stage.deps if not isinstance(dep, ParamsDependency)},
                "outs": {rel(out.fs_path) for out in stage.outs},
                "upstream": {upstream.addressing for upstream in graph.successors(stage)},
            }
    return stages


@pytest.fixture(scope="module")
def snakemake_side() -> dict:
    """{rule: {input, output, shell, upstream}} from a forced dry run with the local profile."""
    listing = snakemake(*PROFILE, "--dry-run", "--forceall", "--printshellcmds").stdout
    rules = {}
    for block in re.split(r"\n(?=rule \w+:)", listing):
        header = re.match(r"rule (\w+):", block)
        if header is None:
            continue
        fields = dict(re.findall(r"^    (input|output|log): (.*)$", block, flags=re.M))
        shell = re.search(r"^Shell command: (.*)$", block, flags=re.M)

        def paths(field, fields=fields):
            # flags are shown after the path, e.g. "data/predictions/base-general (update)"
            return {re.sub(r" \(.*\)$", "", item) for item in fields.get(field, "").split(", ") if item}

        rules[header.group(1)] = {"input": paths("input"), "output": paths("output"), "shell": shell and shell.group(1)}
    dag_text = snakemake(*PROFILE, "--dry-run", "--forceall", "--d3dag").stdout
    dag = json.loads(dag_text[dag_text.index("{") :])
    name = {node["id"]: node["value"]["rule"] for node in dag["nodes"]}
    for rule in rules.values():
        rule["upstream"] = set()
    for link in dag["edges"]:  # u is upstream of v
        rules[name[link["v"]]]["upstream"].add(name[link["u"]])
    return rules


def rule_of(address: str) -> str:
    return address.replace("@", "__")


def test_same_stages(dvc_side, snakemake_side):
    assert set(snakemake_side) - {"all"} == {rule_of(address) for address in dvc_side}
    assert len(dvc_side) > 10  # the whole pipeline, foreach stages resolved


def test_same_commands_outputs_and_inputs(dvc_side, snakemake_side):
    produced = {out for stage in dvc_side.values() for out in stage["outs"]}
    for address, stage in dvc_side.items():
        rule = snakemake_side[rule_of(address)]
        assert rule["shell"] == f"({stage['cmd']}) > logs/{rule_of(address)}.log 2>&1", address
        assert rule["output"] == stage["outs"], address
        # every DVC dep is an input, or is stood for by the outs of other stages that a folder
        # holds (data/predictions), or by the files of a source folder (src/speciarl/policy);
        # params are no input (not params.yaml): each rule tracks its declared values
        expected = set()
        for dep in stage["deps"]:
            inside = {out for out in produced if PurePosixPath(out).is_relative_to(dep) and out != dep}
            if not inside and dep not in produced and (REPO / dep).is_dir():
                inside = {
                    rel(str(path))
                    for path in (REPO / dep).rglob("*")
                    if path.is_file() and "__pycache__" not in path.parts  # .dvcignore: no bytecode
                }
            expected |= inside or {dep}
        assert rule["input"] == expected, address


def test_same_dag(dvc_side, snakemake_side):
    for address, stage in dvc_side.items():
        assert snakemake_side[rule_of(address)]["upstream"] == {rule_of(up) for up in stage["upstream"]}, address
    # the default target runs every stage
    assert snakemake_side["all"]["upstream"] == {rule_of(address) for address in dvc_side}


def test_data_tracked_by_a_dvc_file_is_no_rule(tmp_path):
    """The README's sharing recipe tracks the verdict store with `dvc add data/verdicts`: a stage
    without a command that the workflow must leave out."""
    repo = build_miniature_repo(tmp_path / "repo")
    (repo / "data/verdicts").mkdir(parents=True)
    (repo / "data/verdicts/segment").write_bytes(b"verdicts")
    run(["dvc", "add", "data/verdicts"], repo)
    with Repo(str(repo)) as dvc_repo:
        stages = dvc_repo.index.stages
    assert [Path(stage.path).name for stage in stages if not isinstance(stage, PipelineStage)] == ["verdicts.dvc"]
    listing = run([SNAKEMAKE, *PROFILE, "--dry-run", "--forceall"], repo).stdout
    assert set(re.findall(r"^rule (\w+):$", listing, flags=re.M)) == {
        rule_of(stage.name) for stage in stages if isinstance(stage, PipelineStage)
    } | {"all"}


def test_lint_is_clean():
    out = snakemake("--snakefile", "workflow/Snakefile", "--lint").stderr
    assert "Congratulations, your workflow is in a good condition!" in out, out


def test_slurm_profile_plans_gpu_jobs_on_the_gpu_partition():
    listing = snakemake("--workflow-profile", "workflow/profiles/slurm", "--dry-run", "--forceall").stdout
    blocks = {m.group(1): m.group(2) for m in re.finditer(r"rule (\w+):\n(.*?)(?=\n\n)", listing, flags=re.S)}
    assert re.search(r"gpu=1, slurm_partition=gpu", blocks["train__speciarl"])
    assert "runtime=720" in blocks["train__speciarl"]
    assert "gpu=" not in blocks["evaluate"] and "mem_mb=32000" in blocks["evaluate"]
