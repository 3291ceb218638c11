"""The SpeciaRL reward, the static baselines, the null control and judge noise (docs/method.md#rewards).

Every function takes one entry per rollout. An entry is a verdict category (a `Category` or its
string value), `FORMAT_ERROR` (the answer could not be parsed) or None (no verdict is available,
e.g. the judge was down). Rewards are floats, or None where no reward may be given: TRL's
GRPOTrainer excludes None rewards from the group baseline and gives them no advantage, which is
what an unjudged rollout needs (a 0 would look like "wrong" to the optimiser).

    >>> speciarl_reward(["generic", "wrong", "format_error"], ["img1", "img1", "img1"])
    [1.0, 0.0, -1.0]
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Hashable, Sequence
from typing import Any, Literal

import numpy as np

from speciarl.labels import FORMAT_ERROR, Category

Verdict = Category | str | None
"""A category (enum or value string), FORMAT_ERROR, or None (no verdict)."""

Seed = int | Sequence[int]
"""Entropy for numpy's default_rng, e.g. (run seed, step, process)."""

RewardFunc = Callable[..., list[float | None]]
"""The uniform signature of a built reward: (verdicts, group_ids, seed=0) -> rewards. Only the null
reward draws from `seed`; the others are functions of the verdicts alone."""

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
# The rungs a SpeciaRL group's best can stand on, finest first ("wrong" is no anchor).
ANCHOR_LADDER = NOISE_LADDER[:-1]


def parse_verdict(value: Verdict, index: int | None = None) -> Category | str | None:
    """`value` as a Category, FORMAT_ERROR or None; a clear ValueError for anything else."""
    if value is None or isinstance(value, Category) or value == FORMAT_ERROR:
        return value
    try:
        return Category(value)
    except ValueError:
        where = f" at index {index}" if index is not None else ""
        allowed = ", ".join(repr(c.value) for c in Category)
        raise ValueError(f"unknown verdict {value!r}{where} (allowed: {allowed}, {FORMAT_ERROR!r} or None)") from None


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
    categories: Sequence[Verdict],
    group_ids: Sequence[Hashable],
    mode: Literal["all", "single"] = "all",
    min_support: int = 1,
) -> list[float | None]:
    """The group-relative SpeciaRL reward.

    Per group (the rollouts of one image): format error -> -1.0. If any rollout of the group has no
    verdict, the group's best is unknown: every rollout that is not a format error gets None. Else
    the group's best is the finest rung of specific, less specific, generic, abstain (more specific
    counts as specific) that at least `min_support` judged rollouts reached or passed. Rollouts at
    that rung or finer get 1 (mode "all"), or only the first of them does (mode "single"), the others
    0; with no such rung (fewer than `min_support` rollouts better than wrong) every judged rollout
    gets 0. `min_support=1` is the paper's reward (best = the best judged level); a larger one keeps
    a single lucky rollout from setting the anchor. ValueError when `min_support` < 1.
    """
    if len(categories) != len(group_ids):
        raise ValueError(f"got {len(categories)} categories but {len(group_ids)} group ids")
    if mode not in ("all", "single"):
        raise ValueError(f"unknown speciarl reward mode {mode!r} (allowed: 'all', 'single')")
    if isinstance(min_support, bool) or not isinstance(min_support, int) or min_support < 1:
        raise ValueError(f"min_support must be an integer of at least 1 (got {min_support!r})")
    parsed = _parse_all(categories)
    rewards: list[float | None] = [None] * len(parsed)
    for members in _groups(group_ids).values():
        judged = [i for i in members if parsed[i] != FORMAT_ERROR]
        for i in members:
            if parsed[i] == FORMAT_ERROR:
                rewards[i] = FORMAT_ERROR_REWARD
        if not judged or any(parsed[i] is None for i in judged):
            continue  # nothing judged, or the group's best is unknown: judged rollouts keep None
        ranks = [_level(parsed[i]).rank for i in judged]
        best = next((rung for rung in ANCHOR_LADDER if sum(r <= rung.rank for r in ranks) >= min_support), None)
        rewarded = False
        for i, rank in zip(judged, ranks, strict=True):
            hit = best is not None and rank <= best.rank and not (mode == "single" and rewarded)
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


def noisy_categories(categories: Sequence[Verdict], p: float, seed: int | Sequence[int]) -> list[Category | str | None]:
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
    for value, flip, up in zip(parsed, flips, ups, strict=True):
        if not flip or value is None or value == FORMAT_ERROR:
            noisy.append(value)
            continue
        rung = NOISE_LADDER.index(_level(value))
        step = -1 if (up and rung > 0) or rung == last else 1
        noisy.append(NOISE_LADDER[rung + step])
    return noisy


def null_reward(categories: Sequence[Verdict], rate: float, seed: int | Sequence[int]) -> list[float | None]:
    """The null control: a reward that carries no information about the answer.

    Each judged rollout gets 1.0 with probability `rate`, else 0.0, drawn from `seed` (e.g. (run
    seed, step, process, ...), so that a resumed run draws the same rewards); format errors get -1
    and rollouts without a verdict None, as under every other reward, so the format signal and the
    outage rule stay the same and only the information in the verdicts is taken away.
    """
    if not 0.0 <= rate <= 1.0:
        raise ValueError(f"null reward rate must be in [0, 1] (got {rate})")
    parsed = _parse_all(categories)
    draws = np.random.default_rng(seed).random(len(parsed)) < rate
    rewards: list[float | None] = []
    for value, draw in zip(parsed, draws, strict=True):
        if value is None:
            rewards.append(None)
        elif value == FORMAT_ERROR:
            rewards.append(FORMAT_ERROR_REWARD)
        else:
            rewards.append(1.0 if draw else 0.0)
    return rewards


def _speciarl(mode: Literal["all", "single"]) -> Callable[..., RewardFunc]:
    def build(min_support: int = 1) -> RewardFunc:
        speciarl_reward([], [], mode, min_support)  # a bad min_support fails here, before any training

        def reward(categories: Sequence[Verdict], group_ids: Sequence[Hashable], seed: Seed = 0) -> list[float | None]:
            return speciarl_reward(categories, group_ids, mode, min_support)

        return reward

    return build


def _static(scheme: str) -> Callable[..., RewardFunc]:
    def build() -> RewardFunc:
        def reward(categories: Sequence[Verdict], group_ids: Sequence[Hashable], seed: Seed = 0) -> list[float | None]:
            return static_reward(categories, scheme)

        return reward

    return build


def _null(rate: float) -> RewardFunc:
    null_reward([], rate, 0)  # a bad rate fails here, before any training

    def reward(categories: Sequence[Verdict], group_ids: Sequence[Hashable], seed: Seed = 0) -> list[float | None]:
        return null_reward(categories, rate, seed)

    return reward


REWARDS: dict[str, Callable[..., RewardFunc]] = {
    "speciarl": _speciarl("all"),
    "speciarl_single": _speciarl("single"),
    **{scheme: _static(scheme) for scheme in STATIC_SCHEMES},
    "null_control": _null,
}
"""Reward name -> builder(**options) -> RewardFunc. Options: min_support (speciarl, speciarl_single),
rate (null, required). Judge noise is a separate knob (noisy_categories)."""


def reward_options(name: str) -> dict[str, inspect.Parameter]:
    """The options the registered reward `name` takes; ValueError listing the names for an unknown one."""
    if name not in REWARDS:
        raise ValueError(f"unknown reward {name!r} (allowed: {', '.join(REWARDS)})")
    return dict(inspect.signature(REWARDS[name]).parameters)


def get_reward(name: str, **options: Any) -> RewardFunc:
    """The registered reward `name` built with `options`; ValueError for an unknown name or option, or a bad value.

    >>> get_reward("speciarl", min_support=2)(["generic", "specific", "generic"], ["a", "a", "a"])
    [1.0, 1.0, 1.0]
    """
    accepted = reward_options(name)
    unknown = sorted(set(options) - set(accepted))
    if unknown:
        shown = ", ".join(accepted) or "none"
        raise ValueError(f"reward {name!r} takes no option {unknown[0]!r} (its options: {shown})")
    missing = [key for key, option in accepted.items() if option.default is option.empty and key not in options]
    if missing:
        raise ValueError(f"reward {name!r} needs the option {missing[0]!r}")
    return REWARDS[name](**options)
