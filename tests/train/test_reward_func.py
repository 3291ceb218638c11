"""The TRL reward function against the real verdict store and judge cascade (taxonomy level, no LLM)."""

import inspect
from pathlib import Path
from types import SimpleNamespace

import pytest

from speciarl.config import load_section
from speciarl.judge.cascade import JudgeService
from speciarl.train.params import RunParams
from speciarl.train.reward_func import JudgeOutageError, completion_text, make_reward_func

DATASET = "miniworld_a"
REPO = Path(__file__).resolve().parents[2]


def chat(answer: str | None) -> list[dict]:
    """A conversational completion as TRL passes it, with `answer` in the answer tag (None: no tag)."""
    body = "<think>It is a bird.</think>" + (f"<answer>{answer}</answer>" if answer is not None else "bird")
    return [{"role": "assistant", "content": body}]


def call(reward_func, answers, sample_ids, truths, step=0):
    logged: dict[str, list[float]] = {}
    rewards = reward_func(
        prompts=[[{"role": "user", "content": "?"}]] * len(answers),
        completions=[chat(a) for a in answers],
        completion_ids=[[0]] * len(answers),
        sample_id=sample_ids,
        ground_truth=truths,
        dataset=[DATASET] * len(answers),
        trainer_state=SimpleNamespace(global_step=step),
        log_metric=lambda name, value: logged.setdefault(name, []).append(value),
    )
    return rewards, {name: values[0] for name, values in logged.items()}


@pytest.fixture()
def judge(judge_params, prepared_dir):
    with JudgeService.from_params(judge_params, prepared_dir, which="train") as service:
        yield service


def test_completion_text_plain_and_conversational():
    assert completion_text("<answer>x</answer>") == "<answer>x</answer>"
    content = [{"type": "text", "text": "<answer>"}, {"type": "text", "text": "y</answer>"}]
    parts = [{"role": "assistant", "content": content}]
    assert completion_text(parts) == "<answer>y</answer>"


def test_speciarl_reward_through_store_and_cascade(judge):
    reward_func = make_reward_func("speciarl", judge, num_generations=4)
    assert reward_func.__name__ == "speciarl"
    # Interleaved groups. Image a (grey-headed sparrow): best is specific ("gray-headed sparrow" is a synonym).
    # Image b (orange-headed parrot): best is generic ("bird"); "parrot" would be less specific but is absent.
    answers = [
        "sparrow",
        "bird",
        "gray-headed sparrow",
        "bird",
        None,
        "violet-headed parrot",
        "grey-headed sparrow",
        "an aircraft",
    ]
    sample_ids = ["a", "b", "a", "b", "a", "b", "a", "b"]
    truths = ["grey-headed sparrow" if s == "a" else "orange-headed parrot" for s in sample_ids]
    # "an aircraft" names no taxonomy node: no LLM is configured, so it has no verdict and voids group b.
    rewards, stats = call(reward_func, answers, sample_ids, truths)
    assert rewards == [0.0, None, 1.0, None, -1.0, None, 1.0, None]
    assert stats["verdicts/specific"] == 2 / 8
    assert stats["verdicts/less specific"] == 1 / 8
    assert stats["verdicts/generic"] == 2 / 8
    assert stats["verdicts/wrong"] == 1 / 8
    assert stats["verdicts/format_error"] == 1 / 8
    assert stats["verdicts/none"] == 1 / 8
    assert stats["reward/none_share"] == 4 / 8
    assert stats["reward/zero_std_group_share"] == 1 / 2  # group b has no reward at all
    assert stats["reward/seconds"] > 0

    # every decided verdict was stored: asking again is answered by the store (one hit per unique pair)
    before = judge.stats["store_hits"]
    assert call(reward_func, answers, sample_ids, truths)[0] == rewards
    assert judge.stats["store_hits"] - before == 5  # all but "an aircraft", which no level decided


def test_binary_reward_is_static(judge):
    reward_func = make_reward_func("binary", judge, num_generations=2)
    rewards, _ = call(reward_func, ["grey-headed sparrow", "bird"], ["a", "a"], ["grey-headed sparrow"] * 2)
    assert rewards == [1.0, 0.0]


def test_too_many_answers_without_verdict_stop_training(judge):
    answers, groups = ["an aircraft", "bird", "bird", "sparrow", None, None], list("aabbcc")
    truths = ["grey-headed sparrow"] * 6
    reward_func = make_reward_func("speciarl", judge, num_generations=2, max_none_fraction=0.2)
    with pytest.raises(JudgeOutageError, match=r"step 8: the judge gave no verdict for 1 of 4 answers \(25%\)"):
        call(reward_func, answers, groups, truths, step=7)
    # at the threshold it is allowed; format errors do not count as answers
    reward_func = make_reward_func("speciarl", judge, num_generations=2, max_none_fraction=0.25)
    rewards, _ = call(reward_func, answers, groups, truths)
    assert rewards == [None, None, 0.0, 1.0, -1.0, -1.0]


def test_partial_groups_are_refused(judge):
    reward_func = make_reward_func("speciarl", judge, num_generations=4)
    with pytest.raises(ValueError, match="2 rollouts of sample 'a' instead of num_generations=4"):
        call(reward_func, ["bird"] * 2, ["a", "a"], ["grey-headed sparrow"] * 2)


def test_noise_is_seeded_by_step(judge):
    reward_func = make_reward_func("scale1", judge, num_generations=2, noise=0.5, seed=3)
    answers = ["grey-headed sparrow", "sparrow", "bird", "I cannot tell"] * 10
    sample_ids = [f"s{i // 2}" for i in range(len(answers))]
    truths = ["grey-headed sparrow"] * len(answers)
    clean, _ = call(make_reward_func("scale1", judge, num_generations=2), answers, sample_ids, truths)
    noisy, _ = call(reward_func, answers, sample_ids, truths, step=1)
    assert noisy != clean
    assert noisy == call(reward_func, answers, sample_ids, truths, step=1)[0]
    assert noisy != call(reward_func, answers, sample_ids, truths, step=2)[0]


def test_the_default_outage_limit_is_params_yaml_s(judge):
    configured = load_section("train", REPO / "params.yaml").runs["speciarl"].max_none_fraction
    default = inspect.signature(make_reward_func).parameters["max_none_fraction"].default
    assert default == configured == RunParams().max_none_fraction < 1.0
    # half of the answers without a verdict: the default stops training
    with pytest.raises(JudgeOutageError, match="more than max_none_fraction=0.25"):
        reward_func = make_reward_func("speciarl", judge, num_generations=2)
        call(reward_func, ["an aircraft", "bird"], ["a", "a"], ["grey-headed sparrow"] * 2)


def test_null_reward_ignores_the_verdicts_and_draws_per_step(judge):
    reward_func = make_reward_func("null_control", judge, options={"rate": 0.5}, num_generations=2, seed=3)
    assert reward_func.__name__ == "null_control"
    sample_ids = [f"s{i // 2}" for i in range(40)]
    truths = ["grey-headed sparrow"] * 40
    right, _ = call(reward_func, ["grey-headed sparrow"] * 40, sample_ids, truths, step=1)
    wrong, stats = call(reward_func, ["orange-headed parrot"] * 40, sample_ids, truths, step=1)
    assert stats["verdicts/wrong"] == 1.0
    assert right == wrong and set(right) == {0.0, 1.0}  # the same draws, whatever the answers
    assert right != call(reward_func, ["grey-headed sparrow"] * 40, sample_ids, truths, step=2)[0]
    # a format error still gets -1, an answer without a verdict None
    reward_func = make_reward_func("null_control", judge, options={"rate": 0.5}, max_none_fraction=1.0)
    rewards, _ = call(reward_func, [None, "an aircraft"], ["a", "a"], truths[:2])
    assert rewards[0] == -1.0 and rewards[1] is None
    with pytest.raises(ValueError, match=r"rate must be in \[0, 1\]"):
        make_reward_func("null_control", judge, options={"rate": 2.0})
