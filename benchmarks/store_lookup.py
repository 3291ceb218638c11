"""Verdict store benchmark: put throughput, size on disk, open time, batched lookups/s, peak RSS.

    python benchmarks/store_lookup.py [--verdicts 1000000] [--store DIR]

Builds a store of synthetic verdicts (500 truths, 200k distinct predictions, three judges) with
put_many in batches, compacts it, and measures a reader in a fresh process (open time, lookups
with random keys in batches of several sizes, all hits and half misses, peak RSS) before and
after compaction. Target: at least 1M batched lookups/s on a 1M-verdict store. Opening verifies
every row read (its key against its content; page checksums of a compacted file): the open time
includes that, lookups do not repeat it.
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import string
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil

from speciarl.judge.store import Verdict, VerdictStore, verdict_key
from speciarl.labels import Category

BATCH_SIZES = (1_000, 10_000, 100_000, 1_000_000)
PUT_BATCH = 10_000
JUDGES = ("exact", "taxonomy:4be1d2", "llm:9f8e7d6c5b4a3928")


def synthetic_verdicts(count: int, seed: int = 0) -> list[Verdict]:
    rng = random.Random(seed)

    def word() -> str:
        return "".join(rng.choices(string.ascii_lowercase, k=rng.randint(3, 9)))

    truths = [f"{word()} {word()}" for _ in range(500)]
    predictions = [" ".join(word() for _ in range(rng.randint(1, 3))) for _ in range(200_000)]
    categories = list(Category)
    now = time.time()
    verdicts = []
    for index in range(count):
        truth, judge = rng.choice(truths), JUDGES[index % len(JUDGES)]
        # the index makes every pair unique, as the store would see it
        prediction = f"{rng.choice(predictions)} {index}"
        verdicts.append(
            Verdict(verdict_key(truth, prediction, judge), truth, prediction, rng.choice(categories), judge, now)
        )
    return verdicts


def measure_reader(root: Path, keys_file: Path) -> dict:
    """Run in a fresh process: open the store, look keys up in batches, report times and RSS."""
    keys = json.loads(keys_file.read_text())
    rss_before = psutil.Process().memory_info().rss / 2**20
    start, start_cpu = time.perf_counter(), time.process_time()
    store = VerdictStore(root, create=False)
    result = {
        "open s": time.perf_counter() - start,
        "open CPU-s": time.process_time() - start_cpu,
        "verdicts": len(store),
    }
    result["RSS of the open store MiB"] = psutil.Process().memory_info().rss / 2**20 - rss_before
    start = time.perf_counter()
    store.get_many(keys[:1000])  # the first batched lookup builds the sorted key index
    result["index build s"] = time.perf_counter() - start
    rng = random.Random(1)
    hits = rng.sample(keys, len(keys))
    misses = [verdict_key("absent", str(index), "none") for index in range(len(keys) // 2)]
    mixed = hits[: len(keys) - len(misses)] + misses
    rng.shuffle(mixed)
    for label, queries in (("hits", hits), ("half_misses", mixed)):
        for size in BATCH_SIZES:
            batches = [queries[start : start + size] for start in range(0, len(queries), size)]
            wall = cpu = float("inf")
            for _ in range(3):
                start, start_cpu = time.perf_counter(), time.process_time()
                found = sum(len(store.get_many(batch)) for batch in batches)
                wall, cpu = min(wall, time.perf_counter() - start), min(cpu, time.process_time() - start_cpu)
            assert found == (len(hits) if label == "hits" else len(queries) - len(misses))
            result[f"lookups/s {label}, batch {size}"] = len(queries) / wall
            # CPU time: less inflated than wall time when other jobs share the cores
            result[f"lookups/CPU-s {label}, batch {size}"] = len(queries) / cpu
    result["peak RSS MiB"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return result


def reader_in_fresh_process(root: Path, keys_file: Path) -> dict:
    command = [sys.executable, __file__, "--read", str(root), "--keys", str(keys_file)]
    output = subprocess.run(command, check=True, capture_output=True, text=True).stdout
    return json.loads(output.splitlines()[-1])


def disk_bytes(root: Path) -> int:
    return sum(path.stat().st_size for path in root.iterdir() if path.is_file())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--verdicts", type=int, default=1_000_000)
    parser.add_argument("--store", type=Path, help="where to build the store (default: a temporary directory)")
    parser.add_argument("--read", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--keys", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.read:
        print(json.dumps(measure_reader(args.read, args.keys)))
        return

    with tempfile.TemporaryDirectory() as scratch:
        root = args.store or Path(scratch) / "store"
        start = time.perf_counter()
        verdicts = synthetic_verdicts(args.verdicts)
        print(f"generated {len(verdicts)} verdicts (incl. verdict_key) in {time.perf_counter() - start:.1f} s")
        keys_file = Path(scratch) / "keys.json"
        keys_file.write_text(json.dumps([verdict.key for verdict in verdicts]))

        store = VerdictStore(root)
        start = time.perf_counter()
        for first in range(0, len(verdicts), PUT_BATCH):
            store.put_many(verdicts[first : first + PUT_BATCH])
        put_s = time.perf_counter() - start
        store.close()
        del store, verdicts
        per_million = 1e6 / args.verdicts
        segments_bytes = disk_bytes(root)
        print(f"put_many, batches of {PUT_BATCH} (fsync each): {args.verdicts / put_s:,.0f} verdicts/s")
        print(f"size on disk per 1M verdicts, segments: {segments_bytes * per_million / 2**20:.1f} MiB")

        before = reader_in_fresh_process(root, keys_file)
        start = time.perf_counter()
        VerdictStore(root).compact()
        compact_s = time.perf_counter() - start
        compacted_bytes = disk_bytes(root)
        print(f"compaction (open + fold + write): {compact_s:.1f} s")
        print(f"size on disk per 1M verdicts, compacted: {compacted_bytes * per_million / 2**20:.1f} MiB")
        after = reader_in_fresh_process(root, keys_file)

        print(f"\nreader in a fresh process, store of {after['verdicts']:,} verdicts   segments   compacted")
        for name in before:
            if name != "verdicts":
                print(f"  {name:<40} {before[name]:>14,.2f} {after[name]:>14,.2f}")


if __name__ == "__main__":
    main()
