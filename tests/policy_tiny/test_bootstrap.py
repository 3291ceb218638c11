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
from PIL import Image, UnidentifiedImageError

from speciarl.data.miniworld import render_miniworld
from speciarl.data.miniworld_params import MiniWorldParams
from speciarl.data.taxonomy import Taxonomy
from speciarl.judge.taxonomy_judge import TaxonomyJudge
from speciarl.labels import Category, extract_answer
from speciarl.policy.loading import load_policy
from speciarl.policy.prompts import PROMPTS, build_messages, get_prompt
from speciarl.policy.sft import (
    Example,
    _patch_embedding_as_matmul,
    _PixelBatches,
    categorize,
    completion_loss,
    decode_image,
    draw_target,
    encode_images,
    measure_policy,
    pretrain_vision,
    sft_batch,
    train_sft,
)

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


def test_measure_counts_greedy_best_of_n_difficulties_and_every_prompts_format():
    """Hand-written completions: the greedy answer, N samples, and a format error under one prompt."""
    answer = "<think>It is a shape.</think><answer>{}</answer>".format
    prompts = {"general": "ask plainly", "terse": "ask tersely"}

    def generate(images, n, temperature, prompt_text):
        if prompt_text == "ask tersely":
            return [["red square"]] * len(images)  # no tags: a format error
        if temperature == 0.0:
            return [[answer("square")], [answer("blue square")]][: len(images)]
        return [[answer("square"), answer("red square")], [answer("shape"), answer("shape")]][: len(images)]

    samples = [(_jpeg((200, 30, 30), 0), "red square"), (_jpeg((30, 30, 200), 1), "blue square")]
    measured = measure_policy(
        generate,
        TAXONOMY,
        samples,
        best_of=2,
        batch_size=2,
        prompts=prompts,
        difficulty={"red square": "hard", "blue square": "easy"},
        progress=False,
    )
    assert measured["greedy_categories"]["less specific"] == 1 and measured["greedy_categories"]["specific"] == 1
    assert measured["greedy_correctness"] == 1.0 and measured["greedy_specificity"] == 0.5
    assert measured["greedy_fine_images"] == 1 and measured["best_of_n_fine_images"] == 1
    assert measured["sampled_categories"]["generic"] == 2
    assert measured["format_error_rate_by_prompt"] == {"general": 0.0, "terse": 1.0}
    hard, easy = measured["by_difficulty"]["hard"], measured["by_difficulty"]["easy"]
    assert (hard["greedy_fine_images"], hard["best_of_n_fine_images"]) == (0, 1)
    assert (easy["greedy_fine_images"], easy["best_of_n_fine_images"]) == (1, 0)


def test_a_few_sft_steps_reduce_the_loss(untrained_policy):
    model, processor = load_policy(untrained_policy)
    colours = {"red square": (220, 30, 30), "blue square": (30, 30, 220)}
    examples = [
        Example(_jpeg(colours[label], i), TAXONOMY, label, {"fine": 1.0}) for i, label in enumerate(list(colours) * 4)
    ]
    losses = train_sft(
        model, processor, examples, [get_prompt("general")], epochs=10, batch_size=4, lr=1e-2, seed=0, progress=False
    )
    assert len(losses) == 20
    assert sum(losses[-3:]) / 3 < 0.5 * losses[0]
    assert not model.training


def _image_grids(processor, images) -> torch.Tensor:
    return processor.image_processor(images=images, return_tensors="pt")["image_grid_thw"]


def test_sft_masks_everything_but_the_completion(untrained_policy):
    _, processor = load_policy(untrained_policy)
    images = [Image.open(io.BytesIO(_jpeg((0, 0, 0), i))) for i in range(2)]
    completions = ["<answer>shape</answer>", "<think>It is a shape.</think><answer>red square</answer>"]
    inputs = sft_batch(processor, get_prompt("general"), completions, _image_grids(processor, images))
    tokenizer = processor.tokenizer
    for row, completion in enumerate(completions):
        kept = inputs["labels"][row][inputs["labels"][row] != -100].tolist()
        assert tokenizer.decode(kept) == completion + tokenizer.eos_token


def test_sft_inputs_are_the_processors_and_cached_image_tokens_give_the_same_loss(untrained_policy):
    """The text side built without the pixels equals the processor's; encoder outputs computed once
    beforehand give the loss that the pixels give."""
    model, processor = load_policy(untrained_policy)
    jpegs = [_jpeg((200, 30, 30), 0), _jpeg((30, 30, 200), 1)]
    images = [Image.open(io.BytesIO(jpeg)).convert("RGB") for jpeg in jpegs]
    completions = ["<answer>shape</answer>", "<think>It is a shape.</think><answer>red square</answer>"]
    prompt = processor.apply_chat_template(
        build_messages(get_prompt("specific")), add_generation_prompt=True, tokenize=False
    )
    processor.tokenizer.padding_side = "right"
    reference = processor(
        images=images,
        text=[prompt + c + processor.tokenizer.eos_token for c in completions],
        padding=True,
        return_tensors="pt",
    )
    inputs = sft_batch(processor, get_prompt("specific"), completions, reference["image_grid_thw"])
    for key in ("input_ids", "attention_mask", "mm_token_type_ids", "image_grid_thw"):
        assert torch.equal(inputs[key], reference[key]), key

    with torch.no_grad():
        from_pixels = model(**inputs, pixel_values=reference["pixel_values"]).loss
        features = [feature for feature, _ in encode_images(model, processor, jpegs)]
        from transformers.modeling_outputs import BaseModelOutputWithPooling

        cached = model(**inputs, mm_encoder_outputs={"image": BaseModelOutputWithPooling(pooler_output=features)}).loss
        logits_where_needed = completion_loss(model, inputs | {"pixel_values": reference["pixel_values"]})
    assert torch.allclose(from_pixels, cached, atol=1e-6)
    assert torch.allclose(from_pixels, logits_where_needed, atol=1e-6)


def test_the_patch_embedding_as_a_matmul_gives_the_convolutions_image_tokens(untrained_policy):
    model, processor = load_policy(untrained_policy)
    images = [Image.open(io.BytesIO(_jpeg(colour, i))).convert("RGB") for i, colour in enumerate([(200, 30, 30)] * 3)]
    pixels = processor.image_processor(images=images, return_tensors="pt")
    visual = model.model.visual
    with torch.no_grad():
        by_convolution = model.get_image_features(pixels["pixel_values"], pixels["image_grid_thw"]).pooler_output
        with _patch_embedding_as_matmul(visual):
            assert not isinstance(visual.patch_embed.proj, torch.nn.Conv3d)
            by_matmul = model.get_image_features(pixels["pixel_values"], pixels["image_grid_thw"]).pooler_output
    assert isinstance(visual.patch_embed.proj, torch.nn.Conv3d)  # restored
    for convolved, multiplied in zip(by_convolution, by_matmul, strict=True):
        assert torch.allclose(convolved, multiplied, atol=1e-5)


def test_sft_draws_its_prompt_per_batch_from_every_prompt_given(untrained_policy, monkeypatch):
    import speciarl.policy.sft as sft_module

    asked = []
    original = sft_module.sft_batch
    monkeypatch.setattr(
        sft_module,
        "sft_batch",
        lambda processor, prompt, *rest: asked.append(prompt) or original(processor, prompt, *rest),
    )
    model, processor = load_policy(untrained_policy)
    examples = [Example(_jpeg((200, 200, 0), i), TAXONOMY, "red square", {"group": 1.0}) for i in range(4)]
    train_sft(
        model,
        processor,
        examples,
        list(PROMPTS.values()),
        epochs=30,
        batch_size=4,
        lr=1e-3,
        train_vision=False,
        progress=False,
    )
    assert set(asked) == set(PROMPTS.values())


def test_sft_can_leave_the_vision_tower_as_it_is(untrained_policy):
    model, processor = load_policy(untrained_policy)
    vision = {name: p.clone() for name, p in model.model.visual.named_parameters()}
    examples = [Example(_jpeg((200, 200, 0), i), TAXONOMY, "red square", {"group": 1.0}) for i in range(4)]
    train_sft(
        model,
        processor,
        examples,
        [get_prompt("general")],
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


def test_pixel_batches_are_the_processors_and_a_corrupt_image_fails_in_the_trainer(untrained_policy):
    _, processor = load_policy(untrained_policy)
    good = [Example(_jpeg((200, 30, 30), i), TAXONOMY, "red square", {"fine": 1.0}) for i in range(2)]
    corrupt = Example(b"not a jpeg", TAXONOMY, "red square", {"fine": 1.0})
    loader = torch.utils.data.DataLoader(
        _PixelBatches([good, [corrupt]], processor.image_processor), batch_size=None, num_workers=1
    )
    batches = iter(loader)
    expected = processor.image_processor(images=[decode_image(e.image) for e in good], return_tensors="pt")
    first = next(batches)
    assert torch.equal(first["pixel_values"], expected["pixel_values"])
    assert torch.equal(first["image_grid_thw"], expected["image_grid_thw"])
    with pytest.raises(UnidentifiedImageError):
        next(batches)


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
        assert set(measured["format_error_rate_by_prompt"]) == set(PROMPTS)
        by_difficulty = measured["by_difficulty"].values()
        assert sum(part["images"] for part in by_difficulty) == 4
        assert sum(part["best_of_n_fine_images"] for part in by_difficulty) == measured["best_of_n_fine_images"]
    assert set(metrics["targets_met"]) == {
        "greedy_correctness",
        "greedy_specificity",
        "best_of_n_fine_ratio",
        "best_of_n_fine_share",
        "format_errors_every_prompt",
    }

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


def test_warm_start_runs_each_phase_on_its_own_thread_count(mini_world, tmp_path, monkeypatch):
    import speciarl.policy.sft as sft_module
    from speciarl.policy.params import BootstrapParams

    seen = {}

    def phase(name, real):
        def run(*args, **kwargs):
            seen[name] = torch.get_num_threads()
            return real(*args, **kwargs)

        return run

    monkeypatch.setattr(sft_module, "pretrain_vision", phase("vision", sft_module.pretrain_vision))
    monkeypatch.setattr(sft_module, "train_sft", phase("sft", sft_module.train_sft))
    params = BootstrapParams(
        out_dir=str(tmp_path / "base"),
        arch={"vocab_size": 512},
        vision_epochs=1,
        epochs=1,
        vision_threads=1,
        threads=2,
        measure={"images_per_domain": 2, "best_of": 1, "max_new_tokens": 8},
    )
    threads = torch.get_num_threads()
    try:
        sft_module.warm_start(params, mini_world, progress=False)
        assert seen == {"vision": 1, "sft": 2}
        assert torch.get_num_threads() == 2  # the measurement runs on the SFT's count
    finally:
        torch.set_num_threads(threads)
