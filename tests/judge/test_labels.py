"""Golden tests of speciarl.labels: categories, normalisation (docs/method.md#label-normalisation) and answer
extraction (docs/method.md#answer-format-and-extraction)."""

import pytest

from speciarl.labels import Category, extract_answer, normalize


def test_categories_are_the_six_in_order():
    assert [c.value for c in Category] == ["more specific", "specific", "less specific", "generic", "abstain", "wrong"]
    assert [c.rank for c in Category] == list(range(6))
    assert {c for c in Category if c.is_correct} == {
        Category.MORE_SPECIFIC,
        Category.SPECIFIC,
        Category.LESS_SPECIFIC,
        Category.GENERIC,
    }


@pytest.mark.parametrize(
    "text, expected",
    [
        ("F/A-18", "f a-18"),  # the reference example: slash -> space, dash kept
        ("Golden-winged Warbler", "golden-winged warbler"),
        ("  Boeing   737-200\n", "boeing 737-200"),
        ("Anna's Hummingbird", "anna s hummingbird"),
        ("Chuck-will's-widow", "chuck-will s-widow"),
        ("I don't know.", "i don t know"),
        ("robin, cardinal", "robin cardinal"),
        ("Audi S4 Sedan 2012", "audi s4 sedan 2012"),
        ("707–320", "707–320"),  # en dash is dash punctuation: kept
        ("Crème brûlée", "crème brûlée"),
        ("Cre\u0300me bru\u0302le\u0301e", "crème brûlée"),  # decomposed accents compose, not split
        ("Panthera leo (lion)", "panthera leo lion"),
        ("bird_of_paradise", "bird of paradise"),  # underscore is not a dash
        ("???", ""),
        ("", ""),
        ("ÉCLAIR", "éclair"),
        ("Straße", "straße"),
        ("tab\tand\u00a0nbsp", "tab and nbsp"),
        ("1½ cats²", "1½ cats²"),  # other numerals are digits in the Unicode sense
    ],
)
def test_normalize_golden(text, expected):
    assert normalize(text) == expected


@pytest.mark.parametrize("text", ["İstanbul", "F/A-18", "Ǆungla", "ΣΊΣΥΦΟΣ", "Cre\u0300me", "a\u200bb"])
def test_normalize_is_idempotent(text):
    assert normalize(normalize(text)) == normalize(text)


@pytest.mark.parametrize(
    "completion, expected",
    [
        ("<think>a bird</think><answer>Golden-winged Warbler</answer>", "Golden-winged Warbler"),
        ("<answer>  warbler \n</answer>", "warbler"),
        ("<answer>None</answer>", "None"),
        ("<think>x</think>\n<answer>\nline one\nline two\n</answer>", "line one\nline two"),
        ("no tags at all", None),
        ("<answer></answer>", None),
        ("<answer>   </answer>", None),
        ("<answer>unterminated", None),
        ("</answer>backwards<answer>", None),
        ("<ANSWER>upper</ANSWER>", None),
        ("<think><answer>inside think</answer></think>", "inside think"),
    ],
)
def test_extract_answer_golden(completion, expected):
    assert extract_answer(completion) == expected


# The authors' rule: the first <answer>...</answer> pair decides and whatever follows is ignored;
# an empty first answer stays a format error even when a later pair holds a label.
@pytest.mark.parametrize(
    "completion, expected",
    [
        # repeated tags
        ("<answer>robin</answer><answer>cardinal</answer>", "robin"),
        ("<think>robin?</think><answer>Robin</answer>\n<think>or not</think><answer>cardinal</answer>", "Robin"),
        ("<answer>robin</answer><answer>robin</answer><answer>robin</answer>", "robin"),
        # text after the first pair
        ("<answer>warbler</answer> I am fairly sure.", "warbler"),
        ("<answer>warbler</answer> then <answer>", "warbler"),
        ("<answer>warbler</answer></answer>", "warbler"),
        ("<think>a</think><answer>crow</answer><|im_end|>garbage <answer>", "crow"),
        # nested or unclosed tags: the shortest match from the first opening tag
        ("<answer>robin <answer>cardinal</answer>", "robin <answer>cardinal"),
        ("<answer><answer>cardinal</answer></answer>", "<answer>cardinal"),
        ("<answer>robin", None),
        ("<answer>robin <answer>cardinal", None),
        ("text </answer> then <answer>finch</answer>", "finch"),
        # empty first answer: a format error, whatever follows
        ("<answer></answer><answer>robin</answer>", None),
        ("<answer> \n\t </answer> <answer>robin</answer>", None),
    ],
)
def test_extract_answer_takes_the_first_pair(completion, expected):
    assert extract_answer(completion) == expected
