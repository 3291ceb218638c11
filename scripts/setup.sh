#!/usr/bin/env bash
# One-time set-up of a fresh machine: a virtual environment at .venv/ with the pinned CPU stack.
# Idempotent: rerunning it only installs what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ ! -x .venv/bin/python ]; then
    python3 -m venv .venv
fi
# torch first and exactly: any other route resolves a multi-GB CUDA build.
.venv/bin/pip install --quiet --disable-pip-version-check "torch==2.13.0"
.venv/bin/pip install --quiet --disable-pip-version-check -c constraints/cpu.txt -e ".[dev,slurm]"

# WordNet hypernyms for Food-101 / Flowers102 taxonomies are optional; Debian ships WordNet 3.0.
if [ ! -d /usr/share/wordnet ] && command -v apt-get >/dev/null && [ "$(id -u)" = 0 ]; then
    (apt-get update -qq && apt-get install -y -qq wordnet-base) >/dev/null 2>&1 \
        || echo "note: wordnet-base not installed; WordNet hypernyms will be skipped" >&2
fi
# DVC needs a git repository (a clone has one) and its own metadata (committed in .dvc/).
