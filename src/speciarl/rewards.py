"""The SpeciaRL reward, the static baselines and judge noise (REFERENCE.md section 5).

Every function takes one entry per rollout. An entry is a verdict category (a `Category` or its
string value), `FORMAT_ERROR` (the answer could not be parsed) or None (no verdict is available,
e.g. the judge was down). Rewards are floats, or None where no reward may be given: TRL's
GRPOTrainer excludes None rewards from the group baseline and gives them no advantage, which is
what an unjudged rollout needs (a 0 would look like "wrong" to the optimiser).

    >>> speciarl_reward(["generic", "wrong", "format_error"], ["img1", "img1", "img1"])
    [1.0, 0.0, -1.0]
"""

from __future__ import annotations

from typing import Callable, Hashable, Literal, Sequence

import numpy as np

from speciarl.labels import FORMAT_ERROR, Category

Verdict = Category | str | None
"""A category (enum or value string), FORMAT_ERROR, or None (no verdict)."""

RewardFunc = Callable[[Sequence[Verdict], Sequence[Hashable]], list[float | None]]
"""The uniform signature of the registry: (verdicts, group_ids) -> rewards."""

FORMAT_ERROR_REWARD = -1.0

STATIC_SCHEMES: dict[str, dict[Category, float]] = {
    "binary": {Category.LESS_SPECIFIC: 0.0, Category.GENERIC: 0.0, Category.ABSTAIN: 0.0},
    "scale1": {Category.LESS_SPECIFIC: 0.75, Category.GENERIC: 0.5, Category.ABSTAIN: 0.25},
    "scale2": {Category.LESS_SPECIFIC: 0.75, Category.GENERIC: 0.5, Category.ABSTAIN: 0.0},
    "scale3": {Category.LESS_SPECIFIC: 0.75, Category.GENERIC: 0.0, Category.ABSTAIN: 0.0},
}
for _table in STATIC_SCHEMES.values():
    _table.update({Category.MORE_SPECIFIC: 1.0, Category.SPECIFIC: 1.0, Category.WRONG: 0.0})

# The noise ladder, best to worst; "more specific" sits on the "specific" rung (training treats them alike).
NOISE_LADDER = (Category.SPECIFIC, Category.LESS_SPECIFIC, Category.GENERIC, Category.ABSTAIN, Category.WRONG)


def parse_verdict(value: Verdict, index: int | None = None) -> Category | str | None:
    """`value` as a Category, FORMAT_ERROR or None; a clear ValueError for anything else."""
    if value is None or isinstance(value, Category) or value == FORMAT_ERROR:
        return value
    try:
        return Category(value)
    except ValueError:
        where = f" at index {index}" if index is not None else ""
        allowed = ", ".join(repr(c.value) for c in Category)
        raise ValueError(
            f"unknown verdict {value!r}{where} (allowed: {allowed}, {FORMAT_ERROR!r} or None)"
        ) from None


def _parse_all(verdicts: Sequence[Verdict]) -> list[Category | str | None]:
    return [parse_verdict(value, index) for index, value in enumerate(verdicts)]


def _level(category: Category) -> Category:
    """The rung a category counts on for the SpeciaRL reward: more specific counts as specific."""
    return Category.SPECIFIC if category is Category.MORE_SPECIFIC else category


def _groups(group_ids: Sequence[Hashable]) -> dict[Hashable, list[int]]:
    """Indices of each group, in order of first appearance; members need not be consecutive."""
    groups: dict[Hashable, list[int]] = {}
    for index, group in enumerate(group_ids):
        groups.setdefault(group, []).append(index)
    return groups


def speciarl_reward(
    categories: Sequence[Verdict], group_ids: Sequence[Hashable], mode: Literal["all", "single"] = "all"
) -> list[float | None]:
    """The group-relative SpeciaRL reward.

    Per group (the rollouts of one image): format error -> -1.0. If any rollout of the group has no
    verdict, the group's best is unknown: every rollout that is not a format error gets None. Else
    best = the best judged level (more specific = specific); if best is "wrong" every judged rollout
    gets 0; otherwise rollouts at the best level get 1 (mode "all") or only the first of them does
    (mode "single"), the others 0.
    """
    if len(categories) != len(group_ids):
        raise ValueError(f"got {len(categories)} categories but {len(group_ids)} group ids")
    if mode not in ("all", "single"):
        raise ValueError(f"unknown speciarl reward mode {mode!r} (allowed: 'all', 'single')")
    parsed = _parse_all(categories)
    rewards: list[float | None] = [None] * len(parsed)
    for members in _groups(group_ids).values():
        judged = [i for i in members if parsed[i] != FORMAT_ERROR]
        for i in members:
            if parsed[i] == FORMAT_ERROR:
                rewards[i] = FORMAT_ERROR_REWARD
        if not judged or any(parsed[i] is None for i in judged):
            continue  # nothing judged, or the group's best is unknown: judged rollouts keep None
        best = min((_level(parsed[i]) for i in judged), key=lambda c: c.rank)
        rewarded = False
        for i in judged:
            hit = best is not Category.WRONG and _level(parsed[i]) is best and not (mode == "single" and rewarded)
            rewards[i] = 1.0 if hit else 0.0
            rewarded = rewarded or hit
    return rewards


def static_reward(categories: Sequence[Verdict], scheme: str) -> list[float | None]:
    """A static (ungrouped) baseline reward: binary, scale1, scale2 or scale3; format error -1, None stays None."""
    if scheme not in STATIC_SCHEMES:
        raise ValueError(f"unknown static reward scheme {scheme!r} (allowed: {', '.join(STATIC_SCHEMES)})")
    table = STATIC_SCHEMES[scheme]
    rewards: list[float | None] = []
    for value in _parse_all(categories):
        if value is None:
            rewards.append(None)
        elif value == FORMAT_ERROR:
            rewards.append(FORMAT_ERROR_REWARD)
        else:
            rewards.append(table[value])
    return rewards


def noisy_categories(
    categories: Sequence[Verdict], p: float, seed: int | Sequence[int]
) -> list[Category | str | None]:
    """Judge noise: with probability p each verdict moves one rung up or down the ladder
    specific <-> less specific <-> generic <-> abstain <-> wrong (forced direction at the ends;
    "more specific" stands on the specific rung). Format errors and None are left alone.

    `seed` may be a sequence such as (run seed, step, process index), so that each step draws fresh
    noise that is still reproducible after a resume.
    """
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"noise probability must be in [0, 1] (got {p})")
    parsed = _parse_all(categories)
    rng = np.random.default_rng(seed)
    flips = rng.random(len(parsed)) < p
    ups = rng.random(len(parsed)) < 0.5
    last = len(NOISE_LADDER) - 1
    noisy: list[Category | str | None] = []
    for value, flip, up in zip(parsed, flips, ups):
        if not flip or value is None or value == FORMAT_ERROR:
            noisy.append(value)
            continue
        rung = NOISE_LADDER.index(_level(value))
        step = -1 if (up and rung > 0) or rung == last else 1
        noisy.append(NOISE_LADDER[rung + step])
    return noisy


def _static(scheme: str) -> RewardFunc:
    def reward(categories: Sequence[Verdict], group_ids: Sequence[Hashable]) -> list[float | None]:
        return static_reward(categories, scheme)

    return reward


REWARDS: dict[str, RewardFunc] = {
    "speciarl": lambda categories, group_ids: speciarl_reward(categories, group_ids, mode="all"),
    "speciarl_single": lambda categories, group_ids: speciarl_reward(categories, group_ids, mode="single"),
    **{scheme: _static(scheme) for scheme in STATIC_SCHEMES},
}
"""Reward name -> function(verdicts, group_ids) -> rewards. Judge noise is a separate knob (noisy_categories)."""


def get_reward(name: str) -> RewardFunc:
    """The registered reward function called `name`; ValueError listing the names otherwise."""
    try:
        return REWARDS[name]
    except KeyError:
        raise ValueError(f"unknown reward {name!r} (allowed: {', '.join(REWARDS)})") from None
