"""The stored value (Verdict) and its key (verdict_key). Import them from speciarl.judge.store."""

from __future__ import annotations

import hashlib
import math
import re
from dataclasses import dataclass

from speciarl.labels import Category

KEY_PATTERN = re.compile(r"[0-9a-f]{32}")
# blake2b personalisation: names the key scheme, so a future scheme cannot collide with this one
_KEY_SCHEME = b"speciarl-vkey-1"


def verdict_key(ground_truth: str, prediction: str, judge_id: str) -> str:
    """32 hex digits identifying (truth, prediction, judge). Callers pass normalised text."""
    digest = hashlib.blake2b(digest_size=16, person=_KEY_SCHEME)
    for part in (ground_truth, prediction, judge_id):
        if not isinstance(part, str):
            raise TypeError(f"verdict_key takes strings, got {type(part).__name__}: {part!r}")
        data = part.encode("utf-8")
        # length prefixes make the encoding unambiguous: ("a b", "c") and ("a", "b c") differ
        digest.update(len(data).to_bytes(8, "little"))
        digest.update(data)
    return digest.hexdigest()


@dataclass(frozen=True, slots=True)
class Verdict:
    key: str
    ground_truth: str  # normalised
    prediction: str  # normalised
    category: Category
    judge: str  # which judge decided: "exact", "taxonomy:...", or the LLM judge id
    created: float  # unix time


def check_verdict(verdict: object, where: str) -> None:
    """Raise unless `verdict` can be stored: a Verdict with a real category and well-formed fields."""
    if not isinstance(verdict, Verdict):
        raise TypeError(f"{where}: expected a Verdict, got {type(verdict).__name__}")
    if not isinstance(verdict.category, Category):
        raise ValueError(f"{where}: category {verdict.category!r} is not a Category (errors are never stored)")
    if not isinstance(verdict.key, str) or not KEY_PATTERN.fullmatch(verdict.key):
        raise ValueError(f"{where}: key {verdict.key!r} is not 32 lowercase hex digits (use verdict_key)")
    for name in ("ground_truth", "prediction", "judge"):
        if not isinstance(getattr(verdict, name), str):
            raise ValueError(f"{where}: {name} must be a string, got {getattr(verdict, name)!r}")
    if not verdict.judge:
        raise ValueError(f"{where}: judge is empty")
    created = verdict.created
    if isinstance(created, bool) or not isinstance(created, (int, float)) or not math.isfinite(created):
        raise ValueError(f"{where}: created must be a finite unix time, got {created!r}")
