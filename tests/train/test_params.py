"""The train section: params.yaml and the recipes validate, map onto TRL's GRPOConfig, and give each
run its seed."""

import importlib.util
import re
import shutil
from contextlib import nullcontext
from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml

from speciarl.config import ParamsError, load_section
from speciarl.evaluate.report import methods, trained_method
from speciarl.evaluate.summary import GREEDY
from speciarl.labels import Category
from speciarl.policy.params import PolicyParams
from speciarl.recipe import apply_recipe
from speciarl.train.grpo import grpo_config, lora_config
from speciarl.train.params import PROJECT_FIELDS, GrpoParams, RunParams, TrainParams, grpo_config_fields
from speciarl.train.reward_func import make_reward_func

REPO = Path(__file__).resolve().parents[2]


def test_repo_params_define_the_miniworld_runs_and_the_null_control():
    train = load_section("train", REPO / "params.yaml")
    assert {name: run.reward for name, run in train.runs.items()} == {
        "speciarl": "speciarl",
        "binary": "binary",
        "null_control": "null_control",
    }
    assert train.runs["null_control"].null_rate == "auto"
    # the anchors share every other knob
    knobs = [run.model_dump(exclude={"reward", "null_rate"}) for run in train.runs.values()]
    assert knobs[0] == knobs[1] == knobs[2]


def test_one_runs_override_changes_that_run_alone(tmp_path):
    """`dvc exp run -S train.runs.<run>.grpo.<key>=...` edits params.yaml this way: each run's blocks are its own."""
    from dvc.utils.hydra import apply_overrides

    path = tmp_path / "params.yaml"
    shutil.copy(REPO / "params.yaml", path)
    apply_overrides(str(path), ["train.runs.binary.grpo.learning_rate=0.002", "train.runs.null_control.lora.r=8"])
    runs = load_section("train", path).runs
    assert [run.grpo.learning_rate for run in runs.values()] == [1e-3, 2e-3, 1e-3]
    assert [run.lora.r for run in runs.values()] == [64, 64, 8]


def test_paper_recipe_maps_onto_grpo_config(tmp_path):
    recipe = TrainParams.model_validate(yaml.safe_load((REPO / "configs/paper_recipe.yaml").read_text())["train"])
    run = recipe.runs["speciarl"]
    assert (run.subset_size, run.subset_seed, run.grpo.num_generations, run.grpo.learning_rate) == (3000, 42, 10, 3e-5)
    policy = PolicyParams(
        model="Qwen/Qwen2.5-VL-7B-Instruct",
        dvc_dep="configs/hub_model.md",
        backend="vllm",
        dtype="bfloat16",
        device="cpu",
    )
    config = grpo_config(run, policy, recipe.seed, tmp_path, suppressed=[5, 6])
    assert config.use_vllm and config.vllm_mode == "colocate"
    assert (config.loss_type, config.beta, config.epsilon, config.temperature) == ("grpo", 0.01, 0.2, 1.0)
    assert config.lr_scheduler_type == "constant" and config.max_completion_length == 2048
    assert config.generation_kwargs == {"logit_bias": {5: -100.0, 6: -100.0}}
    assert config.steps_per_generation == 80 and config.gradient_accumulation_steps == 40
    lora = lora_config(run.lora)
    assert (lora.r, lora.lora_alpha) == (64, 32)


def test_lora_targets_the_language_model_only():
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
    params["train"]["runs"]["speciarl"]["grpo"]["loss_type"] = "ppo"
    path.write_text(yaml.safe_dump(params))
    with pytest.raises(ParamsError, match=r"train\.runs\.speciarl\.grpo\.loss_type"):
        load_section("train", path)


def load_run(tmp_path, **changes) -> str:
    """Loads params.yaml's train section with `changes` made to the speciarl run; returns the error, or ''."""
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    run = params["train"]["runs"]["speciarl"]
    for key, value in changes.items():
        *parents, last = key.split(".")
        target = run
        for parent in parents:
            target = target[parent]
        target[last] = value
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(params))
    try:
        load_section("train", path)
    except ParamsError as exc:
        assert "\n" not in str(exc) and str(exc).startswith(str(path))
        return str(exc)
    return ""


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        (
            {"grpo.learning_rat": 0.1},
            r"train\.runs\.speciarl\.grpo: .*'learning_rat' is not a field of trl\.GRPOConfig \(close: learning_rate",
        ),
        (
            {"grpo.seed": 3},
            r"train\.runs\.speciarl\.grpo: .*'seed' is set by speciarl, not here: set the run's seed \(or train\.seed",
        ),
        ({"grpo.data_seed": 3}, r"'data_seed' is set by speciarl, not here: set the run's seed"),
        ({"seed": -1}, r"train\.runs\.speciarl\.seed: .*greater than or equal to 0"),
        ({"grpo.use_vllm": True}, r"'use_vllm' is set by speciarl, not here: set policy\.backend"),
        ({"grpo.output_dir": "x"}, r"'output_dir' is set by speciarl"),
        ({"grpo.log_completions": "sometimes"}, r"log_completions: Input should be a valid boolean"),
        ({"grpo.num_generations": 3}, r"must be a multiple of num_generations \(3\)"),
        ({"grpo.report_to": ["tensorboard", "mlflow"]}, r"grpo\.report_to\.1: Input should be 'tensorboard', 'wandb'"),
        ({"min_support": 0}, r"train\.runs\.speciarl\.min_support: .*greater than or equal to 1"),
        ({"reward": "binary", "min_support": 2}, r"min_support applies to the speciarl rewards, not to 'binary'"),
        ({"null_rate": 0.3}, r"null_rate applies to the null_control reward, not to 'speciarl'"),
        (
            {"reward": "null_control", "null_rate": 1.5},
            r"train\.runs\.speciarl\.null_rate: .*must be auto or a rate in \[0, 1\]",
        ),
        (
            {"reward": "null_control", "null_rate": "half"},
            r"train\.runs\.speciarl\.null_rate: .*must be auto or a rate",
        ),
        ({"reward": None}, r"train\.runs\.speciarl\.reward: "),
    ],
)
def test_bad_run_keys_are_one_line_errors(tmp_path, changes, message):
    assert re.search(message, load_run(tmp_path, **changes))


def test_other_grpo_config_fields_pass_straight_through(tmp_path):
    run = RunParams(grpo={"log_completions": True, "optim": "adafactor", "max_grad_norm": 0.5, "report_to": "none"})
    policy = PolicyParams(model="m", dvc_dep="m", device="cpu")
    config = grpo_config(run, policy, 0, tmp_path, suppressed=[])
    assert (config.log_completions, config.optim, config.max_grad_norm) == (True, "adafactor", 0.5)
    assert run.grpo.report_to == [] and config.report_to == []
    # TensorBoard is written by speciarl into the run folder (tb/); the other backends go to TRL
    run = RunParams(grpo={"report_to": ["tensorboard", "wandb"]})
    assert grpo_config(run, policy, 0, tmp_path, suppressed=[]).report_to == ["wandb"]
    assert RunParams().grpo.report_to == ["tensorboard"]


def test_speciarl_s_grpo_keys_are_grpo_config_fields():
    fields = grpo_config_fields()
    assert set(GrpoParams.model_fields) <= set(fields)
    assert set(PROJECT_FIELDS) <= set(fields)
    assert not set(PROJECT_FIELDS) & set(GrpoParams.model_fields)


def test_every_field_speciarl_sets_is_refused_in_the_grpo_block(tmp_path, monkeypatch):
    """A field grpo_config sets itself must be in PROJECT_FIELDS, or a user's value would clash with it."""
    from speciarl.train import grpo

    passed = {}
    monkeypatch.setattr(grpo, "GRPOConfig", lambda **kwargs: passed.update(kwargs))
    run = RunParams(grpo={"log_completions": True})
    grpo.grpo_config(run, PolicyParams(model="m", dvc_dep="m", device="cpu"), 0, tmp_path, suppressed=[])
    assert set(passed) - set(run.grpo.model_dump()) <= set(PROJECT_FIELDS)
    assert passed["log_completions"] is True


def test_a_runs_seed_overrides_train_seed_and_null_falls_back_to_it():
    train = TrainParams(seed=7, runs={"own": RunParams(seed=3), "zero": RunParams(seed=0), "shared": RunParams()})
    assert [train.run_seed(name) for name in train.runs] == [3, 0, 7]
    assert load_section("train", REPO / "params.yaml").runs["speciarl"].seed is None


def test_the_train_stage_trains_with_the_runs_seed(tmp_path, monkeypatch):
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    params["train"]["seed"] = 7
    params["train"]["runs"]["binary"]["seed"] = 2
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(params))
    spec = importlib.util.spec_from_file_location("train_stage", REPO / "stages/train.py")
    stage = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(stage)
    seeds = {}

    def train_run(run_name, run, policy, judge, prepared_dir, out_dir, seed, harvest_rollouts):
        seeds[run_name] = seed
        return {"reward": run.reward, "steps": 0, "reward_mean_first": None, "reward_mean_last": None}

    monkeypatch.setattr(stage, "train_run", train_run)
    monkeypatch.setattr(stage, "JudgeService", SimpleNamespace(from_params=lambda *args, **kwargs: nullcontext()))
    for run in ("binary", "speciarl"):
        stage.run(SimpleNamespace(run=run, params=path))
    assert seeds == {"binary": 2, "speciarl": 7}


class SpecificJudge:
    """Every answer is specific: the null reward's draws are all that varies."""

    def judge(self, pairs):
        return [Category.SPECIFIC] * len(pairs)

    def judge_id(self, dataset):
        return "specific"


def null_rewards(seed: int, step: int = 1) -> list[float | None]:
    reward_func = make_reward_func("null_control", SpecificJudge(), options={"rate": 0.5}, num_generations=2, seed=seed)
    completions = [[{"role": "assistant", "content": "<answer>finch</answer>"}]] * 40
    return reward_func(
        prompts=[[]] * 40,
        completions=completions,
        sample_id=[f"s{i // 2}" for i in range(40)],
        ground_truth=["finch"] * 40,
        dataset=["miniworld_a"] * 40,
        trainer_state=SimpleNamespace(global_step=step - 1),
    )


def test_the_null_controls_draws_follow_the_runs_seed():
    """train_run hands the run's seed to the reward: seeds k and j of the null control draw differently."""
    assert null_rewards(seed=0) == null_rewards(seed=0)
    assert null_rewards(seed=0) != null_rewards(seed=1) != null_rewards(seed=2)


SEED_STUDY = REPO / "configs/seed_study.yaml"
SEED_STUDY_METHODS = {
    "speciarl": {"reward": "speciarl", "min_support": 1},
    "binary": {"reward": "binary"},
    "scale2": {"reward": "scale2"},
    "speciarl_ms2": {"reward": "speciarl", "min_support": 2},
    "null_control": {"reward": "null_control", "null_rate": "auto"},
}
# What tells the seed study's runs apart; every other knob is shared.
SEED_STUDY_KEYS = {"reward", "min_support", "seed", "null_rate"}


def test_the_seed_study_recipe_applies_and_shares_every_other_knob(tmp_path):
    path = tmp_path / "params.yaml"
    shutil.copy(REPO / "params.yaml", path)
    assert apply_recipe(SEED_STUDY, path)  # validated as `speciarl params apply` validates it
    runs = load_section("train", path).runs
    assert list(runs) == [f"{method}_s{seed}" for method in SEED_STUDY_METHODS for seed in range(3)]
    for name, run in runs.items():
        method = trained_method(name)
        assert run.seed == int(name.rpartition("_s")[2])
        assert run.model_dump(include=set(SEED_STUDY_METHODS[method])) == SEED_STUDY_METHODS[method], name
    # params.yaml's mini-world run, down to every lora and grpo knob
    shared = load_section("train", REPO / "params.yaml").runs["speciarl"].model_dump(exclude=SEED_STUDY_KEYS)
    for name, run in runs.items():
        assert run.model_dump(exclude=SEED_STUDY_KEYS) == shared, name
    # The report: one row per method, its three seeds merged, min_support 2 right after SpeciaRL.
    rows = methods({f"{name}-general": {GREEDY: {}} for name in runs})
    assert [(row.label, len(row.runs)) for row in rows] == [
        ("RFT (binary reward)", 3),
        ("SpeciaRL", 3),
        ("SpeciaRL, min_support 2", 3),
        ("Trained `scale2`", 3),
        ("Null control (random reward)", 3),
    ]
