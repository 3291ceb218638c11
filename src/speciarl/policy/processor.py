"""Processors that really handle images, and the checks that refuse the ones that do not.

Without torchvision, transformers cannot build Qwen2.5-VL's video processor, so AutoProcessor
fails or falls back to the bare tokenizer: the image placeholder then stays a single token, no
pixel values are produced and the policy answers without seeing the image. ImageOnlyQwenVLProcessor
is the stock processor minus its video half (PIL image backend), and `check_handles_images`
refuses any processor that drops images.
"""

from __future__ import annotations

import numpy as np
from PIL import Image
from transformers import ProcessorMixin
from transformers.models.qwen2_5_vl.processing_qwen2_5_vl import Qwen2_5_VLProcessor

# Model types whose processor `load_processor` can rebuild image-only.
QWEN_VL_MODEL_TYPES = ("qwen2_5_vl", "qwen2_vl")


class ImageOnlyQwenVLProcessor(Qwen2_5_VLProcessor):
    """Qwen2.5-VL's processor with images and text only (no video processor, so no torchvision)."""

    def __init__(self, image_processor=None, tokenizer=None, chat_template=None, **kwargs):
        # The stock __init__ requires a video processor; the attributes it sets are set here instead.
        self.image_token = getattr(tokenizer, "image_token", None) or "<|image_pad|>"
        self.video_token = getattr(tokenizer, "video_token", None) or "<|video_pad|>"
        self.image_token_id = tokenizer.convert_tokens_to_ids(self.image_token)
        self.video_token_id = tokenizer.convert_tokens_to_ids(self.video_token)
        ProcessorMixin.__init__(self, image_processor, tokenizer, chat_template=chat_template, **kwargs)


def build_image_processor(image_size: int, patch_size: int = 14, merge_size: int = 2):
    """Qwen2-VL image preprocessing (PIL backend) that resizes every image to image_size**2 pixels."""
    # imported here: only the tiny policy needs this class, and older transformers (vLLM pins) lack it
    from transformers.models.qwen2_vl.image_processing_pil_qwen2_vl import Qwen2VLImageProcessorPil

    pixels = image_size * image_size
    return Qwen2VLImageProcessorPil(
        size={"shortest_edge": pixels, "longest_edge": pixels},
        patch_size=patch_size,
        merge_size=merge_size,
        temporal_patch_size=2,
    )


def check_handles_images(processor, model: str) -> None:
    """Process a dummy image through the chat template; refuse unless image tokens and pixels come out."""
    image_processor = getattr(processor, "image_processor", None)
    tokenizer = getattr(processor, "tokenizer", processor)
    image_token_id = getattr(processor, "image_token_id", None)
    if image_processor is None or image_token_id is None or getattr(tokenizer, "chat_template", None) is None:
        raise ValueError(
            f"processor for {model} drops images: got {type(processor).__name__} without an image "
            "processor, image token or chat template (torchvision missing, or no preprocessor_config.json?)"
        )
    messages = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "What is this?"}]}]
    text = processor.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
    image = Image.fromarray(np.full((112, 112, 3), 127, dtype=np.uint8))
    encoded = processor(images=[image], text=[text], return_tensors="pt")
    image_tokens = int((encoded["input_ids"] == image_token_id).sum())
    pixel_values = encoded.get("pixel_values")
    if pixel_values is None or pixel_values.numel() == 0 or image_tokens <= 1:
        raise ValueError(
            f"processor for {model} drops images: a 112x112 image gave {image_tokens} image tokens and "
            f"{'no' if pixel_values is None else tuple(pixel_values.shape)} pixel values"
        )


def vision_token_ids(processor) -> list[int]:
    """Ids of the vision special tokens a policy must never generate (image/video pad, vision start/end)."""
    tokenizer = getattr(processor, "tokenizer", processor)
    ids = []
    for token in ("<|image_pad|>", "<|video_pad|>", "<|vision_start|>", "<|vision_end|>", "<|vision_pad|>"):
        token_id = tokenizer.convert_tokens_to_ids(token)
        if token_id is not None and token_id != tokenizer.unk_token_id:
            ids.append(token_id)
    return ids
