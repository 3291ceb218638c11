"""Verdict categories, label normalisation and answer extraction (docs/method.md#verdict-categories,
docs/method.md#answer-format-and-extraction)."""

from __future__ import annotations

import enum
import re
import unicodedata


class Category(str, enum.Enum):
    """The six verdict categories, declared best to worst."""

    MORE_SPECIFIC = "more specific"
    SPECIFIC = "specific"
    LESS_SPECIFIC = "less specific"
    GENERIC = "generic"
    ABSTAIN = "abstain"
    WRONG = "wrong"

    @property
    def rank(self) -> int:
        """0 for the best category; lower is better."""
        return _RANK[self]

    @property
    def is_correct(self) -> bool:
        return self in _CORRECT


_RANK = {category: index for index, category in enumerate(Category)}
_CORRECT = frozenset({Category.MORE_SPECIFIC, Category.SPECIFIC, Category.LESS_SPECIFIC, Category.GENERIC})

FORMAT_ERROR = "format_error"
"""Stands in place of a category for a completion whose answer cannot be parsed."""

# Dash punctuation is kept ("F/A-18" -> "f a-18"); every other non letter/digit/space becomes a space.
_DASH_CATEGORY = "Pd"


def normalize(text: str) -> str:
    """Keep letters, digits, whitespace and dashes; everything else becomes a space; lowercase; collapse.

    Composed (NFC) first, so that a decomposed accent is not split off its letter, and lowercased
    before filtering, so that normalize is idempotent (some lowercase forms add combining marks).
    """
    kept = [
        ch if ch.isspace() or unicodedata.category(ch)[0] in "LN" or unicodedata.category(ch) == _DASH_CATEGORY else " "
        for ch in unicodedata.normalize("NFC", text).lower()
    ]
    return " ".join("".join(kept).split())


_ANSWER = re.compile(r"<answer>(.*?)</answer>", re.DOTALL)


def extract_answer(completion: str) -> str | None:
    """The stripped text inside the first <answer>...</answer> pair; None when there is none or it is empty.

    As the authors' training and evaluation code: whatever follows the first pair (a repeated tag,
    more text) is ignored, and the shortest match is taken, so "<answer>a <answer>b</answer>" gives
    "a <answer>b" (judged as it stands). See docs/method.md#answer-format-and-extraction.
    """
    match = _ANSWER.search(completion)
    if match is None:
        return None
    answer = match.group(1).strip()
    return answer or None
