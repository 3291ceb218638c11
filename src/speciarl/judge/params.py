"""Schema of the `judge` section of params.yaml."""

from __future__ import annotations

from speciarl.config import Section


class LLMParams(Section):
    endpoint: str | None = None
    model: str | None = None
    api_key_env: str = "SPECIARL_JUDGE_API_KEY"


class JudgeParams(Section):
    store: str = "data/verdicts"
    llm: LLMParams = LLMParams()
    eval_llm: LLMParams | None = None
