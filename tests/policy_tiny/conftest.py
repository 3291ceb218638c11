"""Fixtures of the tiny-policy tests (the policy itself is the root conftest's `untrained_policy`)."""

from __future__ import annotations

import shutil

import pytest


@pytest.fixture()
def policy_copy(untrained_policy, tmp_path) -> str:
    """A private copy of the untrained tiny policy that a test may damage."""
    copy = tmp_path / "base"
    shutil.copytree(untrained_policy, copy)
    return str(copy)
