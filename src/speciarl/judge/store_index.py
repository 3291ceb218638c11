"""Batched key lookups in numpy: keys as sorted 128-bit integers, found with one searchsorted.

A probe of a Python dict per key costs a few cache misses, each paid one after the other by the
interpreter; a vectorised binary search overlaps them, which makes batched lookups in a large
store about 1.5x faster. The index is a snapshot: the store looks up what it lacks in its dict.
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import compress

import numpy as np

from speciarl.judge.store_verdict import Verdict


def key_words(keys: Sequence[str]) -> np.ndarray | None:
    """The keys as (n, 2) uint64 (high, low); None unless every key is 32 lowercase hex digits."""
    try:
        joined = "".join(keys)
    except TypeError:
        return None
    # bytes.fromhex also takes upper case and skips whitespace: both would pass for another key
    if len(joined) != 32 * len(keys) or joined != joined.lower():
        return None
    try:
        raw = bytes.fromhex(joined)
    except ValueError:
        return None
    if len(raw) != 16 * len(keys):
        return None
    return np.frombuffer(raw, dtype=">u8").astype(np.uint64).reshape(-1, 2)


class SortedKeys:
    """A snapshot of the store's verdicts, sorted by the high 64 bits of their keys."""

    def __init__(self, verdicts: dict[str, Verdict]):
        words = key_words(list(verdicts))
        assert words is not None, "the store holds only well-formed keys"
        # sorted by the high 64 bits only: a key whose high bits it shares with another may be
        # missed here, and is then found in the store's dict
        order = np.argsort(words[:, 0])
        self.high, self.low = words[order, 0], words[order, 1]
        values = np.empty(len(verdicts), dtype=object)
        values[:] = list(verdicts.values())
        self.verdicts = values[order]
        self.size = len(verdicts)

    def find(self, keys: Sequence[str]) -> tuple[dict[str, Verdict], list[str]] | None:
        """(the verdicts found, the keys not found), or None if a key is malformed."""
        words = key_words(keys)
        if words is None:
            return None
        if self.size == 0:
            return {}, list(keys)
        position = np.searchsorted(self.high, words[:, 0])
        np.minimum(position, self.size - 1, out=position)
        hit = (self.high[position] == words[:, 0]) & (self.low[position] == words[:, 1])
        found = dict(zip(compress(keys, hit.tolist()), self.verdicts[position[hit]].tolist(), strict=True))
        missed = list(compress(keys, (~hit).tolist())) if len(found) < len(keys) else []
        return found, missed
