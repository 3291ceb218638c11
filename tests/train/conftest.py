"""Fixtures of the training tests: one torch thread, the policy params of the root conftest's
`mixed_level_policy` (answers at mixed levels, so that the reward path really reaches the store and
the cascade, and groups have verdicts that differ), and a fresh verdict store.
"""

from __future__ import annotations

from contextlib import contextmanager

import pytest
import torch

from speciarl.judge.params import JudgeParams
from speciarl.policy.params import PolicyParams


@contextmanager
def one_thread():
    """Torch on one thread: the tiny model gains nothing from two, and loses a lot on a busy machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


@pytest.fixture(autouse=True)
def _one_thread():
    with one_thread():
        yield


@pytest.fixture()
def policy_params(mixed_level_policy) -> PolicyParams:
    return PolicyParams(model=mixed_level_policy, dvc_dep=mixed_level_policy, device="cpu", dtype="float32")


@pytest.fixture()
def judge_params(tmp_path) -> JudgeParams:
    """The taxonomy cascade with a fresh verdict store and no LLM judge."""
    return JudgeParams(store=str(tmp_path / "verdicts"))
