"""`speciarl params apply`: a recipe merged into params.yaml by the schemas' rule, validated first."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml

from speciarl.cli import main
from speciarl.config import ParamsError, read_raw
from speciarl.recipe import apply_recipe

REPO = Path(__file__).resolve().parents[1]
RECIPE = REPO / "configs/paper_recipe.yaml"


@pytest.fixture
def params(tmp_path) -> Path:
    path = tmp_path / "params.yaml"
    shutil.copy(REPO / "params.yaml", path)
    return path


def leaves(tree: dict, where: str = ""):
    for key, value in tree.items():
        name = f"{where}.{key}" if where else key
        if isinstance(value, dict) and value:
            yield from leaves(value, name)
        else:
            yield name, value


def lookup(tree: dict, dotted: str):
    for part in dotted.split("."):
        tree = tree[part]
    return tree


def test_paper_recipe_gives_its_settings_and_keeps_the_rest(params, capsys):
    before = read_raw(params)
    recipe = read_raw(RECIPE)
    assert main(["params", "apply", str(RECIPE), "--params", str(params)]) == 0
    after = read_raw(params)
    for name, value in leaves(recipe):
        assert lookup(after, name) == value, name
    # Mappings of names are replaced whole: no mini-world run or group survives.
    assert after["train"]["runs"] == recipe["train"]["runs"]
    assert after["evaluate"]["groups"] == recipe["evaluate"]["groups"]
    # What the recipe does not name keeps its value.
    assert after["judge"]["llm"]["timeout_s"] == before["judge"]["llm"]["timeout_s"]
    assert after["data"]["miniworld"] == before["data"]["miniworld"]
    assert after["harvest"]["n"] == before["harvest"]["n"]
    text = params.read_text()
    assert "# Every knob of the pipeline." in text and "# transformers | vllm" in text  # comments kept
    out = capsys.readouterr().out
    assert "policy.model: data/models/base -> Qwen/Qwen2.5-VL-7B-Instruct\n" in out
    assert 'bootstrap.build: ["base"] -> []\n' in out
    assert "train.runs.null_control: " in out and "-> (absent)" in out
    # Applied again, it changes nothing and leaves the file as it is.
    assert apply_recipe(RECIPE, params) == []
    assert params.read_text() == text


def test_an_invalid_result_is_one_line_and_writes_nothing(params, tmp_path):
    original = params.read_bytes()
    bad = tmp_path / "bad.yaml"
    bad.write_text("policy:\n  dtype: float8\n")
    with pytest.raises(ParamsError, match=r"bad.yaml applied to .*params.yaml: policy.dtype: ") as error:
        apply_recipe(bad, params)
    assert "\n" not in str(error.value)
    bad.write_text("polcy:\n  dtype: bfloat16\n")
    with pytest.raises(ParamsError, match="polcy: unknown section"):
        apply_recipe(bad, params)
    assert params.read_bytes() == original


@pytest.mark.parametrize(
    ("recipe", "message"),
    [
        # a hub id needs the stand-in dependency, not a local path DVC cannot find
        ({"policy": {"model": "Qwen/Qwen2.5-VL-7B-Instruct"}}, "policy.dvc_dep: .*configs/hub_model.md"),
        # the tiny policy would be built although no stage uses it
        (
            {"policy": {"model": "Qwen/Qwen2.5-VL-7B-Instruct", "dvc_dep": "configs/hub_model.md"}},
            "bootstrap.build: lists base",
        ),
        # nothing would build the policy the stages use
        ({"bootstrap": {"build": []}}, "bootstrap.build: is empty"),
    ],
)
def test_the_policy_source_is_checked_across_sections(params, tmp_path, recipe, message):
    path = tmp_path / "recipe.yaml"
    path.write_text(yaml.safe_dump(recipe))
    original = params.read_bytes()
    with pytest.raises(ParamsError, match=message):
        apply_recipe(path, params)
    assert params.read_bytes() == original


def test_a_local_policy_folder_is_its_own_dependency(params, tmp_path, capsys):
    (tmp_path / "models/tiny").mkdir(parents=True)
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text("policy: {model: models/tiny, dvc_dep: models/tiny}\nbootstrap: {build: []}\n")
    assert main(["params", "apply", str(recipe), "--params", str(params)]) == 0
    assert "policy.dvc_dep: data/models/base -> models/tiny" in capsys.readouterr().out
    recipe.write_text("policy: {model: models/tiny, dvc_dep: configs/hub_model.md}\n")
    assert main(["params", "apply", str(recipe), "--params", str(params)]) == 2
    assert "policy.dvc_dep: " in capsys.readouterr().err
