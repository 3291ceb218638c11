"""Session fixtures shared by the test folders: tiny policies and a small mini world, each built
once per session in a tmp folder and shared read-only (copy one before damaging it).

- `untrained_policy`: random weights, tokenizer fit to prompts and a few answers (about a second).
- `prepared_dir`: the prepared folder of a small mini world (56 px; 16 train, 40 test images per domain).
- `mixed_level_policy`: warm-started on it for 30 epochs to answer at mixed levels (generic, group,
  fine), so that a group's samples get different verdicts (training tests).
- `fine_level_policy`: warm-started for 120 epochs (about 35 s) to answer mostly at the fine level,
  well formed and different between images, so that agreement between backends means something.
"""

from __future__ import annotations

import pytest
from tiny_world import UNTRAINED_ARCH, UNTRAINED_CORPUS, build_warm_policy, render_small_miniworld


@pytest.fixture(scope="session")
def untrained_policy(tmp_path_factory) -> str:
    from speciarl.policy.tiny import build_tiny_policy

    out = tmp_path_factory.mktemp("untrained_policy") / "base"
    build_tiny_policy(out, UNTRAINED_CORPUS, UNTRAINED_ARCH, seed=0)
    return str(out)


@pytest.fixture(scope="session")
def prepared_dir(tmp_path_factory) -> str:
    return str(render_small_miniworld(tmp_path_factory.mktemp("prepared")))


@pytest.fixture(scope="session")
def mixed_level_policy(tmp_path_factory, prepared_dir) -> str:
    out = tmp_path_factory.mktemp("mixed_level_policy") / "base"
    return str(build_warm_policy(out, prepared_dir, {"generic": 0.4, "group": 0.3, "fine": 0.3}, epochs=30, lr=1e-2))


@pytest.fixture(scope="session")
def fine_level_policy(tmp_path_factory, prepared_dir) -> str:
    out = tmp_path_factory.mktemp("fine_level_policy") / "base"
    return str(build_warm_policy(out, prepared_dir, {"generic": 0.1, "group": 0.3, "fine": 0.6}, epochs=120, lr=3e-3))
