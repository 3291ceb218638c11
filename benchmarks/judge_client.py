"""LLM judge client throughput against a local OpenAI-compatible server with a fixed delay per request.

The best any client can do is concurrency / delay verdicts per second; this prints the measured
rate through JudgeService (store writes included) as a fraction of that bound (target: >= 90 %).
The server is tests/judge/fake_openai_server.py on 127.0.0.1, on the same machine, so a busy CPU
lowers the numbers.

    python benchmarks/judge_client.py [--delay-s 0.2] [--concurrency 8 16 64] [--waves 20]

The client's CPU time per verdict is printed too: rate <= 1000 / (CPU ms per verdict) on one core.
"""

from __future__ import annotations

import argparse
import json
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

from speciarl.judge.cascade import JudgeService
from speciarl.judge.llm import LLMJudge
from speciarl.judge.store import VerdictStore

SERVER = Path(__file__).parents[1] / "tests" / "judge" / "fake_openai_server.py"
API_KEY = "benchmark-key"


def start_server(workdir: Path, delay_s: float) -> tuple[subprocess.Popen, str]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    config = workdir / "server.json"
    config.write_text(json.dumps({"api_key": API_KEY, "default_label": "specific", "delay_s": delay_s}))
    process = subprocess.Popen([sys.executable, str(SERVER), "--port", str(port), "--config", str(config)])
    for _ in range(300):
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200:
                return process, f"http://127.0.0.1:{port}/v1"
        except httpx.HTTPError:
            time.sleep(0.1)
    process.kill()
    raise RuntimeError("benchmark server did not start")


def measure(url: str, store_dir: Path, concurrency: int, pairs: int, run: int) -> tuple[float, float]:
    """(verdicts per second, client CPU milliseconds per verdict)."""
    llm = LLMJudge("fake-judge", base_url=url, api_key=API_KEY, concurrency=concurrency, timeout_s=30, constrain="none")
    batch = [("bench", f"truth {run} {i}", f"prediction {i}") for i in range(pairs)]
    with JudgeService(VerdictStore(store_dir), {}, llm) as service:
        start, cpu = time.perf_counter(), time.process_time()
        categories = service.judge(batch)
        elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu
    assert all(c is not None for c in categories), "the benchmark server failed requests"
    return pairs / elapsed, cpu / pairs * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--delay-s", type=float, default=0.2)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[8, 16, 64])
    parser.add_argument("--waves", type=int, default=20, help="pairs per run = waves x concurrency")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        process, url = start_server(Path(tmp), args.delay_s)
        try:
            print(f"server delay {args.delay_s * 1000:.0f} ms per request; store writes included")
            print(
                f"{'concurrency':>11} {'pairs':>6} {'bound/s':>8} {'verdicts/s':>10} {'of bound':>8} "
                f"{'client CPU ms/verdict':>21}"
            )
            for run, concurrency in enumerate(args.concurrency):
                pairs = args.waves * concurrency
                rate, cpu_ms = measure(url, Path(tmp) / "store", concurrency, pairs, run)
                bound = concurrency / args.delay_s
                print(f"{concurrency:>11} {pairs:>6} {bound:>8.0f} {rate:>10.1f} {rate / bound:>8.1%} {cpu_ms:>21.2f}")
        finally:
            process.kill()
            process.wait()


if __name__ == "__main__":
    main()
