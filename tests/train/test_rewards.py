"""Golden tests of the reward rules (docs/method.md#rewards and issue 5)."""

import random
from collections import Counter

import pytest

from speciarl.labels import FORMAT_ERROR, Category
from speciarl.rewards import REWARDS, get_reward, noisy_categories, null_reward, speciarl_reward, static_reward

MS, S, LS, G, A, W = (c.value for c in Category)
FE = FORMAT_ERROR


@pytest.mark.parametrize(
    ("categories", "expected"),
    [
        # best is generic: generic answers get 1, everything else 0
        ([G, W, A, G], [1.0, 0.0, 0.0, 1.0]),
        # best is abstain: abstentions get 1
        ([A, W, A], [1.0, 0.0, 1.0]),
        # more specific and specific are the same level
        ([MS, S, LS, G], [1.0, 1.0, 0.0, 0.0]),
        ([LS, MS, W], [0.0, 1.0, 0.0]),
        # all wrong: every judged rollout gets 0
        ([W, W, W], [0.0, 0.0, 0.0]),
        # format error -1 always, and never counts towards the best
        ([FE, G, FE, LS], [-1.0, 0.0, -1.0, 1.0]),
        ([FE, W, W], [-1.0, 0.0, 0.0]),
        ([FE, FE], [-1.0, -1.0]),
        # a single rollout at its own best
        ([LS], [1.0]),
    ],
)
def test_speciarl_reward_one_group(categories, expected):
    assert speciarl_reward(categories, ["img"] * len(categories)) == expected


def test_speciarl_reward_accepts_enum_members():
    categories = [Category.GENERIC, Category.WRONG, FE]
    assert speciarl_reward(categories, [0, 0, 0]) == [1.0, 0.0, -1.0]


def test_interleaved_groups_are_scored_separately():
    # group a: best specific; group b: best generic; group c: all wrong. Members are interleaved.
    categories = [S, G, W, G, LS, W, A, W]
    group_ids = ["a", "b", "c", "a", "a", "b", "b", "c"]
    assert speciarl_reward(categories, group_ids) == [1.0, 1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0]
    # the same rollouts in another order get the same rewards
    order = [7, 3, 0, 5, 1, 6, 2, 4]
    shuffled = speciarl_reward([categories[i] for i in order], [group_ids[i] for i in order])
    assert shuffled == [[1.0, 1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0][i] for i in order]


def test_none_in_a_group_voids_that_group_only():
    categories = [G, None, FE, W, S, LS]
    group_ids = ["a", "a", "a", "a", "b", "b"]
    # group a: best unknown -> judged rollouts None, the format error still -1; group b unaffected
    assert speciarl_reward(categories, group_ids) == [None, None, -1.0, None, 1.0, 0.0]


def test_all_none_group():
    assert speciarl_reward([None, None], ["x", "x"]) == [None, None]


def test_single_mode_rewards_only_the_first_rollout_at_the_best_level():
    categories = [G, S, W, MS, S]
    assert speciarl_reward(categories, [1] * 5, mode="single") == [0.0, 1.0, 0.0, 0.0, 0.0]
    # first in input order, per group, with interleaving
    categories = [G, G, A, G, A]
    group_ids = ["a", "b", "b", "a", "b"]
    assert speciarl_reward(categories, group_ids, mode="single") == [1.0, 1.0, 0.0, 0.0, 0.0]
    # all wrong stays 0 in single mode too
    assert speciarl_reward([W, W], [0, 0], mode="single") == [0.0, 0.0]


def test_speciarl_reward_bad_input():
    with pytest.raises(ValueError, match="index 1"):
        speciarl_reward([G, "very specific"], [0, 0])
    with pytest.raises(ValueError, match="2 categories but 1 group ids"):
        speciarl_reward([G, G], [0])
    with pytest.raises(ValueError, match="mode"):
        speciarl_reward([G], [0], mode="some")


@pytest.mark.parametrize(
    ("scheme", "expected"),
    [
        ("binary", [1.0, 1.0, 0.0, 0.0, 0.0, 0.0]),
        ("scale1", [1.0, 1.0, 0.75, 0.5, 0.25, 0.0]),
        ("scale2", [1.0, 1.0, 0.75, 0.5, 0.0, 0.0]),
        ("scale3", [1.0, 1.0, 0.75, 0.0, 0.0, 0.0]),
    ],
)
def test_static_reward_tables(scheme, expected):
    assert static_reward([MS, S, LS, G, A, W, FE, None], scheme) == [*expected, -1.0, None]


def test_static_reward_unknown_scheme():
    with pytest.raises(ValueError, match="scale4"):
        static_reward([G], "scale4")


def test_registry():
    assert set(REWARDS) == {"speciarl", "speciarl_single", "binary", "scale1", "scale2", "scale3", "null_control"}
    categories, group_ids = [G, A, G], [0, 0, 0]
    assert get_reward("speciarl")(categories, group_ids) == [1.0, 0.0, 1.0]
    assert get_reward("speciarl_single")(categories, group_ids) == [1.0, 0.0, 0.0]
    assert get_reward("scale1")(categories, group_ids) == [0.5, 0.25, 0.5]
    assert get_reward("speciarl", min_support=3)(categories, group_ids) == [1.0, 1.0, 1.0]
    assert get_reward("null_control", rate=1.0)(categories, group_ids, seed=(0, 1)) == [1.0, 1.0, 1.0]
    with pytest.raises(ValueError, match="allowed: speciarl, speciarl_single"):
        get_reward("speciarl_all")
    with pytest.raises(ValueError, match=r"reward 'binary' takes no option 'min_support' \(its options: none\)"):
        get_reward("binary", min_support=2)
    with pytest.raises(ValueError, match=r"reward 'null_control' needs the option 'rate'"):
        get_reward("null_control")
    with pytest.raises(ValueError, match="min_support must be an integer of at least 1"):
        get_reward("speciarl", min_support=0)  # at build time, before any rollout is scored
    with pytest.raises(ValueError, match=r"rate must be in \[0, 1\]"):
        get_reward("null_control", rate=1.2)


def paper_reward(categories, group_ids):
    """The reward before min_support existed, verbatim: best = the best judged level; hits at it get 1."""
    level = {MS: S}
    rank = {c.value: c.rank for c in Category}
    rewards = [None] * len(categories)
    for group in dict.fromkeys(group_ids):
        members = [i for i, g in enumerate(group_ids) if g == group]
        judged = [i for i in members if categories[i] != FE]
        for i in members:
            if categories[i] == FE:
                rewards[i] = -1.0
        if not judged or any(categories[i] is None for i in judged):
            continue
        best = min((level.get(categories[i], categories[i]) for i in judged), key=rank.get)
        for i in judged:
            rewards[i] = 1.0 if best != W and level.get(categories[i], categories[i]) == best else 0.0
    return rewards


@pytest.mark.parametrize(
    ("categories", "min_support", "expected"),
    [
        # one specific is not enough for 2: generic, reached or passed by three, is the best
        ([S, G, G, W], 2, [1.0, 1.0, 1.0, 0.0]),
        # more specific counts as specific
        ([MS, S, LS, W], 2, [1.0, 1.0, 0.0, 0.0]),
        # the anchor can sink to abstain
        ([LS, G, A, W], 3, [1.0, 1.0, 1.0, 0.0]),
        # all-zero: fewer than min_support rollouts better than wrong
        ([S, W, W, W], 2, [0.0, 0.0, 0.0, 0.0]),
        ([S, S], 3, [0.0, 0.0]),
        ([W, W], 2, [0.0, 0.0]),
        # format errors get -1 and never count towards the support
        ([FE, S, S, W], 2, [-1.0, 1.0, 1.0, 0.0]),
        ([FE, FE, S, W], 2, [-1.0, -1.0, 0.0, 0.0]),
        # a rollout without a verdict still voids the group
        ([S, S, None, FE], 2, [None, None, None, -1.0]),
        # a large enough support makes every correct answer the anchor's
        ([S, LS, G, A, W], 4, [1.0, 1.0, 1.0, 1.0, 0.0]),
    ],
)
def test_min_support_golden_groups(categories, min_support, expected):
    assert speciarl_reward(categories, ["img"] * len(categories), min_support=min_support) == expected


def test_min_support_in_single_mode_rewards_the_first_rollout_at_or_above_the_anchor():
    assert speciarl_reward([G, S, G, W], [0] * 4, mode="single", min_support=2) == [1.0, 0.0, 0.0, 0.0]
    assert speciarl_reward([W, S, W], [0] * 3, mode="single", min_support=2) == [0.0, 0.0, 0.0]


def test_min_support_one_is_the_paper_reward_on_random_groups():
    rng = random.Random(0)
    choices = [MS, S, LS, G, A, W, FE, None]
    weights = [1, 3, 3, 3, 2, 4, 1, 0.2]
    for _ in range(2000):
        size = rng.randint(1, 10)
        categories = rng.choices(choices, weights, k=size)
        group_ids = [rng.randint(0, 3) for _ in range(size)]
        assert speciarl_reward(categories, group_ids) == paper_reward(categories, group_ids)
        assert speciarl_reward(categories, group_ids, min_support=1) == paper_reward(categories, group_ids)


@pytest.mark.parametrize("min_support", [0, -1, 1.5, True])
def test_min_support_must_be_an_integer_of_at_least_one(min_support):
    with pytest.raises(ValueError, match="min_support must be an integer of at least 1"):
        speciarl_reward([G], [0], min_support=min_support)


def test_null_reward_is_seeded_bernoulli_at_the_rate():
    categories = [G, W, S, A] * 2500
    rewards = null_reward(categories, rate=0.3, seed=(0, 5, 0, 1))
    assert set(rewards) == {0.0, 1.0}
    assert 0.28 < sum(rewards) / len(rewards) < 0.32
    # independent of the verdicts: each category gets the same rate
    for category in (G, W, S, A):
        share = [r for c, r in zip(categories, rewards, strict=True) if c == category]
        assert 0.26 < sum(share) / len(share) < 0.34
    assert rewards == null_reward(categories, rate=0.3, seed=(0, 5, 0, 1))
    assert rewards != null_reward(categories, rate=0.3, seed=(0, 6, 0, 1))
    assert null_reward([G, W], rate=0.0, seed=1) == [0.0, 0.0]
    assert null_reward([G, W], rate=1.0, seed=1) == [1.0, 1.0]


def test_null_reward_keeps_the_format_and_outage_rules():
    assert null_reward([FE, None, FE], rate=1.0, seed=0) == [-1.0, None, -1.0]
    with pytest.raises(ValueError, match="index 0"):
        null_reward(["very specific"], rate=0.5, seed=0)


def test_noise_moves_one_rung_with_forced_direction_at_the_ends():
    ladder = [S, LS, G, A, W]
    categories = [MS, S, LS, G, A, W, FE, None] * 200
    noisy = noisy_categories(categories, p=1.0, seed=3)
    moves = Counter()
    for before, after in zip(categories, noisy, strict=True):
        if before in (FE, None):
            assert after == before
            continue
        start = ladder.index(S if before == MS else before)
        end = ladder.index(Category(after).value)
        assert abs(end - start) == 1
        moves[before, end - start] += 1
    # the ends are forced; the middle rungs go both ways
    assert set(moves) == {(MS, 1), (S, 1), (W, -1), (LS, 1), (LS, -1), (G, 1), (G, -1), (A, 1), (A, -1)}


def test_noise_rate_and_seeding():
    categories = [G] * 10_000
    noisy = noisy_categories(categories, p=0.1, seed=(0, 5, 0))
    changed = sum(a != Category(b).value for a, b in zip(categories, noisy, strict=True))
    assert 800 < changed < 1200
    assert noisy == noisy_categories(categories, p=0.1, seed=(0, 5, 0))
    assert noisy != noisy_categories(categories, p=0.1, seed=(0, 6, 0))
    assert noisy_categories(categories[:50], p=0.0, seed=1) == [Category.GENERIC] * 50
    with pytest.raises(ValueError, match="noise probability"):
        noisy_categories(categories, p=1.5, seed=0)
