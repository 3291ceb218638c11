"""The LLM level of the judge cascade: one (truth, prediction) pair per request to an
OpenAI-compatible server, temperature 0, bounded concurrency, retries with backoff, strict parsing.

Only a reply that is exactly one of the six labels becomes a verdict. Server errors, timeouts and
unparseable replies are retried; a pair still without a label after `max_attempts` is reported as
a failure and never turned into a verdict. A refused API key or an unknown model stops the run
(LLMJudgeError): every other request would fail the same way.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal

import openai
from openai import AsyncOpenAI

from speciarl.judge.params import LLMParams
from speciarl.judge.prompt import (
    CATEGORY_SCHEMA_VERSION,
    LABELS,
    SYSTEM_PROMPT,
    USER_TEMPLATE,
    build_messages,
    parse_label,
)
from speciarl.judge.server import ManagedServer
from speciarl.labels import Category
from speciarl.stage import RunFailure

TEMPERATURE = 0.0
_MAX_BACKOFF_S = 60.0
_RETRIED_STATUS = frozenset({408, 409, 429})  # plus every 5xx
_FATAL_ERRORS = (openai.AuthenticationError, openai.PermissionDeniedError, openai.NotFoundError)

Constrain = Literal["auto", "structured_outputs", "guided_choice", "none"]


class LLMJudgeError(RunFailure):
    """The judge server refuses every request (bad API key, unknown model): no request can succeed."""


@dataclass(frozen=True)
class LLMResult:
    category: Category | None  # None: no verdict after every attempt
    requests: int  # requests sent for this pair
    error: str | None = None  # why there is no verdict


def llm_judge_id(model: str, revision: str | None, chat_template_kwargs: dict) -> str:
    """Hash of everything that can change a verdict: model + revision, prompt, schema, decoding.

    The output constraint and max_tokens are left out on purpose: at temperature 0 they can only
    turn an unparseable reply into a label, never change a label the server already returns.
    """
    blob = json.dumps(
        {
            "model": model,
            "revision": revision,
            "prompt": {"system": SYSTEM_PROMPT, "user": USER_TEMPLATE, "chat_template_kwargs": chat_template_kwargs},
            "schema": CATEGORY_SCHEMA_VERSION,
            "decoding": {"temperature": TEMPERATURE},
        },
        sort_keys=True,
        ensure_ascii=False,
    )
    return "llm:" + hashlib.sha256(blob.encode()).hexdigest()[:16]


class LLMJudge:
    """Client of one judge model; `server`, when given, is started on first use and stopped by close()."""

    def __init__(
        self,
        model: str,
        *,
        base_url: str | None = None,
        api_key: str | None = None,
        server: ManagedServer | None = None,
        revision: str | None = None,
        chat_template_kwargs: dict | None = None,
        constrain: Constrain = "auto",
        max_tokens: int = 8,
        concurrency: int = 32,
        timeout_s: float = 60.0,
        max_attempts: int = 4,
        backoff_s: float = 1.0,
    ) -> None:
        if (base_url is None) == (server is None):
            raise ValueError("LLMJudge needs exactly one of base_url (a running server) or server (a managed one)")
        if base_url is not None and not api_key:
            raise ValueError(f"LLMJudge: no API key for {base_url}")
        self.model = model
        self.revision = revision
        self.base_url = base_url
        self.api_key = api_key
        self.server = server
        self.chat_template_kwargs = dict(chat_template_kwargs or {})
        self.constrain: Constrain = constrain
        self.max_tokens = max_tokens
        self.concurrency = concurrency
        self.timeout_s = timeout_s
        self.max_attempts = max_attempts
        self.backoff_s = backoff_s
        self.judge_id = llm_judge_id(model, revision, self.chat_template_kwargs)

    @classmethod
    def from_params(cls, params: LLMParams, key_setting: str = "judge.llm.api_key_env") -> LLMJudge | None:
        """None when no LLM is configured. `key_setting` names where api_key_env was set (errors)."""
        if not params.configured:
            return None
        api_key = os.environ.get(params.api_key_env)
        server = None
        if params.serve is not None:
            server = ManagedServer(
                params.serve.backend,
                params.model,
                revision=params.revision,
                port=params.serve.port,
                api_key=api_key,  # None: the server gets a fresh random key
                extra_args=params.serve.args,
                startup_timeout_s=params.serve.startup_timeout_s,
            )
        elif not api_key:
            raise ValueError(
                f"environment variable {params.api_key_env} ({key_setting}) is not set; "
                f"it must hold the API key of {params.endpoint}"
            )
        return cls(
            params.model,
            base_url=params.endpoint,
            api_key=api_key,
            server=server,
            revision=params.revision,
            chat_template_kwargs=params.chat_template_kwargs,
            constrain=params.constrain,
            max_tokens=params.max_tokens,
            concurrency=params.concurrency,
            timeout_s=params.timeout_s,
            max_attempts=params.max_attempts,
            backoff_s=params.backoff_s,
        )

    def close(self) -> None:
        if self.server is not None:
            self.server.stop()

    # Judging ------------------------------------------------------------------------------------

    async def judge_async(
        self,
        pairs: Sequence[tuple[str, str]],
        on_verdict: Callable[[int, Category], None] | None = None,
        on_done: Callable[[LLMResult], None] | None = None,
    ) -> list[LLMResult]:
        """Judge (normalised truth, normalised prediction) pairs, `concurrency` requests at a time.

        `on_verdict(index, category)` runs as each verdict arrives (the caller stores it at once);
        `on_done(result)` runs after every pair, verdict or not (progress).
        """
        results: list[LLMResult | None] = [None] * len(pairs)
        if not pairs:
            return []
        base_url, api_key, model, constrain = self._connection()
        async with AsyncOpenAI(base_url=base_url, api_key=api_key, max_retries=0, timeout=self.timeout_s) as client:
            if constrain == "auto":
                constrain, error = await self._detect_constrain(client)
                if error is not None:  # the server cannot be reached: nothing is sent
                    return [LLMResult(None, 0, error) for _ in pairs]
                self.constrain = constrain
            extra_body = self._extra_body(constrain)
            indices = iter(range(len(pairs)))  # shared by the workers: each index is taken once

            async def worker() -> None:
                for index in indices:
                    result = await self._judge_one(client, model, *pairs[index], extra_body)
                    results[index] = result
                    if result.category is not None and on_verdict is not None:
                        on_verdict(index, result.category)
                    if on_done is not None:
                        on_done(result)

            workers = [asyncio.create_task(worker()) for _ in range(min(self.concurrency, len(pairs)))]
            try:
                await asyncio.gather(*workers)
            finally:
                for task in workers:
                    task.cancel()
                await asyncio.gather(*workers, return_exceptions=True)
        return results  # type: ignore[return-value]

    def _connection(self) -> tuple[str, str, str, Constrain]:
        """(base URL, API key, model name to request, constraint mode); starts a managed server."""
        if self.server is None:
            return self.base_url, self.api_key, self.model, self.constrain  # type: ignore[return-value]
        base_url, api_key = self.server.start()
        constrain = self.constrain
        if constrain == "auto":
            constrain = "structured_outputs" if self.server.backend == "vllm" else "none"
        return base_url, api_key, self.server.served_model, constrain

    async def _detect_constrain(self, client: AsyncOpenAI) -> tuple[Constrain, str | None]:
        """vLLM lists its models as owned_by "vllm"; other servers get strict parsing only.

        Returns (mode, None), or ("none", why) when the server cannot be reached at all.
        """
        error = None
        for attempt in range(1, self.max_attempts + 1):
            if attempt > 1:
                await asyncio.sleep(self._backoff(attempt))
            try:
                page = await client.models.list()
            except (openai.AuthenticationError, openai.PermissionDeniedError) as exc:
                raise LLMJudgeError(f"judge server {client.base_url} refused the request: {exc}") from None
            except openai.APIStatusError:
                return "none", None  # it answers but lists no models (transformers serve): not vLLM
            except openai.APIError as exc:
                error = f"cannot list models at {client.base_url}: {_describe(exc)}"
                continue
            owners = {getattr(model, "owned_by", None) for model in page.data}
            return ("structured_outputs" if "vllm" in owners else "none"), None
        return "none", error

    def _extra_body(self, constrain: Constrain) -> dict:
        extra: dict = {}
        if self.chat_template_kwargs:
            extra["chat_template_kwargs"] = self.chat_template_kwargs
        if constrain == "structured_outputs":
            extra["structured_outputs"] = {"choice": LABELS}
        elif constrain == "guided_choice":
            extra["guided_choice"] = LABELS
        return extra

    async def _judge_one(
        self, client: AsyncOpenAI, model: str, truth: str, prediction: str, extra_body: dict
    ) -> LLMResult:
        error = None
        for attempt in range(1, self.max_attempts + 1):
            if attempt > 1:
                await asyncio.sleep(self._backoff(attempt))
            body = {
                "model": model,
                "messages": build_messages(truth, prediction),
                "temperature": TEMPERATURE,
                "max_tokens": self.max_tokens,
                **extra_body,
            }
            try:
                # The client's raw post: same auth, timeouts and error types as chat.completions.create,
                # without its request transform and response model (40 % of the client's CPU per verdict).
                raw = await client.post("/chat/completions", body=body, cast_to=bytes)
            except _FATAL_ERRORS as exc:
                raise LLMJudgeError(f"judge server {client.base_url} refused the request: {exc}") from None
            except openai.APIStatusError as exc:
                error = f"HTTP {exc.status_code}: {_describe(exc)}"
                if exc.status_code >= 500 or exc.status_code in _RETRIED_STATUS:
                    continue
                return LLMResult(None, attempt, error)  # this request is invalid (e.g. too long): no retry
            except openai.APIError as exc:  # timeouts and connection errors
                error = _describe(exc)
                continue
            reply = _reply_text(raw)
            category = parse_label(reply)
            if category is not None:
                return LLMResult(category, attempt)
            error = f"unparseable reply {reply!r}"
        return LLMResult(None, self.max_attempts, error)

    def _backoff(self, attempt: int) -> float:
        """Exponential, with jitter so that failed workers do not come back in lockstep."""
        return min(_MAX_BACKOFF_S, self.backoff_s * 2 ** (attempt - 2)) * random.uniform(0.5, 1.0)


def _reply_text(raw: bytes) -> str | None:
    """The first choice's message text; None for a body that is not a chat completion."""
    try:
        content = json.loads(raw)["choices"][0]["message"]["content"]
    except (ValueError, KeyError, IndexError, TypeError):
        return None
    return content if isinstance(content, str) else None


def _describe(exc: openai.APIError) -> str:
    return f"{type(exc).__name__}: {str(exc)[:200]}"
