"""The LLM judge against a real `vllm serve` process (CPU), started by the managed-server mode
(`judge.llm.serve.backend: vllm`) on 127.0.0.1 with an API key, serving the tiny hand-wired judge
widened for vLLM (tiny_vllm_judge.py): replies constrained to the six labels, the key enforced,
a server killed mid-run, and servers that cannot start."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import threading

import httpx
import psutil
import pytest
from openai import OpenAI
from tiny_vllm_judge import REPLY, build_tiny_vllm_judge
from vllm_world import VLLM_TESTS

from speciarl.judge.cascade import JudgeService, describe_undecided
from speciarl.judge.llm import LLMJudge
from speciarl.judge.params import LLMParams
from speciarl.judge.prompt import LABELS, build_messages
from speciarl.judge.server import ManagedServer, ServerError
from speciarl.judge.store import VerdictStore
from speciarl.labels import Category, normalize

pytestmark = VLLM_TESTS

# Eager mode skips torch.compile's warm-up; the judge prompt is about 350 tokens of the tiny vocabulary.
SERVER_ARGS = ["--enforce-eager", "--max-model-len", "512"]
STARTUP_TIMEOUT_S = 600  # imports alone take about a minute on 2 busy cores
CONCURRENCY = 4
# Pairs no taxonomy can decide (no taxonomy is given): each one goes to the LLM.
LLM_PAIRS = [("nodata", "Golden-winged Warbler", "warbler"), ("nodata", "757-200", "commercial airliner")]
LLM_PAIRS += [("nodata", f"truth {i}", f"guess {i}") for i in range(10)]


@pytest.fixture(scope="module")
def tiny_judge(tmp_path_factory):
    return build_tiny_vllm_judge(tmp_path_factory.mktemp("tiny-vllm-judge"))


@pytest.fixture(scope="module")
def managed_llm(tiny_judge):
    """The LLM judge of a `judge.llm` section with serve.backend vllm; its server starts on first
    use, is shared by the tests, and is stopped (with its whole process group) at the end."""
    params = LLMParams.model_validate(
        {
            "serve": {"backend": "vllm", "args": SERVER_ARGS, "startup_timeout_s": STARTUP_TIMEOUT_S},
            "model": str(tiny_judge),
            "concurrency": CONCURRENCY,
            "max_attempts": 2,
            "backoff_s": 0.01,
            "timeout_s": 120,
        }
    )
    llm = LLMJudge.from_params(params)
    yield llm
    process = llm.server._process
    llm.close()
    if process is not None:
        assert process.poll() is not None
        with pytest.raises(ProcessLookupError):
            os.killpg(process.pid, 0)


def stored_categories(store_dir, judge_id: str) -> dict[tuple[str, str], str]:
    store = VerdictStore(store_dir)
    return {(v.ground_truth, v.prediction): v.category.value for v in store.iter_verdicts() if v.judge == judge_id}


def test_replies_are_constrained_to_the_labels_and_every_verdict_is_stored(managed_llm, tmp_path):
    assert managed_llm.server._process is None  # not started until a pair needs the LLM
    service = JudgeService(VerdictStore(tmp_path / "store"), {}, managed_llm)  # not closed: the server is shared
    categories = service.judge(LLM_PAIRS + [("nodata", "x", "none"), ("nodata", "Warbler", "warbler")])
    assert categories == [Category.SPECIFIC] * len(LLM_PAIRS) + [Category.ABSTAIN, Category.SPECIFIC]
    stats = service.stats
    assert (stats["llm"], stats["llm_calls"], stats["retries"], stats["failures"]) == (len(LLM_PAIRS),) * 2 + (0, 0)
    service.store.close()
    stored = stored_categories(tmp_path / "store", managed_llm.judge_id)
    assert stored == {(normalize(truth), normalize(prediction)): "specific" for _, truth, prediction in LLM_PAIRS}

    # The judge asks for up to max_tokens (8 by default): unconstrained, the tiny model says two
    # words, which the strict parser rejects; with the labels as the only choices it stops after one.
    base_url, api_key = managed_llm.server.start()  # already running: returns at once
    client = OpenAI(base_url=base_url, api_key=api_key, max_retries=0)
    request = dict(
        model=managed_llm.model,
        messages=build_messages("golden-winged warbler", "warbler"),
        temperature=0.0,
        max_tokens=managed_llm.max_tokens,
    )
    plain = client.chat.completions.create(**request)
    constrained = client.chat.completions.create(**request, extra_body={"structured_outputs": {"choice": LABELS}})
    assert plain.choices[0].message.content.split() == list(REPLY)
    assert constrained.choices[0].message.content.strip() == "specific"
    assert client.models.list().data[0].owned_by == "vllm"  # what constrain "auto" detects at an endpoint


def test_the_key_is_required_and_the_server_listens_on_loopback_only(managed_llm):
    base_url, api_key = managed_llm.server.start()
    port = managed_llm.server.port
    assert base_url == f"http://127.0.0.1:{port}/v1"
    chat = {"model": managed_llm.model, "messages": [{"role": "user", "content": "hi"}], "max_tokens": 1}
    right = {"Authorization": f"Bearer {api_key}"}
    root = f"http://127.0.0.1:{port}"
    for headers, status in (({}, 401), ({"Authorization": "Bearer not-the-key"}, 401), (right, 200)):
        assert httpx.get(f"{base_url}/models", headers=headers, timeout=60).status_code == status
        assert httpx.post(f"{base_url}/chat/completions", json=chat, headers=headers, timeout=60).status_code == status
        # routes outside /v1, which vLLM's own key check leaves open: /invocations answers chat completions
        assert httpx.post(f"{root}/invocations", json=chat, headers=headers, timeout=60).status_code == status
        assert (
            httpx.post(
                f"{root}/tokenize", json={"model": managed_llm.model, "prompt": "hi"}, headers=headers, timeout=60
            ).status_code
            == status
        )
        assert httpx.get(f"{root}/metrics", headers=headers, timeout=60).status_code == status
    assert httpx.get(f"{root}/health", timeout=60).status_code == 200  # the readiness probe stays open
    # one listening socket, on 127.0.0.1, and nothing on the machine's other addresses
    listening = {
        c.laddr.ip for c in psutil.net_connections("inet") if c.status == psutil.CONN_LISTEN and c.laddr.port == port
    }
    assert listening == {"127.0.0.1"}
    others = {info[4][0] for info in socket.getaddrinfo(socket.gethostname(), None, socket.AF_INET)} - {"127.0.0.1"}
    for address in others:
        with pytest.raises(OSError):
            socket.create_connection((address, port), timeout=2).close()


def test_a_server_killed_mid_run_loses_no_verdict_and_a_rerun_judges_only_the_rest(managed_llm, tmp_path):
    """Mirrors test_llm_faults.py's crash test with the real server: its process group is killed
    (SIGKILL) once 20 verdicts are in; the run gives the rest no verdict, and the next run, which
    starts a new server, asks only for those."""
    pairs = [("nodata", f"truth {i}", f"guess {i}") for i in range(300)]
    kill_after = 20
    managed_llm.server.start()
    killed_pid = managed_llm.server._process.pid
    service = JudgeService(VerdictStore(tmp_path / "store"), {}, managed_llm)

    finished = threading.Event()

    def kill_mid_run() -> None:
        while service.stats["llm_calls"] < kill_after:
            if finished.wait(0.005):
                return  # the run ended first: the assertions below say so
        os.killpg(killed_pid, signal.SIGKILL)

    killer = threading.Thread(target=kill_mid_run)
    killer.start()
    try:
        categories = service.judge(pairs)
    finally:
        finished.set()
        killer.join()
    stats = service.stats
    service.store.close()

    decided = {
        pair[1:]: category.value for pair, category in zip(pairs, categories, strict=True) if category is not None
    }
    assert kill_after <= len(decided) < len(pairs)
    assert set(categories) == {Category.SPECIFIC, None}  # no verdict, never a default category
    undecided = len(pairs) - len(decided)
    assert stats["undecided"] == stats["failures"] == undecided and stats["llm"] == len(decided)
    assert "APIConnectionError" in describe_undecided(stats)  # the run says why
    assert stored_categories(tmp_path / "store", managed_llm.judge_id) == decided  # every verdict that came is stored

    with JudgeService(VerdictStore(tmp_path / "store"), {}, managed_llm) as rerun:  # closing stops the new server
        assert rerun.judge(pairs) == [Category.SPECIFIC] * len(pairs)
        assert managed_llm.server._process.pid != killed_pid  # started again
        rerun_stats = rerun.stats
    assert rerun_stats["store_hits"] == len(decided)
    assert rerun_stats["llm"] == rerun_stats["llm_calls"] == undecided  # one request per pair left, none again
    assert len(stored_categories(tmp_path / "store", managed_llm.judge_id)) == len(pairs)


@pytest.fixture
def started_processes(monkeypatch):
    """Every process started through subprocess.Popen during the test (real ones, recorded)."""
    started: list[subprocess.Popen] = []

    class RecordingPopen(subprocess.Popen):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            started.append(self)

    monkeypatch.setattr(subprocess, "Popen", RecordingPopen)
    return started


def assert_reaped(processes: list[subprocess.Popen]) -> None:
    """One server process was started, it was waited for, and nothing of its group is left."""
    assert len(processes) == 1
    assert processes[0].returncode is not None
    with pytest.raises(ProcessLookupError):
        os.killpg(processes[0].pid, 0)


def test_a_model_that_does_not_exist_stops_with_one_line(tmp_path, started_processes):
    missing = tmp_path / "no-such-model"
    server = ManagedServer(
        "vllm",
        str(missing),
        extra_args=SERVER_ARGS,
        startup_timeout_s=STARTUP_TIMEOUT_S,
        log_path=tmp_path / "serve.log",
    )
    with pytest.raises(ServerError) as error:
        server.start()
    message = str(error.value)
    assert "\n" not in message and "exited with code 1" in message
    assert f"OSError: Repo id must be in the form 'repo_name' or 'namespace/repo_name': '{missing}'" in message
    assert str(tmp_path / "serve.log") in message
    assert server._process is None
    assert_reaped(started_processes)


def test_a_port_in_use_stops_with_one_line(tiny_judge, tmp_path, started_processes):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        server = ManagedServer(
            "vllm",
            str(tiny_judge),
            port=port,
            extra_args=SERVER_ARGS,
            startup_timeout_s=STARTUP_TIMEOUT_S,
            log_path=tmp_path / "serve.log",
        )
        with pytest.raises(ServerError) as error:
            server.start()
    message = str(error.value)
    assert "\n" not in message
    assert f"on 127.0.0.1:{port}) exited with code 1: OSError: [Errno 98] Address already in use" in message
    assert server._process is None
    assert_reaped(started_processes)
