"""The LLM judge against a real `transformers serve` process, started by the managed-server mode on
127.0.0.1 with an API key, serving a tiny hand-wired model (tiny_judge_model.py)."""

from __future__ import annotations

import os
import socket

import httpx
import pytest
from tiny_judge_model import build_tiny_judge

from speciarl.judge.cascade import JudgeService
from speciarl.judge.llm import LLMJudge, LLMJudgeError
from speciarl.judge.params import LLMParams, ServeParams
from speciarl.judge.store import VerdictStore

PAIRS = [("nodata", "Golden-winged Warbler", "warbler"), ("nodata", "757-200", "commercial airliner")]


@pytest.fixture(scope="module")
def managed_llm(tmp_path_factory):
    """An LLM judge in managed mode; its server starts on first use and is stopped at the end."""
    model = build_tiny_judge(tmp_path_factory.mktemp("tiny-judge"))
    params = LLMParams(
        serve=ServeParams(backend="transformers", args=["--device", "cpu"], startup_timeout_s=300),
        model=str(model),
        max_tokens=1,
        max_attempts=2,
        backoff_s=0.01,
        timeout_s=120,
        concurrency=2,
    )
    llm = LLMJudge.from_params(params)
    yield llm
    process = llm.server._process
    llm.close()
    if process is not None:  # the whole process group is gone
        assert process.poll() is not None
        with pytest.raises(ProcessLookupError):
            os.killpg(process.pid, 0)


def test_managed_server_judges_and_stores(managed_llm, tmp_path):
    assert managed_llm.server._process is None  # not started until a pair needs the LLM
    service = JudgeService(VerdictStore(tmp_path / "store"), {}, managed_llm)  # not closed: the server is shared
    assert service.judge(PAIRS + [("nodata", "x", "none")]) == ["specific", "specific", "abstain"]
    assert service.stats["llm"] == 2 and service.stats["retries"] == 0
    service.store.close()
    stored = {(v.prediction, v.category.value, v.judge) for v in VerdictStore(tmp_path / "store").iter_verdicts()}
    assert ("warbler", "specific", managed_llm.judge_id) in stored
    assert ("commercial airliner", "specific", managed_llm.judge_id) in stored


def test_server_is_bound_to_loopback_and_requires_the_key(managed_llm):
    base_url, api_key = managed_llm.server.start()  # already running: returns at once
    assert base_url.startswith("http://127.0.0.1:")
    chat = {"model": managed_llm.model, "messages": [{"role": "user", "content": "hi"}], "max_tokens": 1}
    assert httpx.post(f"{base_url}/chat/completions", json=chat, timeout=60).status_code == 401
    wrong = {"Authorization": "Bearer not-the-key"}
    assert httpx.post(f"{base_url}/chat/completions", json=chat, headers=wrong, timeout=60).status_code == 401
    right = {"Authorization": f"Bearer {api_key}"}
    assert httpx.post(f"{base_url}/chat/completions", json=chat, headers=right, timeout=60).status_code == 200
    # not reachable on another interface of this machine
    others = {info[4][0] for info in socket.getaddrinfo(socket.gethostname(), None, socket.AF_INET)} - {"127.0.0.1"}
    for address in others:
        with pytest.raises(OSError):
            socket.create_connection((address, managed_llm.server.port), timeout=2).close()


def test_garbage_replies_are_retried_reported_and_never_stored(managed_llm, tmp_path):
    base_url, api_key = managed_llm.server.start()
    # Two tokens let the tiny model say "specific wrong": not one label, so not a verdict.
    chatty = LLMJudge(
        managed_llm.model,
        base_url=base_url,
        api_key=api_key,
        max_tokens=4,
        max_attempts=2,
        backoff_s=0.01,
        timeout_s=120,
    )
    with JudgeService(VerdictStore(tmp_path / "store"), {}, chatty) as service:
        assert service.judge(PAIRS) == [None, None]
        stats = service.stats
    assert (stats["failures"], stats["retries"], stats["llm_calls"]) == (2, 2, 4)
    assert stats["failure_examples"][0]["error"] == "unparseable reply 'specific wrong'"
    assert len(VerdictStore(tmp_path / "store")) == 0

    impostor = LLMJudge(managed_llm.model, base_url=base_url, api_key="not-the-key")
    with JudgeService(VerdictStore(tmp_path / "store"), {}, impostor) as service:
        with pytest.raises(LLMJudgeError, match="refused"):
            service.judge(PAIRS)
