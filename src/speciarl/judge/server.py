"""Managed judge servers: `vllm serve` (GPU) or `transformers serve` (CPU) on 127.0.0.1 with an
API key, started on demand, health-checked, and stopped with their whole process group.

`transformers serve` has no API-key option and answers anyone who can reach its port (including
its /load_model and /reset routes). We therefore run it through this module
(`python -m speciarl.judge.server ARGS...`), which adds a bearer-key check to the app the
transformers CLI builds and then hands over to that CLI unchanged. vLLM checks a key itself only on
its /v1-style routes, so it gets the same check through --middleware. The key reaches both through
the environment (SPECIARL_SERVE_API_KEY, and VLLM_API_KEY for vLLM's own check), never a command line.
"""

from __future__ import annotations

import atexit
import hmac
import importlib.util
import os
import re
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Literal

import httpx

from speciarl.stage import RunFailure

HOST = "127.0.0.1"
KEY_ENV = "SPECIARL_SERVE_API_KEY"  # how the key reaches the servers' key check (require_api_key)
KEY_MIDDLEWARE = "speciarl.judge.server.require_api_key"
_POLL_S = 0.5
_STOP_GRACE_S = 30.0


class ServerError(RunFailure):
    """The managed server did not come up. A server that exited says so in one line naming the
    cause (the last error its log reports) and the log file; one that never became healthy gets
    its log tail in the message."""


class ManagedServer:
    """`with ManagedServer("vllm", model) as (base_url, api_key): ...` or start()/stop()."""

    def __init__(
        self,
        backend: Literal["vllm", "transformers"],
        model: str,
        *,
        revision: str | None = None,
        port: int | None = None,
        api_key: str | None = None,
        extra_args: list[str] | tuple[str, ...] = (),
        startup_timeout_s: float = 1200.0,
        log_path: str | Path | None = None,
    ) -> None:
        if backend not in ("vllm", "transformers"):
            raise ValueError(f"unknown judge server backend {backend!r} (allowed: vllm, transformers)")
        self.backend = backend
        self.model = model
        self.revision = revision
        self.port = port
        self.api_key = api_key or secrets.token_urlsafe(32)
        self.extra_args = list(extra_args)
        self.startup_timeout_s = startup_timeout_s
        self.log_path = Path(log_path) if log_path else None
        self._process: subprocess.Popen | None = None

    @property
    def base_url(self) -> str:
        return f"http://{HOST}:{self.port}/v1"

    @property
    def served_model(self) -> str:
        """The model name requests must carry (transformers serve names a revision as MODEL@REVISION)."""
        if self.backend == "transformers" and self.revision:
            return f"{self.model}@{self.revision}"
        return self.model

    def __enter__(self) -> tuple[str, str]:
        return self.start()

    def __exit__(self, *exc_info) -> None:
        self.stop()

    def start(self) -> tuple[str, str]:
        """Start (once) and wait until /v1/models answers with the key; returns (base_url, api_key)."""
        if self._process is not None and self._process.poll() is None:
            return self.base_url, self.api_key
        if self.port is None:
            self.port = _free_port()
        if self.log_path is None:
            handle, name = tempfile.mkstemp(prefix=f"speciarl-{self.backend}-serve-", suffix=".log")
            os.close(handle)
            self.log_path = Path(name)
        env = dict(os.environ)
        env[KEY_ENV] = self.api_key  # read by require_api_key in the server process
        if self.backend == "vllm":
            env["VLLM_API_KEY"] = self.api_key  # vLLM's own check of its /v1 routes
        with open(self.log_path, "ab") as log:
            # Own process group: stop() takes down the server's workers too.
            self._process = subprocess.Popen(
                self._command(),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
                start_new_session=True,
            )
        atexit.register(self.stop)
        try:
            self._wait_healthy()
        except BaseException:
            self.stop()
            raise
        return self.base_url, self.api_key

    def stop(self) -> None:
        """SIGTERM to the process group, then SIGKILL after a grace period. Idempotent."""
        process, self._process = self._process, None
        if process is None:
            return
        atexit.unregister(self.stop)
        for sig, wait_s in ((signal.SIGTERM, _STOP_GRACE_S), (signal.SIGKILL, 10.0)):
            try:
                os.killpg(process.pid, sig)
            except ProcessLookupError:
                process.poll()  # reap it if it already exited
                break
            try:
                process.wait(wait_s)
                _reap_group(process.pid, wait_s)
                break
            except subprocess.TimeoutExpired:
                continue

    def _command(self) -> list[str]:
        if self.backend == "vllm":
            if importlib.util.find_spec("vllm") is None:
                raise ServerError(
                    "judge.llm.serve.backend is vllm but vLLM is not installed in this environment "
                    "(GPU: pip install 'speciarl[gpu]'; CPU: scripts/setup_vllm_cpu.sh)"
                )
            # The module under this interpreter, not a `vllm` found on PATH: the server runs in the
            # judge's own environment.
            revision = ["--revision", self.revision] if self.revision else []
            return [
                sys.executable,
                "-m",
                "vllm.entrypoints.cli.main",
                "serve",
                self.model,
                "--host",
                HOST,
                "--port",
                str(self.port),
                "--middleware",
                KEY_MIDDLEWARE,
                *revision,
                *self.extra_args,
            ]
        return [
            sys.executable,
            "-m",
            "speciarl.judge.server",
            self.served_model,
            "--host",
            HOST,
            "--port",
            str(self.port),
            *self.extra_args,
        ]

    def _wait_healthy(self) -> None:
        # vLLM answers /v1/models once the model is loaded (and checks the key there). transformers
        # serve preloads the model before listening, but its /v1/models lists the local hub cache
        # (and fails without one), so /health is its readiness signal.
        url = f"{self.base_url}/models" if self.backend == "vllm" else f"http://{HOST}:{self.port}/health"
        deadline = time.monotonic() + self.startup_timeout_s
        headers = {"Authorization": f"Bearer {self.api_key}"}
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise ServerError(
                    f"{self.backend} judge server ({self.model} on {HOST}:{self.port}) exited with code "
                    f"{self._process.returncode}: {_cause(self.log_path)} (log: {self.log_path})"
                )
            try:
                response = httpx.get(url, headers=headers, timeout=5.0)
                if response.status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(_POLL_S)
        raise ServerError(
            f"{self.backend} judge server not healthy after {self.startup_timeout_s:.0f} s; "
            f"log {self.log_path}:\n{_tail(self.log_path)}"
        )


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


def _reap_group(pgid: int, wait_s: float) -> None:
    """Wait for the rest of the group (worker processes) to exit; raise TimeoutExpired if it lingers."""
    deadline = time.monotonic() + wait_s
    while time.monotonic() < deadline:
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.1)
    raise subprocess.TimeoutExpired(f"process group {pgid}", wait_s)


# An exception line of a traceback ("OSError: [Errno 98] Address already in use") or a CLI's
# "Error: ..." line, after any "(Process pid=N) LEVEL date [file:line] " prefix of vLLM's logger.
_ERROR_LINE = re.compile(
    r"^(?:\(\w+ pid=\d+\) )?(?:[A-Z]+ [\d-]+ [\d:]+ \[[^\]]*\] )?"
    r"((?:[A-Za-z_][\w.]*(?:Error|Exception)|Error): .+)$"
)


def _cause(path: Path | None) -> str:
    """The last error a server log reports, else its last non-blank line (one line either way)."""
    if path is None or not path.exists():
        return "no log"
    lines = [line.strip() for line in path.read_text(errors="replace").splitlines() if line.strip()]
    for line in reversed(lines):
        match = _ERROR_LINE.match(line)
        if match:
            return match.group(1)
    return lines[-1] if lines else "empty log"


def _tail(path: Path | None, lines: int = 30) -> str:
    if path is None or not path.exists():
        return ""
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


# `python -m speciarl.judge.server MODEL --host ... --port ...`: transformers serve with a key ------


async def require_api_key(request, call_next):
    """HTTP middleware of both managed servers: every route but /health needs the bearer key.

    vLLM checks its own key only on /v1, /v2, /inference and /cohere routes (its /invocations
    answers chat completions without one), and `transformers serve` checks none, so the key of
    $SPECIARL_SERVE_API_KEY is required here for all of them. vLLM loads this through --middleware.
    """
    from fastapi.responses import JSONResponse

    expected = f"Bearer {os.environ.get(KEY_ENV, '')}".encode()
    given = request.headers.get("authorization", "").encode()
    if request.url.path != "/health" and (expected == b"Bearer " or not hmac.compare_digest(given, expected)):
        return JSONResponse({"error": {"message": "invalid API key", "type": "invalid_request_error"}}, status_code=401)
    return await call_next(request)


def _serve_transformers_with_key(argv: list[str]) -> int:
    if not os.environ.get(KEY_ENV):
        print(f"speciarl.judge.server: set {KEY_ENV} to the API key to require", file=sys.stderr)
        return 2
    from transformers.cli import transformers as transformers_cli
    from transformers.cli.serving import server as serving

    build_server = serving.build_server

    def build_keyed_server(*args, **kwargs):
        app = build_server(*args, **kwargs)
        app.middleware("http")(require_api_key)
        return app

    serving.build_server = build_keyed_server
    # The CLI's app, not its main(): main() first asks a package index for a newer version.
    return transformers_cli.app(args=["serve", *argv], prog_name="transformers") or 0


if __name__ == "__main__":
    sys.exit(_serve_transformers_with_key(sys.argv[1:]))
