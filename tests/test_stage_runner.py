"""speciarl.stage: one error line `<stage>: error: ...` and one exit code per kind of failure."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from speciarl.config import ParamsError
from speciarl.stage import EXIT_BAD_INPUT, EXIT_RUN_FAILED, RunFailure, run_stage

REPO = Path(__file__).resolve().parents[1]
STAGES = sorted(path.stem for path in (REPO / "stages").glob("*.py"))


def failing(exc: BaseException):
    def work(args):
        raise exc

    return work


@pytest.mark.parametrize(
    ("exc", "code"),
    [
        (ParamsError("params.yaml: data.workers: unknown key"), EXIT_BAD_INPUT),
        (ValueError("data/prepared/cub/test: manifest is missing"), EXIT_BAD_INPUT),
        (FileNotFoundError("no predictions at data/predictions"), EXIT_BAD_INPUT),
        (ImportError("vLLM is not installed"), EXIT_BAD_INPUT),
        (RunFailure("2 of 13 unique pairs have no verdict"), EXIT_RUN_FAILED),
        (PermissionError(13, "Permission denied"), EXIT_RUN_FAILED),
    ],
)
def test_each_kind_of_failure_has_its_exit_code_and_one_line(exc, code, capsys):
    assert run_stage("demo", "doc", failing(exc), []) == code
    assert capsys.readouterr().err == f"demo: error: {exc}\n"


def test_other_errors_keep_their_traceback():
    with pytest.raises(RuntimeError, match="a bug"):
        run_stage("demo", "doc", failing(RuntimeError("a bug")), [])


def test_arguments_and_params_reach_the_work(capsys):
    seen = []

    def arguments(parser):
        parser.add_argument("--run", required=True)
        for number in range(6):  # a usage too long for one terminal line: argparse wraps it
            parser.add_argument(f"--option-with-a-long-name-{number}", metavar="SOME_LONG_VALUE")

    assert run_stage("demo", "doc", seen.append, ["--run", "a"], arguments) == 0
    assert (seen[0].run, seen[0].params) == ("a", "params.yaml")
    assert run_stage("demo", "doc", seen.append, ["--run", "a", "--params", "other.yaml"], arguments) == 0
    assert seen[1].params == "other.yaml"

    assert run_stage("demo", "doc", seen.append, [], arguments) == EXIT_BAD_INPUT
    err = capsys.readouterr().err
    assert (
        err.startswith("demo: error: the following arguments are required: --run (usage: demo ")
        and err.count("\n") == 1
    )


@pytest.mark.parametrize("stage", STAGES)
def test_every_stage_takes_params_and_names_a_missing_file_in_one_line(stage, tmp_path):
    """Every stage script goes through the runner: --params, the `<stage>: error:` line, exit 2."""
    extra = {
        "judge": ["--llm", "eval", "--predictions", "p", "--out", "o", "--stats", "s"],
        "predict": ["--policy", "base", "--prompt", "general"],
        "train": ["--run", "speciarl"],
    }.get(stage, [])
    missing = tmp_path / "missing.yaml"
    done = subprocess.run(
        [sys.executable, str(REPO / "stages" / f"{stage}.py"), *extra, "--params", str(missing)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == EXIT_BAD_INPUT, done.stderr
    assert done.stderr.startswith(f"{stage}: error: ") and done.stderr.count("\n") == 1 and str(missing) in done.stderr
