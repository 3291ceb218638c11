"""The one runner of the pipeline's stage scripts (stages/*.py): arguments, params, error lines, exit codes.

A stage script names itself, adds its own arguments and hands its work to `run_stage`. Every stage
takes `--params` (default params.yaml). A failure is one line on stderr, `<stage>: error: <message>`,
and the exit code says which kind of failure it was:

    0  done.
    2  bad input: a command-line argument, the params (ParamsError), the data or files the stage
       reads (ValueError, FileNotFoundError), a package the params ask for that is not installed
       (ImportError), an engine that cannot start with the configured settings. Fix the input, rerun.
    1  the run failed on the way, its inputs being fine (RunFailure, other OSError): a judge that
       is unreachable or refuses, a verdict store that cannot be written, pairs left without a
       verdict, a judge outage during training, a full disk. Rerun once the cause is gone; the
       stages resume where they stopped.

Anything else (a RuntimeError of torch, say) ends in Python's traceback (exit 1), which a
developer needs to see.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from typing import NoReturn

from speciarl.config import DEFAULT_PARAMS

EXIT_RUN_FAILED = 1
EXIT_BAD_INPUT = 2
BAD_INPUT = (ValueError, FileNotFoundError, ImportError)  # ParamsError is a ValueError


class RunFailure(RuntimeError):
    """A failure at run time, the inputs being fine (exit 1); str() is the one-line message. The
    library's errors of that kind derive from it (verdict store, LLM judge, judge server, outage)."""


RUN_FAILED = (RunFailure, OSError)


class _StageParser(argparse.ArgumentParser):
    """argparse with the stages' one-line error (usage included) and exit code 2."""

    def error(self, message: str) -> NoReturn:
        usage = " ".join(self.format_usage().split()[1:])  # argparse wraps long usages over lines
        self.exit(EXIT_BAD_INPUT, f"{self.prog}: error: {message} (usage: {usage})\n")


def run_stage(
    name: str,
    doc: str,
    work: Callable[[argparse.Namespace], None],
    argv: list[str] | None = None,
    arguments: Callable[[argparse.ArgumentParser], None] | None = None,
) -> int:
    """Parse `argv` (the stage's own `arguments` plus --params), run `work(args)`; the exit code."""
    parser = _StageParser(prog=name, description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    if arguments is not None:
        arguments(parser)
    parser.add_argument("--params", default=str(DEFAULT_PARAMS), help="params file (default: params.yaml)")
    try:
        args = parser.parse_args(argv)
    except SystemExit as done:  # --help (0) or a usage error (2), already printed
        return int(done.code or 0)
    try:
        work(args)
    except BAD_INPUT as exc:
        return _fail(name, exc, EXIT_BAD_INPUT)
    except RUN_FAILED as exc:
        return _fail(name, exc, EXIT_RUN_FAILED)
    return 0


def _fail(name: str, exc: BaseException, code: int) -> int:
    print(f"{name}: error: {exc}", file=sys.stderr)
    return code
