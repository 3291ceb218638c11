"""What the shared fixtures of tests/conftest.py build, and a params deep-merge for tests.

The tests import this module by name (pytest puts tests/ on sys.path for the root conftest).
"""

from __future__ import annotations

from pathlib import Path

from speciarl.policy.params import TinyArch
from speciarl.policy.prompts import PROMPTS

# Tokenizer corpus of the untrained policy: the prompts and answers the tests generate or score.
UNTRAINED_CORPUS = [
    *PROMPTS.values(),
    "<think>It is a bird.</think><answer>golden-winged warbler</answer>",
    "<think>It is a car.</think><answer>sedan</answer>",
    *[f"<think>a {name}</think><answer>{name}</answer>" for name in ("red square", "blue square")] * 20,
]
UNTRAINED_ARCH = TinyArch(vocab_size=512)

# The small mini world and the architecture of the policies warm-started on it.
MINIWORLD_DATASET = "miniworld_a"
MINIWORLD_TRAIN_IMAGES, MINIWORLD_TEST_IMAGES = 16, 40
WARM_ARCH = TinyArch(vocab_size=1024, text_layers=2, text_intermediate=256, vision_depth=1, image_size=56)


def deep_merge(base: dict, override: dict) -> dict:
    """`override` merged into `base` in place (nested dicts key by key, anything else replaced); returns `base`."""
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            deep_merge(base[key], value)
        else:
            base[key] = value
    return base


def render_small_miniworld(root: Path) -> Path:
    from speciarl.data.miniworld import render_miniworld
    from speciarl.data.miniworld_params import MiniWorldParams

    params = MiniWorldParams(
        train_per_domain=MINIWORLD_TRAIN_IMAGES, test_per_domain=MINIWORLD_TEST_IMAGES, image_size=WARM_ARCH.image_size
    )
    render_miniworld(params, root, workers=1)
    return root


def build_warm_policy(out: Path, prepared_dir: Path, mix: dict[str, float], epochs: int, lr: float) -> Path:
    """A tiny Qwen2.5-VL supervised (on one thread) on the mini world's domain A training images to
    answer `<think>..</think><answer>label</answer>`, at the taxonomy levels drawn from `mix`."""
    import torch

    from speciarl.data.prepared import read_split
    from speciarl.data.taxonomy import Taxonomy
    from speciarl.policy.loading import load_policy
    from speciarl.policy.prompts import get_prompt
    from speciarl.policy.sft import Example, completion_text, train_sft
    from speciarl.policy.tiny import DEFAULT_SYSTEM, build_tiny_policy, save_policy

    taxonomy = Taxonomy.load(Path(prepared_dir) / MINIWORLD_DATASET / "taxonomy.json")
    rows = read_split(prepared_dir, MINIWORLD_DATASET, "train", columns=["image", "label"]).to_pylist()
    examples = [Example(row["image"], taxonomy, row["label"], mix) for row in rows]
    corpus = [*PROMPTS.values(), DEFAULT_SYSTEM, "system user assistant"]
    corpus += [completion_text("bird", node.name) for node in taxonomy.nodes.values()]
    build_tiny_policy(out, corpus, WARM_ARCH, seed=0)
    # the tiny model gains nothing from a second thread, and loses a lot on a busy machine
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        model, processor = load_policy(str(out))
        train_sft(
            model,
            processor,
            examples,
            [get_prompt("general")],
            epochs=epochs,
            batch_size=8,
            lr=lr,
            seed=0,
            progress=False,
        )
    finally:
        torch.set_num_threads(threads)
    save_policy(model, processor, out)
    return out
