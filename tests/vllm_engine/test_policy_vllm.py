"""The harvest and predict stages with `policy.backend: vllm` against a real vLLM engine (CPU), compared
with the transformers backend on the same weights in float32."""

from __future__ import annotations

import pyarrow.parquet as pq
from vllm_world import DATASET, VLLM_TESTS, run_stage

pytestmark = VLLM_TESTS
MIN_AGREEMENT = 0.95


def predictions(params_path, policy: str = "base", prompt: str = "general") -> dict[str, str]:
    """sample_id -> raw greedy completion, from the predict stage's output."""
    run_stage("predict", "--policy", policy, "--prompt", prompt, "--params", str(params_path))
    import yaml

    out_dir = yaml.safe_load(params_path.read_text())["predict"]["out_dir"]
    table = pq.read_table(f"{out_dir}/{policy}-{prompt}/predictions.parquet").to_pylist()
    return {row["sample_id"]: row["raw_text"] for row in table}


def agreement(left: dict[str, str], right: dict[str, str]) -> float:
    assert left.keys() == right.keys() and left
    share = sum(left[key] == right[key] for key in left) / len(left)
    print(f"agreement: {share:.3f} of {len(left)} images")  # the figure the README reports (pytest -rP)
    return share


def test_predict_with_vllm_agrees_with_transformers(write_params):
    by_transformers = predictions(write_params("transformers.yaml", policy={"backend": "transformers"}))
    by_vllm = predictions(write_params("vllm.yaml", policy={"backend": "vllm"}))
    assert len(by_vllm) == 80  # 40 test images in each domain
    assert agreement(by_transformers, by_vllm) >= MIN_AGREEMENT
    # answers, not degenerate text: the policy names several different labels
    assert len({text for text in by_vllm.values() if "<answer>" in text}) >= 3


def test_harvest_with_vllm_samples_n_completions_per_image(write_params):
    params = write_params("vllm.yaml", policy={"backend": "vllm"})
    run_stage("harvest", "--params", str(params))
    import yaml

    table = pq.read_table(yaml.safe_load(params.read_text())["harvest"]["out"]).to_pylist()
    per_image: dict[str, list[dict]] = {}
    for row in table:
        per_image.setdefault(row["sample_id"], []).append(row)
    assert len(per_image) == 8 and all(len(rows) == 4 for rows in per_image.values())
    assert all(row["dataset"] == DATASET and row["temperature"] == 1.0 for row in table)
    assert sorted({row["sample_index"] for row in table}) == [0, 1, 2, 3]
    # vision special tokens are suppressed; most samples keep the answer format
    assert not any("<|image_pad|>" in row["raw_text"] or "<|vision_" in row["raw_text"] for row in table)
    assert sum(not row["format_error"] for row in table) >= len(table) // 2
    # sampling, not greedy: the samples of an image differ somewhere
    assert any(len({row["raw_text"] for row in rows}) > 1 for rows in per_image.values())


def test_an_engine_that_cannot_start_is_one_line_naming_the_params(write_params, tmp_path):
    import subprocess
    import sys

    from vllm_world import ROOT, stage_env

    params = write_params(
        "bad.yaml", policy={"backend": "vllm", "vllm": {"max_model_len": 100000, "enforce_eager": True}}
    )
    result = subprocess.run(
        [
            sys.executable,
            str(ROOT / "stages" / "predict.py"),
            "--policy",
            "base",
            "--prompt",
            "general",
            "--params",
            str(params),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        env=stage_env(),
    )
    assert result.returncode == 2
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("predict: error: vLLM engine for") and "policy.vllm" in last and "max_model_len" in last
    assert not (tmp_path / "bad" / "predictions").exists() or not any(
        (tmp_path / "bad" / "predictions").rglob("*.parquet")
    )
