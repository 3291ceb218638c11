"""Benchmark of the `bootstrap` stage: wall time, peak RSS and the warm-start targets.

    python benchmarks/bootstrap.py [--prepared data/prepared] [--set '{epochs: 2, threads: 2}']

Renders nothing: point --prepared at a rendered mini world (stage `prepare`). The policy goes to a
temporary folder; the params are those of params.yaml's `bootstrap` section with --set applied.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import torch
import yaml

from speciarl.config import load_section
from speciarl.policy.params import BootstrapParams
from speciarl.policy.sft import warm_start


def merged(base: dict, update: dict) -> dict:
    out = dict(base)
    for key, value in update.items():
        out[key] = merged(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prepared", default=None, help="prepared mini world (default: params data.prepared_dir)")
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--set", default="{}", help="YAML mapping of bootstrap params to override")
    parser.add_argument("--json", default=None, help="also write the metrics to this file")
    parser.add_argument("--keep", default=None, help="keep the policy in this folder (default: a temporary one)")
    args = parser.parse_args()

    prepared = args.prepared or load_section("data", args.params).prepared_dir
    base = load_section("bootstrap", args.params).model_dump()
    with tempfile.TemporaryDirectory() as tmp:
        params = BootstrapParams.model_validate(
            merged(base, yaml.safe_load(args.set) or {})
            | {"out_dir": args.keep or f"{tmp}/base", "metrics": f"{tmp}/metrics.json"}
        )
        started = time.perf_counter()
        metrics = warm_start(params, prepared, progress=False)
        wall = time.perf_counter() - started
    print(
        f"threads {torch.get_num_threads()}  wall {wall:.1f} s  training {metrics['train']['seconds']} s  "
        f"peak RSS {metrics['peak_rss_mb']} MB  parameters {metrics['parameters']:,}"
    )
    vision = metrics["vision_pretraining"]
    print(
        f"vision pretraining: {vision['steps']} steps in {vision['seconds']} s, "
        f"loss per epoch {vision['loss_per_epoch']}"
    )
    print(
        f"train: {metrics['train']['steps']} steps, loss {metrics['train']['loss_first']:.3f} at the first step, "
        f"per epoch {metrics['train']['loss_per_epoch']}"
    )
    for dataset, measured in metrics["domains"].items():
        print(
            f"{dataset}: greedy correctness {measured['greedy_correctness']:.3f}  specificity "
            f"{measured['greedy_specificity']:.3f}  fine: greedy {measured['greedy_fine_images']} / "
            f"best-of-{measured['best_of_n']} {measured['best_of_n_fine_images']} of {measured['images']} images"
        )
        print(f"  greedy {measured['greedy_categories']}\n  sampled {measured['sampled_categories']}")
    print("targets met:", json.dumps(metrics["targets_met"]))
    if args.json:
        Path(args.json).write_text(
            json.dumps({"set": args.set, "wall_seconds": wall, "threads": torch.get_num_threads(), **metrics}, indent=1)
        )


if __name__ == "__main__":
    main()
