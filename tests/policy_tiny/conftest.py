"""A tiny policy built once per test session (about a second), shared read-only by the tests."""

from __future__ import annotations

import shutil

import pytest

from speciarl.policy.prompts import PROMPTS
from speciarl.policy.tiny import TinyArch, build_tiny_policy

CORPUS = [
    *PROMPTS.values(),
    "<think>It is a bird.</think><answer>golden-winged warbler</answer>",
    "<think>It is a car.</think><answer>sedan</answer>",
]


@pytest.fixture(scope="session")
def tiny_corpus() -> list[str]:
    return CORPUS


@pytest.fixture(scope="session")
def tiny_policy(tmp_path_factory) -> str:
    out = tmp_path_factory.mktemp("policy") / "base"
    build_tiny_policy(out, CORPUS, TinyArch(vocab_size=512), seed=0)
    return str(out)


@pytest.fixture()
def policy_copy(tiny_policy, tmp_path) -> str:
    """A private copy of the tiny policy that a test may damage."""
    copy = tmp_path / "base"
    shutil.copytree(tiny_policy, copy)
    return str(copy)
