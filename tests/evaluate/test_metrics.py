"""Golden tests for speciarl.metrics.summarize (docs/method.md#metrics) and the judge-free text inclusion."""

import pytest

from speciarl.evaluate.judge_free import cosine_similarities, text_inclusion
from speciarl.labels import FORMAT_ERROR, Category
from speciarl.metrics import OUTCOMES, outcome_rank, summarize


def test_one_of_each_outcome():
    result = summarize(["more specific", "specific", "less specific", "generic", "abstain", "wrong", FORMAT_ERROR])
    # 4 correct of 7 (abstain and format error count in "all"); 2 of the 4 correct are specific
    assert result["correctness"] == pytest.approx(4 / 7)
    assert result["specificity"] == pytest.approx(0.5)
    assert result["hm"] == pytest.approx(8 / 15)  # 2 * 1/2 * 4/7 / (1/2 + 4/7)
    assert result["score"] == pytest.approx((1 + 1 + 0.6 + 0.2 + 0 - 1 - 1) / 7)
    assert result["counts"] == dict.fromkeys(OUTCOMES, 1)


def test_enum_members_and_strings_mix():
    result = summarize([Category.SPECIFIC, "specific", Category.SPECIFIC, Category.ABSTAIN])
    assert result["correctness"] == pytest.approx(0.75)
    assert result["specificity"] == pytest.approx(1.0)
    assert result["hm"] == pytest.approx(2 * 0.75 / 1.75)
    assert result["score"] == pytest.approx(0.75)
    assert result["counts"]["specific"] == 3 and result["counts"]["abstain"] == 1
    assert set(result["counts"]) == {*(c.value for c in Category), FORMAT_ERROR}


def test_nothing_correct_gives_zero_specificity_and_hm():
    result = summarize(["wrong", "wrong", FORMAT_ERROR, "abstain"])
    assert (result["correctness"], result["specificity"], result["hm"]) == (0.0, 0.0, 0.0)
    assert result["score"] == pytest.approx(-0.75)


def test_all_generic_is_correct_but_not_specific():
    result = summarize(["generic"] * 5)
    assert (result["correctness"], result["specificity"], result["hm"]) == (1.0, 0.0, 0.0)
    assert result["score"] == pytest.approx(0.2)


def test_less_specific_utility_and_bounds():
    result = summarize(["less specific", "more specific", "wrong", "wrong", "wrong"])
    assert result["correctness"] == pytest.approx(0.4)
    assert result["specificity"] == pytest.approx(0.5)
    assert result["hm"] == pytest.approx(2 * 0.5 * 0.4 / 0.9)
    assert result["score"] == pytest.approx((0.6 + 1 - 3) / 5)


@pytest.mark.parametrize("bad", ["correct", None, "Specific", "format error"])
def test_unknown_outcome_is_named(bad):
    with pytest.raises(ValueError, match="not a verdict category"):
        summarize(["specific", bad])


def test_empty_input_is_an_error():
    with pytest.raises(ValueError, match="no predictions"):
        summarize([])


def test_best_of_ranking_puts_more_specific_first_and_format_error_last():
    ranked = sorted(
        [FORMAT_ERROR, "wrong", "generic", "more specific", "abstain", "specific", "less specific"], key=outcome_rank
    )
    assert ranked == list(OUTCOMES)
    assert ranked[0] == "more specific" and ranked[-1] == FORMAT_ERROR


@pytest.mark.parametrize(
    "truth, prediction, included",
    [
        ("golden-winged warbler", "warbler", True),  # the prediction's words inside the truth
        ("warbler", "golden-winged warbler", True),  # the truth's words inside the prediction
        ("audi tt", "audi tt coupe 2012", True),
        ("golden-winged warbler", "golden-winged warbler", True),
        ("cat", "catbird", False),  # whole words only
        ("boeing 707-320", "boeing 707", False),  # "707-320" is one word
        ("golden-winged warbler", "winged warbler", False),
        ("blue jay", "jay blue", False),  # consecutive and in order
        ("bird", "", False),  # an answer that normalises to nothing
    ],
)
def test_text_inclusion(truth, prediction, included):
    assert text_inclusion(truth, prediction) is included


def test_no_pairs_need_no_model():
    assert cosine_similarities(None, [], []).shape == (0,)
