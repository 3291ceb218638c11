"""Hand-made predictions and verdict tables: five runs on both mini world test splits.

Every number the tests expect is computed by hand in test_evaluate.py from the tables below.
None marks a format error (null prediction).
"""

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from speciarl.labels import normalize
from speciarl.predictions import PREDICTION_SCHEMA, PREDICTIONS_FILE, VERDICT_TABLE_SCHEMA

TRUTHS = {
    "miniworld_a": ["Golden-winged Warbler", "Blue Jay", "Golden-winged Warbler", "House Sparrow"],
    "miniworld_b": ["Boeing 707-320", "Audi TT", "Audi TT", "Ford F-150"],
}

# run -> dataset -> one list of answers per image (greedy runs: one answer; best-of-N: three samples)
PREDICTIONS = {
    "base-general": {
        "miniworld_a": [["Warbler"], ["Bird"], ["warbler."], [None]],
        "miniworld_b": [["Boeing 707"], ["Audi TT"], ["car"], ["None"]],
    },
    "base-specific": {
        "miniworld_a": [["golden-winged warbler"], ["jay"], ["Warbler"], ["Eurasian Tree Sparrow"]],
    },
    "speciarl-general": {
        "miniworld_a": [["Golden-winged Warbler"], ["Blue Jay"], ["Blue-winged Warbler"], ["sparrow"]],
        "miniworld_b": [["Boeing 707-320"], ["Audi TT Coupe 2012"], ["Audi"], ["pickup truck"]],
    },
    "binary-general": {
        "miniworld_a": [["Blue-winged Warbler"], ["Blue Jay"], ["golden winged warbler"], ["House Sparrow"]],
        "miniworld_b": [[None], ["Audi TT"], ["Audi TT"], ["Chevrolet Silverado"]],
    },
    "base-best_of_n": {
        "miniworld_a": [
            ["warbler", "Golden-winged Warbler", None],
            ["bird", None, "Blue Jay"],
            ["Blue-winged Warbler", "Warbler", "Bird"],
            [None, None, None],
        ],
        "miniworld_b": [
            ["Boeing 707", "Boeing 707-320", "Boeing 707"],
            ["Audi TT Coupe 2012", "Audi TT", "car"],
            ["None", "car", "None"],
            ["None", "Chevrolet Silverado", None],
        ],
    },
}

# dataset -> (truth, prediction) as written (normalised when the table is built) -> (category, judge)
VERDICTS = {
    "miniworld_a": {
        ("Golden-winged Warbler", "Warbler"): ("less specific", "taxonomy"),
        ("Golden-winged Warbler", "golden-winged warbler"): ("specific", "exact"),
        ("Golden-winged Warbler", "Blue-winged Warbler"): ("wrong", "taxonomy"),
        ("Golden-winged Warbler", "golden winged warbler"): ("specific", "llm:eval-judge"),
        ("Golden-winged Warbler", "Bird"): ("generic", "taxonomy"),
        ("Blue Jay", "Bird"): ("generic", "taxonomy"),
        ("Blue Jay", "Blue Jay"): ("specific", "exact"),
        ("Blue Jay", "jay"): ("less specific", "taxonomy"),
        ("House Sparrow", "sparrow"): ("less specific", "taxonomy"),
        ("House Sparrow", "House Sparrow"): ("specific", "exact"),
        ("House Sparrow", "Eurasian Tree Sparrow"): ("wrong", "taxonomy"),
    },
    "miniworld_b": {
        ("Boeing 707-320", "Boeing 707"): ("less specific", "taxonomy"),
        ("Boeing 707-320", "Boeing 707-320"): ("specific", "exact"),
        ("Audi TT", "Audi TT"): ("specific", "exact"),
        ("Audi TT", "car"): ("generic", "taxonomy"),
        ("Audi TT", "Audi TT Coupe 2012"): ("more specific", "taxonomy"),
        ("Audi TT", "Audi"): ("less specific", "taxonomy"),
        ("Audi TT", "None"): ("abstain", "taxonomy"),
        ("Ford F-150", "None"): ("abstain", "taxonomy"),
        ("Ford F-150", "pickup truck"): ("generic", "llm:eval-judge"),
        ("Ford F-150", "Chevrolet Silverado"): ("wrong", "taxonomy"),
    },
}


def prediction_rows(run: str, dataset: str, answers: list[list[str | None]]) -> list[dict]:
    policy, _, prompt = run.rpartition("-")
    rows = []
    for image, (truth, samples) in enumerate(zip(TRUTHS[dataset], answers)):
        for index, answer in enumerate(samples):
            raw = "<think>looking</think> no tag" if answer is None else f"<think>looking</think><answer>{answer}</answer>"
            rows.append(
                {
                    "sample_id": f"{dataset}-{image:04d}",
                    "dataset": dataset,
                    "split": "test",
                    "ground_truth": truth,
                    "policy_id": policy,
                    "prompt_name": "general" if prompt == "best_of_n" else prompt,
                    "prompt_text": "Classify the image.",
                    "sample_index": index,
                    "raw_text": raw,
                    "prediction": answer,
                    "format_error": answer is None,
                    "seed": 0,
                    "temperature": 0.6 if len(samples) > 1 else 0.0,
                    "top_p": 0.95 if len(samples) > 1 else 1.0,
                }
            )
    return rows


def write_predictions(root: Path, predictions: dict = PREDICTIONS) -> None:
    for run, datasets in predictions.items():
        rows = [row for dataset, answers in datasets.items() for row in prediction_rows(run, dataset, answers)]
        (root / run).mkdir(parents=True, exist_ok=True)
        pq.write_table(pa.Table.from_pylist(rows, schema=PREDICTION_SCHEMA), root / run / PREDICTIONS_FILE)


def verdict_rows(verdicts: dict = VERDICTS) -> list[dict]:
    return [
        {"dataset": dataset, "ground_truth": normalize(truth), "prediction": normalize(prediction), "category": category, "judge": judge}
        for dataset, pairs in verdicts.items()
        for (truth, prediction), (category, judge) in pairs.items()
    ]


def write_verdicts(path: Path, rows: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.Table.from_pylist(rows, schema=VERDICT_TABLE_SCHEMA), path)
