"""The prompt registry and the params that name prompts."""

import pytest

from speciarl.config import ParamsError, load_section
from speciarl.policy.prompts import PROMPTS, build_messages, get_prompt

NAMES = ["general", "specific", "calibrated", "elimination", "high_precision", "max_correctness", "max_specificity"]


def test_registry_holds_the_seven_prompts_with_the_answer_format():
    assert sorted(PROMPTS) == sorted(NAMES)
    for name in NAMES:
        text = get_prompt(name)
        assert "<think>" in text and "<answer>" in text and "None" in text, name
    assert get_prompt("specific").startswith("Be as specific") and get_prompt("specific").endswith(
        get_prompt("general")
    )
    assert len(set(PROMPTS.values())) == len(PROMPTS)


def test_unknown_prompt_lists_the_known_names():
    with pytest.raises(ValueError, match=r"unknown prompt 'be_nice' \(known: general, specific, calibrated"):
        get_prompt("be_nice")


def test_messages_put_the_image_before_the_prompt():
    assert build_messages("Classify.") == [
        {"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "Classify."}]}
    ]


@pytest.mark.parametrize(
    "section, body, key",
    [
        ("predict", "predict:\n  base_prompts: [general, nope]\n", "predict.base_prompts"),
        ("predict", "predict:\n  best_of_n: {prompt: nope}\n", "predict.best_of_n.prompt"),
        ("harvest", "harvest:\n  prompt: nope\n", "harvest.prompt"),
        ("predict", "predict:\n  splits: [miniworld_a]\n", "predict.splits"),
        ("policy", "policy:\n  min_pixels: 50000\n  max_pixels: 12544\n", "policy"),
    ],
)
def test_params_reject_bad_prompt_names_and_splits(tmp_path, section, body, key):
    path = tmp_path / "params.yaml"
    path.write_text(body)
    with pytest.raises(ParamsError, match=rf"params.yaml: {key}"):
        load_section(section, path)
