"""Schema of the `judge` section of params.yaml."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from speciarl.config import Section


class ServeParams(Section):
    """A judge server this process starts on 127.0.0.1 and stops when done (managed mode)."""

    backend: Literal["vllm", "transformers"] = "vllm"  # vllm on GPU, transformers serve on CPU
    port: int | None = Field(None, ge=1, le=65535)  # null = any free port
    args: list[str] = []  # extra server flags, e.g. [--tensor-parallel-size, "2"]
    startup_timeout_s: float = Field(1200.0, gt=0)


class LLMParams(Section):
    """The LLM judge: a running OpenAI-compatible `endpoint`, or a managed server (`serve`)."""

    endpoint: str | None = None  # base URL of a running server, e.g. http://127.0.0.1:8000/v1
    serve: ServeParams | None = None
    model: str | None = None  # served model name (managed mode: the local path or hub id to serve)
    revision: str | None = None  # model revision; part of the judge id
    api_key_env: str = "SPECIARL_JUDGE_API_KEY"  # env var holding the key (managed: optional)
    # Thinking off (Qwen3 templates); part of the prompt, so part of the judge id.
    chat_template_kwargs: dict = {"enable_thinking": False}
    # How replies are constrained to the six labels: vLLM >= 0.12 takes structured_outputs, older
    # vLLM guided_choice; auto asks the server (vLLM reports owned_by "vllm") and otherwise parses.
    constrain: Literal["auto", "structured_outputs", "guided_choice", "none"] = "auto"
    max_tokens: int = Field(8, ge=1)
    concurrency: int = Field(32, ge=1)
    timeout_s: float = Field(60.0, gt=0)  # per request
    max_attempts: int = Field(4, ge=1)  # per pair, first try included
    backoff_s: float = Field(1.0, ge=0)  # first retry delay; doubles each retry

    @model_validator(mode="after")
    def _one_source(self) -> "LLMParams":
        if self.endpoint is not None and self.serve is not None:
            raise ValueError("set either endpoint (a running server) or serve (a managed one), not both")
        if (self.endpoint is not None or self.serve is not None) and not self.model:
            raise ValueError("model is required when endpoint or serve is set")
        return self

    @property
    def configured(self) -> bool:
        return self.endpoint is not None or self.serve is not None


class TaxonomyJudgeParams(Section):
    # An ancestor at most this many taxonomy levels above the truth is "less specific", higher
    # ones "generic" (REFERENCE.md: genus, family and product line are close parents).
    close_levels: int = Field(1, ge=0)
    close_levels_by_dataset: dict[str, int] = {"cub": 2, "pets": 0}
    # Datasets whose taxonomy lists every name a correct answer can use (the mini world, built from
    # it): there, text that names no node is wrong instead of going to the LLM.
    closed_world: list[str] = []


class JudgeParams(Section):
    store: str = "data/verdicts"
    taxonomy: TaxonomyJudgeParams = TaxonomyJudgeParams()
    llm: LLMParams = LLMParams()
    eval_llm: LLMParams | None = None  # a different (stronger) judge for evaluation; null = llm
