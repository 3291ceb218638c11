"""Shared fixtures of the training tests: a tiny prepared mini world and a warm-started tiny policy.

The policy gets a short supervised warm start so that its samples are answer-shaped and name
mini-world labels at several levels: the reward path then really reaches the store and the
cascade, and groups have verdicts that differ.
"""

from __future__ import annotations

from contextlib import contextmanager

import pytest
import torch

from speciarl.data.miniworld import render_miniworld
from speciarl.data.miniworld_params import MiniWorldParams
from speciarl.data.prepared import read_split
from speciarl.data.taxonomy import Taxonomy
from speciarl.judge.params import JudgeParams
from speciarl.policy.loading import load_policy
from speciarl.policy.params import PolicyParams
from speciarl.policy.prompts import PROMPTS, get_prompt
from speciarl.policy.sft import Example, completion_text, train_sft
from speciarl.policy.tiny import DEFAULT_SYSTEM, TinyArch, build_tiny_policy, save_policy

DATASET = "miniworld_a"
TRAIN_IMAGES = 16
ARCH = TinyArch(vocab_size=1024, text_layers=2, text_intermediate=256, vision_depth=1, image_size=56)


@pytest.fixture(scope="session")
def prepared_dir(tmp_path_factory) -> str:
    root = tmp_path_factory.mktemp("prepared")
    render_miniworld(
        MiniWorldParams(train_per_domain=TRAIN_IMAGES, test_per_domain=1, image_size=ARCH.image_size), root, workers=1
    )
    return str(root)


@pytest.fixture(scope="session")
def tiny_policy(tmp_path_factory, prepared_dir) -> str:
    """A tiny Qwen2.5-VL warm-started to answer `<think>..</think><answer>label</answer>` at mixed levels."""
    taxonomy = Taxonomy.load(f"{prepared_dir}/{DATASET}/taxonomy.json")
    table = read_split(prepared_dir, DATASET, "train", columns=["image", "label"]).to_pylist()
    examples = [
        Example(row["image"], taxonomy, row["label"], {"generic": 0.4, "group": 0.3, "fine": 0.3}) for row in table
    ]
    corpus = [*PROMPTS.values(), DEFAULT_SYSTEM, "system user assistant"]
    corpus += [completion_text("bird", node.name) for node in taxonomy.nodes.values()]
    out = tmp_path_factory.mktemp("policy") / "base"
    build_tiny_policy(out, corpus, ARCH, seed=0)
    with one_thread():
        model, processor = load_policy(str(out))
        train_sft(
            model, processor, examples, get_prompt("general"), epochs=30, batch_size=8, lr=1e-2, seed=0, progress=False
        )
    save_policy(model, processor, out)
    return str(out)


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
def policy_params(tiny_policy) -> PolicyParams:
    return PolicyParams(model=tiny_policy, device="cpu", dtype="float32")


@pytest.fixture()
def judge_params(tmp_path) -> JudgeParams:
    """The taxonomy cascade with a fresh verdict store and no LLM judge."""
    return JudgeParams(store=str(tmp_path / "verdicts"))
