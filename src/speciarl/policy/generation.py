"""Generation backends: one interface, the same completions for the stages whatever runs them.

`transformers` batches images with left padding on CPU or GPU (the mini world, CI, small GPUs);
`vllm` drives the offline engine on GPUs (the paper recipe), with LoRA adapters served per request.
Both take a list of PIL images, one prompt text and a SamplingConfig, and return per image the n
completions as raw text (special tokens kept, the end-of-turn token cut off).

Both suppress the vision special tokens: a completion holding an image pad or vision start/end
token breaks the next forward pass that sees it (training on rollouts) with a token/feature mismatch.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Protocol

import torch
from PIL import Image
from transformers import DynamicCache, GenerationConfig

from speciarl.policy.loading import ADAPTER_CONFIG, ADAPTER_WEIGHTS, check_model_source, load_policy, load_processor
from speciarl.policy.params import PolicyParams
from speciarl.policy.processor import check_handles_images, vision_token_ids
from speciarl.policy.prompts import build_messages


@dataclass(frozen=True)
class SamplingConfig:
    """How to decode: temperature 0 is greedy (then n must be 1); top-k is never applied."""

    n: int = 1
    temperature: float = 0.0
    top_p: float = 1.0
    max_new_tokens: int = 48
    seed: int = 0

    def __post_init__(self) -> None:
        if self.n < 1:
            raise ValueError(f"sampling n must be at least 1 (got {self.n})")
        if self.temperature < 0:
            raise ValueError(f"sampling temperature must be >= 0 (got {self.temperature})")
        if not 0 < self.top_p <= 1:
            raise ValueError(f"sampling top_p must be in (0, 1] (got {self.top_p})")
        if self.max_new_tokens < 1:
            raise ValueError(f"sampling max_new_tokens must be at least 1 (got {self.max_new_tokens})")
        if self.greedy and self.n > 1:
            raise ValueError(f"greedy decoding (temperature 0) gives one completion, not n={self.n}")

    @property
    def greedy(self) -> bool:
        return self.temperature == 0

    def with_seed(self, seed: int) -> SamplingConfig:
        return replace(self, seed=seed)


class Backend(Protocol):
    name: str
    new_tokens: int  # tokens generated so far by this backend

    def generate(self, images: list[Image.Image], prompt_text: str, sampling: SamplingConfig) -> list[list[str]]:
        """Per image, `sampling.n` completions of the chat turn (image, prompt_text)."""
        ...


def make_backend(policy: PolicyParams, adapter: str | Path | None = None) -> Backend:
    """The backend named by `policy.backend`, loaded with `policy.model` (+ a LoRA adapter folder)."""
    check_model_source(policy.model)  # before vLLM spends a minute starting up
    if adapter is not None:
        check_adapter(adapter)
    if policy.backend == "vllm":
        return VllmBackend.load(policy, adapter)
    return TransformersBackend.load(policy, adapter)


def check_adapter(adapter: str | Path) -> None:
    """A LoRA adapter folder saved by peft: adapter_config.json and safetensors weights."""
    path = Path(adapter)
    if not (path / ADAPTER_CONFIG).is_file():
        raise FileNotFoundError(f"adapter folder {path} has no {ADAPTER_CONFIG} (missing, or not a LoRA adapter)")
    if not (path / ADAPTER_WEIGHTS).is_file():
        raise FileNotFoundError(f"adapter folder {path} has no {ADAPTER_WEIGHTS} (only safetensors are loaded)")


def chat_text(processor, prompt_text: str) -> str:
    """The prompt rendered by the processor's chat template, up to the assistant turn."""
    return processor.apply_chat_template(build_messages(prompt_text), add_generation_prompt=True, tokenize=False)


def set_image_size(processor, min_pixels: int | None, max_pixels: int | None) -> None:
    """Override the resize bounds of a Qwen2-VL image processor (pixels per image)."""
    if min_pixels is None and max_pixels is None:
        return
    image_processor = processor.image_processor
    size = {
        "shortest_edge": image_processor.size["shortest_edge"],
        "longest_edge": image_processor.size["longest_edge"],
    }
    if min_pixels is not None:
        size["shortest_edge"] = min_pixels
    if max_pixels is not None:
        size["longest_edge"] = max_pixels
    if size["shortest_edge"] > size["longest_edge"]:
        raise ValueError(f"policy.min_pixels/max_pixels: min {size['shortest_edge']} > max {size['longest_edge']}")
    image_processor.size = size


class TransformersBackend:
    """Batched `generate` with left padding; seeded by torch.manual_seed before each call."""

    name = "transformers"

    def __init__(self, model, processor):
        check_handles_images(processor, getattr(model, "name_or_path", "policy"))
        self.model = model.eval()
        self.processor = processor
        self.tokenizer = processor.tokenizer
        self.tokenizer.padding_side = "left"
        self.suppressed = vision_token_ids(processor)
        eos = model.generation_config.eos_token_id
        if eos is None:
            eos = self.tokenizer.eos_token_id
        if eos is None:
            raise ValueError(f"model {model.name_or_path}: no eos token id in its generation config or tokenizer")
        self.eos_ids = [eos] if isinstance(eos, int) else list(eos)
        pad = self.tokenizer.pad_token_id
        self.pad_id = pad if pad is not None else self.eos_ids[0]
        self.stop_ids = set(self.eos_ids) | {self.pad_id}
        self.new_tokens = 0  # generated so far, end-of-turn tokens included (for throughput figures)
        # Qwen-VL models keep per-sequence 3D rope offsets between the prefill and decoding passes
        self._rope_owner = next((module for module in model.modules() if hasattr(module, "rope_deltas")), None)

    @classmethod
    def load(cls, policy: PolicyParams, adapter: str | Path | None = None) -> TransformersBackend:
        device = policy.device
        if device == "auto":
            device = "cuda" if torch.cuda.is_available() else "cpu"
        if device == "cpu" and policy.cpu_threads is not None:
            torch.set_num_threads(policy.cpu_threads)
        model, processor = load_policy(
            policy.model,
            adapter=None if adapter is None else str(adapter),
            dtype=policy.dtype,
            device=device,
            trust_remote_code=policy.trust_remote_code,
        )
        set_image_size(processor, policy.min_pixels, policy.max_pixels)
        return cls(model, processor)

    def generate(self, images: list[Image.Image], prompt_text: str, sampling: SamplingConfig) -> list[list[str]]:
        if not images:
            return []
        text = chat_text(self.processor, prompt_text)
        inputs = self.processor(
            text=[text] * len(images),
            images=[image.convert("RGB") for image in images],
            return_tensors="pt",
            padding=True,
        )
        self._check_images_kept(inputs, len(images))
        inputs = inputs.to(self.model.device)
        options = dict(
            max_new_tokens=sampling.max_new_tokens,
            do_sample=not sampling.greedy,
            # everything set explicitly: a checkpoint's generation_config.json (the 7B ships
            # top_k 1, repetition_penalty 1.05) must not change what the params ask for
            repetition_penalty=1.0,
            suppress_tokens=self.suppressed,
            eos_token_id=self.eos_ids,
            pad_token_id=self.pad_id,
        )
        if not sampling.greedy:
            options.update(temperature=sampling.temperature, top_p=sampling.top_p, top_k=0)
        with torch.inference_mode():
            cache = self._prefill(inputs, sampling.n)
            repeated = {
                key: inputs[key].repeat_interleave(sampling.n, dim=0) for key in ("input_ids", "attention_mask")
            }
            torch.manual_seed(sampling.seed)
            output = self.model.generate(
                **repeated, past_key_values=cache, generation_config=GenerationConfig(**options)
            )
        generated = output[:, inputs["input_ids"].shape[1] :].tolist()
        texts = [self.decode(tokens) for tokens in generated]
        # the completion's tokens, plus the end-of-turn token where the policy stopped by itself
        self.new_tokens += sum(min(len(self._until_stop(tokens)) + 1, len(tokens)) for tokens in generated)
        n = sampling.n
        return [texts[i * n : (i + 1) * n] for i in range(len(images))]

    def _prefill(self, inputs, n: int) -> DynamicCache:
        """KV cache of each prompt but its last token, computed once per image and repeated n times.

        `generate` then feeds only the last prompt token, so the vision tower and the prompt run once
        per image instead of once per sample (half the time of best-of-10 on the tiny policy). The
        3D rope offsets the model keeps from this pass are repeated alongside.
        """
        prefix = {
            key: value[:, :-1] if key in ("input_ids", "attention_mask", "mm_token_type_ids") else value
            for key, value in inputs.items()
        }
        cache = DynamicCache(config=self.model.config)
        self.model(**prefix, past_key_values=cache, use_cache=True, logits_to_keep=1)
        cache.batch_repeat_interleave(n)
        if self._rope_owner is not None:
            self._rope_owner.rope_deltas = self._rope_owner.rope_deltas.repeat_interleave(n, dim=0)
        return cache

    def _check_images_kept(self, inputs, count: int) -> None:
        grid = inputs.get("image_grid_thw")
        if grid is None or len(grid) != count:
            raise ValueError(f"the processor dropped images: {count} images in, {0 if grid is None else len(grid)} out")
        merge = self.processor.image_processor.merge_size
        expected = int(grid.prod(-1).sum()) // (merge * merge)
        found = int((inputs["input_ids"] == self.processor.image_token_id).sum())
        if found != expected:
            raise ValueError(f"the processor gave {found} image tokens for {expected} image features")

    def _until_stop(self, tokens: list[int]) -> list[int]:
        """The tokens before the first end-of-turn (or padding) token."""
        end = next((i for i, token in enumerate(tokens) if token in self.stop_ids), len(tokens))
        return tokens[:end]

    def decode(self, tokens: list[int]) -> str:
        """Completion text of generated tokens: up to the end of turn, special tokens kept."""
        return self.tokenizer.decode(self._until_stop(tokens), skip_special_tokens=False)


def import_vllm():
    """The vllm package and its LoRARequest; a clear error where it is not installed (CPU machines)."""
    try:
        vllm = importlib.import_module("vllm")
        lora_request = importlib.import_module("vllm.lora.request").LoRARequest
    except ImportError as exc:
        raise ImportError(
            "policy.backend is 'vllm' but vLLM is not installed: install the GPU extra "
            "(pip install 'speciarl[gpu]') on a CUDA machine, or set policy.backend: transformers"
        ) from exc
    return vllm, lora_request


def vllm_engine_options(policy: PolicyParams) -> dict:
    """`vllm.LLM` settings of params.yaml that every engine of the policy takes, ours (harvest,
    predict) and the one TRL colocates for GRPO: dtype, eager mode, one image per prompt, and the
    image resize bounds, which must match the processor's so that vLLM sees the images the trainer
    sees. (TRL passes its own max_num_batched_tokens to the colocated engine, which then wins.)"""
    options = dict(
        dtype=policy.dtype,
        enforce_eager=policy.vllm.enforce_eager,
        limit_mm_per_prompt={"image": 1, "video": 0},
        # sampling comes only from the caller's SamplingParams, never from the checkpoint's defaults
        generation_config="vllm",
    )
    if policy.vllm.max_num_batched_tokens is not None:
        options["max_num_batched_tokens"] = policy.vllm.max_num_batched_tokens
    pixels = {
        key: value
        for key, value in (("min_pixels", policy.min_pixels), ("max_pixels", policy.max_pixels))
        if value is not None
    }
    if pixels:
        options["mm_processor_kwargs"] = pixels
    return options


class EngineStartError(ValueError):
    """vLLM's engine did not start; the message names the cause and the params keys to look at.

    A ValueError, as a bad params value is: the stages report it in one line and exit 2.
    """


def start_engine(vllm, engine_options: dict):
    """`vllm.LLM(**engine_options)`, or EngineStartError with the cause in one line.

    vLLM starts its engine in a child process and, when that fails, raises a generic "Engine core
    initialization failed" after logging the real cause; the cause is searched in the exception chain,
    and otherwise the log above the error holds it.
    """
    try:
        return vllm.LLM(**engine_options)
    except Exception as exc:  # noqa: BLE001 - any start failure becomes one clear line
        causes = []
        error: BaseException | None = exc
        while error is not None:
            causes.append(f"{type(error).__name__}: {str(error).strip().splitlines()[0] if str(error).strip() else ''}")
            error = error.__cause__ or error.__context__
        raise EngineStartError(
            f"vLLM engine for {engine_options['model']} failed to start ({'; caused by '.join(causes)}); "
            "check policy.model, policy.dtype and policy.vllm (max_model_len, gpu_memory_utilization, "
            "tensor_parallel_size), and vLLM's log above for the engine's own error"
        ) from exc


class VllmBackend:
    """vLLM's offline engine: one request per image, n samples per request, optional LoRA."""

    name = "vllm"
    # vLLM accepts logit biases within [-100, 100]; -100 makes a token's probability ~e^-100.
    SUPPRESS_BIAS = -100.0

    def __init__(self, engine, processor, sampling_params_cls, lora_request=None):
        self.engine = engine
        self.processor = processor
        self.sampling_params_cls = sampling_params_cls
        self.lora_request = lora_request
        self.suppressed = vision_token_ids(processor)
        tokenizer = processor.tokenizer
        self.stop_texts = [tokenizer.eos_token] + ([tokenizer.pad_token] if tokenizer.pad_token else [])
        self.new_tokens = 0  # generated so far (for throughput figures)

    @classmethod
    def load(cls, policy: PolicyParams, adapter: str | Path | None = None) -> VllmBackend:
        vllm, lora_request_cls = import_vllm()
        processor = load_processor(policy.model, trust_remote_code=policy.trust_remote_code)
        engine_options = dict(
            model=policy.model,
            trust_remote_code=policy.trust_remote_code,
            gpu_memory_utilization=policy.vllm.gpu_memory_utilization,
            tensor_parallel_size=policy.vllm.tensor_parallel_size,
            max_model_len=policy.vllm.max_model_len,
            **vllm_engine_options(policy),
        )
        lora_request = None
        if adapter is not None:
            engine_options.update(enable_lora=True, max_lora_rank=policy.vllm.max_lora_rank, max_loras=1)
            lora_request = lora_request_cls(Path(adapter).parent.name or "adapter", 1, str(Path(adapter).resolve()))
        return cls(start_engine(vllm, engine_options), processor, vllm.SamplingParams, lora_request)

    def sampling_params(self, sampling: SamplingConfig, request_index: int):
        """vLLM SamplingParams for request `request_index` of a call (its seed: sampling.seed + index)."""
        return self.sampling_params_cls(
            n=sampling.n,
            temperature=sampling.temperature,
            top_p=1.0 if sampling.greedy else sampling.top_p,
            max_tokens=sampling.max_new_tokens,
            seed=sampling.seed + request_index,
            repetition_penalty=1.0,
            logit_bias={token: self.SUPPRESS_BIAS for token in self.suppressed},
            skip_special_tokens=False,
        )

    def requests(self, images: list[Image.Image], prompt_text: str) -> list[dict]:
        text = chat_text(self.processor, prompt_text)
        return [{"prompt": text, "multi_modal_data": {"image": image.convert("RGB")}} for image in images]

    def generate(self, images: list[Image.Image], prompt_text: str, sampling: SamplingConfig) -> list[list[str]]:
        if not images:
            return []
        params = [self.sampling_params(sampling, index) for index in range(len(images))]
        outputs = self.engine.generate(
            self.requests(images, prompt_text), params, lora_request=self.lora_request, use_tqdm=False
        )
        self.new_tokens += sum(len(completion.token_ids) for output in outputs for completion in output.outputs)
        return [[self._strip_stop(completion.text) for completion in output.outputs] for output in outputs]

    def _strip_stop(self, text: str) -> str:
        for stop in self.stop_texts:
            if text.endswith(stop):
                return text[: -len(stop)]
        return text
