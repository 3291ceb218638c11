"""The reward function TRL's GRPOTrainer calls: completions -> answers -> verdicts -> rewards.

    from trl import GRPOTrainer
    from speciarl.judge.cascade import JudgeService
    from speciarl.train.reward_func import make_reward_func

    judge = JudgeService.from_params(judge_params, prepared_dir, which="train")
    trainer = GRPOTrainer(..., reward_funcs=[make_reward_func("speciarl", judge, num_generations=10)])

The dataset needs the columns `sample_id` (the group key: one image), `ground_truth` and `dataset`.
Verdicts come from the judge service (verdict store first, the cascade for misses). A rollout the
judge could not decide gets None: TRL leaves it out of the group baseline and gives it no
advantage, instead of the silent 0 ("wrong") of the original code; under the SpeciaRL rewards the
other rollouts of its group get None too, since the group's best is unknown. Too many answers
without a verdict in one step (more than max_none_fraction, 0.25 by default as in params.yaml)
raise JudgeOutageError, so a dead judge stops training instead of steering it
(docs/method.md#deliberate-departures-from-the-authors-code). A runnable example with plain TRL:
examples/grpo_with_speciarl_reward.py.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Callable, Hashable, Sequence
from typing import Any, Protocol

import torch
from accelerate import PartialState
from accelerate.utils import reduce

from speciarl.labels import FORMAT_ERROR, Category, extract_answer
from speciarl.rewards import get_reward, noisy_categories
from speciarl.stage import RunFailure

logger = logging.getLogger(__name__)

Pair = tuple[str, str, str]
"""(dataset, ground truth, predicted answer) as the judge takes it."""

REWARD_DRAWS = 1
"""Appended to the (seed, step, process) entropy of a random reward: its draws are not the noise's."""

VERDICT_NAMES = [category.value for category in Category] + [FORMAT_ERROR, "none"]
"""Keys of the per-step verdict shares: the six categories, format errors, and rollouts without a verdict."""


class Judge(Protocol):
    def judge(self, pairs: list[Pair]) -> list[Category | None]: ...

    def judge_id(self, dataset: str) -> str:
        """Identity of the judging of `dataset`'s pairs (a different id may give different verdicts)."""
        ...


class JudgeOutageError(RunFailure):
    """The judge left more of a step's answers without a verdict than allowed."""


def completion_text(completion: str | list[dict]) -> str:
    """The text of a completion, plain or conversational (a list of messages with str or part-list content)."""
    if isinstance(completion, str):
        return completion
    texts = []
    for message in completion:
        content = message["content"]
        if isinstance(content, str):
            texts.append(content)
        else:
            texts.extend(part["text"] for part in content if part.get("type") == "text")
    return "".join(texts)


def judge_answers(judge: Judge, datasets: Sequence[str], truths: Sequence[str], answers: Sequence[str | None]):
    """One verdict per rollout: FORMAT_ERROR where there is no answer, else the judge's verdict (or None).

    Each unique (dataset, truth, answer) goes to the judge once per call.
    """
    pairs = list(dict.fromkeys((d, t, a) for d, t, a in zip(datasets, truths, answers, strict=True) if a is not None))
    verdicts = judge.judge(pairs) if pairs else []
    if len(verdicts) != len(pairs):
        raise RuntimeError(f"judge returned {len(verdicts)} verdicts for {len(pairs)} pairs")
    found = dict(zip(pairs, verdicts, strict=True))
    return [FORMAT_ERROR if a is None else found[(d, t, a)] for d, t, a in zip(datasets, truths, answers, strict=True)]


def step_stats(
    categories: Sequence, rewards: Sequence[float | None], group_ids: Sequence[Hashable]
) -> dict[str, float]:
    """Per-step metrics: verdict shares, share of rewards that are None, share of groups with no reward spread."""
    total = len(categories)
    counts = Counter("none" if c is None else (c.value if isinstance(c, Category) else c) for c in categories)
    stats = {f"verdicts/{name}": counts.get(name, 0) / total for name in VERDICT_NAMES}
    stats["reward/none_share"] = sum(r is None for r in rewards) / total
    groups: dict[Hashable, set] = {}
    for group, reward in zip(group_ids, rewards, strict=True):
        values = groups.setdefault(group, set())
        if reward is not None:
            values.add(reward)
    stats["reward/zero_std_group_share"] = sum(len(values) < 2 for values in groups.values()) / len(groups)
    return stats


def _global_counts(counts: list[float]) -> list[float]:
    """Sum counts over all training processes (a no-op with one), so every process takes the same decision."""
    state = PartialState()
    if state.num_processes == 1:
        return counts
    return reduce(torch.tensor(counts, dtype=torch.float64, device=state.device), reduction="sum").tolist()


def _check_whole_groups(group_ids: Sequence[Hashable], num_generations: int) -> None:
    partial = {group: n for group, n in Counter(group_ids).items() if n != num_generations}
    if partial:
        group, n = next(iter(partial.items()))
        raise ValueError(
            f"reward function got {n} rollouts of sample {group!r} instead of num_generations={num_generations}: "
            "every process must see whole groups (per-device batch x steps per generation must be a multiple "
            "of num_generations, and sample ids must be unique)"
        )


def make_reward_func(
    reward_name: str,
    judge: Judge,
    *,
    options: dict[str, Any] | None = None,
    num_generations: int | None = None,
    noise: float = 0.0,
    seed: int = 0,
    max_none_fraction: float = 0.25,
) -> Callable[..., list[float | None]]:
    """A TRL reward function for the registered reward `reward_name` (speciarl.rewards.REWARDS).

    options: the reward's options (speciarl.rewards.get_reward: min_support for the speciarl
    rewards, rate for null); a bad one is a ValueError here. num_generations: when given, every
    call must hold whole groups of exactly that many rollouts. noise: judge-noise probability
    (noisy_categories). Random draws (noise, the null reward's) are seeded by (seed, step,
    process), so that a resumed run draws the same ones. max_none_fraction: the largest share of
    a step's answers (rollouts that are not format errors, over all processes) the judge may leave
    without a verdict before JudgeOutageError is raised (an answer without a verdict gets None;
    under the SpeciaRL reward so does the rest of its group); the default is params.yaml's, and 1.0
    turns the guard off.
    """
    scheme = get_reward(reward_name, **(options or {}))

    def reward_func(
        prompts: list,
        completions: list,
        sample_id: list[str],
        ground_truth: list[str],
        dataset: list[str],
        trainer_state: Any = None,
        log_metric: Callable[[str, float], None] | None = None,
        **kwargs: Any,
    ) -> list[float | None]:
        started = time.perf_counter()
        if num_generations is not None:
            _check_whole_groups(sample_id, num_generations)
        answers = [extract_answer(completion_text(c)) for c in completions]
        categories = judge_answers(judge, dataset, ground_truth, answers)
        step = trainer_state.global_step + 1 if trainer_state is not None else 1  # the step being computed
        entropy = (seed, step, PartialState().process_index)
        if noise > 0:
            categories = noisy_categories(categories, noise, seed=entropy)
        rewards = scheme(categories, sample_id, seed=(*entropy, REWARD_DRAWS))

        stats = step_stats(categories, rewards, sample_id)
        unjudged, answered = _global_counts([sum(c is None for c in categories), sum(a is not None for a in answers)])
        if unjudged:
            logger.warning("step %d: the judge gave no verdict for %d of %d answers", step, unjudged, answered)
        if unjudged > max_none_fraction * answered:
            raise JudgeOutageError(
                f"step {step}: the judge gave no verdict for {int(unjudged)} of {int(answered)} answers "
                f"({unjudged / answered:.0%}), more than max_none_fraction={max_none_fraction}"
            )
        stats["reward/seconds"] = time.perf_counter() - started
        if log_metric is not None:
            for name, value in stats.items():
                log_metric(name, value)
        return rewards

    reward_func.__name__ = reward_name  # TRL logs rewards/<__name__>/mean
    return reward_func
