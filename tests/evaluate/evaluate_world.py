"""Hand-made predictions and verdict tables: five runs on both mini world test splits; the judge
stats and the training runs' folders (curves, train-time model cards) the report reads.

Every number the tests expect is computed by hand in test_evaluate.py from the tables below.
None marks a format error (null prediction).
"""

from pathlib import Path
from types import SimpleNamespace

import pyarrow as pa
import pyarrow.parquet as pq

from speciarl.labels import normalize
from speciarl.model_card import adapter_card
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
    # not strict: a test writes a run that covers fewer images than the split has
    for image, (truth, samples) in enumerate(zip(TRUTHS[dataset], answers, strict=False)):
        for index, answer in enumerate(samples):
            raw = (
                "<think>looking</think> no tag"
                if answer is None
                else f"<think>looking</think><answer>{answer}</answer>"
            )
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
        {
            "dataset": dataset,
            "ground_truth": normalize(truth),
            "prediction": normalize(prediction),
            "category": category,
            "judge": judge,
        }
        for dataset, pairs in verdicts.items()
        for (truth, prediction), (category, judge) in pairs.items()
    ]


def write_verdicts(path: Path, rows: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.Table.from_pylist(rows, schema=VERDICT_TABLE_SCHEMA), path)


# What the eval judge stats name each judge id (stages/judge.py writes them)
JUDGE_NAMES = {"exact": "exact match", "taxonomy": "taxonomy of the world", "llm:eval-judge": "LLM tiny-judge"}
# training run -> its GRPO reward per step (curves.csv)
REWARD_CURVES = {"speciarl": [0.1, 0.2, 0.3, 0.4, 0.5, 0.6], "binary": [0.0, 0.0, 0.5, 0.5, 1.0, 1.0]}


def write_training_runs(runs_dir: Path, curves: dict[str, list[float]] = REWARD_CURVES) -> None:
    """<runs_dir>/<run>/curves.csv and adapter/README.md (the train-time card) for each run."""
    for run, rewards in curves.items():
        folder = runs_dir / run
        (folder / "adapter").mkdir(parents=True, exist_ok=True)
        lines = ["step,reward_mean,zero_std_group_share"] + [
            f"{step},{reward},0.25" for step, reward in enumerate(rewards, 1)
        ]
        (folder / "curves.csv").write_text("\n".join(lines) + "\n")
        params = SimpleNamespace(
            reward=run,
            noise=0.0,
            dataset="miniworld_a",
            split="train",
            subset_size=None,
            subset_seed=42,
            prompt="general",
        )
        params.model_dump = lambda run=run: {"reward": run}
        policy = SimpleNamespace(model="data/models/base", dtype="float32")
        card = adapter_card(run, params, policy, "0" * 64, 4, {"steps": len(rewards)}, folder / "adapter")
        (folder / "adapter" / "README.md").write_text(card)
