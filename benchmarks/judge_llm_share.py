"""Share of harvested (truth, prediction) pairs that reach the LLM judge (target: under 5 %).

Runs the cheap levels of the cascade (exact match, taxonomy) on a harvest table, with a throwaway
verdict store and no LLM: every unique pair they leave undecided is one the LLM would be asked.

    python benchmarks/judge_llm_share.py [--rollouts data/harvest/rollouts.parquet] [--prepared data/prepared]
                                         [--params params.yaml]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from collections import Counter
from pathlib import Path

import pyarrow.parquet as pq

from speciarl.config import load_section
from speciarl.judge.cascade import JudgeService, pair_key
from speciarl.judge.params import LLMParams


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rollouts", type=Path, default=Path("data/harvest/rollouts.parquet"))
    parser.add_argument("--prepared", type=Path, default=Path("data/prepared"))
    parser.add_argument("--params", type=Path, default=Path("params.yaml"), help="for judge.taxonomy")
    parser.add_argument("--examples", type=int, default=15, help="undecided pairs to print")
    args = parser.parse_args()
    if not args.rollouts.exists():
        print(f"{args.rollouts} not found: run the pipeline up to `harvest` first (dvc repro harvest)", file=sys.stderr)
        return 2
    table = pq.read_table(args.rollouts, columns=["dataset", "ground_truth", "prediction"]).to_pylist()
    pairs = [(r["dataset"], r["ground_truth"], r["prediction"]) for r in table if r["prediction"] is not None]
    judge = load_section("judge", args.params)
    with tempfile.TemporaryDirectory() as store_dir:
        judge.store, judge.llm, judge.eval_llm = store_dir, LLMParams(), None  # throwaway store, no LLM
        with JudgeService.from_params(judge, args.prepared) as service:
            verdicts = service.resolve(pairs)
            stats = service.stats
    undecided = [key for key, verdict in verdicts.items() if verdict is None]
    answered_rows = Counter(pair_key(*pair) for pair in pairs)
    rows_to_llm = sum(answered_rows[key] for key in undecided)
    print(f"rollouts: {len(table)} completions, {len(pairs)} with an answer, {stats['unique']} unique pairs")
    print(f"decided by exact match: {stats['exact']}, by the taxonomy: {stats['taxonomy']}")
    print(
        f"reach the LLM: {len(undecided)} unique pairs = {len(undecided) / max(1, stats['unique']):.2%} of unique "
        f"pairs ({rows_to_llm / max(1, len(pairs)):.2%} of answered completions)"
    )
    categories = Counter(v.category.value for v in verdicts.values() if v is not None)
    print("categories of decided pairs:", dict(categories.most_common()))
    for dataset, truth, prediction in sorted(undecided, key=lambda key: -answered_rows[key])[: args.examples]:
        print(f"  {answered_rows[(dataset, truth, prediction)]:>5} x  {dataset}: {truth!r} <- {prediction!r}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
