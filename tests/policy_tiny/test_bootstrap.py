"""The warm start: targets drawn from the level mix, SFT that learns, and the `bootstrap` stage."""

from __future__ import annotations

import io
import json
import random
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from PIL import Image

from speciarl.data.miniworld import render_miniworld
from speciarl.data.miniworld_params import MiniWorldParams
from speciarl.data.taxonomy import Taxonomy
from speciarl.judge.taxonomy_judge import TaxonomyJudge
from speciarl.labels import Category, extract_answer
from speciarl.policy.loading import load_policy
from speciarl.policy.prompts import get_prompt
from speciarl.policy.sft import Example, categorize, draw_target, pretrain_vision, sft_batch, train_sft

REPO = Path(__file__).resolve().parents[2]

TAXONOMY = Taxonomy.from_paths(
    "shapes",
    ["generic", "group", "fine"],
    {
        "red square": [("generic", "shape"), ("group", "square"), ("fine", "red square")],
        "blue square": [("generic", "shape"), ("group", "square"), ("fine", "blue square")],
    },
    synonyms={"red square": ["crimson square"], "shape": ["figure"]},
)


def _jpeg(colour: tuple[int, int, int], seed: int) -> bytes:
    pixels = np.clip(np.array(colour) + np.random.default_rng(seed).normal(0, 8, (112, 112, 3)), 0, 255)
    buffer = io.BytesIO()
    Image.fromarray(pixels.astype(np.uint8)).save(buffer, format="JPEG")
    return buffer.getvalue()


def test_targets_follow_the_level_mix():
    rng = random.Random(0)
    only_fine = Example(b"", TAXONOMY, "red square", {"fine": 1.0})
    answers = {extract_answer(draw_target(only_fine, 0.0, rng)) for _ in range(20)}
    assert answers == {"red square"}
    assert {extract_answer(draw_target(only_fine, 1.0, rng)) for _ in range(20)} == {"crimson square"}
    completion = draw_target(Example(b"", TAXONOMY, "blue square", {"generic": 1.0}), 0.0, rng)
    assert completion == "<think>It is a shape.</think><answer>shape</answer>"

    mixed = Example(b"", TAXONOMY, "blue square", {"generic": 0.6, "group": 0.3, "fine": 0.1})
    drawn = [extract_answer(draw_target(mixed, 0.0, rng)) for _ in range(2000)]
    assert drawn.count("shape") / 2000 == pytest.approx(0.6, abs=0.04)
    assert drawn.count("square") / 2000 == pytest.approx(0.3, abs=0.04)
    assert drawn.count("blue square") / 2000 == pytest.approx(0.1, abs=0.03)


def test_categorize_uses_the_taxonomy_judge():
    judge = TaxonomyJudge(TAXONOMY)
    answer = "<think>It is a shape.</think><answer>{}</answer>".format
    assert categorize(judge, "red square", answer("crimson square")) is Category.SPECIFIC
    assert categorize(judge, "red square", answer("square")) is Category.LESS_SPECIFIC
    assert categorize(judge, "red square", answer("figure")) is Category.GENERIC
    assert categorize(judge, "red square", answer("blue square")) is Category.WRONG
    assert categorize(judge, "red square", "no tags at all") is None


def test_a_few_sft_steps_reduce_the_loss(untrained_policy):
    model, processor = load_policy(untrained_policy)
    colours = {"red square": (220, 30, 30), "blue square": (30, 30, 220)}
    examples = [
        Example(_jpeg(colours[label], i), TAXONOMY, label, {"fine": 1.0}) for i, label in enumerate(list(colours) * 4)
    ]
    losses = train_sft(
        model, processor, examples, get_prompt("general"), epochs=10, batch_size=4, lr=1e-2, seed=0, progress=False
    )
    assert len(losses) == 20
    assert sum(losses[-3:]) / 3 < 0.5 * losses[0]
    assert not model.training


def test_sft_masks_everything_but_the_completion(untrained_policy):
    _, processor = load_policy(untrained_policy)
    images = [Image.open(io.BytesIO(_jpeg((0, 0, 0), i))) for i in range(2)]
    completions = ["<answer>shape</answer>", "<think>It is a shape.</think><answer>red square</answer>"]
    inputs = sft_batch(processor, get_prompt("general"), images, completions)
    tokenizer = processor.tokenizer
    for row, completion in enumerate(completions):
        kept = inputs["labels"][row][inputs["labels"][row] != -100].tolist()
        assert tokenizer.decode(kept) == completion + tokenizer.eos_token


def test_sft_can_leave_the_vision_tower_as_it_is(untrained_policy):
    model, processor = load_policy(untrained_policy)
    vision = {name: p.clone() for name, p in model.model.visual.named_parameters()}
    examples = [Example(_jpeg((200, 200, 0), i), TAXONOMY, "red square", {"group": 1.0}) for i in range(4)]
    train_sft(
        model,
        processor,
        examples,
        get_prompt("general"),
        epochs=1,
        batch_size=4,
        lr=1e-2,
        train_vision=False,
        progress=False,
    )
    assert all(torch.equal(p, vision[name]) for name, p in model.model.visual.named_parameters())
    assert not torch.equal(
        model.model.language_model.layers[0].mlp.up_proj.weight,
        load_policy(untrained_policy)[0].model.language_model.layers[0].mlp.up_proj.weight,
    )


def test_vision_pretraining_learns_the_levels_and_keeps_the_language_model(untrained_policy):
    model, processor = load_policy(untrained_policy)
    language_model = {name: p.clone() for name, p in model.model.language_model.named_parameters()}
    colours = {"red square": (220, 30, 30), "blue square": (30, 30, 220)}
    examples = [
        Example(_jpeg(colours[label], i), TAXONOMY, label, {"fine": 1.0}) for i, label in enumerate(list(colours) * 4)
    ]
    losses = pretrain_vision(model, processor, examples, epochs=10, batch_size=4, lr=1e-2, seed=0, progress=False)
    assert len(losses) == 20
    assert sum(losses[-3:]) / 3 < 0.5 * losses[0]
    assert all(torch.equal(p, language_model[name]) for name, p in model.model.language_model.named_parameters())


@pytest.fixture(scope="module")
def mini_world(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("prepared")
    render_miniworld(MiniWorldParams(train_per_domain=48, test_per_domain=6), root, workers=1)
    return root


def _run_stage(workdir: Path, params: dict) -> subprocess.CompletedProcess:
    (workdir / "params.yaml").write_text(yaml.safe_dump(params))
    return subprocess.run(
        [sys.executable, str(REPO / "stages" / "bootstrap.py")],
        cwd=workdir,
        capture_output=True,
        text=True,
        timeout=300,
    )


def _stage_params(prepared: Path) -> dict:
    return {
        "data": {"prepared_dir": str(prepared)},
        "bootstrap": {
            "vision_epochs": 1,
            "vision_batch_size": 16,
            "epochs": 1,
            "batch_size": 16,
            "arch": {"vocab_size": 512, "text_layers": 2},
            "measure": {"images_per_domain": 4, "best_of": 2, "max_new_tokens": 16, "batch_size": 4},
        },
    }


def test_bootstrap_stage_writes_policy_and_metrics(mini_world, tmp_path):
    result = _run_stage(tmp_path, _stage_params(mini_world))
    assert result.returncode == 0, result.stderr[-2000:]
    policy = tmp_path / "data" / "models" / "base"
    assert (policy / "model.safetensors").exists()
    assert not list(policy.parent.glob(".*partial*"))
    load_policy(str(policy))  # a complete, loadable policy with an image-handling processor
    metrics = json.loads((tmp_path / "data" / "models" / "bootstrap_metrics.json").read_text())
    assert metrics["train"]["steps"] == 6  # 96 examples of both domains / 16
    for dataset in ("miniworld_a", "miniworld_b"):
        measured = metrics["domains"][dataset]
        assert measured["images"] == 4
        assert sum(measured["greedy_categories"].values()) == 4
        assert 0 <= measured["greedy_correctness"] <= 1
    assert set(metrics["targets_met"]) == {"greedy_correctness", "greedy_specificity", "best_of_n_fine_ratio"}

    # deterministic by seed: a second run gives the same weights and the same measurements
    again = tmp_path / "again"
    again.mkdir()
    assert _run_stage(again, _stage_params(mini_world)).returncode == 0
    assert (again / "data/models/base/model.safetensors").read_bytes() == (policy / "model.safetensors").read_bytes()
    rerun = json.loads((again / "data/models/bootstrap_metrics.json").read_text())
    assert rerun["domains"] == metrics["domains"]


def test_bootstrap_stage_bad_input_is_one_line_and_leaves_nothing(mini_world, tmp_path):
    params = _stage_params(tmp_path / "no-such-prepared")
    result = _run_stage(tmp_path, params)
    assert result.returncode == 2
    assert "no-such-prepared" in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "data").exists()

    params = _stage_params(mini_world)
    params["bootstrap"]["label_mix"] = {"easy": {"fine": 1.0}}
    result = _run_stage(tmp_path, params)
    assert result.returncode == 2
    assert "bootstrap.label_mix: no mix for difficulty" in result.stderr
    assert not (tmp_path / "data").exists()

    params["bootstrap"]["label_mix"] = {"easy": {"fine": -1.0}}
    result = _run_stage(tmp_path, params)
    assert result.returncode == 2 and "bootstrap.label_mix" in result.stderr
