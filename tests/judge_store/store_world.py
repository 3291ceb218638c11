"""Helpers of the verdict store tests: deterministic verdicts and writer subprocesses."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from speciarl.judge.store import Verdict, verdict_key
from speciarl.labels import Category

WRITER = Path(__file__).with_name("store_writer.py")
CATEGORIES = list(Category)
JUDGE = "llm:test-judge"


def make_verdict(
    index: int, category: Category | None = None, created: float | None = None, judge: str = JUDGE
) -> Verdict:
    """Verdict number `index`; its category is a function of `index` unless given."""
    truth, prediction = f"species {index % 97}", f"guess {index}"
    return Verdict(
        verdict_key(truth, prediction, judge),
        truth,
        prediction,
        category if category is not None else CATEGORIES[index % len(CATEGORIES)],
        judge,
        float(1_700_000_000 + index) if created is None else created,
    )


def start_writer(store: Path, first: int, count: int, batch: int, delay: float = 0.0) -> subprocess.Popen:
    """A process that puts verdicts first..first+count-1 in batches and prints 'stored N' after each."""
    command = [sys.executable, str(WRITER), str(store), str(first), str(count), str(batch), str(delay)]
    return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def stored_indices(output: str) -> set[int]:
    """The verdict indices a writer reported as stored (complete lines only)."""
    indices: set[int] = set()
    for line in output.splitlines(keepends=True):
        if line.startswith("stored ") and line.endswith("\n"):
            first, last = map(int, line.split()[1:3])
            indices.update(range(first, last + 1))
    return indices
