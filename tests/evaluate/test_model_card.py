"""The adapter's model card: Hub-valid front matter, a loading snippet that loads the adapter with
PEFT, and the report stage's copy with the evaluation results (speciarl.model_card)."""

import re
from pathlib import Path

import pytest
import torch
import yaml
from huggingface_hub import ModelCard
from peft import LoraConfig, PeftModel, get_peft_model
from transformers import AutoModelForImageTextToText

from speciarl.model_card import adapter_card, is_hub_id, with_evaluation
from speciarl.policy.params import PolicyParams
from speciarl.train.params import RunParams

REPO = Path(__file__).resolve().parents[2]
HUB_MODEL = "Qwen/Qwen2.5-VL-7B-Instruct"


def run_params() -> RunParams:
    return RunParams.model_validate(yaml.safe_load((REPO / "params.yaml").read_text())["train"]["runs"]["speciarl"])


def front_matter(card: str) -> dict:
    match = re.match(r"^---\n(.*?)\n---\n", card, re.DOTALL)
    assert match, "no YAML front matter"
    return yaml.safe_load(match.group(1))


@pytest.fixture(scope="module")
def tiny_adapter(untrained_policy, tmp_path_factory) -> Path:
    """A LoRA adapter of the untrained tiny policy with non-zero weights, saved as PEFT saves it."""
    torch.manual_seed(0)
    model = AutoModelForImageTextToText.from_pretrained(untrained_policy)
    config = LoraConfig(r=4, lora_alpha=8, target_modules=r".*language_model.*\.(q_proj|v_proj)")
    peft_model = get_peft_model(model, config)
    with torch.no_grad():
        for name, parameter in peft_model.named_parameters():
            if "lora_B" in name:
                parameter.normal_()  # PEFT starts B at zero; a loaded zero adapter would prove nothing
    out = tmp_path_factory.mktemp("adapter") / "adapter"
    peft_model.save_pretrained(out)
    return out


def test_local_base_card_loads_with_its_own_snippet(untrained_policy, tiny_adapter):
    policy = PolicyParams(model=untrained_policy, dvc_dep=untrained_policy, device="cpu", dtype="float32")
    metrics = {"steps": 2, "reward_mean_last": 0.5}
    card = adapter_card("mini", run_params(), policy, "ab" * 32, 16, metrics, tiny_adapter)
    meta = front_matter(card)
    assert "base_model" not in meta  # a local folder is no Hub repository
    assert meta["library_name"] == "peft" and meta["pipeline_tag"] == "image-text-to-text"
    assert {"speciarl", "grpo", "lora"} <= set(meta["tags"])
    assert f"the local folder `{untrained_policy}`" in card
    assert ModelCard(card).data.library_name == "peft"

    snippet = re.search(r"```python\n(.*?)```", card, re.DOTALL).group(1)
    namespace: dict = {}
    exec(snippet, namespace)  # the card's own instructions
    model = namespace["model"]
    assert isinstance(model, PeftModel)
    saved = PeftModel.from_pretrained(AutoModelForImageTextToText.from_pretrained(untrained_policy), tiny_adapter)
    loaded = dict(model.named_parameters())
    lora = [name for name, _ in saved.named_parameters() if "lora_B" in name]
    assert lora
    assert all(torch.equal(loaded[name], parameter) for name, parameter in saved.named_parameters() if name in lora)
    assert any(loaded[name].abs().sum() > 0 for name in lora)


def test_hub_base_is_named_in_the_front_matter(tmp_path):
    assert is_hub_id(HUB_MODEL) and not is_hub_id(str(tmp_path)) and not is_hub_id("data/models/base")
    policy = PolicyParams(model=HUB_MODEL, dvc_dep="configs/hub_model.md")
    card = adapter_card("paper", run_params(), policy, "0" * 64, 3000, {}, "data/runs/paper/adapter")
    assert front_matter(card)["base_model"] == HUB_MODEL
    assert f"AutoModelForImageTextToText.from_pretrained('{HUB_MODEL}')" in card


def test_report_copy_carries_the_evaluation():
    policy = PolicyParams(model=HUB_MODEL, dvc_dep="configs/hub_model.md")
    card = adapter_card("paper", run_params(), policy, "0" * 64, 3000, {}, "data/runs/paper/adapter")
    assert "model-index" not in front_matter(card)  # nothing evaluated at train time
    numbers = {"n": 500, "specificity": 0.25, "correctness": 0.9375, "hm": 0.394737, "score": 0.5}
    evaluated = with_evaluation(card, "paper", {"paper-general": {"cub": {"test": numbers}}}, "data/eval/metrics.json")
    results = ModelCard(evaluated).data.eval_results
    found = {(result.dataset_name, result.dataset_split, result.metric_type): result.metric_value for result in results}
    assert found == {
        ("cub", "test", "specificity"): 0.25,
        ("cub", "test", "correctness"): 0.9375,
        ("cub", "test", "hm"): 0.394737,
        ("cub", "test", "score"): 0.5,
    }
    assert front_matter(evaluated)["base_model"] == HUB_MODEL
    assert "| `paper-general` | cub | test | 500 | 0.250 | 0.938 | 0.395 | 0.500 |" in evaluated
    assert "Not in this card" not in evaluated and evaluated.count("## Evaluation") == 1
    with pytest.raises(ValueError, match=r"model card of run paper: no '## Evaluation' section"):
        with_evaluation("---\nlibrary_name: peft\n---\n# a card\n", "paper", {}, "metrics.json")
