"""The report's rows on hand-written metrics: seeds merged into one row (mean, [min, max]), the null
control beside the methods, format-failing prompts folded into their own table."""

import polars as pl

from speciarl.evaluate.report import ReportInputs, method_of, methods, trained_method, write_report
from speciarl.metrics import OUTCOMES


def entry(specificity: float, correctness: float, format_errors: float = 0.0, group: bool = False) -> dict:
    distribution = dict.fromkeys(OUTCOMES, 0.0)
    distribution["specific"], distribution["format_error"] = 1.0 - format_errors, format_errors
    scalars = {"specificity": specificity, "correctness": correctness, "hm": specificity, "score": correctness - 0.5}
    found = {"n": 10, **scalars, "text_inclusion": 0.5, "similarity": 0.5, "distribution": distribution}
    if group:
        return {**found, "n_datasets": 1}
    counts = {value: int(10 * share) for value, share in distribution.items()}
    return {**found, "samples_per_image": 1, "counts": counts}


def run_metrics(specificity: float, correctness: float, format_errors: float = 0.0, mode: str = "greedy") -> dict:
    return {
        mode: {
            "datasets": {"miniworld_a": {"test": entry(specificity, correctness, format_errors)}},
            "groups": {"domain_a": {"test": entry(specificity, correctness, format_errors, group=True)}},
        }
    }


METRICS = {
    "base-general": run_metrics(0.1, 0.9),
    "base-specific": run_metrics(0.0, 0.5, format_errors=0.5),  # folded: half format errors
    "base-max_specificity": run_metrics(0.15, 0.8, format_errors=0.2),  # below the fold threshold
    "speciarl-general": run_metrics(0.2, 0.9),
    "speciarl_s1-general": run_metrics(0.4, 0.7),
    "speciarl_s2-general": run_metrics(0.3, 0.8),
    "null_control-general": run_metrics(0.1, 0.85),
    "base-best_of_n": run_metrics(0.5, 1.0, mode="best_of_n"),
}


def test_seed_runs_are_one_method():
    assert trained_method("speciarl_s2") == "speciarl" and trained_method("speciarl") == "speciarl"
    assert trained_method("scale2") == "scale2" and trained_method("speciarl_ms2") == "speciarl_ms2"
    assert method_of("speciarl_s1-general").key == "speciarl-general"
    assert method_of("null_control-general").label == "Null control (random reward)"
    rows = methods(METRICS)
    assert [method.key for method in rows] == [
        "base-general",
        "base-specific",
        "base-max_specificity",
        "speciarl-general",
        "null_control-general",
        "base-best_of_n",
    ]
    assert rows[3].runs == ("speciarl-general", "speciarl_s1-general", "speciarl_s2-general")


def test_report_rows(tmp_path):
    inputs = ReportInputs(
        metrics=METRICS,
        per_sample=pl.DataFrame({"judge": ["exact", "taxonomy:abc", None]}),
        groups={"domain_a": ["miniworld_a"]},
        judge_names={"taxonomy:abc": "taxonomy of miniworld_a (closed world, close_levels 1)"},
    )
    text = write_report(inputs, tmp_path).read_text()
    judges = "`exact` 1 (50.0 %), taxonomy of miniworld_a (closed world, close_levels 1) 1 (50.0 %)"
    assert f"Verdicts by judge (all runs): {judges}." in text
    panel = text.split("### domain_a")[1].split("###")[0]
    main, folded = panel.split("Format-failing prompts")
    lines = [line for line in main.splitlines() if line.startswith("| ") and "---" not in line]
    labels = [line.split(" | ")[0].lstrip("| ") for line in lines]
    assert labels == [
        "Method",
        "Base, zero-shot",
        "Base + `max_specificity` prompt",
        "SpeciaRL, 3 seeds",
        "Null control (random reward)",
        "Base best-of-N (upper bound), N = 1",
    ]
    seeds = next(line for line in main.splitlines() if line.startswith("| SpeciaRL"))
    assert seeds.split(" | ")[1] == "`speciarl-general`, `speciarl_s1-general`, `speciarl_s2-general`"
    # Spec. and Corr.: the mean over the three seeds, then [min, max]; the best mean Spec. is bold
    assert seeds.split(" | ")[2:4] == ["**0.300** [0.200, 0.400]", "0.800 [0.700, 0.900]"]
    folded_rows = [line.split(" | ")[0] for line in folded.splitlines() if line.startswith("| Base")]
    assert folded_rows == ["| Base + `specific` prompt"]
    assert "| domain_a | test | Null control (random reward) | +0.200 | -0.050 | +0.200 | -0.050 |" in text
    # no training runs folder given: no training section and no model cards
    assert "## Training" not in text and not (tmp_path / "model_cards").exists()
