"""Stage `prepare`: every dataset of params `data.datasets` into `data.prepared_dir`.

The mini world is rendered; the real datasets are read from their official archives or folders
(or a Hugging Face dataset for Stanford Cars). Reads params `data`; writes data/prepared.
A split already prepared with the same settings is kept (use --force to redo it).
Errors and exit codes: speciarl.stage.
"""

from __future__ import annotations

import argparse
import sys

from speciarl.config import load_section
from speciarl.stage import run_stage


def main(argv: list[str] | None = None) -> int:
    return run_stage("prepare", __doc__, run, argv, arguments=_arguments)


def _arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--force", action="store_true", help="redo splits that are already prepared")


def run(args: argparse.Namespace) -> None:
    # imported here, where its cost is paid only once the arguments are fine
    from speciarl.data.prepare import prepare_datasets

    params = load_section("data", args.params)
    results = prepare_datasets(params, force=args.force)
    for dataset, manifests in results.items():
        for split, manifest in manifests.items():
            classes = len(manifest.get("classes", ()))
            skipped = f", {manifest['num_corrupt']} corrupt skipped" if manifest.get("num_corrupt") else ""
            print(f"prepare: {dataset}/{split}: {manifest['num_samples']} samples, {classes} classes{skipped}")
    print(f"prepare: done -> {params.prepared_dir}")


if __name__ == "__main__":
    sys.exit(main())
