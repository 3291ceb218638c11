"""GRPO step time on one GPU: plain TRL with a trivial reward vs our reward path (verdict store + cascade).

    python benchmarks/device_grpo.py [--steps 3] [--out DIR]     # GPU, Qwen2.5-VL-7B-shaped model
    python benchmarks/device_grpo.py --tiny                      # CPU dry run of the same code

Builds a Qwen2.5-VL-7B-Instruct-shaped model with random weights from the published dimensions (no
download), a locally trained tokenizer (the model's 152,064-entry vocabulary is kept, so embedding
and head cost what they cost in the real model) and a mini world rendered at 448x448. Settings of
the issue's reference: LoRA r64/alpha32 on the language model, gradient checkpointing, KL 0.01, 8
prompts x 8 generations, up to 256 new tokens (a random model never stops early, so every
completion is 256 tokens), transformers generation, bf16.

Two passes over the same model, one after the other:
  plain     TRL's GRPOTrainer with a trivial reward (completion length parity)
  speciarl  our trainer with make_reward_func("speciarl", JudgeService): answers are looked up in
            a verdict store and judged by the cascade (exact match, taxonomy) on a miss
A random model writes no answer tag, so for the speciarl pass each completion gets a mini-world
label (drawn per rollout) as its answer: the reward path then does its real work (extraction,
store lookups, judging misses, storing verdicts, grouping).

Prints seconds per step after the first (warm-up) step, completions/s, peak GPU memory, the share
of the step spent in the reward function, and the ratio speciarl / plain (target: at most 1).
"""

from __future__ import annotations

import argparse
import gc
import random
import shutil
import sys
import tempfile
import time
from pathlib import Path

import torch
from peft import LoraConfig
from transformers import Qwen2_5_VLConfig, Qwen2_5_VLForConditionalGeneration, TrainerCallback
from trl import GRPOConfig, GRPOTrainer

from speciarl.data.miniworld import render_miniworld
from speciarl.data.miniworld_params import MiniWorldParams
from speciarl.data.prepared import taxonomy_path
from speciarl.data.taxonomy import Taxonomy
from speciarl.judge.cascade import JudgeService
from speciarl.judge.params import JudgeParams
from speciarl.labels import extract_answer
from speciarl.policy.processor import ImageOnlyQwenVLProcessor, build_image_processor, vision_token_ids
from speciarl.policy.prompts import PROMPTS
from speciarl.policy.tiny import CHAT_TEMPLATE, DEFAULT_SYSTEM, SPECIAL_TOKENS, train_tokenizer
from speciarl.train.data import build_train_dataset
from speciarl.train.grpo import SpeciaRLGRPOTrainer
from speciarl.train.params import LANGUAGE_MODEL_LINEARS, RunParams
from speciarl.train.reward_func import completion_text, make_reward_func

DATASET = "miniworld_a"

# Qwen2.5-VL-7B-Instruct's published dimensions.
QWEN25_VL_7B = dict(
    text=dict(
        vocab_size=152064,
        hidden_size=3584,
        intermediate_size=18944,
        num_hidden_layers=28,
        num_attention_heads=28,
        num_key_value_heads=4,
        max_position_embeddings=128000,
        rms_norm_eps=1e-6,
        rope_parameters={"rope_type": "default", "rope_theta": 1000000.0, "mrope_section": [16, 24, 24]},
        tie_word_embeddings=False,
    ),
    vision=dict(
        depth=32,
        hidden_size=1280,
        intermediate_size=3420,
        num_heads=16,
        patch_size=14,
        spatial_merge_size=2,
        temporal_patch_size=2,
        window_size=112,
        fullatt_block_indexes=[7, 15, 23, 31],
        out_hidden_size=3584,
    ),
)
# The same code on a CPU, in seconds.
TINY = dict(
    text=dict(
        vocab_size=4096,
        hidden_size=128,
        intermediate_size=256,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=2048,
        rms_norm_eps=1e-6,
        rope_parameters={"rope_type": "default", "rope_theta": 10000.0, "mrope_section": [4, 6, 6]},
        tie_word_embeddings=False,
    ),
    vision=dict(
        depth=1,
        hidden_size=64,
        intermediate_size=128,
        num_heads=2,
        patch_size=14,
        spatial_merge_size=2,
        temporal_patch_size=2,
        window_size=112,
        fullatt_block_indexes=[0],
        out_hidden_size=128,
    ),
)


def build_processor(taxonomy: Taxonomy, image_size: int) -> ImageOnlyQwenVLProcessor:
    names = [name for node in taxonomy.nodes.values() for name in (node.name, *node.synonyms)]
    corpus = [*PROMPTS.values(), DEFAULT_SYSTEM, "system user assistant", *(answer(name) for name in names)]
    tokenizer = train_tokenizer(corpus, vocab_size=2048)
    return ImageOnlyQwenVLProcessor(
        image_processor=build_image_processor(image_size), tokenizer=tokenizer, chat_template=CHAT_TEMPLATE
    )


def build_model(dims: dict, processor, device: torch.device, dtype: torch.dtype):
    tokenizer = processor.tokenizer
    ids = {token: tokenizer.convert_tokens_to_ids(token) for token in SPECIAL_TOKENS}
    config = Qwen2_5_VLConfig(
        text_config=dict(
            **dims["text"],
            bos_token_id=ids["<|endoftext|>"],
            eos_token_id=ids["<|im_end|>"],
            pad_token_id=ids["<|endoftext|>"],
        ),
        vision_config=dict(**dims["vision"], in_chans=3, hidden_act="silu"),
        image_token_id=ids["<|image_pad|>"],
        video_token_id=ids["<|video_pad|>"],
        vision_start_token_id=ids["<|vision_start|>"],
        vision_end_token_id=ids["<|vision_end|>"],
        tie_word_embeddings=False,
    )
    torch.manual_seed(0)
    with torch.device(device):  # initialise in place: 8B parameters on a CPU would take minutes
        model = Qwen2_5_VLForConditionalGeneration._from_config(config, dtype=dtype)
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    return model


def answer(label: str) -> str:
    return f"<think>It is a bird.</think><answer>{label}</answer>"


def with_answers(reward_func, labels: list[str], seed: int):
    """Gives every completion without an answer tag a mini-world label, drawn per rollout."""
    rng = random.Random(seed)

    def reward(prompts, completions, **kwargs):
        completions = [
            c if extract_answer(completion_text(c)) else [{"role": "assistant", "content": answer(rng.choice(labels))}]
            for c in completions
        ]
        return reward_func(prompts=prompts, completions=completions, **kwargs)

    reward.__name__ = reward_func.__name__
    return reward


def trivial_reward(completions, **kwargs):
    return [float(len(completion_text(c)) % 2) for c in completions]


class StepTimer(TrainerCallback):
    def __init__(self):
        self.times: list[float] = []
        self.started = 0.0

    def on_step_begin(self, args, state, control, **kwargs):
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        self.started = time.perf_counter()

    def on_step_end(self, args, state, control, **kwargs):
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        self.times.append(time.perf_counter() - self.started)


def run_pass(name: str, model, processor, dataset, reward, trainer_class, args: argparse.Namespace, out: Path) -> dict:
    completions_per_step = args.prompts * args.generations
    config = GRPOConfig(
        output_dir=str(out / name),
        seed=0,
        use_cpu=args.tiny,
        bf16=not args.tiny,
        num_generations=args.generations,
        per_device_train_batch_size=completions_per_step,
        max_completion_length=args.max_new_tokens,
        max_steps=args.steps,
        learning_rate=3e-5,
        lr_scheduler_type="constant",
        beta=0.01,
        loss_type="grpo",
        temperature=1.0,
        gradient_checkpointing=True,
        generation_kwargs={"suppress_tokens": vision_token_ids(processor)},
        logging_steps=1,
        save_strategy="no",
        report_to=[],
    )
    timer = StepTimer()
    trainer = trainer_class(
        model=model,
        reward_funcs=[reward],
        args=config,
        train_dataset=dataset,
        processing_class=processor,
        peft_config=LoraConfig(r=64, lora_alpha=32, target_modules=LANGUAGE_MODEL_LINEARS, task_type="CAUSAL_LM"),
        callbacks=[timer],
    )
    if torch.cuda.is_available():
        torch.cuda.reset_peak_memory_stats()
    trainer.train()
    measured = timer.times[1:] or timer.times
    step_s = sum(measured) / len(measured)
    reward_s = [e["reward/seconds"] for e in trainer.state.log_history if "reward/seconds" in e][1:]
    result = {
        "pass": name,
        "warmup_s": timer.times[0],
        "step_s": step_s,
        "completions_per_s": completions_per_step / step_s,
        "peak_gb": torch.cuda.max_memory_allocated() / 2**30 if torch.cuda.is_available() else float("nan"),
        "reward_share": (sum(reward_s) / len(reward_s)) / step_s if reward_s else 0.0,
    }
    print(
        f"{name:9s} {step_s:7.2f} s/step (warm-up {result['warmup_s']:.1f} s)  {result['completions_per_s']:6.2f} "
        f"completions/s  peak {result['peak_gb']:5.1f} GB  reward {100 * result['reward_share']:.2f} % of the step",
        flush=True,
    )
    trainer.model.unload()  # remove the LoRA layers: the next pass starts from the same base model
    del trainer
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tiny", action="store_true", help="CPU dry run with a tiny model")
    parser.add_argument("--steps", type=int, default=3, help="steps per pass; the first is warm-up")
    parser.add_argument("--prompts", type=int, default=8)
    parser.add_argument("--generations", type=int, default=8)
    parser.add_argument("--max-new-tokens", type=int, default=256)
    parser.add_argument("--image-size", type=int, default=448)
    parser.add_argument("--out", type=Path, default=None, help="work folder (default: a temporary one)")
    args = parser.parse_args()
    if args.tiny:
        args.max_new_tokens, args.image_size = min(args.max_new_tokens, 16), 112
        args.prompts, args.generations = min(args.prompts, 2), min(args.generations, 4)
    elif not torch.cuda.is_available():
        print("no GPU: run with --tiny for a CPU dry run", file=sys.stderr)
        return 2
    device = torch.device("cpu" if args.tiny else "cuda")
    out = args.out or Path(tempfile.mkdtemp(prefix="device_grpo-"))
    prepared = out / "prepared"
    images = args.prompts * args.steps
    render_miniworld(
        MiniWorldParams(train_per_domain=images, test_per_domain=1, image_size=args.image_size), prepared, workers=1
    )
    taxonomy = Taxonomy.load(taxonomy_path(prepared, DATASET))
    labels = [name for node in taxonomy.nodes.values() for name in (node.name, *node.synonyms)]
    processor = build_processor(taxonomy, args.image_size)
    completions = args.prompts * args.generations
    run = RunParams(grpo={"num_generations": args.generations, "per_device_train_batch_size": completions})
    dataset = build_train_dataset(prepared, run)
    started = time.perf_counter()
    dtype = torch.float32 if args.tiny else torch.bfloat16
    model = build_model(TINY if args.tiny else QWEN25_VL_7B, processor, device, dtype)
    print(
        f"model: {sum(p.numel() for p in model.parameters()) / 1e9:.2f} B parameters, built in "
        f"{time.perf_counter() - started:.0f} s on {device}; {args.prompts} prompts x {args.generations} "
        f"generations, up to {args.max_new_tokens} new tokens, {args.image_size}x{args.image_size} images",
        flush=True,
    )
    plain = run_pass("plain", model, processor, dataset, trivial_reward, GRPOTrainer, args, out)
    with JudgeService.from_params(JudgeParams(store=str(out / "verdicts")), prepared) as judge:
        reward = with_answers(make_reward_func("speciarl", judge, num_generations=args.generations), labels, seed=0)
        ours = run_pass("speciarl", model, processor, dataset, reward, SpeciaRLGRPOTrainer, args, out)
        print(f"judge: {judge.stats}")
    print(f"ratio speciarl / plain step time: {ours['step_s'] / plain['step_s']:.3f} (target <= 1)")
    if args.out is None:
        shutil.rmtree(out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
