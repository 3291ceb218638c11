"""GPU generation throughput of a Qwen2.5-VL-7B-shaped policy with random weights (nothing downloaded).

    python benchmarks/device_generation.py --batch 64 256              # on a GPU box
    python benchmarks/device_generation.py --tiny --batch 2 4          # dry run of the construction, CPU

The model is built from the published Qwen2.5-VL-7B-Instruct dimensions (text: hidden 3584, 28
layers, 28 heads, 4 KV heads, MLP 18944, vocab 152064; vision: 32 blocks of 1280 with 16 heads, MLP
3420, window attention with full attention at blocks 7/15/23/31), random weights, bf16, SDPA
attention. Each batch holds one 448x448 image per prompt (1024 patches -> 256 image tokens) and the
`general` prompt's length in text tokens; generation is forced to --new-tokens tokens (end of turn
suppressed), greedy. Images enter as pixel values and a patch grid directly, so no image processor
(and no torchvision) is needed. With --through-backend the same batches also go through
speciarl's TransformersBackend (image-only processor, shared prefill, vision-token suppression).

Prints new tokens/s per batch size: new tokens / wall time of `generate`, prefill included.
Reference (plain `generate`, bf16, sdpa, one H200): about 710 new tokens/s at batch 64, 2,700 at 256.
"""

from __future__ import annotations

import argparse
import functools
import inspect
import sys
import time

import torch
import transformers
from transformers import Qwen2_5_VLConfig, Qwen2_5_VLForConditionalGeneration

# Qwen2.5-VL's special token ids (its tokenizer's), used by the directly built inputs.
QWEN_IDS = {
    "endoftext": 151643,
    "im_end": 151645,
    "vision_start": 151652,
    "vision_end": 151653,
    "image_pad": 151655,
    "video_pad": 151656,
}
# Text tokens around the image: the chat template (system turn, user turn header, assistant header)
# and the `general` prompt, about as many as Qwen's tokenizer makes of them.
TEXT_BEFORE_IMAGE, TEXT_AFTER_IMAGE = 20, 60


def arch(tiny: bool) -> dict:
    if tiny:
        return dict(
            hidden=128,
            layers=2,
            heads=4,
            kv_heads=2,
            intermediate=256,
            vocab=152064,
            mrope=[4, 6, 6],
            v_depth=2,
            v_hidden=64,
            v_heads=2,
            v_intermediate=128,
            fullatt=[1],
        )
    return dict(
        hidden=3584,
        layers=28,
        heads=28,
        kv_heads=4,
        intermediate=18944,
        vocab=152064,
        mrope=[16, 24, 24],
        v_depth=32,
        v_hidden=1280,
        v_heads=16,
        v_intermediate=3420,
        fullatt=[7, 15, 23, 31],
    )


def build_config(sizes: dict, ids: dict) -> Qwen2_5_VLConfig:
    return Qwen2_5_VLConfig(
        text_config=dict(
            vocab_size=sizes["vocab"],
            hidden_size=sizes["hidden"],
            intermediate_size=sizes["intermediate"],
            num_hidden_layers=sizes["layers"],
            num_attention_heads=sizes["heads"],
            num_key_value_heads=sizes["kv_heads"],
            max_position_embeddings=128000,
            rms_norm_eps=1e-6,
            rope_parameters={"rope_type": "default", "rope_theta": 1000000.0, "mrope_section": sizes["mrope"]},
            bos_token_id=ids["endoftext"],
            eos_token_id=ids["im_end"],
            pad_token_id=ids["endoftext"],
            tie_word_embeddings=False,
        ),
        vision_config=dict(
            depth=sizes["v_depth"],
            hidden_size=sizes["v_hidden"],
            intermediate_size=sizes["v_intermediate"],
            num_heads=sizes["v_heads"],
            patch_size=14,
            spatial_merge_size=2,
            temporal_patch_size=2,
            window_size=112,
            fullatt_block_indexes=sizes["fullatt"],
            out_hidden_size=sizes["hidden"],
            tokens_per_second=2,
        ),
        image_token_id=ids["image_pad"],
        video_token_id=ids["video_pad"],
        vision_start_token_id=ids["vision_start"],
        vision_end_token_id=ids["vision_end"],
        tie_word_embeddings=False,
    )


def build_model(config: Qwen2_5_VLConfig, device: str, dtype: torch.dtype) -> Qwen2_5_VLForConditionalGeneration:
    torch.manual_seed(0)
    with torch.device(device):  # random init directly on the GPU: seconds instead of minutes on CPU
        model = Qwen2_5_VLForConditionalGeneration._from_config(config, attn_implementation="sdpa", dtype=dtype)
    return model.eval()


def direct_inputs(model, batch: int, image_size: int, device: str, dtype: torch.dtype) -> dict:
    """One prompt per image: text, <vision_start>, one pad per merged patch, <vision_end>, text."""
    grid = image_size // 14
    image_tokens = (grid // 2) ** 2
    generator = torch.Generator().manual_seed(0)
    text = torch.randint(1000, 150000, (TEXT_BEFORE_IMAGE + TEXT_AFTER_IMAGE,), generator=generator)
    row = torch.cat(
        [
            text[:TEXT_BEFORE_IMAGE],
            torch.tensor(
                [QWEN_IDS["vision_start"]] + [QWEN_IDS["image_pad"]] * image_tokens + [QWEN_IDS["vision_end"]]
            ),
            text[TEXT_BEFORE_IMAGE:],
        ]
    )
    input_ids = row.repeat(batch, 1)
    inputs = {
        "input_ids": input_ids,
        "attention_mask": torch.ones_like(input_ids),
        # per image: (temporal, height, width) patches; rows of 3 * 2 (frames) * 14 * 14 values
        "pixel_values": torch.randn(batch * grid * grid, 3 * 2 * 14 * 14, generator=generator).to(dtype),
        "image_grid_thw": torch.tensor([[1, grid, grid]] * batch),
    }
    if "mm_token_type_ids" in inspect.signature(model.forward).parameters:
        inputs["mm_token_type_ids"] = (input_ids == QWEN_IDS["image_pad"]).int()
    return {key: value.to(device) for key, value in inputs.items()}


def sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def plain_generate(model, inputs: dict, new_tokens: int) -> int:
    vision = [QWEN_IDS[name] for name in ("vision_start", "vision_end", "image_pad", "video_pad")]
    with torch.inference_mode():
        output = model.generate(
            **inputs,
            max_new_tokens=new_tokens,
            min_new_tokens=new_tokens,
            do_sample=False,
            suppress_tokens=vision,
            eos_token_id=QWEN_IDS["im_end"],
            pad_token_id=QWEN_IDS["endoftext"],
        )
    return (output.shape[1] - inputs["input_ids"].shape[1]) * output.shape[0]


def through_backend(model, batch: int, image_size: int, new_tokens: int):
    """Returns a function running one batch through speciarl's TransformersBackend (its real path)."""
    from PIL import Image

    from speciarl.policy.generation import SamplingConfig, TransformersBackend
    from speciarl.policy.processor import ImageOnlyQwenVLProcessor, build_image_processor
    from speciarl.policy.prompts import PROMPTS, get_prompt
    from speciarl.policy.tiny import CHAT_TEMPLATE, train_tokenizer

    tokenizer = train_tokenizer(list(PROMPTS.values()) * 4, 1024)
    processor = ImageOnlyQwenVLProcessor(
        image_processor=build_image_processor(image_size), tokenizer=tokenizer, chat_template=CHAT_TEMPLATE
    )
    # this tokenizer numbers its special tokens from 0: point the model's config at them
    for key, token in (
        ("image_token_id", "<|image_pad|>"),
        ("video_token_id", "<|video_pad|>"),
        ("vision_start_token_id", "<|vision_start|>"),
        ("vision_end_token_id", "<|vision_end|>"),
    ):
        setattr(model.config, key, tokenizer.convert_tokens_to_ids(token))
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    backend = TransformersBackend(model, processor)
    images = [Image.new("RGB", (image_size, image_size), (i % 256, 90, 160)) for i in range(batch)]

    def run() -> int:
        before = backend.new_tokens
        backend.generate(images, get_prompt("general"), SamplingConfig(max_new_tokens=new_tokens))
        return backend.new_tokens - before

    return run


def timed(run, device: str) -> tuple[int, float]:
    sync(device)
    start = time.perf_counter()
    tokens = run()
    sync(device)
    return tokens, time.perf_counter() - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batch", type=int, nargs="+", default=[64, 256])
    parser.add_argument("--image-size", type=int, default=None, help="square image side (default 448; 112 with --tiny)")
    parser.add_argument("--new-tokens", type=int, default=None, help="forced new tokens (default 256; 8 with --tiny)")
    parser.add_argument("--tiny", action="store_true", help="scaled-down model: checks the construction on CPU")
    parser.add_argument("--through-backend", action="store_true", help="also time speciarl's TransformersBackend")
    args = parser.parse_args()
    image_size = args.image_size or (112 if args.tiny else 448)
    new_tokens = args.new_tokens or (8 if args.tiny else 256)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cpu" and not args.tiny:
        print("no GPU: the 7B-shaped model needs one (use --tiny for a CPU dry run)", file=sys.stderr)
        return 2
    dtype = torch.bfloat16 if device == "cuda" else torch.float32
    name = torch.cuda.get_device_name() if device == "cuda" else "CPU"
    print(
        f"{name}; torch {torch.__version__}, transformers {transformers.__version__}; "
        f"{'tiny' if args.tiny else 'Qwen2.5-VL-7B'}-shaped, {dtype}, sdpa; image {image_size}x{image_size}, "
        f"{new_tokens} new tokens forced, greedy"
    )

    start = time.perf_counter()
    model = build_model(build_config(arch(args.tiny), QWEN_IDS), device, dtype)
    params = sum(p.numel() for p in model.parameters())
    print(f"built {params / 1e9:.2f}B parameters in {time.perf_counter() - start:.1f} s")

    plain_generate(model, direct_inputs(model, 2, image_size, device, dtype), 4)  # warm-up
    for batch in args.batch:
        if device == "cuda":
            torch.cuda.reset_peak_memory_stats()
        inputs = direct_inputs(model, batch, image_size, device, dtype)
        tokens, seconds = timed(functools.partial(plain_generate, model, inputs, new_tokens), device)
        peak = torch.cuda.max_memory_allocated() / 2**30 if device == "cuda" else float("nan")
        print(
            f"plain generate  batch {batch:4d}: {tokens:7d} new tokens in {seconds:7.1f} s -> "
            f"{tokens / seconds:8.0f} new tokens/s (peak GPU memory {peak:.1f} GiB)",
            flush=True,
        )
        del inputs
    if args.through_backend:
        for batch in args.batch:
            tokens, seconds = timed(through_backend(model, batch, image_size, new_tokens), device)
            print(
                f"speciarl backend batch {batch:4d}: {tokens:7d} new tokens in {seconds:7.1f} s -> "
                f"{tokens / seconds:8.0f} new tokens/s (stops at end of turn: fewer tokens possible)",
                flush=True,
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
