"""The prediction-record contract shared by harvest, predict, judge, train and evaluate.

One row per generated completion. `prediction` is the parsed answer (labels.extract_answer), null
when the completion has a format error. `ground_truth` is the sample's label, copied so that a
predictions file can be judged on its own (`speciarl judge --pairs`).
"""

from __future__ import annotations

import pyarrow as pa

PREDICTION_SCHEMA = pa.schema(
    [
        ("sample_id", pa.string()),
        ("dataset", pa.string()),
        ("split", pa.string()),
        ("ground_truth", pa.string()),
        ("policy_id", pa.string()),
        ("prompt_name", pa.string()),
        ("prompt_text", pa.string()),
        ("sample_index", pa.int32()),
        ("raw_text", pa.string()),
        ("prediction", pa.string()),
        ("format_error", pa.bool_()),
        ("seed", pa.int64()),
        ("temperature", pa.float32()),
        ("top_p", pa.float32()),
    ]
)

PREDICTIONS_FILE = "predictions.parquet"
"""File name of a finished predictions table inside a predictions folder."""

VERDICT_TABLE_SCHEMA = pa.schema(
    [
        ("dataset", pa.string()),
        ("ground_truth", pa.string()),  # normalised
        ("prediction", pa.string()),  # normalised
        ("category", pa.string()),
        ("judge", pa.string()),  # which judge decided: "exact", "taxonomy", or the LLM judge id
    ]
)
"""Output of the `judge` stage: one row per unique (dataset, truth, prediction) it judged."""
