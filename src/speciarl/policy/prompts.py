"""The policy prompts (docs/method.md#prompts), selected by name in params; our own wording.

`general` is the training and main evaluation prompt. `specific` is the same prompt opened by an
instruction to be specific. The other five are evaluation-only baselines that steer how specific
the answer should be. Every prompt asks for the same answer format, so labels.extract_answer
parses all of them.
"""

from __future__ import annotations

_FORMAT = (
    "Think step by step inside <think> </think>, then give your final answer inside "
    "<answer> </answer>: a single label, or None if you cannot tell. Follow this format strictly."
)

_GENERAL = f"What is in this image? Classify it. {_FORMAT}"

PROMPTS: dict[str, str] = {
    "general": _GENERAL,
    "specific": f"Be as specific as you can. {_GENERAL}",
    "calibrated": (
        "What is in this image? Classify it. Give the most specific label only when you are "
        f"confident in it; otherwise give a broader label that is surely correct. {_FORMAT}"
    ),
    "elimination": (
        "What is in this image? Classify it. List up to 3 candidate labels, rule out those that "
        "the visible evidence contradicts, and answer with the most general label that survives. "
        f"{_FORMAT}"
    ),
    "high_precision": (
        "What is in this image? Classify it. If you are unsure, answer None; otherwise give the "
        f"most specific label the image supports. {_FORMAT}"
    ),
    "max_correctness": (
        "What is in this image? Classify it. Your answer must be correct above all: give the most "
        f"conservative label that is certainly right. {_FORMAT}"
    ),
    "max_specificity": (
        "What is in this image? Classify it. Always give the finest label you can name, as "
        f"specific as possible, and never answer None. {_FORMAT}"
    ),
}


def get_prompt(name: str) -> str:
    """The prompt text registered under `name`; ValueError naming the known prompts otherwise."""
    try:
        return PROMPTS[name]
    except KeyError:
        raise ValueError(f"unknown prompt {name!r} (known: {', '.join(PROMPTS)})") from None


def build_messages(prompt_text: str) -> list[dict]:
    """One user turn holding the image placeholder then the prompt, for the processor's chat template."""
    return [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": prompt_text}]}]
