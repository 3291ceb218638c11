"""Train a vision-language policy with plain TRL and the SpeciaRL reward: the library API in one script.

speciarl's reward is an ordinary TRL reward function, built by
`speciarl.train.reward_func.make_reward_func`: it extracts each completion's answer, asks a judge
(verdict store, exact match, taxonomy, then an LLM if one is given) for a verdict per answer, and
turns the verdicts of each image's rollouts into the group-relative SpeciaRL reward
(docs/method.md#rewards). The rest is TRL's GRPOConfig and GRPOTrainer with a PEFT LoRA config.

After `dvc repro` (the mini world's prepared data and tiny base policy), on CPU in about a minute:

    python examples/grpo_with_speciarl_reward.py --max-steps 2 --images-per-step 2

--model takes any Qwen2.5-VL-style policy (local folder or hub id) and --prepared-dir any folder of
datasets prepared by the `prepare` stage. Verdicts go to a fresh store in --output-dir, never into
the pipeline's data/verdicts. Without --llm-endpoint the judge is the dataset's taxonomy alone, as
a closed world (an answer naming no taxonomy node is wrong); for a real dataset give an
OpenAI-compatible judge server (--llm-endpoint, --llm-model, key in $SPECIARL_JUDGE_API_KEY).

The defaults are those of params.yaml's `train.runs.speciarl` (a test checks that they agree),
including the judge-outage guard max_none_fraction=0.25. Prints one JSON line at the end: the
steps, each step's mean reward, and the share of each verdict over the run.

Errors: a missing model, prepared split or taxonomy stops with one line; JudgeOutageError stops
training when the judge leaves more than max_none_fraction of a step's answers without a verdict.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import torch
from datasets import Dataset, Image
from peft import LoraConfig
from trl import GRPOConfig, GRPOTrainer

from speciarl.data.prepared import read_split
from speciarl.data.taxonomy import Taxonomy
from speciarl.judge.cascade import JudgeService, open_store
from speciarl.judge.llm import LLMJudge
from speciarl.judge.params import LLMParams
from speciarl.policy.loading import load_policy
from speciarl.policy.processor import vision_token_ids
from speciarl.policy.prompts import build_messages, get_prompt
from speciarl.train.params import LANGUAGE_MODEL_LINEARS  # every linear layer of the language model, no vision
from speciarl.train.reward_func import VERDICT_NAMES, make_reward_func


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="data/models/base", help="policy: local folder or hub id")
    parser.add_argument("--prepared-dir", default="data/prepared", help="folder of prepared datasets")
    parser.add_argument("--dataset", default="miniworld_a")
    parser.add_argument("--split", default="train")
    parser.add_argument(
        "--output-dir",
        type=Path,
        default=Path(tempfile.gettempdir()) / "speciarl-grpo-example",
        help="adapter/ and verdicts/ go here",
    )
    parser.add_argument("--reward", default="speciarl", help="a name of speciarl.rewards.REWARDS")
    parser.add_argument("--num-generations", type=int, default=8, help="rollouts per image")
    parser.add_argument("--images-per-step", type=int, default=8)
    parser.add_argument("--max-steps", type=int, default=50)
    parser.add_argument("--learning-rate", type=float, default=1e-3)
    parser.add_argument("--loss-type", choices=["grpo", "dr_grpo", "dapo"], default="grpo")
    parser.add_argument("--beta", type=float, default=0.01, help="KL coefficient")
    parser.add_argument("--epsilon", type=float, default=0.2, help="clip range")
    parser.add_argument("--temperature", type=float, default=1.0)
    parser.add_argument("--max-completion-length", type=int, default=48)
    parser.add_argument("--lora-r", type=int, default=64)
    parser.add_argument("--lora-alpha", type=int, default=32)
    parser.add_argument(
        "--max-none-fraction",
        type=float,
        default=0.25,
        help="stop when the judge leaves more of a step's answers without a verdict",
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--llm-endpoint", help="OpenAI-compatible judge server, e.g. http://127.0.0.1:8000/v1")
    parser.add_argument("--llm-model", help="the judge's served model name (with --llm-endpoint)")
    return parser.parse_args(argv)


def training_dataset(prepared_dir: str, dataset: str, split: str, prompt_text: str) -> Dataset:
    """TRL's columns (prompt, image) plus what the reward reads: sample_id (one group per image),
    ground_truth and dataset."""
    table = read_split(prepared_dir, dataset, split, columns=["sample_id", "image", "label"])
    rows = {
        "prompt": [build_messages(prompt_text)] * table.num_rows,
        "image": [{"bytes": data, "path": None} for data in table.column("image").to_pylist()],
        "sample_id": table.column("sample_id").to_pylist(),
        "ground_truth": table.column("label").to_pylist(),
        "dataset": [dataset] * table.num_rows,
    }
    return Dataset.from_dict(rows).cast_column("image", Image())


def make_judge(args: argparse.Namespace) -> JudgeService:
    """The taxonomy judge of `args.dataset` (a closed world unless an LLM judge is given), with a fresh store."""
    if args.llm_endpoint and not args.llm_model:
        raise ValueError("--llm-model is required with --llm-endpoint")
    taxonomy = Taxonomy.load(Path(args.prepared_dir) / args.dataset / "taxonomy.json")
    llm = LLMJudge.from_params(LLMParams(endpoint=args.llm_endpoint, model=args.llm_model), "--llm-endpoint")
    store = open_store(args.output_dir / "verdicts")
    return JudgeService(store, {args.dataset: taxonomy}, llm, closed_world=() if llm else [args.dataset])


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    model, processor = load_policy(args.model)
    dataset = training_dataset(args.prepared_dir, args.dataset, args.split, get_prompt("general"))
    config = GRPOConfig(
        output_dir=str(args.output_dir / "trainer"),
        seed=args.seed,
        use_cpu=not torch.cuda.is_available(),
        bf16=torch.cuda.is_available(),  # mixed precision on a GPU
        num_generations=args.num_generations,
        per_device_train_batch_size=args.images_per_step * args.num_generations,  # TRL counts completions
        max_steps=args.max_steps,
        learning_rate=args.learning_rate,
        lr_scheduler_type="constant",
        loss_type=args.loss_type,
        beta=args.beta,
        epsilon=args.epsilon,
        temperature=args.temperature,
        max_completion_length=args.max_completion_length,
        # a sampled image placeholder would break the policy's forward pass: never generate one
        generation_kwargs={"suppress_tokens": vision_token_ids(processor)},
        gradient_checkpointing=False,
        logging_steps=1,
        save_strategy="no",
        report_to="none",  # or "tensorboard", "wandb", "trackio"
    )
    with make_judge(args) as judge:
        reward = make_reward_func(
            args.reward,
            judge,
            num_generations=args.num_generations,
            seed=args.seed,
            max_none_fraction=args.max_none_fraction,
        )
        trainer = GRPOTrainer(
            model=model,
            reward_funcs=[reward],
            args=config,
            train_dataset=dataset,
            processing_class=processor,
            peft_config=LoraConfig(r=args.lora_r, lora_alpha=args.lora_alpha, target_modules=LANGUAGE_MODEL_LINEARS),
        )
        trainer.train()
    trainer.save_model(str(args.output_dir / "adapter"))
    steps = [entry for entry in trainer.state.log_history if "reward" in entry]
    print(
        json.dumps(
            {
                "steps": len(steps),
                "reward_mean": [entry["reward"] for entry in steps],
                "verdicts": {
                    name: sum(entry[f"verdicts/{name}"] for entry in steps) / len(steps) for name in VERDICT_NAMES
                },
                "adapter": str(args.output_dir / "adapter"),
            }
        )
    )
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except (FileNotFoundError, ValueError) as exc:
        print(f"{Path(__file__).name}: error: {exc}", file=sys.stderr)
        sys.exit(2)
