"""Managed judge servers: the commands they run, and a start that fails."""

from __future__ import annotations

import importlib.util
import sys

import pytest

from speciarl.judge.server import ManagedServer, ServerError

VLLM_INSTALLED = importlib.util.find_spec("vllm") is not None


def test_commands_bind_loopback_and_keep_the_key_off_the_command_line():
    vllm = ManagedServer(
        "vllm", "org/judge", revision="abc123", port=8123, api_key="secret", extra_args=["--tensor-parallel-size", "2"]
    )
    if VLLM_INSTALLED:
        assert vllm._command() == [
            sys.executable,
            "-m",
            "vllm.entrypoints.cli.main",
            "serve",
            "org/judge",
            "--host",
            "127.0.0.1",
            "--port",
            "8123",
            "--middleware",
            "speciarl.judge.server.require_api_key",
            "--revision",
            "abc123",
            "--tensor-parallel-size",
            "2",
        ]
    served = ManagedServer("transformers", "/models/judge", revision="v2", port=8124, api_key="secret")
    assert served._command() == [
        sys.executable,
        "-m",
        "speciarl.judge.server",
        "/models/judge@v2",
        "--host",
        "127.0.0.1",
        "--port",
        "8124",
    ]
    assert served.served_model == "/models/judge@v2" and vllm.served_model == "org/judge"
    assert all("secret" not in part for part in served._command())
    assert len(ManagedServer("transformers", "m").api_key) >= 32  # no key given: a random one


@pytest.mark.skipif(VLLM_INSTALLED, reason="vllm is installed here")
def test_missing_vllm_is_a_clear_error():
    with pytest.raises(ServerError, match="vLLM is not installed"):
        ManagedServer("vllm", "org/judge").start()


def test_a_server_that_dies_at_start_is_reported_with_its_log(tmp_path):
    server = ManagedServer(
        "transformers",
        "some/model",
        extra_args=["--no-such-flag"],
        startup_timeout_s=120,
        log_path=tmp_path / "serve.log",
    )
    with pytest.raises(ServerError, match="exited with code 2") as error:
        server.start()
    assert str(tmp_path / "serve.log") in str(error.value) and "no-such-flag" in str(error.value)
    assert server._process is None  # stopped and reaped


def test_unknown_backend():
    with pytest.raises(ValueError, match="unknown judge server backend 'ollama'"):
        ManagedServer("ollama", "m")
