#!/usr/bin/env bash
# The GPU checks of the policy and training issues, as one call on a lent device machine:
#   run from the repo root with the wheels of README "GPU benchmarks" in .whl/ (carried), $OUT set.
set -o pipefail
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1
export PYTHONPATH=/tmp/site:$PWD/src PYTHONUNBUFFERED=1 TOKENIZERS_PARALLELISM=false
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv | tee "$OUT/gpu.txt"
python3 benchmarks/device_generation.py --batch 64 256 2>&1 | tee "$OUT/generation.log"
python3 benchmarks/device_grpo.py --steps 3 2>&1 | grep -v "it/s\]" | tee "$OUT/grpo.log"
