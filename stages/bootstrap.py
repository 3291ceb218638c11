"""Stage `bootstrap`: build the mini world's tiny base policy and warm-start it on both domains.

Reads params `bootstrap` and `data.prepared_dir`; writes the policy folder `bootstrap.out_dir`
(safetensors) and the measured targets to `bootstrap.metrics`. Errors and exit codes: speciarl.stage.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from speciarl.atomic import atomic_write_text
from speciarl.config import load_params
from speciarl.policy.sft import warm_start
from speciarl.stage import run_stage


def main(argv: list[str] | None = None) -> int:
    return run_stage("bootstrap", __doc__, run, argv)


def run(args: argparse.Namespace) -> None:
    params = load_params("bootstrap", "data", path=args.params)
    bootstrap, data = params["bootstrap"], params["data"]
    metrics = warm_start(bootstrap, data.prepared_dir)
    path = Path(bootstrap.metrics)
    atomic_write_text(path, json.dumps({"params": bootstrap.model_dump(), **metrics}, indent=1) + "\n")
    missed = [name for name, met in metrics["targets_met"].items() if not met]
    print(
        f"bootstrap: policy in {bootstrap.out_dir}, metrics in {path}"
        + (f"; targets missed: {', '.join(missed)}" if missed else "")
    )


if __name__ == "__main__":
    sys.exit(main())
