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
