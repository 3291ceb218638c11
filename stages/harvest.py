"""Stage `harvest`: best-of-N rollouts of the base policy on the training split.

The completions are the candidate labels that the `judge` stage pre-judges before training.
Reads params `policy`, `harvest`, `data.prepared_dir` and `data.max_corrupt_fraction` (images that
cannot be decoded are skipped and counted up to that share); writes `harvest.out`. Resumable.
Errors and exit codes: speciarl.stage.
"""

from __future__ import annotations

import argparse
import sys

from speciarl.config import load_params
from speciarl.stage import run_stage


def main(argv: list[str] | None = None) -> int:
    return run_stage("harvest", __doc__, run, argv)


def run(args: argparse.Namespace) -> None:
    # imported here, where its cost is paid only once the arguments are fine
    from speciarl.policy.rollouts import harvest

    params = load_params("policy", "harvest", "data", path=args.params)
    data = params["data"]
    table = harvest(
        params["policy"], params["harvest"], data.prepared_dir, max_corrupt_fraction=data.max_corrupt_fraction
    )
    answered = table.num_rows - sum(table.column("format_error").to_pylist())
    print(f"harvest: {table.num_rows} completions ({answered} with an answer) -> {params['harvest'].out}")


if __name__ == "__main__":
    sys.exit(main())
