"""The evaluate and report stages end to end on the hand-made world of evaluate_world.py (the `world` fixture).

Expected numbers are computed by hand from evaluate_world.PREDICTIONS and evaluate_world.VERDICTS:
outcome counts per run and dataset, then the definitions of docs/method.md#metrics.
"""

import json
import subprocess
import sys
from pathlib import Path

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from evaluate_world import PREDICTIONS, verdict_rows, write_predictions, write_verdicts

from speciarl.evaluate.per_sample import build_per_sample

REPO = Path(__file__).resolve().parents[2]

# run -> dataset -> (correctness, specificity, hm, score, text inclusion, non-zero counts)
EXPECTED = {
    "base-general": {
        "miniworld_a": (3 / 4, 0.0, 0.0, 0.1, 2 / 4, {"less specific": 2, "generic": 1, "format_error": 1}),
        "miniworld_b": (
            3 / 4,
            1 / 3,
            6 / 13,
            0.45,
            1 / 4,
            {"less specific": 1, "specific": 1, "generic": 1, "abstain": 1},
        ),
    },
    "base-specific": {
        "miniworld_a": (3 / 4, 1 / 3, 6 / 13, 0.3, 3 / 4, {"specific": 1, "less specific": 2, "wrong": 1}),
    },
    "speciarl-general": {
        "miniworld_a": (3 / 4, 2 / 3, 12 / 17, 0.4, 3 / 4, {"specific": 2, "wrong": 1, "less specific": 1}),
        "miniworld_b": (
            1.0,
            1 / 2,
            2 / 3,
            0.7,
            3 / 4,
            {"specific": 1, "more specific": 1, "less specific": 1, "generic": 1},
        ),
    },
    "binary-general": {
        # "golden winged warbler" has no dash: the judge says specific, text inclusion says no
        "miniworld_a": (3 / 4, 1.0, 6 / 7, 0.5, 2 / 4, {"wrong": 1, "specific": 3}),
        "miniworld_b": (1 / 2, 1.0, 2 / 3, 0.0, 2 / 4, {"format_error": 1, "specific": 2, "wrong": 1}),
    },
    "base-best_of_n": {
        # best per image: A: specific, specific, less specific, format error;
        # B: specific, more specific, generic, abstain
        "miniworld_a": (3 / 4, 2 / 3, 12 / 17, 0.4, 3 / 4, {"specific": 2, "less specific": 1, "format_error": 1}),
        "miniworld_b": (
            3 / 4,
            2 / 3,
            12 / 17,
            0.55,
            2 / 4,
            {"specific": 1, "more specific": 1, "generic": 1, "abstain": 1},
        ),
    },
}


def run_stage(name: str, params: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(REPO / "stages" / f"{name}.py"), "--params", str(params)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )


def never_loaded():
    pytest.fail("the similarity model was loaded before the inputs were checked")


def test_evaluate_and_report_end_to_end(world):
    done = run_stage("evaluate", world["params"])
    assert done.returncode == 0, done.stderr
    metrics = json.loads((world["out_dir"] / "metrics.json").read_text())
    assert set(metrics) == set(EXPECTED)
    assert set(metrics["base-best_of_n"]) == {"best_of_n"} and set(metrics["base-general"]) == {"greedy"}

    for run, datasets in EXPECTED.items():
        (mode,) = metrics[run]
        assert set(metrics[run][mode]["datasets"]) == set(datasets)
        for dataset, (correctness, specificity, hm, score, inclusion, counts) in datasets.items():
            entry = metrics[run][mode]["datasets"][dataset]["test"]
            got = (entry["correctness"], entry["specificity"], entry["hm"], entry["score"], entry["text_inclusion"])
            assert got == pytest.approx((correctness, specificity, hm, score, inclusion), abs=1e-6), (run, dataset)
            assert {k: v for k, v in entry["counts"].items() if v} == counts, (run, dataset)
            assert entry["n"] == 4
            assert entry["samples_per_image"] == (3 if mode == "best_of_n" else 1)
            assert sum(entry["distribution"].values()) == pytest.approx(1.0)

    # groups average the per-dataset metrics; a group with no evaluated dataset is absent
    both = metrics["speciarl-general"]["greedy"]["groups"]["both"]["test"]
    assert (both["correctness"], both["specificity"], both["hm"], both["score"]) == pytest.approx(
        ((3 / 4 + 1) / 2, (2 / 3 + 1 / 2) / 2, (12 / 17 + 2 / 3) / 2, (0.4 + 0.7) / 2), abs=1e-6
    )
    assert both["n"] == 8 and both["n_datasets"] == 2
    assert metrics["base-specific"]["greedy"]["groups"]["both"]["test"]["n_datasets"] == 1
    assert metrics["base-specific"]["greedy"]["groups"]["domain_a"]["test"]["hm"] == pytest.approx(6 / 13, abs=1e-6)
    assert "domain_b" not in metrics["base-specific"]["greedy"]["groups"]
    assert "fine_grained" not in metrics["base-general"]["greedy"]["groups"]

    # per-sample table: every prediction, with its verdict and who gave it
    per_sample = pl.read_parquet(world["out_dir"] / "per_sample.parquet")
    expected_rows = sum(
        len(samples) for datasets in PREDICTIONS.values() for answers in datasets.values() for samples in answers
    )
    assert per_sample.height == expected_rows
    assert per_sample.columns[:8] == [
        "run",
        "dataset",
        "split",
        "sample_id",
        "sample_index",
        "ground_truth",
        "prediction",
        "category",
    ]
    errors = per_sample.filter(pl.col("category") == "format_error")
    assert errors["prediction"].null_count() == errors.height and errors["judge"].null_count() == errors.height
    llm = per_sample.filter(pl.col("judge") == "llm:eval-judge")
    assert sorted(llm["prediction"].to_list()) == ["golden winged warbler", "pickup truck"]

    # similarity: identical texts ~1, others below; the aggregate counts format errors as 0
    judged = per_sample.filter(pl.col("prediction").is_not_null())
    same = judged.filter(pl.col("prediction").str.to_lowercase() == pl.col("ground_truth").str.to_lowercase())
    assert same["similarity"].min() == pytest.approx(1.0, abs=1e-4)
    assert judged.filter(pl.col("prediction") == "Bird")["similarity"].max() < 0.99
    rows = per_sample.filter((pl.col("run") == "binary-general") & (pl.col("dataset") == "miniworld_b"))
    assert metrics["binary-general"]["greedy"]["datasets"]["miniworld_b"]["test"]["similarity"] == pytest.approx(
        rows["similarity"].fill_null(0.0).sum() / 4, abs=1e-5
    )

    # best-of-k curve (DVC plot data) on domain A: k = 1, 2, 3
    curve = pl.read_csv(world["out_dir"] / "best_of_k" / "base-best_of_n" / "miniworld_a-test.csv")
    assert curve["k"].to_list() == [1, 2, 3]
    assert curve["correctness"].to_list() == pytest.approx([2 / 4, 3 / 4, 3 / 4], abs=1e-6)
    assert curve["hm"].to_list() == pytest.approx([0.0, 6 / 13, 12 / 17], abs=1e-6)
    assert curve["score"].to_list() == pytest.approx([-0.3, 0.2, 0.4], abs=1e-6)

    # the headline (DVC metrics): one file per group and run, the group numbers of metrics.json
    headline = world["out_dir"] / "headline"
    files = sorted(path.relative_to(headline).as_posix() for path in headline.rglob("*.json"))
    expected_files = [
        f"{group}/{run}.json" for run, modes in metrics.items() for mode in modes.values() for group in mode["groups"]
    ]
    assert files == sorted(expected_files)
    entry = metrics["speciarl-general"]["greedy"]["groups"]["domain_b"]["test"]
    assert json.loads((headline / "domain_b" / "speciarl-general.json").read_text()) == {
        "test": {name: entry[name] for name in ("specificity", "correctness", "hm", "score")}
    }

    done = run_stage("report", world["params"])
    assert done.returncode == 0, done.stderr
    report_dir = world["report_dir"]
    text = (report_dir / "report.md").read_text()
    order = [
        "Base, zero-shot",
        "Base + `specific` prompt",
        "RFT (binary reward)",
        "SpeciaRL",
        "Base best-of-N (upper bound), N = 3",
    ]
    domain_a = text.split("### domain_a")[1].split("###")[0]
    positions = [domain_a.index(label) for label in order]
    assert positions == sorted(positions)
    row = next(line for line in domain_a.splitlines() if line.startswith("| SpeciaRL"))
    # Spec., Corr., HM, Score, Incl. of SpeciaRL on domain A
    assert [cell.strip("*") for cell in row.split(" | ")[2:7]] == ["0.667", "0.750", "0.706", "0.400", "0.750"]
    rft = next(line for line in domain_a.splitlines() if line.startswith("| RFT"))
    assert rft.split(" | ")[2] == "**1.000**"  # the best single-pass specificity is bold
    # judges by what they are (the judge stats' names), not by id
    assert "LLM tiny-judge 2 (" in text and "exact match " in text and "llm:eval-judge" not in text
    assert "## Definitions" in text
    assert "| Base + `specific` prompt (1 of 2 datasets) |" in text.split("### both")[1]  # it covers only domain A
    # runs with a quarter of their answers unparseable are flagged, per dataset; best-of-N is not single-pass
    flagged = [line for line in text.split("## Format errors")[1].split("##")[0].splitlines() if line.startswith("- ")]
    assert flagged == [
        "- Base, zero-shot (`base-general`): 25.0 % on miniworld_a (test)",
        "- RFT (binary reward) (`binary-general`): 25.0 % on miniworld_b (test)",
    ]
    # training: every run's reward curve, first and last 5 steps by hand; one long CSV for the DVC plot
    training = text.split("## Training")[1].split("\n## ")[0]
    assert "| `speciarl` | SpeciaRL | 6 | 0.300 | 0.400 | 25.0 |" in training
    assert "| `binary` | RFT (binary reward) | 6 | 0.400 | 0.600 | 25.0 |" in training
    curves = pl.read_csv(report_dir / "reward_curves.csv")
    assert curves.columns == ["run", "step", "reward_mean"] and curves.height == 12
    assert curves.filter(pl.col("run") == "binary")["reward_mean"].to_list() == [0.0, 0.0, 0.5, 0.5, 1.0, 1.0]
    # each adapter's card, with this evaluation's numbers
    card = (report_dir / "model_cards" / "speciarl" / "README.md").read_text()
    assert "| `speciarl-general` | miniworld_a | test | 4 | 0.667 | 0.750 | 0.706 | 0.400 |" in card
    assert sorted(path.parent.name for path in (report_dir / "model_cards").glob("*/README.md")) == [
        "binary",
        "speciarl",
    ]
    images = [line.split("](")[1].rstrip(")") for line in text.splitlines() if line.startswith("![")]
    assert images and all(
        not Path(image).is_absolute() and (report_dir / image).stat().st_size > 5000 for image in images
    )
    assert {"specificity_vs_correctness.png", "categories_miniworld_a_test.png", "training_reward.png"} <= set(images)


def test_missing_verdict_is_an_error_naming_run_and_pair(world):
    rows = [row for row in verdict_rows() if row["prediction"] != "jay"]
    write_verdicts(world["verdicts"], rows)
    done = run_stage("evaluate", world["params"])
    assert done.returncode == 2  # bad input (speciarl.stage)
    message = done.stderr.strip()
    assert message.count("\n") == 0
    assert "no verdict for 1 (dataset, truth, prediction) pair(s)" in message
    assert "run base-specific, miniworld_a: truth 'blue jay', prediction 'jay'" in message
    assert not (world["out_dir"] / "metrics.json").exists()


def test_bad_inputs_fail_before_the_model_is_loaded(world):
    # a category that is not one of the six
    write_verdicts(
        world["verdicts"],
        [{**row, "category": "correct"} if row["prediction"] == "jay" else row for row in verdict_rows()],
    )
    with pytest.raises(
        ValueError, match=r"unknown category 'correct' for miniworld_a: truth 'blue jay', prediction 'jay'"
    ):
        build_per_sample(world["predictions_dir"], world["verdicts"], never_loaded)
    # two different verdicts for one pair
    write_verdicts(world["verdicts"], verdict_rows() + [{**verdict_rows()[0], "category": "wrong"}])
    with pytest.raises(ValueError, match=r"conflicting verdicts \['less specific', 'wrong'\]"):
        build_per_sample(world["predictions_dir"], world["verdicts"], never_loaded)
    # not parquet at all, or a table without a needed column
    world["verdicts"].write_bytes(b"not parquet")
    with pytest.raises(ValueError, match=r"verdicts.parquet: not a readable VERDICT_TABLE_SCHEMA table"):
        build_per_sample(world["predictions_dir"], world["verdicts"], never_loaded)
    pq.write_table(pa.Table.from_pylist(verdict_rows()).drop(["judge"]), world["verdicts"])
    with pytest.raises(ValueError, match=r"verdicts.parquet: missing column\(s\) judge"):
        build_per_sample(world["predictions_dir"], world["verdicts"], never_loaded)
    write_verdicts(world["verdicts"], verdict_rows())
    # a run folder without its predictions file
    (world["predictions_dir"] / "base-calibrated").mkdir()
    with pytest.raises(ValueError, match=r"base-calibrated: no predictions.parquet"):
        build_per_sample(world["predictions_dir"], world["verdicts"], never_loaded)
    (world["predictions_dir"] / "base-calibrated").rmdir()
    # a run that covers other images of a split than the others
    write_predictions(world["predictions_dir"], {"base-calibrated": {"miniworld_a": [["Bird"]] * 3}})
    with pytest.raises(
        ValueError, match=r"miniworld_a/test: run base-calibrated has 3 images, run base-best_of_n has 4"
    ):
        build_per_sample(world["predictions_dir"], world["verdicts"], never_loaded)


def test_format_error_flag_must_match_a_null_prediction(world):
    path = world["predictions_dir"] / "base-general" / "predictions.parquet"
    table = pq.read_table(path)
    flags = table["format_error"].to_pylist()
    flags[0] = True  # "Warbler" flagged as a format error
    pq.write_table(table.set_column(table.schema.get_field_index("format_error"), "format_error", [flags]), path)
    with pytest.raises(
        ValueError,
        match=r"base-general/predictions.parquet: sample miniworld_a-0000 index 0: "
        r"format_error=True but prediction='Warbler'",
    ):
        build_per_sample(world["predictions_dir"], world["verdicts"], never_loaded)
