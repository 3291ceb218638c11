"""TRL GRPO with `use_vllm` in colocate mode against a real vLLM engine (CPU), with the fixes of
speciarl.train.vllm_generation; each test fails without its fix.

The engine runs eagerly (policy.vllm.enforce_eager), where vLLM's CPU backend repacks the linear
weights for oneDNN: the path on which TRL's own weight sync crashes.
"""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from PIL import Image
from vllm_world import DATASET, ROOT, TINY_RUN, VLLM_TESTS, run_stage, stage_env

pytestmark = VLLM_TESTS
STEPS = 3


@pytest.fixture(scope="module")
def colocate(tmp_path_factory, prepared_dir, fine_level_policy):
    """A SpeciaRLGRPOTrainer on the colocated engine, trained STEPS steps; the engine saw the test
    images before training (so a stale encoder cache would show). Yields (trainer, images, before)."""
    from trl.trainer.utils import RepeatSampler  # noqa: F401 - TRL importable before the heavy set-up

    from speciarl.data.prepared import read_split
    from speciarl.judge.cascade import JudgeService
    from speciarl.judge.params import JudgeParams
    from speciarl.policy.generation import vllm_engine_options
    from speciarl.policy.loading import load_policy, load_processor
    from speciarl.policy.params import PolicyParams
    from speciarl.policy.processor import vision_token_ids
    from speciarl.train import grpo
    from speciarl.train.data import build_train_dataset
    from speciarl.train.params import RunParams
    from speciarl.train.reward_func import make_reward_func

    out = tmp_path_factory.mktemp("colocate")
    run = RunParams(**{**TINY_RUN, "grpo": {**TINY_RUN["grpo"], "max_steps": STEPS}})
    policy = PolicyParams(
        model=str(fine_level_policy), backend="vllm", device="cpu", vllm={"max_model_len": 512, "enforce_eager": True}
    )
    rows = read_split(prepared_dir, DATASET, "test", columns=["image"]).to_pylist()
    images = [Image.open(io.BytesIO(row["image"])).convert("RGB") for row in rows]
    with JudgeService.from_params(JudgeParams(store=str(out / "verdicts")), prepared_dir) as service:
        config = grpo.grpo_config(run, policy, 0, out, vision_token_ids(load_processor(policy.model)))
        model, processor = load_policy(policy.model)
        trainer = grpo.SpeciaRLGRPOTrainer(
            model=model,
            reward_funcs=[
                make_reward_func(run.reward, service, num_generations=run.grpo.num_generations, max_none_fraction=1.0)
            ],
            args=config,
            train_dataset=build_train_dataset(prepared_dir, run),
            processing_class=processor,
            peft_config=grpo.lora_config(run.lora),
            vllm_engine_options=vllm_engine_options(policy),
        )
        before = vllm_greedy(trainer, images)
        trainer.train()
        yield trainer, images, before


def vllm_greedy(trainer, images: list[Image.Image]) -> list[str]:
    """Greedy answers of the trainer's colocated engine, with the prompt the stages use."""
    from vllm import SamplingParams

    from speciarl.policy.generation import chat_text
    from speciarl.policy.processor import vision_token_ids
    from speciarl.policy.prompts import get_prompt

    processor = trainer.processing_class
    params = SamplingParams(
        temperature=0,
        max_tokens=32,
        skip_special_tokens=False,
        logit_bias={token: -100.0 for token in vision_token_ids(processor)},
    )
    text = chat_text(processor, get_prompt("general"))
    requests = [{"prompt": text, "multi_modal_data": {"image": image}} for image in images]
    outputs = trainer.vllm_generation.llm.generate(requests, params, use_tqdm=False)
    return [output.outputs[0].text.removesuffix(processor.tokenizer.eos_token) for output in outputs]


def transformers_greedy(trainer, images: list[Image.Image]) -> list[str]:
    """Greedy answers of the trained model itself (LoRA merged), through the transformers backend."""
    from speciarl.policy.generation import SamplingConfig, TransformersBackend
    from speciarl.policy.prompts import get_prompt

    merged = trainer.model.merge_and_unload()
    backend = TransformersBackend(merged, trainer.processing_class)
    return [texts[0] for texts in backend.generate(images, get_prompt("general"), SamplingConfig(max_new_tokens=32))]


def test_importance_sampling_ratio_stays_near_one(colocate):
    trainer, _, _ = colocate
    ratios = [
        entry["sampling/importance_sampling_ratio/mean"]
        for entry in trainer.state.log_history
        if "sampling/importance_sampling_ratio/mean" in entry
    ]
    print(f"importance-sampling ratio per step: {ratios}")  # the figure the README reports (pytest -rP)
    assert len(ratios) == STEPS
    assert all(0.9 <= ratio <= 1.1 for ratio in ratios), ratios


def test_after_a_weight_sync_vllm_answers_as_the_trained_model(colocate):
    trainer, images, before = colocate
    trainer.vllm_generation.sync_weights()
    after = vllm_greedy(trainer, images)
    assert after == transformers_greedy(trainer, images)
    assert sum(a != b for a, b in zip(before, after, strict=True)) >= len(images) // 4  # training moved the answers


def test_vllm_receives_one_expansion_of_the_image(colocate):
    from trl.generation.vllm_generation import VLLMGeneration

    trainer, images, _ = colocate
    processor = trainer.processing_class
    prompt = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "What is it?"}]}]
    text = processor.apply_chat_template(prompt, add_generation_prompt=True, tokenize=False)
    expanded = processor(text=[text], images=[images[0]], return_tensors="pt")["input_ids"][0].tolist()
    pads = expanded.count(processor.image_token_id)
    assert pads > 1  # the processor expanded the image pad, as it does for the trainer

    fixed_ids, *_ = trainer.vllm_generation.generate([expanded], [[images[0]]], 1)
    stock_ids, *_ = VLLMGeneration.generate(trainer.vllm_generation, [expanded], [[images[0]]], 1)
    assert fixed_ids[0] == expanded  # vLLM expanded the one pad it got into exactly the processor's run
    assert stock_ids[0].count(processor.image_token_id) > pads  # TRL's own path expands it twice


def test_a_sync_of_changed_embeddings_reaches_the_tied_lm_head(colocate):
    """LoRA leaves the embeddings as they are; a full fine-tune changes them, and the CPU engine's
    LM head computes logits from a packed copy of the (tied) embedding that a sync must renew."""
    import torch

    trainer, images, _ = colocate
    embedding = trainer.model.get_input_embeddings().weight
    with torch.no_grad():
        embedding.mul_(torch.linspace(0.5, 1.5, embedding.shape[0]).unsqueeze(1))
    trainer.vllm_generation.sync_weights()
    after = vllm_greedy(trainer, images)
    assert after == transformers_greedy(trainer, images)


def test_a_killed_colocate_run_resumes_and_its_adapter_serves_through_vllm(write_params, tmp_path):
    steps = 12  # a step takes under a second: enough of them left to kill the run mid-way
    run = {**TINY_RUN, "grpo": {**TINY_RUN["grpo"], "max_steps": steps}}
    params = write_params("train.yaml", policy={"backend": "vllm"}, train={"runs": {"speciarl": run}})
    run_dir = Path(yaml.safe_load(params.read_text())["train"]["out_dir"]) / "speciarl"
    command = [sys.executable, str(ROOT / "stages" / "train.py"), "--run", "speciarl", "--params", str(params)]
    with open(tmp_path / "killed.log", "w") as log:
        process = subprocess.Popen(
            command, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, start_new_session=True, env=stage_env()
        )
    try:
        deadline = time.monotonic() + 900
        while not (run_dir / "checkpoints" / "checkpoint-2" / "trainer_state.json").exists():
            assert process.poll() is None, (tmp_path / "killed.log").read_text()[-3000:]
            assert time.monotonic() < deadline, "no checkpoint-2 within 15 minutes"
            time.sleep(0.05)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()
    assert process.returncode == -signal.SIGKILL, "the run ended before it could be killed"
    assert not (run_dir / "adapter").exists()

    resumed = run_stage("train", "--run", "speciarl", "--params", str(params))
    assert "resuming" in resumed.stderr + resumed.stdout
    metrics = json.loads((run_dir / "train_metrics.json").read_text())
    assert metrics["steps"] == steps
    logged = [line.split(",")[0] for line in (run_dir / "curves.csv").read_text().splitlines()[1:]]
    assert logged == [str(step) for step in range(1, steps + 1)]

    # the trained adapter, served by vLLM as a LoRA, answers as the transformers model with it does
    from test_policy_vllm import MIN_AGREEMENT, agreement, predictions

    by_transformers = predictions(
        write_params(
            "lora_transformers.yaml", policy={"backend": "transformers"}, train={"out_dir": str(run_dir.parent)}
        ),
        policy="speciarl",
    )
    by_vllm = predictions(
        write_params("lora_vllm.yaml", policy={"backend": "vllm"}, train={"out_dir": str(run_dir.parent)}),
        policy="speciarl",
    )
    assert agreement(by_transformers, by_vllm) >= MIN_AGREEMENT
