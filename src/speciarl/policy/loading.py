"""Load a policy: base model (local folder or hub id), optional LoRA adapter, and its processor.

The same path serves the mini world's tiny policy and Qwen2.5-VL-7B-Instruct. Weights are read
from safetensors only, and the processor is checked to really handle images before anything runs.
model_content_hash identifies what a model folder holds (weights, config, processor), byte for byte.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import torch
from peft import PeftConfig, PeftModel
from peft.auto import MODEL_TYPE_TO_PEFT_MODEL_MAPPING
from transformers import AutoConfig, AutoImageProcessor, AutoModelForImageTextToText, AutoProcessor, AutoTokenizer
from transformers.utils import cached_file

from speciarl.policy.params import HUB_ID
from speciarl.policy.processor import QWEN_VL_MODEL_TYPES, ImageOnlyQwenVLProcessor, check_handles_images

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}
ADAPTER_CONFIG = "adapter_config.json"
ADAPTER_WEIGHTS = "adapter_model.safetensors"


def check_model_source(model: str) -> None:
    """A local model folder must exist and hold config.json; anything else must look like a hub id."""
    path = Path(model)
    if path.exists():
        if not (path / "config.json").is_file():
            raise FileNotFoundError(f"model folder {model} has no config.json (not a saved model)")
    elif not HUB_ID.match(model):
        raise FileNotFoundError(f"model path not found: {model}")


def load_processor(model: str, trust_remote_code: bool = False):
    """The processor of `model`, rebuilt image-only where needed; ValueError if it would drop images."""
    check_model_source(model)
    try:
        config = AutoConfig.from_pretrained(model, trust_remote_code=trust_remote_code)
    except (OSError, ValueError) as exc:
        raise FileNotFoundError(f"model {model}: its config cannot be read ({_first_line(exc)})") from None
    try:
        processor = AutoProcessor.from_pretrained(model, trust_remote_code=trust_remote_code)
    except (OSError, ValueError, ImportError):
        # Qwen2.5-VL's stock processor needs a torchvision video processor; rebuilt below.
        processor = None
    if getattr(processor, "image_processor", None) is None and config.model_type in QWEN_VL_MODEL_TYPES:
        processor = _image_only_processor(model, trust_remote_code) or processor
    if processor is None:
        raise ValueError(f"processor for {model} drops images: no processor can be loaded from it")
    check_handles_images(processor, model)
    return processor


def _image_only_processor(model: str, trust_remote_code: bool) -> ImageOnlyQwenVLProcessor | None:
    """Qwen-VL processor from the saved image preprocessing config and tokenizer, without the video half."""
    try:
        image_processor = AutoImageProcessor.from_pretrained(model, trust_remote_code=trust_remote_code)
        tokenizer = AutoTokenizer.from_pretrained(model, trust_remote_code=trust_remote_code)
    except (OSError, ValueError):
        return None  # check_handles_images then names what is missing
    return ImageOnlyQwenVLProcessor(
        image_processor=image_processor, tokenizer=tokenizer, chat_template=tokenizer.chat_template
    )


def load_policy(
    model: str,
    adapter: str | None = None,
    dtype: str = "float32",
    device: str = "cpu",
    trust_remote_code: bool = False,
):
    """(model in eval mode on `device`, processor). `adapter`: a PEFT LoRA folder trained on this base."""
    if dtype not in DTYPES:
        raise ValueError(f"unknown dtype {dtype!r} (allowed: {', '.join(DTYPES)})")
    processor = load_processor(model, trust_remote_code)
    try:
        policy = AutoModelForImageTextToText.from_pretrained(
            model, dtype=DTYPES[dtype], trust_remote_code=trust_remote_code, use_safetensors=True
        )
    except OSError as exc:
        raise FileNotFoundError(f"model {model}: no safetensors weights can be loaded ({_first_line(exc)})") from None
    if adapter is not None:
        policy = _load_adapter(policy, model, adapter)
    return policy.to(device).eval(), processor


def _load_adapter(policy, model: str, adapter: str):
    """Wrap `policy` with the LoRA adapter; ValueError unless every adapter weight lands on a matching layer."""
    path = Path(adapter)
    if not (path / ADAPTER_CONFIG).is_file():
        raise FileNotFoundError(f"adapter folder {adapter} has no {ADAPTER_CONFIG}")
    if not (path / ADAPTER_WEIGHTS).is_file():
        raise FileNotFoundError(f"adapter folder {adapter} has no {ADAPTER_WEIGHTS} (only safetensors are loaded)")
    config = PeftConfig.from_pretrained(adapter)
    config.inference_mode = True
    wrapper = MODEL_TYPE_TO_PEFT_MODEL_MAPPING.get(config.task_type, PeftModel)
    try:
        peft_model = wrapper(policy, config)
        result = peft_model.load_adapter(adapter, adapter_name="default")
    except (ValueError, RuntimeError, KeyError) as exc:
        raise ValueError(f"adapter {adapter} does not match base model {model}: {_first_line(exc)}") from None
    if result.missing_keys or result.unexpected_keys:
        names = (result.missing_keys or result.unexpected_keys)[:2]
        raise ValueError(
            f"adapter {adapter} does not match base model {model}: {len(result.missing_keys)} adapter weights "
            f"missing, {len(result.unexpected_keys)} unexpected (e.g. {', '.join(names)})"
        )
    return peft_model


def model_content_hash(model: str) -> str:
    """sha256 over the relative path and bytes of every file of the model (hidden files aside).

    `model` is a local folder, or a hub id already downloaded (its cached snapshot is what
    from_pretrained reads). Reads every byte: about 10 s per 10 GB.
    """
    check_model_source(model)
    folder = Path(model) if Path(model).is_dir() else Path(cached_file(model, "config.json")).parent
    digest = hashlib.sha256()
    for path in sorted(folder.rglob("*")):
        relative = path.relative_to(folder)
        if not path.is_file() or any(part.startswith(".") for part in relative.parts):
            continue  # e.g. the .cache/ of a hub download holds timestamps, not content
        digest.update(f"{relative.as_posix()}\0".encode())
        with path.open("rb") as handle:
            while chunk := handle.read(1 << 20):
                digest.update(chunk)
        digest.update(b"\0")
    return digest.hexdigest()


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
