"""The tiny hand-wired judge of tests/judge/tiny_judge_model.py, widened for vLLM's CPU attention.

vLLM's CPU attention takes head sizes of 32 and up; the original's two heads of 16 load, then
fail the first request ("Unsupported CPU attention configuration: head_dim=16"). Widening pads
every weight with zeros to hidden size 64 (two heads of 32) and keeps the norm weights at one:
embeddings stay one-hot, attention and MLP outputs stay zero, so the bigram table in lm_head still
picks every next token. The replies are the original's: after the assistant tag "specific", then
"wrong", then end of sequence.
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
from safetensors.numpy import load_file, save_file

HIDDEN = 64
_ORIGINAL = Path(__file__).parents[1] / "judge" / "tiny_judge_model.py"


def _original_builder():
    # Loaded from its file under its own name: tests/judge is not on sys.path for these tests.
    spec = importlib.util.spec_from_file_location("tiny_judge_model_for_vllm", _ORIGINAL)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


ORIGINAL = _original_builder()
REPLY = ORIGINAL.REPLY


def build_tiny_vllm_judge(path: Path) -> Path:
    """Write the widened tiny judge (config, tokenizer, chat template, safetensors) to `path`."""
    ORIGINAL.build_tiny_judge(path)
    narrow = ORIGINAL.HIDDEN
    weights = load_file(str(path / "model.safetensors"))
    wide = {}
    for name, tensor in weights.items():
        if name.endswith("norm.weight"):
            wide[name] = np.ones(HIDDEN, dtype=np.float32)
            continue
        # Pad each axis of hidden size; the others (vocabulary, MLP width) keep their size.
        padding = [(0, HIDDEN - narrow) if size == narrow else (0, 0) for size in tensor.shape]
        wide[name] = np.pad(tensor, padding)
    save_file(wide, str(path / "model.safetensors"), metadata={"format": "pt"})
    config = json.loads((path / "config.json").read_text())
    config["hidden_size"] = HIDDEN
    (path / "config.json").write_text(json.dumps(config))
    return path
