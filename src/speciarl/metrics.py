"""Verdict metrics (docs/method.md#metrics): correctness, specificity, their harmonic mean, the utility score.

Definitions (the paper gives no formulas; these are ours, stated in the report):
- correctness = (more specific + specific + less specific + generic) / all predictions, where "all"
  includes abstentions and format errors;
- specificity = (more specific + specific) / correct predictions, 0 when nothing is correct;
- hm = 2 * specificity * correctness / (specificity + correctness), 0 when both are 0;
- score = mean utility over all predictions: more specific 1, specific 1, less specific 0.6,
  generic 0.2, abstain 0, wrong -1, format error -1.
"""

from __future__ import annotations

from collections.abc import Iterable

from speciarl.labels import FORMAT_ERROR, Category

UTILITY: dict[str, float] = {
    Category.MORE_SPECIFIC.value: 1.0,
    Category.SPECIFIC.value: 1.0,
    Category.LESS_SPECIFIC.value: 0.6,
    Category.GENERIC.value: 0.2,
    Category.ABSTAIN.value: 0.0,
    Category.WRONG.value: -1.0,
    FORMAT_ERROR: -1.0,
}

OUTCOMES: tuple[str, ...] = tuple(UTILITY)
"""Every possible outcome of one prediction, best first: the six category values, then format_error."""

_CORRECT = tuple(category.value for category in Category if category.is_correct)
_SPECIFIC = (Category.MORE_SPECIFIC.value, Category.SPECIFIC.value)


def outcome(category: Category | str) -> str:
    """The outcome string of a Category, a category value or "format_error"; ValueError otherwise."""
    value = category.value if isinstance(category, Category) else category
    if value not in UTILITY:
        raise ValueError(f"not a verdict category or {FORMAT_ERROR!r}: {category!r}")
    return value


def outcome_rank(category: Category | str) -> int:
    """0 for the best outcome; format_error ranks after wrong. Used to pick the best of N samples."""
    return OUTCOMES.index(outcome(category))


def harmonic_mean(specificity: float, correctness: float) -> float:
    total = specificity + correctness
    return 2 * specificity * correctness / total if total else 0.0


def summarize(categories: Iterable[Category | str]) -> dict:
    """Metrics of a set of predictions, one outcome per prediction.

    Returns {"correctness", "specificity", "hm", "score", "counts"} where counts maps every
    outcome (the six category values and "format_error") to how often it occurs.
    Raises ValueError on an unknown outcome or on an empty input (metrics of nothing are undefined).
    """
    counts = dict.fromkeys(OUTCOMES, 0)
    for category in categories:
        counts[outcome(category)] += 1
    total = sum(counts.values())
    if total == 0:
        raise ValueError("summarize: no predictions")
    correct = sum(counts[value] for value in _CORRECT)
    specific = sum(counts[value] for value in _SPECIFIC)
    correctness = correct / total
    specificity = specific / correct if correct else 0.0
    return {
        "correctness": correctness,
        "specificity": specificity,
        "hm": harmonic_mean(specificity, correctness),
        "score": sum(UTILITY[value] * count for value, count in counts.items()) / total,
        "counts": counts,
    }
