"""Judge verdicts per second through a managed vLLM server and through a managed `transformers serve`,
on the same tiny judge (tests/vllm_engine/tiny_vllm_judge.py), the same pairs and the same concurrency.

Each backend's server is started by the judge's managed mode (`judge.llm.serve.backend`) on
127.0.0.1, warmed up, and then judges the same fresh pairs through JudgeService (store writes
included; a fresh store per measurement, so every pair is a request), `--repeats` times; the
median and the range are printed. Every request asks for one
token: the tiny model's first word is a label, so `transformers serve`, which cannot constrain
replies, answers with valid labels too. vLLM is measured as the judge runs it (replies constrained
to the six labels) and without the constraint, which shows what the grammar costs.

    VLLM_CPU_KVCACHE_SPACE=1 .venv-vllm/bin/python benchmarks/judge_server_vllm.py \\
        [--pairs 400] [--repeats 3] [--concurrency 1 4 16] [--backends vllm transformers]

On CPU, vLLM serves with one torch thread and keeps the other core for its API process;
`transformers serve` uses torch's default (every core). A busy machine lowers both.
"""

from __future__ import annotations

import argparse
import importlib.util
import statistics
import tempfile
import time
from pathlib import Path

from speciarl.judge.cascade import JudgeService
from speciarl.judge.llm import LLMJudge
from speciarl.judge.params import LLMParams
from speciarl.judge.store import VerdictStore

TINY_JUDGE = Path(__file__).parents[1] / "tests" / "vllm_engine" / "tiny_vllm_judge.py"
SERVER_ARGS = {
    "vllm": ["--enforce-eager", "--max-model-len", "512"],
    "transformers": ["--device", "cpu"],
}
WARMUP_PAIRS = 8


def build_tiny_judge(path: Path) -> Path:
    spec = importlib.util.spec_from_file_location("tiny_vllm_judge", TINY_JUDGE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.build_tiny_vllm_judge(path)


def measure(llm: LLMJudge, store_dir: Path, pairs: list[tuple[str, str, str]]) -> tuple[float, int]:
    """(verdicts per second, pairs without a verdict) for judging `pairs` into a fresh store.

    `llm` talks to a running server (base_url), so closing the service leaves that server up."""
    with JudgeService(VerdictStore(store_dir), {}, llm) as service:
        start = time.perf_counter()
        categories = service.judge(pairs)
        elapsed = time.perf_counter() - start
    return sum(c is not None for c in categories) / elapsed, sum(c is None for c in categories)


def run_backend(
    backend: str, model: Path, workdir: Path, pair_count: int, repeats: int, concurrencies: list[int]
) -> None:
    """One managed server of `backend`; prints a result line per (constraint, concurrency)."""
    params = LLMParams(
        serve={"backend": backend, "args": SERVER_ARGS[backend], "startup_timeout_s": 900},
        model=str(model),
        max_tokens=1,
        timeout_s=300,
        max_attempts=1,
    )
    managed = LLMJudge.from_params(params)
    try:
        start = time.perf_counter()
        base_url, api_key = managed.server.start()
        startup_s = time.perf_counter() - start
        # The judge's own mode (vLLM: structured_outputs), plus vLLM without the constraint.
        modes = ["auto", "none"] if backend == "vllm" else ["auto"]
        for constrain in modes:
            for concurrency in concurrencies:
                llm = LLMJudge(
                    managed.server.served_model,
                    base_url=base_url,
                    api_key=api_key,
                    constrain=constrain,
                    max_tokens=1,
                    concurrency=concurrency,
                    timeout_s=300,
                    max_attempts=1,
                    chat_template_kwargs=params.chat_template_kwargs,
                )
                tag = f"{backend}-{constrain}-{concurrency}"
                warmup = [("bench", f"warm-up {tag} {i}", f"guess {i}") for i in range(WARMUP_PAIRS)]
                measure(llm, workdir / f"warmup-{tag}", warmup)
                pairs = [("bench", f"truth {i}", f"guess {i}") for i in range(pair_count)]
                runs = [measure(llm, workdir / f"store-{tag}-{run}", pairs) for run in range(repeats)]
                rates = [rate for rate, _ in runs]
                failures = sum(failed for _, failed in runs)
                label = "structured_outputs" if backend == "vllm" and constrain == "auto" else "none (strict parsing)"
                spread = f"{min(rates):.1f}-{max(rates):.1f}"
                print(
                    f"{backend:<12} {label:<22} {concurrency:>4} {statistics.median(rates):>10.1f} {spread:>11} "
                    f"{failures:>10} {startup_s:>9.0f}",
                    flush=True,
                )
    finally:
        managed.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pairs", type=int, default=400, help="pairs judged per measurement")
    parser.add_argument("--repeats", type=int, default=3, help="measurements per setting")
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 4, 16])
    parser.add_argument("--backends", nargs="+", choices=list(SERVER_ARGS), default=list(SERVER_ARGS))
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="judge-server-bench-") as workdir:
        model = build_tiny_judge(Path(workdir) / "tiny-judge")
        print(
            f"{args.pairs} pairs per measurement, {args.repeats} measurements per setting; tiny judge at {model}",
            flush=True,
        )
        print(
            f"{'backend':<12} {'constraint':<22} {'conc':>4} {'verdicts/s':>10} {'range':>11} {'no verdict':>10} "
            f"{'startup s':>9}"
        )
        for backend in args.backends:
            run_backend(backend, model, Path(workdir), args.pairs, args.repeats, args.concurrency)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
