"""params.yaml validation: one-line errors naming the key and what is allowed."""

from pathlib import Path

import pytest
import yaml

from speciarl.config import SECTIONS, ParamsError, load_params, load_section

REPO = Path(__file__).resolve().parents[1]


def write(tmp_path, params: dict) -> Path:
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(params))
    return path


def repo_params() -> dict:
    return yaml.safe_load((REPO / "params.yaml").read_text())


def test_repo_params_validate_every_section():
    sections = load_params(*SECTIONS, path=REPO / "params.yaml")
    assert set(sections) == set(SECTIONS)


def test_unknown_key_names_the_key_and_the_allowed_ones(tmp_path):
    params = repo_params()
    params["data"]["prepared_dirr"] = "x"
    with pytest.raises(ParamsError) as err:
        load_section("data", write(tmp_path, params))
    message = str(err.value)
    assert "data.prepared_dirr: unknown key" in message
    assert "prepared_dir" in message.split("allowed:")[1]
    assert "\n" not in message


def test_nested_unknown_key(tmp_path):
    params = repo_params()
    params["data"]["miniworld"]["sead"] = 1
    with pytest.raises(ParamsError, match=r"data\.miniworld\.sead: unknown key \(allowed: .*seed"):
        load_section("data", write(tmp_path, params))


def test_wrong_type_and_impossible_value(tmp_path):
    params = repo_params()
    params["data"]["miniworld"]["image_size"] = "large"
    with pytest.raises(ParamsError, match=r"data\.miniworld\.image_size: .*got 'large'"):
        load_section("data", write(tmp_path, params))
    params["data"]["miniworld"]["image_size"] = 0
    with pytest.raises(ParamsError, match=r"data\.miniworld\.image_size: .*greater than or equal"):
        load_section("data", write(tmp_path, params))


def test_unknown_section(tmp_path):
    params = repo_params()
    params["trian"] = {}
    with pytest.raises(ParamsError, match=r"trian: unknown section \(allowed: data, "):
        load_section("train", write(tmp_path, params))


def test_missing_file_and_bad_yaml(tmp_path):
    with pytest.raises(ParamsError, match="file not found"):
        load_section("data", tmp_path / "nope.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("data: [unclosed\n")
    with pytest.raises(ParamsError, match="not valid YAML"):
        load_section("data", bad)


# Nothing falls back silently: each bad input is one line naming the key.
def _drop_judge(params):
    del params["judge"]


def _set(section: str, value):
    return lambda params: params.__setitem__(section, value)


def _edit(*keys, value):
    def edit(params):
        node = params
        for key in keys[:-1]:
            node = node[key]
        node[keys[-1]] = value

    return edit


@pytest.mark.parametrize(
    ("section", "mutate", "message"),
    [
        ("judge", _drop_judge, r"judge: required section is missing \(`judge: \{\}` takes every default\)"),
        ("judge", _set("judge", []), r"judge: expected a mapping of keys, got \[\]"),
        ("train", _set("train", 0), r"train: expected a mapping of keys, got 0"),
        ("judge", _set("judge", None), r"judge: expected a mapping of keys, got nothing"),
        ("judge", _edit("judge", "store", value=""), r"judge\.store: Value error, must not be empty"),
        (
            "train",
            _edit("train", "runs", "binary", "grpo", "beta", value=float("inf")),
            r"train\.runs\.binary\.grpo\.beta: .*finite",
        ),
        ("train", _edit("train", "runs", value={}), r"train\.runs: .*at least 1 item"),
        (
            "train",
            _edit("train", "runs", "../up", value={}),
            r"train\.runs: .*run name '\.\./up' must be a folder name",
        ),
        (
            "policy",
            _edit("policy", "min_pixels", value=401408),
            r"policy: .*min_pixels \(401408\) is larger than max_pixels",
        ),
        ("policy", _edit("policy", "model", value=""), r"policy\.model: Value error, must not be empty"),
        (
            "data",
            _edit("data", "datasets", value=["miniworld", "miniworld"]),
            r"data\.datasets: .*lists 'miniworld' twice",
        ),
        ("predict", _edit("predict", "splits", value=["a/test", "a/test"]), r"predict\.splits: .*lists 'a/test' twice"),
        (
            "judge",
            _edit("judge", "taxonomy", "close_levels_by_dataset", "cub", value=-1),
            r"judge\.taxonomy\.close_levels_by_dataset\.cub: .*greater than or equal to 0 \(got -1\)",
        ),
    ],
)
def test_bad_values_are_one_line_errors_naming_the_key(tmp_path, section, mutate, message):
    params = repo_params()
    params["policy"]["max_pixels"] = 200704
    mutate(params)
    with pytest.raises(ParamsError, match=message) as err:
        load_section(section, write(tmp_path, params))
    assert "\n" not in str(err.value) and str(err.value).startswith(str(tmp_path / "params.yaml"))


def test_a_typo_in_a_run_lists_the_allowed_keys(tmp_path):
    params = repo_params()
    params["train"]["runs"]["binary"] = {**params["train"]["runs"]["binary"], "learning_rate": 0.1}
    with pytest.raises(ParamsError, match=r"train\.runs\.binary\.learning_rate: unknown key \(allowed: .*grpo"):
        load_section("train", write(tmp_path, params))


@pytest.mark.parametrize(
    "args", [["--host", "0.0.0.0"], ["--host=0.0.0.0"], ["--api-key", "k"], ["--api_key=k"], ["--api-k", "k"]]
)
def test_judge_server_args_cannot_override_bind_host_or_key(tmp_path, args):
    params = repo_params()
    params["judge"]["llm"].update(serve={"backend": "vllm", "args": ["--tensor-parallel-size", "2", *args]}, model="m")
    with pytest.raises(ParamsError, match=rf"judge\.llm\.serve\.args: .*'{args[0]}' may not be overridden"):
        load_section("judge", write(tmp_path, params))
    params["judge"]["llm"]["serve"]["args"] = ["--tensor-parallel-size", "2"]
    assert load_section("judge", write(tmp_path, params)).llm.serve.args == ["--tensor-parallel-size", "2"]


def test_yaml_errors_name_line_and_column(tmp_path):
    bad = tmp_path / "params.yaml"
    bad.write_text("data:\n  prepared_dir: x\n  datasets: [miniworld\npolicy: {}\n")
    with pytest.raises(ParamsError, match=r"params\.yaml: not valid YAML at line 4, column 7: .*expected ',' or '\]'"):
        load_section("data", bad)
    bad.write_text("data:\n  prepared_dir: x\n  workers: 1\n  prepared_dir: y\n")
    with pytest.raises(ParamsError, match=r"line 4, column 3: key 'prepared_dir' given twice \(first on line 2\)"):
        load_section("data", bad)


def test_a_merge_may_override_its_anchor(tmp_path):
    path = tmp_path / "params.yaml"
    path.write_text(
        "train:\n  runs:\n    a: &base {reward: speciarl, noise: 0.1}\n    b:\n      <<: *base\n      reward: binary\n"
    )
    runs = load_section("train", path).runs
    assert (runs["a"].reward, runs["b"].reward, runs["b"].noise) == ("speciarl", "binary", 0.1)
