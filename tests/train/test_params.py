"""The train section: params.yaml and the paper recipe validate, and map onto TRL's GRPOConfig."""

from pathlib import Path

import pytest
import yaml

from speciarl.config import ParamsError, load_section
from speciarl.policy.params import PolicyParams
from speciarl.train.grpo import grpo_config, lora_config
from speciarl.train.params import RunParams, TrainParams

REPO = Path(__file__).resolve().parents[2]


def test_repo_params_define_the_two_miniworld_runs():
    train = load_section("train", REPO / "params.yaml")
    assert {name: run.reward for name, run in train.runs.items()} == {"speciarl": "speciarl", "binary": "binary"}
    # the anchor shares every other knob
    assert train.runs["speciarl"].model_dump(exclude={"reward"}) == train.runs["binary"].model_dump(exclude={"reward"})


def test_paper_recipe_maps_onto_grpo_config(tmp_path):
    recipe = TrainParams.model_validate(yaml.safe_load((REPO / "configs/paper_recipe.yaml").read_text())["train"])
    run = recipe.runs["speciarl"]
    assert (run.subset_size, run.subset_seed, run.num_generations, run.learning_rate) == (3000, 42, 10, 3e-5)
    policy = PolicyParams(model="Qwen/Qwen2.5-VL-7B-Instruct", backend="vllm", dtype="bfloat16", device="cpu")
    config = grpo_config(run, policy, recipe.seed, tmp_path, suppressed=[5, 6])
    assert config.use_vllm and config.vllm_mode == "colocate"
    assert (config.loss_type, config.beta, config.epsilon, config.temperature) == ("grpo", 0.01, 0.2, 1.0)
    assert config.lr_scheduler_type == "constant" and config.max_completion_length == 2048
    assert config.generation_kwargs == {"logit_bias": {5: -100.0, 6: -100.0}}
    assert config.steps_per_generation == 80 and config.gradient_accumulation_steps == 40
    lora = lora_config(run.lora)
    assert (lora.r, lora.lora_alpha) == (64, 32)


def test_lora_targets_the_language_model_only():
    import re

    pattern = re.compile(RunParams().lora.target_modules)
    assert pattern.fullmatch("model.language_model.layers.3.self_attn.q_proj")
    assert pattern.fullmatch("model.language_model.layers.0.mlp.down_proj")
    assert not pattern.fullmatch("model.visual.blocks.0.attn.qkv")
    assert not pattern.fullmatch("model.visual.blocks.0.mlp.gate_proj")
    assert not pattern.fullmatch("lm_head")


def test_bad_run_params_name_the_key(tmp_path):
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    params["train"]["runs"]["speciarl"]["reward"] = "speciarl_all"
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(params))
    with pytest.raises(ParamsError, match=r"train\.runs\.speciarl\.reward: .*unknown reward 'speciarl_all'"):
        load_section("train", path)
    params["train"]["runs"]["speciarl"]["reward"] = "speciarl"
    params["train"]["runs"]["speciarl"]["loss_type"] = "ppo"
    path.write_text(yaml.safe_dump(params))
    with pytest.raises(ParamsError, match=r"train\.runs\.speciarl\.loss_type"):
        load_section("train", path)
