"""Stage `harvest`: best-of-N rollouts of the base policy on the training split.

The completions are the candidate labels that the `judge` stage pre-judges before training.
Reads params `policy`, `harvest`, `data.prepared_dir` and `data.max_corrupt_fraction` (images that
cannot be decoded are skipped and counted up to that share); writes `harvest.out`. Resumable.
"""

from __future__ import annotations

import argparse
import sys

from speciarl.config import ParamsError, load_params


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--params", default="params.yaml", help="params file (default: params.yaml)")
    args = parser.parse_args(argv)
    try:
        from speciarl.policy.rollouts import harvest

        params = load_params("policy", "harvest", "data", path=args.params)
        data = params["data"]
        table = harvest(params["policy"], params["harvest"], data.prepared_dir, max_corrupt_fraction=data.max_corrupt_fraction)
    except (ParamsError, ValueError, FileNotFoundError, ImportError) as exc:
        print(f"harvest: error: {exc}", file=sys.stderr)
        return 2
    answered = table.num_rows - sum(table.column("format_error").to_pylist())
    print(f"harvest: {table.num_rows} completions ({answered} with an answer) -> {params['harvest'].out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
