"""The transformers backend on the tiny policy: real generation on CPU."""

import numpy as np
import pytest
import torch
from PIL import Image

from speciarl.policy.generation import SamplingConfig, TransformersBackend, chat_text, make_backend, set_image_size
from speciarl.policy.loading import load_policy
from speciarl.policy.params import PolicyParams
from speciarl.policy.processor import vision_token_ids
from speciarl.policy.prompts import get_prompt

PROMPT = get_prompt("general")


def images(count: int) -> list[Image.Image]:
    rng = np.random.default_rng(0)
    return [Image.fromarray(rng.integers(0, 255, (112, 112, 3), dtype=np.uint8)) for _ in range(count)]


@pytest.fixture(scope="module")
def backend(untrained_policy) -> TransformersBackend:
    return make_backend(PolicyParams(model=str(untrained_policy), device="cpu", cpu_threads=1))


def test_greedy_is_deterministic_and_per_image(backend):
    greedy = SamplingConfig(max_new_tokens=8)
    first = backend.generate(images(3), PROMPT, greedy)
    assert [len(texts) for texts in first] == [1, 1, 1]
    assert backend.generate(images(3), PROMPT, greedy.with_seed(99)) == first  # greedy ignores the seed
    # the same image alone (no padding differences here: one prompt) gives the same completion
    assert backend.generate(images(1), PROMPT, greedy) == first[:1]


def test_sampling_gives_n_completions_reproducible_by_seed(backend):
    sampling = SamplingConfig(n=4, temperature=1.0, top_p=0.95, max_new_tokens=8, seed=7)
    first = backend.generate(images(2), PROMPT, sampling)
    assert [len(texts) for texts in first] == [4, 4]
    assert backend.generate(images(2), PROMPT, sampling) == first
    assert backend.generate(images(2), PROMPT, sampling.with_seed(8)) != first
    assert len(set(first[0])) > 1  # the samples differ from one another


def test_vision_tokens_are_never_generated(backend):
    """Even when the policy prefers them: logits pushed towards every vision token."""
    vision = vision_token_ids(backend.processor)
    assert len(vision) >= 4

    def favour_vision(module, args, output):
        output[..., vision] += 1000.0
        return output

    handle = backend.model.get_output_embeddings().register_forward_hook(favour_vision)
    try:
        texts = backend.generate(images(2), PROMPT, SamplingConfig(n=2, temperature=1.0, max_new_tokens=6))
    finally:
        handle.remove()
    for text in (t for per_image in texts for t in per_image):
        assert text  # something was generated
        ids = backend.tokenizer(text, add_special_tokens=False)["input_ids"]
        assert not set(ids) & set(vision), text


def test_processor_that_drops_images_is_refused(backend):
    bare_tokenizer = backend.processor.tokenizer
    with pytest.raises(ValueError, match="drops images"):
        TransformersBackend(backend.model, bare_tokenizer)


def test_sampling_config_rejects_nonsense():
    with pytest.raises(ValueError, match="greedy decoding"):
        SamplingConfig(n=4, temperature=0.0)
    with pytest.raises(ValueError, match="top_p"):
        SamplingConfig(temperature=1.0, top_p=0.0)


def test_missing_model_or_adapter_is_named(tmp_path, untrained_policy):
    missing = tmp_path / "no" / "model"
    with pytest.raises(FileNotFoundError, match=str(missing)):
        make_backend(PolicyParams(model=str(missing)))
    with pytest.raises(FileNotFoundError, match=f"{tmp_path} has no adapter_config.json"):
        make_backend(PolicyParams(model=str(untrained_policy)), adapter=tmp_path)


def test_image_size_params_change_the_image_tokens(untrained_policy):
    backend = make_backend(
        PolicyParams(model=str(untrained_policy), device="cpu", min_pixels=224 * 224, max_pixels=224 * 224)
    )
    inputs = backend.processor(
        text=["x<|vision_start|><|image_pad|><|vision_end|>"], images=images(1), return_tensors="pt"
    )
    assert inputs["image_grid_thw"].tolist() == [[1, 16, 16]]
    assert len(backend.generate(images(1), PROMPT, SamplingConfig(max_new_tokens=2))) == 1


def test_shared_prefill_matches_plain_generate_with_padding(untrained_policy):
    """The backend prefills each prompt once and repeats the cache for its n samples; on a policy
    with varied outputs and a left-padded batch (two image sizes), greedy must equal plain generate."""
    model, processor = load_policy(str(untrained_policy))
    set_image_size(processor, 112 * 112, 224 * 224)
    torch.manual_seed(1)
    with torch.no_grad():
        for name, weight in model.named_parameters():
            if "norm" not in name:
                weight.normal_(0, 0.3)  # random weights: varied, image-dependent tokens
    backend = TransformersBackend(model, processor)
    pictures = images(3)
    pictures[1] = pictures[1].resize((224, 224))
    texts = backend.generate(pictures, PROMPT, SamplingConfig(max_new_tokens=10))

    inputs = processor(text=[chat_text(processor, PROMPT)] * 3, images=pictures, return_tensors="pt", padding=True)
    assert (inputs["attention_mask"] == 0).any()  # the batch really is padded
    with torch.inference_mode():
        plain = model.generate(
            **inputs,
            max_new_tokens=10,
            do_sample=False,
            suppress_tokens=backend.suppressed,
            eos_token_id=backend.eos_ids,
            pad_token_id=backend.pad_id,
        )
    expected = [backend.decode(row) for row in plain[:, inputs["input_ids"].shape[1] :].tolist()]
    assert [t for (t,) in texts] == expected
    assert len(set(expected)) == 3
