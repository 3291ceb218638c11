"""The GPU benchmark script builds the right model and runs end to end (scaled down, on CPU)."""

import importlib.util
import sys

import torch
from generation_world import ROOT


def load_benchmark():
    spec = importlib.util.spec_from_file_location("device_generation", ROOT / "benchmarks" / "device_generation.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_full_size_model_has_the_7b_parameter_count():
    bench = load_benchmark()
    model = bench.build_model(bench.build_config(bench.arch(tiny=False), bench.QWEN_IDS), "meta", torch.bfloat16)
    assert round(sum(p.numel() for p in model.parameters()) / 1e9, 2) == 8.29  # Qwen2.5-VL-7B-Instruct


def test_tiny_dry_run_prints_throughput(monkeypatch, capsys):
    bench = load_benchmark()
    monkeypatch.setattr(
        sys, "argv", ["device_generation.py", "--tiny", "--batch", "2", "--new-tokens", "3", "--through-backend"]
    )
    torch.set_num_threads(1)  # small matrices: one thread is fastest (conftest restores the count)
    assert bench.main() == 0
    out = capsys.readouterr().out
    assert "plain generate  batch    2:       6 new tokens" in out
    assert "speciarl backend batch    2:" in out and "new tokens/s" in out
