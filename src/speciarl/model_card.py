"""The model card (README.md) of a trained LoRA adapter, in the Hugging Face Hub's format.

A card is written twice, so that none holds numbers of an older evaluation:
- at train time, into the adapter folder (`adapter_card`): the run's params, data and training
  metrics, and an Evaluation section that says where the results are, since none exist yet;
- by the report stage (`with_evaluation`), as <report_dir>/model_cards/<run>/README.md: the same
  card with the evaluation results of metrics.json, as `model-index` in the front matter and as a
  table. Publish that copy with the adapter (it replaces the adapter's README.md).

Front matter: `base_model` only when policy.model is a Hub id (a local folder is named in the text
instead: the Hub rejects a base_model that is not a repository), `library_name: peft`,
`pipeline_tag`, `tags`. The loading snippet uses PEFT's standard API (PeftModel.from_pretrained).
A card without the Evaluation heading (not written by `adapter_card`) is a ValueError.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from huggingface_hub import EvalResult, ModelCard, ModelCardData
from huggingface_hub.errors import HFValidationError
from huggingface_hub.utils import validate_repo_id

EVALUATION_HEADING = "## Evaluation"
MODEL_CARDS_DIR = "model_cards"
PIPELINE_TAG = "image-text-to-text"
TAGS = ["speciarl", "grpo", "trl", "lora"]
# The metrics of metrics.json that go into model-index, with their display names.
CARD_METRICS = {"specificity": "Specificity", "correctness": "Correctness", "hm": "HM", "score": "Score"}


def is_hub_id(model: str) -> bool:
    """Whether policy.model names a Hub repository: no local path of that name, and a valid repo id."""
    if Path(model).exists():
        return False
    try:
        validate_repo_id(model)
    except HFValidationError:
        return False
    return True


def loading_snippet(base_model: str, adapter: str) -> str:
    """Python that loads the base model and this adapter with PEFT's standard API."""
    return "\n".join(
        [
            "from peft import PeftModel",
            "from transformers import AutoModelForImageTextToText",
            "",
            f"base = AutoModelForImageTextToText.from_pretrained({base_model!r})",
            f"model = PeftModel.from_pretrained(base, {adapter!r})  # or the Hub id this folder is pushed to",
        ]
    )


def adapter_card(
    run_name: str, run: Any, policy: Any, data_hash: str, num_prompts: int, metrics: dict, adapter_dir: str | Path
) -> str:
    """The train-time card. `run`: the run's RunParams; `policy`: PolicyParams; `metrics`: train_metrics."""
    import trl  # imported here: the report stage, which also uses this module, never needs TRL

    hub = is_hub_id(policy.model)
    data = ModelCardData(
        base_model=policy.model if hub else None, library_name="peft", pipeline_tag=PIPELINE_TAG, tags=list(TAGS)
    )
    base = (
        f"`{policy.model}` on the Hub ({policy.dtype})"
        if hub
        else f"the local folder `{policy.model}` ({policy.dtype}; not on the Hub: the front matter names no base_model)"
    )
    shown = {key: value for key, value in metrics.items() if value is not None}
    lines = [
        f"# speciarl run `{run_name}`",
        "",
        f"LoRA adapter trained with GRPO (TRL {trl.__version__}) and the `{run.reward}` reward"
        + (f" with judge noise p={run.noise}" if run.noise else "")
        + ".",
        "",
        f"- Base model: {base}",
        f"- Data: `{run.dataset}/{run.split}`, {num_prompts} images"
        + (f" (random subset, seed {run.subset_seed})" if run.subset_size else "")
        + f", content hash `{data_hash[:16]}`, prompt `{run.prompt}`",
        f"- Reward: `{run.reward}`; format errors -1; rollouts without a verdict excluded (None)",
        "",
        "## Loading",
        "",
        "```python",
        loading_snippet(policy.model, str(adapter_dir)),
        "```",
        "",
        f"The processor is the base model's: `AutoProcessor.from_pretrained({policy.model!r})` (Qwen2.5-VL's "
        f"needs torchvision for its video half), or `speciarl.policy.loading.load_processor({policy.model!r})`, "
        "which builds the image-only processor without it.",
        "",
        "## Parameters",
        "",
        "```json",
        json.dumps(run.model_dump(), indent=1, sort_keys=True),
        "```",
        "",
        "## Training metrics (mean over the first / last steps)",
        "",
        "```json",
        json.dumps(shown, indent=1, sort_keys=True),
        "```",
        "",
        EVALUATION_HEADING,
        "",
        "Not in this card: it is written at train time, before any evaluation. The pipeline's report stage "
        f"writes this card with the evaluation results to `{MODEL_CARDS_DIR}/{run_name}/README.md` in its "
        "report folder (evaluate.report_dir); publish that copy with the adapter.",
        "",
    ]
    return str(ModelCard(f"---\n{data.to_yaml()}\n---\n" + "\n".join(lines)))


def with_evaluation(card_text: str, run_name: str, results: dict[str, dict[str, dict[str, dict]]], source: str) -> str:
    """The card with its Evaluation section and model-index filled from metrics.json.

    `results`: {prediction run: {dataset: {split: DATASET entry of metrics.json}}} of this adapter's
    prediction runs; `source`: where the numbers come from, named in the text.
    """
    card = ModelCard(card_text)
    head, heading, _ = card.text.partition(EVALUATION_HEADING)
    if not heading:
        raise ValueError(f"model card of run {run_name}: no {EVALUATION_HEADING!r} section (not written by speciarl?)")
    eval_results = []
    table = [
        "| Prediction run | Dataset | Split | Images | " + " | ".join(CARD_METRICS.values()) + " |",
        "|---|---|---|---:|" + "---:|" * len(CARD_METRICS),
    ]
    for prediction_run, datasets in sorted(results.items()):
        for dataset, splits in sorted(datasets.items()):
            for split, entry in sorted(splits.items()):
                table.append(
                    f"| `{prediction_run}` | {dataset} | {split} | {entry['n']} | "
                    + " | ".join(f"{entry[name]:.3f}" for name in CARD_METRICS)
                    + " |"
                )
                eval_results += [
                    EvalResult(
                        task_type=PIPELINE_TAG,
                        task_name=f"Open-world classification ({prediction_run})",
                        dataset_type=dataset,
                        dataset_name=dataset,
                        dataset_split=split,
                        metric_type=name,
                        metric_name=title,
                        metric_value=entry[name],
                    )
                    for name, title in CARD_METRICS.items()
                ]
    card.data.model_name = f"speciarl-{run_name}"
    card.data.eval_results = eval_results or None
    body = [
        EVALUATION_HEADING,
        "",
        f"From `{source}` (greedy answers, one per image; definitions in the report).",
        "",
        *(table if eval_results else ["No prediction run of this adapter was evaluated."]),
        "",
    ]
    return str(ModelCard(f"---\n{card.data.to_yaml()}\n---\n{head}" + "\n".join(body)))
