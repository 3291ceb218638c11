#!/usr/bin/env bash
# The real-vLLM tests (marker `vllm`: harvest/predict backends, LoRA, GRPO colocate, the managed
# vLLM judge server), in the CPU vLLM environment that scripts/setup_vllm_cpu.sh builds. They are
# skipped by the default test run, whose environment has no vLLM. Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup_vllm_cpu.sh
# vLLM on CPU: 1 GiB of KV cache is plenty for the tiny models; the engine runs in-process (no
# engine-core subprocess to spawn per test, which takes a minute on 2 cores).
export VLLM_CPU_KVCACHE_SPACE="${VLLM_CPU_KVCACHE_SPACE:-1}"
export VLLM_ENABLE_V1_MULTIPROCESSING="${VLLM_ENABLE_V1_MULTIPROCESSING:-0}"
exec .venv-vllm/bin/python -m pytest -q -m vllm tests/vllm_engine "$@"
