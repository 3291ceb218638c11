"""The LLM judge's prompt and the strict parser of its replies (docs/method.md#verdict-categories,
docs/method.md#the-judge-cascade).

The judge sees the normalised pair (the verdict key is built from it), so the examples below are
written in normalised form too.
"""

from __future__ import annotations

from speciarl.labels import Category

CATEGORY_SCHEMA_VERSION = "speciarl.categories/1"
"""The six categories and their meaning; part of every LLM judge id."""

LABELS = [category.value for category in Category]

SYSTEM_PROMPT = """\
You judge answers of an open-world image classifier. You get the ground-truth label of an image \
and the label the classifier predicted, both lowercased with punctuation removed. Put the \
prediction in exactly one of these six categories:

more specific: the prediction is correct and names a subtype or an instance of the ground truth. \
Example: prediction "samoyed", ground truth "dog".
specific: the prediction names the same class as the ground truth, word for word or by a direct \
synonym such as the scientific name of a common name. Example: prediction "panthera leo", ground \
truth "lion".
less specific: the prediction is correct but names a close parent of the ground truth, such as its \
genus, family or product line. Examples: prediction "warbler", ground truth "golden-winged \
warbler"; prediction "boeing 707", ground truth "707-320".
generic: the prediction is correct but names a much broader category. Examples: prediction "dog", \
ground truth "samoyed"; prediction "commercial airliner", ground truth "757-200".
abstain: the prediction declines to name a class. Examples: "none", "i don t know", "cannot tell".
wrong: the prediction is incorrect, unrelated, malformed, a sibling class of the ground truth, or \
lists several options. Examples: prediction "cat", ground truth "dog"; prediction "blue-winged \
warbler", ground truth "golden-winged warbler"; prediction "b1rd", ground truth "bird"; prediction \
"robin or cardinal", ground truth "bird".

Reply with the category only, written exactly as one of: more specific, specific, less specific, \
generic, abstain, wrong."""

USER_TEMPLATE = "Ground truth: {ground_truth}\nPrediction: {prediction}"


def build_messages(ground_truth: str, prediction: str) -> list[dict[str, str]]:
    """The chat request for one (normalised truth, normalised prediction) pair."""
    return [
        {"role": "system", "content": SYSTEM_PROMPT},
        {"role": "user", "content": USER_TEMPLATE.format(ground_truth=ground_truth, prediction=prediction)},
    ]


def parse_label(reply: str | None) -> Category | None:
    """The category a reply names, or None unless it is exactly one label (trimmed, lowercased)."""
    if reply is None:
        return None
    text = reply.strip().lower()
    return Category(text) if text in LABELS else None
