"""Building PREDICTION_SCHEMA records and choosing samples."""

import pyarrow as pa
import pytest
from generation_world import DATASET, SPLIT_SIZES

from speciarl.policy.generation import SamplingConfig
from speciarl.policy.rollouts import GenerationJob, batch_seed, choose_sample_ids, completion_rows
from speciarl.predictions import PREDICTION_SCHEMA

JOB = GenerationJob(
    policy_id="base",
    prompt_name="general",
    prompt_text="Classify.",
    sampling=SamplingConfig(n=2, temperature=0.6, top_p=0.95),
    splits=(("toy", "test"),),
)
SAMPLES = [
    {"sample_id": "toy-1", "dataset": "toy", "split": "test", "label": "red square"},
    {"sample_id": "toy-2", "dataset": "toy", "split": "test", "label": "blue square"},
]


def test_rows_parse_answers_and_flag_format_errors():
    completions = [
        ["<think>red</think><answer> red square </answer>", "<think>hm</think>no tag"],
        ["<answer></answer>", "<answer>None</answer>"],
    ]
    rows = completion_rows(SAMPLES, completions, JOB, seed=123)
    table = pa.Table.from_pylist(rows, schema=PREDICTION_SCHEMA)
    assert table.num_rows == 4
    assert [(r["sample_id"], r["sample_index"], r["prediction"], r["format_error"]) for r in rows] == [
        ("toy-1", 0, "red square", False),
        ("toy-1", 1, None, True),
        ("toy-2", 0, None, True),
        ("toy-2", 1, "None", False),  # abstaining is an answer, judged later
    ]
    assert rows[2]["ground_truth"] == "blue square" and rows[3]["seed"] == 123 and rows[0]["top_p"] == 0.95
    assert rows[0]["raw_text"] == completions[0][0] and rows[0]["prompt_text"] == "Classify."


def test_rows_refuse_a_backend_that_lost_completions():
    with pytest.raises(ValueError, match="1 completions for toy-2, not 2"):
        completion_rows(SAMPLES, [["a", "b"], ["c"]], JOB, seed=0)
    with pytest.raises(ValueError, match="completions for 1 of 2 images"):
        completion_rows(SAMPLES, [["a", "b"]], JOB, seed=0)


def test_batch_seed_is_stable_and_spread():
    assert batch_seed(0, "toy-1") == batch_seed(0, "toy-1") < 2**32
    assert len({batch_seed(seed, sid) for seed in (0, 1) for sid in ("toy-1", "toy-2")}) == 4


def test_subset_is_seeded_and_bounded(prepared):
    chosen = choose_sample_ids(prepared, DATASET, "train", 4, seed=0)
    assert len(chosen) == 4 and chosen == choose_sample_ids(prepared, DATASET, "train", 4, seed=0)
    assert chosen != choose_sample_ids(prepared, DATASET, "train", 4, seed=1)
    assert len(choose_sample_ids(prepared, DATASET, "train", None, seed=0)) == SPLIT_SIZES["train"]
    assert len(choose_sample_ids(prepared, DATASET, "train", 1000, seed=0)) == SPLIT_SIZES["train"]
    with pytest.raises(ValueError, match="toy/empty .* is empty"):
        choose_sample_ids(prepared, DATASET, "empty", 4, seed=0)
