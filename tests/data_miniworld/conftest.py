"""A small rendered mini world shared by the tests of this folder (rendered once per session)."""

import pytest

from speciarl.data.miniworld import render_miniworld
from speciarl.data.miniworld_params import MiniWorldParams

SMALL = dict(train_per_domain=70, test_per_domain=31)


@pytest.fixture(scope="session")
def small_params() -> MiniWorldParams:
    return MiniWorldParams(seed=3, **SMALL)


@pytest.fixture(scope="session")
def small_world(tmp_path_factory, small_params):
    """(prepared_dir, manifests) of a small world rendered in this process."""
    root = tmp_path_factory.mktemp("prepared")
    return root, render_miniworld(small_params, root, workers=1)
