"""Helpers of the judge tests: the fault-injecting OpenAI-compatible server as a real subprocess."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import httpx

FAKE_SERVER = Path(__file__).with_name("fake_openai_server.py")
API_KEY = "test-key-0123456789"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class FakeServer:
    """One fake judge server process; start() again after kill() to restart it on the same port."""

    def __init__(self, workdir: Path, config: dict):
        self.workdir = workdir
        self.port = free_port()
        self.successes_file = workdir / "successes.tsv"
        self.config = {"api_key": API_KEY, "successes_file": str(self.successes_file), **config}
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def start(self, **overrides) -> FakeServer:
        self.config.update(overrides)
        config_path = self.workdir / "fake_server.json"
        config_path.write_text(json.dumps(self.config))
        self.process = subprocess.Popen(
            [sys.executable, str(FAKE_SERVER), "--port", str(self.port), "--config", str(config_path)]
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            assert self.process.poll() is None, "fake judge server exited at start"
            try:
                if httpx.get(f"http://127.0.0.1:{self.port}/health", timeout=1).status_code == 200:
                    return self
            except httpx.HTTPError:
                time.sleep(0.05)
        raise TimeoutError("fake judge server did not start")

    def stats(self) -> dict:
        return httpx.get(f"http://127.0.0.1:{self.port}/stats", timeout=5).json()

    def successes(self) -> Counter:
        """Right answers sent per (truth, prediction), over every run of the server."""
        if not self.successes_file.exists():
            return Counter()
        return Counter(tuple(line.split("\t")) for line in self.successes_file.read_text().splitlines())

    def wait_exit(self, timeout: float = 10) -> int:
        return self.process.wait(timeout)

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(10)
