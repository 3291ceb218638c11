"""The mini world's base policy: a tiny Qwen2.5-VL built offline (nothing comes from the hub).

Same architecture classes as Qwen2.5-VL-7B-Instruct (Qwen2_5_VLForConditionalGeneration, mrope,
windowed vision tower with 2x2 patch merging), shrunk to about 1.2M parameters, plus a BPE
tokenizer trained locally with Qwen2's pre-tokenizer and special tokens and a Qwen-style chat
template. The saved folder is a plain transformers checkpoint (config.json, model.safetensors,
tokenizer, processor_config.json), so `load_policy` treats it and the real model the same way.
The folder also carries the stock processor's files (preprocessor_config.json, and
`processor_class: Qwen2_5_VLProcessor`), so that engines which build the stock processor
themselves, vLLM among them, can serve it.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers
from transformers import Qwen2_5_VLConfig, Qwen2_5_VLForConditionalGeneration, Qwen2Tokenizer
from transformers.models.qwen2.tokenization_qwen2 import PRETOKENIZE_REGEX

from speciarl.atomic import atomic_directory
from speciarl.policy.params import TinyArch
from speciarl.policy.processor import ImageOnlyQwenVLProcessor, build_image_processor

ENDOFTEXT = "<|endoftext|>"
IM_START = "<|im_start|>"
IM_END = "<|im_end|>"
VISION_START = "<|vision_start|>"
VISION_END = "<|vision_end|>"
IMAGE_PAD = "<|image_pad|>"
VIDEO_PAD = "<|video_pad|>"
# Qwen2.5-VL's special tokens; the object/box/quad markers are unused here but kept so the
# vocabulary has the same special tokens as the real model.
SPECIAL_TOKENS = [
    ENDOFTEXT,
    IM_START,
    IM_END,
    "<|object_ref_start|>",
    "<|object_ref_end|>",
    "<|box_start|>",
    "<|box_end|>",
    "<|quad_start|>",
    "<|quad_end|>",
    VISION_START,
    VISION_END,
    "<|vision_pad|>",
    IMAGE_PAD,
    VIDEO_PAD,
]
DEFAULT_SYSTEM = "You are a helpful assistant."

# Qwen2.5-VL's chat layout: a default system turn, <|im_start|>role\n ... <|im_end|>\n per turn, an
# image as <|vision_start|><|image_pad|><|vision_end|> (the processor expands the pad to one token
# per merged patch). Content may be a string or a list of {"type": "image"|"text"} parts.
CHAT_TEMPLATE = (
    "{%- for message in messages -%}"
    "{%- if loop.first and message['role'] != 'system' -%}"
    "{{ '<|im_start|>system\\n" + DEFAULT_SYSTEM + "<|im_end|>\\n' }}"
    "{%- endif -%}"
    "{{ '<|im_start|>' + message['role'] + '\\n' }}"
    "{%- if message['content'] is string -%}{{ message['content'] }}"
    "{%- else -%}{%- for part in message['content'] -%}"
    "{%- if part['type'] == 'image' -%}{{ '<|vision_start|><|image_pad|><|vision_end|>' }}"
    "{%- elif part['type'] == 'text' -%}{{ part['text'] }}"
    "{%- endif -%}{%- endfor -%}{%- endif -%}"
    "{{ '<|im_end|>\\n' }}"
    "{%- endfor -%}"
    "{%- if add_generation_prompt -%}{{ '<|im_start|>assistant\\n' }}{%- endif -%}"
)


def train_tokenizer(corpus: list[str], vocab_size: int) -> Qwen2Tokenizer:
    """A byte-level BPE with Qwen2's normaliser, pre-tokenizer and special tokens, trained on `corpus`."""
    if not corpus:
        raise ValueError("tokenizer corpus is empty")
    bpe = Tokenizer(models.BPE())
    bpe.normalizer = normalizers.NFC()
    bpe.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(PRETOKENIZE_REGEX), behavior="isolated"),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
        ]
    )
    bpe.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=SPECIAL_TOKENS,
        # every byte stays encodable, so text outside the corpus never maps to an unknown token
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    bpe.train_from_iterator(corpus, trainer=trainer)
    trained = json.loads(bpe.to_str())["model"]
    return Qwen2Tokenizer(
        vocab=trained["vocab"],
        merges=[tuple(merge) for merge in trained["merges"]],
        unk_token=ENDOFTEXT,
        eos_token=IM_END,  # an instruct model ends its turn with <|im_end|>
        pad_token=ENDOFTEXT,
        additional_special_tokens=SPECIAL_TOKENS[1:],
        chat_template=CHAT_TEMPLATE,
    )


def tiny_config(arch: TinyArch, tokenizer: Qwen2Tokenizer) -> Qwen2_5_VLConfig:
    ids = {token: tokenizer.convert_tokens_to_ids(token) for token in SPECIAL_TOKENS}
    return Qwen2_5_VLConfig(
        text_config=dict(
            vocab_size=len(tokenizer),
            hidden_size=arch.text_hidden,
            intermediate_size=arch.text_intermediate,
            num_hidden_layers=arch.text_layers,
            num_attention_heads=arch.text_heads,
            num_key_value_heads=arch.text_kv_heads,
            max_position_embeddings=arch.max_positions,
            rope_parameters={
                "rope_type": "default",
                "rope_theta": arch.rope_theta,
                "mrope_section": arch.mrope_section,
            },
            bos_token_id=ids[ENDOFTEXT],
            eos_token_id=ids[IM_END],
            pad_token_id=ids[ENDOFTEXT],
            tie_word_embeddings=True,
        ),
        vision_config=dict(
            depth=arch.vision_depth,
            hidden_size=arch.vision_hidden,
            intermediate_size=arch.vision_intermediate,
            num_heads=arch.vision_heads,
            patch_size=arch.patch_size,
            spatial_merge_size=arch.merge_size,
            temporal_patch_size=2,
            # one window covers the whole image, and the last block attends globally as in the 7B
            window_size=arch.image_size,
            fullatt_block_indexes=[arch.vision_depth - 1],
            out_hidden_size=arch.text_hidden,
        ),
        image_token_id=ids[IMAGE_PAD],
        video_token_id=ids[VIDEO_PAD],
        vision_start_token_id=ids[VISION_START],
        vision_end_token_id=ids[VISION_END],
        tie_word_embeddings=True,
    )


def build_tiny_policy(out_dir: str | Path, corpus: list[str], arch: TinyArch | None = None, seed: int = 0) -> None:
    """Train the tokenizer on `corpus`, initialise the model from `seed`, save both to `out_dir`.

    Written to a temporary sibling folder and moved into place at the end, so `out_dir` is either
    the previous complete policy or the new one, never half of one.
    """
    save_policy(*init_tiny_policy(corpus, arch, seed), out_dir)


def init_tiny_policy(corpus: list[str], arch: TinyArch | None = None, seed: int = 0):
    """(randomly initialised tiny model, its image-only processor); the tokenizer is trained on `corpus`."""
    arch = arch or TinyArch()
    tokenizer = train_tokenizer(corpus, arch.vocab_size)
    processor = ImageOnlyQwenVLProcessor(
        image_processor=build_image_processor(arch.image_size, arch.patch_size, arch.merge_size),
        tokenizer=tokenizer,
        chat_template=CHAT_TEMPLATE,
    )
    torch.manual_seed(seed)
    model = Qwen2_5_VLForConditionalGeneration(tiny_config(arch, tokenizer))
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    return model, processor


def save_policy(model, processor, out_dir: str | Path) -> None:
    """Save model (safetensors) and processor into `out_dir` atomically (speciarl.atomic)."""
    with atomic_directory(out_dir) as temp:
        model.save_pretrained(temp, safe_serialization=True)
        processor.save_pretrained(temp)
        write_stock_processor_files(temp, processor)


STOCK_PROCESSOR_CLASS = "Qwen2_5_VLProcessor"
STOCK_IMAGE_PROCESSOR_TYPE = "Qwen2VLImageProcessor"


def write_stock_processor_files(folder: Path, processor) -> None:
    """Make a saved policy folder loadable as the stock Qwen2.5-VL processor, as the 7B's folder is.

    Our processor saves itself as `ImageOnlyQwenVLProcessor`, a class only this package knows;
    vLLM (and AutoProcessor where torchvision works) build the processor from the folder's files.
    `load_processor` still rebuilds the image-only processor where torchvision is missing.
    """
    image_config = {
        **processor.image_processor.to_dict(),
        "image_processor_type": STOCK_IMAGE_PROCESSOR_TYPE,
        "processor_class": STOCK_PROCESSOR_CLASS,
    }
    (folder / "preprocessor_config.json").write_text(json.dumps(image_config, indent=2, sort_keys=True) + "\n")
    for name in ("processor_config.json", "tokenizer_config.json"):
        config = json.loads((folder / name).read_text())
        config["processor_class"] = STOCK_PROCESSOR_CLASS
        (folder / name).write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")
