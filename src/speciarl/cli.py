"""The `speciarl` command. Each area registers its own subcommands."""

from __future__ import annotations

import argparse
import importlib
import sys

from speciarl.config import ParamsError

# module exposing register(subparsers): adds subcommands whose handler is stored as `func`
COMMAND_MODULES = (
    "speciarl.judge.cli_judge",
    "speciarl.judge.cli_verdicts",
    "speciarl.recipe",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="speciarl", description=__doc__)
    subparsers = parser.add_subparsers(dest="command", required=True)
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except (ParamsError, ValueError, FileNotFoundError, KeyError) as exc:
        print(f"speciarl {args.command}: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
