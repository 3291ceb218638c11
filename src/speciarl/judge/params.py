"""Schema of the `judge` section of params.yaml."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, NonNegativeInt, field_validator, model_validator

from speciarl.config import NonEmptyStr, Section, UniqueList

# Server flags that ManagedServer sets itself: the bind address (127.0.0.1 only), the port it polls
# and the API key (passed in the environment). vLLM reads --api_key as --api-key, and argparse
# takes a unique prefix (--api-k) for the whole flag, so both spellings and prefixes are refused.
RESERVED_SERVER_FLAGS = {
    "--host": "the server binds 127.0.0.1",
    "--api-key": "the key comes from api_key_env",
    "--port": "set judge.llm.serve.port",
}


class ServeParams(Section):
    """A judge server this process starts on 127.0.0.1 and stops when done (managed mode)."""

    backend: Literal["vllm", "transformers"] = "vllm"  # vllm on GPU, transformers serve on CPU
    port: int | None = Field(None, ge=1, le=65535)  # null = any free port
    args: list[str] = []  # extra server flags, e.g. [--tensor-parallel-size, "2"]
    startup_timeout_s: float = Field(1200.0, gt=0)

    @field_validator("args")
    @classmethod
    def _no_reserved_flags(cls, args: list[str]) -> list[str]:
        for arg in args:
            name = arg.split("=", 1)[0].replace("_", "-")
            for flag, why in RESERVED_SERVER_FLAGS.items():
                if len(name) > 3 and flag.startswith(name):
                    raise ValueError(f"{arg!r} may not be overridden ({why})")
        return args


class LLMParams(Section):
    """The LLM judge: a running OpenAI-compatible `endpoint`, or a managed server (`serve`)."""

    endpoint: NonEmptyStr | None = None  # base URL of a running server, e.g. http://127.0.0.1:8000/v1
    serve: ServeParams | None = None
    model: NonEmptyStr | None = None  # served model name (managed mode: the local path or hub id to serve)
    revision: NonEmptyStr | None = None  # model revision; part of the judge id
    api_key_env: NonEmptyStr = "SPECIARL_JUDGE_API_KEY"  # env var holding the key (managed: optional)
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
    def _one_source(self) -> LLMParams:
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
    # ones "generic" (docs/method.md#verdict-categories: genus, family and product line are close parents).
    close_levels: int = Field(1, ge=0)
    close_levels_by_dataset: dict[str, NonNegativeInt] = {"cub": 2, "pets": 0}
    # Datasets whose taxonomy lists every name a correct answer can use (the mini world, built from
    # it): there, text that names no node is wrong instead of going to the LLM.
    closed_world: UniqueList[str] = []


class JudgeParams(Section):
    store: NonEmptyStr = "data/verdicts"
    taxonomy: TaxonomyJudgeParams = TaxonomyJudgeParams()
    llm: LLMParams = LLMParams()
    eval_llm: LLMParams | None = None  # a different (stronger) judge for evaluation; null = llm
