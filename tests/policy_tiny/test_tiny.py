"""The tiny Qwen2.5-VL policy: build, save, load, processor checks, adapters."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from peft import LoraConfig, get_peft_model
from PIL import Image
from safetensors.torch import load_file
from tiny_world import UNTRAINED_ARCH, UNTRAINED_CORPUS
from transformers import Qwen2_5_VLForConditionalGeneration

from speciarl.policy.loading import load_policy, load_processor
from speciarl.policy.processor import vision_token_ids
from speciarl.policy.prompts import build_messages, get_prompt
from speciarl.policy.tiny import IMAGE_PAD, VIDEO_PAD, VISION_END, VISION_START, TinyArch, build_tiny_policy


def _image(size: int = 112) -> Image.Image:
    return Image.fromarray(np.random.default_rng(0).integers(0, 255, (size, size, 3), dtype=np.uint8))


def test_round_trip_uses_safetensors_only(untrained_policy, tmp_path):
    files = {path.name for path in Path(untrained_policy).iterdir()}
    assert "model.safetensors" in files
    assert not [name for name in files if name.endswith((".bin", ".pt", ".pth", ".pkl", ".ckpt"))]
    assert not [name for name in Path(untrained_policy).parent.iterdir() if ".partial" in name.name]

    model, processor = load_policy(untrained_policy)
    assert isinstance(model, Qwen2_5_VLForConditionalGeneration)
    assert not model.training
    model.save_pretrained(tmp_path / "again")
    saved = load_file(str(Path(untrained_policy) / "model.safetensors"))
    resaved = load_file(str(tmp_path / "again" / "model.safetensors"))
    assert saved.keys() == resaved.keys()
    assert all(torch.equal(saved[name], resaved[name]) for name in saved)
    config = model.config
    assert config.text_config.hidden_size // config.text_config.num_attention_heads >= 32
    assert sum(p.numel() for p in model.parameters()) < 2_000_000


def test_build_is_deterministic_by_seed(untrained_policy, tmp_path):
    build_tiny_policy(tmp_path / "again", UNTRAINED_CORPUS, UNTRAINED_ARCH, seed=0)
    assert (tmp_path / "again" / "tokenizer.json").read_text() == (
        Path(untrained_policy) / "tokenizer.json"
    ).read_text()
    first = load_file(str(Path(untrained_policy) / "model.safetensors"))
    second = load_file(str(tmp_path / "again" / "model.safetensors"))
    assert all(torch.equal(first[name], second[name]) for name in first)


def test_processor_turns_a_112px_image_into_16_image_tokens(untrained_policy):
    processor = load_processor(untrained_policy)
    text = processor.apply_chat_template(
        build_messages(get_prompt("general")), add_generation_prompt=True, tokenize=False
    )
    assert text.startswith("<|im_start|>system\n") and text.endswith("<|im_start|>assistant\n")
    assert f"{VISION_START}{IMAGE_PAD}{VISION_END}" in text
    inputs = processor(images=[_image()], text=[text], return_tensors="pt")
    assert int((inputs["input_ids"] == processor.image_token_id).sum()) == 16
    assert inputs["pixel_values"].shape[0] == 64  # 8x8 patches of 14 px
    assert inputs["image_grid_thw"].tolist() == [[1, 8, 8]]
    # a 224 px image is resized to the same 16 tokens
    inputs = processor(images=[_image(224)], text=[text], return_tensors="pt")
    assert int((inputs["input_ids"] == processor.image_token_id).sum()) == 16


def test_tokenizer_has_the_qwen_special_tokens(untrained_policy):
    processor = load_processor(untrained_policy)
    tokenizer = processor.tokenizer
    for token in ("<|im_start|>", "<|im_end|>", "<|endoftext|>", VISION_START, VISION_END, IMAGE_PAD, VIDEO_PAD):
        assert len(tokenizer(token, add_special_tokens=False)["input_ids"]) == 1, token
    assert tokenizer.eos_token == "<|im_end|>"
    assert sorted(vision_token_ids(processor)) == sorted(
        tokenizer.convert_tokens_to_ids([IMAGE_PAD, VIDEO_PAD, VISION_START, VISION_END, "<|vision_pad|>"])
    )
    # text outside the training corpus stays encodable (byte-level BPE) and round-trips
    text = "Ünïcode 漢字 F/A-18"
    assert tokenizer.decode(tokenizer(text, add_special_tokens=False)["input_ids"]) == text


def test_refuses_a_processor_that_drops_images(policy_copy):
    # Without its image preprocessing configs the folder only yields a tokenizer.
    for name in ("processor_config.json", "preprocessor_config.json"):
        (Path(policy_copy) / name).unlink()
    with pytest.raises(ValueError, match="drops images"):
        load_policy(policy_copy)


def test_the_folder_carries_the_stock_processor_files_for_vllm(untrained_policy):
    folder = Path(untrained_policy)
    image_config = json.loads((folder / "preprocessor_config.json").read_text())
    assert image_config["image_processor_type"] == "Qwen2VLImageProcessor"
    assert image_config["processor_class"] == "Qwen2_5_VLProcessor"
    assert image_config["merge_size"] == 2 and image_config["patch_size"] == 14
    for name in ("processor_config.json", "tokenizer_config.json"):
        assert json.loads((folder / name).read_text())["processor_class"] == "Qwen2_5_VLProcessor"
    # where torchvision is missing, loading still rebuilds a processor that handles images
    _, processor = load_policy(untrained_policy)
    assert processor.image_processor is not None and processor.image_token_id is not None


def test_missing_model_path_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="model path not found"):
        load_policy(str(tmp_path / "nowhere" / "base"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="no config.json"):
        load_policy(str(tmp_path / "empty"))


def _save_adapter(base_dir: str, out: Path) -> Path:
    model = Qwen2_5_VLForConditionalGeneration.from_pretrained(base_dir)
    lora = get_peft_model(
        model, LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"], init_lora_weights=False)
    )
    lora.save_pretrained(out)
    return out


def test_adapter_loads_on_its_base(untrained_policy, tmp_path):
    adapter = _save_adapter(untrained_policy, tmp_path / "adapter")
    assert (adapter / "adapter_model.safetensors").exists()
    base, processor = load_policy(untrained_policy)
    tuned, _ = load_policy(untrained_policy, adapter=str(adapter))
    inputs = processor(images=[_image()], text=["<|vision_start|><|image_pad|><|vision_end|>hi"], return_tensors="pt")
    with torch.no_grad():
        assert not torch.allclose(base(**inputs).logits, tuned(**inputs).logits)


def test_adapter_of_another_base_is_refused(untrained_policy, tmp_path):
    other = tmp_path / "other"
    build_tiny_policy(
        other, UNTRAINED_CORPUS, TinyArch(vocab_size=512, text_hidden=64, text_heads=2, text_intermediate=128)
    )
    adapter = _save_adapter(str(other), tmp_path / "adapter")
    with pytest.raises(ValueError, match="does not match base model"):
        load_policy(untrained_policy, adapter=str(adapter))


def test_adapter_with_extra_layers_is_refused(untrained_policy, tmp_path):
    deeper = tmp_path / "deeper"
    build_tiny_policy(deeper, UNTRAINED_CORPUS, TinyArch(vocab_size=512, text_layers=6))
    adapter = _save_adapter(str(deeper), tmp_path / "adapter")
    with pytest.raises(ValueError, match="does not match base model .*unexpected"):
        load_policy(untrained_policy, adapter=str(adapter))


def test_adapter_without_safetensors_is_refused(untrained_policy, tmp_path):
    adapter = _save_adapter(untrained_policy, tmp_path / "adapter")
    (adapter / "adapter_model.safetensors").rename(adapter / "adapter_model.bin")
    with pytest.raises(FileNotFoundError, match="only safetensors"):
        load_policy(untrained_policy, adapter=str(adapter))


def test_bad_dtype_is_refused(untrained_policy):
    with pytest.raises(ValueError, match="unknown dtype"):
        load_policy(untrained_policy, dtype="float8")


def test_failed_build_leaves_no_policy(tmp_path):
    with pytest.raises(ValueError, match="corpus is empty"):
        build_tiny_policy(tmp_path / "base", [])
    assert not (tmp_path / "base").exists()
    assert json.dumps(sorted(p.name for p in tmp_path.iterdir())) == "[]"
