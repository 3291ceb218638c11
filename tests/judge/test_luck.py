"""Luck figures (speciarl.judge.luck) on a hand-built taxonomy and hand-written rollouts.

Taxonomy: bird -> {finch -> {red finch, snow finch}, jay -> {blue jay, green jay, grey jay}}; levels
generic (1 node), group (2), fine (5). Every expected number below is counted by hand.
"""

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from speciarl.data.taxonomy import Taxonomy
from speciarl.judge.cascade import JudgeService, open_store
from speciarl.judge.luck import luck_figures, luck_of_predictions, reached_level
from speciarl.judge.taxonomy_judge import TaxonomyJudge
from speciarl.labels import Category
from speciarl.predictions import PREDICTION_SCHEMA

PATHS = {
    "Red Finch": [("generic", "bird"), ("group", "finch"), ("fine", "red finch")],
    "Snow Finch": [("generic", "bird"), ("group", "finch"), ("fine", "snow finch")],
    "Blue Jay": [("generic", "bird"), ("group", "jay"), ("fine", "blue jay")],
    "Green Jay": [("generic", "bird"), ("group", "jay"), ("fine", "green jay")],
    "Grey Jay": [("generic", "bird"), ("group", "jay"), ("fine", "grey jay")],
}
TAXONOMY = Taxonomy.from_paths("toy", ["generic", "group", "fine"], PATHS, {"jay": ["Corvidae"]})
GENERIC, GROUP, FINE = 0, 1, 2

# image -> (truth, its four rollouts); None is a format error. Levels reached, by hand:
# i1: fine, group, generic, none -> best fine, reached by one rollout
# i2: group, group (synonym), none, generic -> best group, reached by two
# i3: generic, none, none, none -> best generic, by one
# i4: none x4 (wrong, abstain, format error, and a pair without a verdict)
ROLLOUTS = {
    "i1": ("Red Finch", ["red finch", "finch", "bird", "blue jay"]),
    "i2": ("Blue Jay", ["jay", "Corvidae", "green jay", "bird"]),
    "i3": ("Snow Finch", ["bird", "jay", "i don't know", None]),
    "i4": ("Green Jay", ["finch", "i don't know", None, "unjudged"]),
}
CATEGORIES = {
    ("Red Finch", "red finch"): Category.SPECIFIC,
    ("Red Finch", "finch"): Category.LESS_SPECIFIC,
    ("Red Finch", "bird"): Category.GENERIC,
    ("Red Finch", "blue jay"): Category.WRONG,
    ("Blue Jay", "jay"): Category.LESS_SPECIFIC,
    ("Blue Jay", "Corvidae"): Category.LESS_SPECIFIC,
    ("Blue Jay", "green jay"): Category.WRONG,
    ("Blue Jay", "bird"): Category.GENERIC,
    ("Snow Finch", "bird"): Category.GENERIC,
    ("Snow Finch", "jay"): Category.WRONG,
    ("Snow Finch", "i don't know"): Category.ABSTAIN,
    ("Green Jay", "finch"): Category.WRONG,
    ("Green Jay", "i don't know"): Category.ABSTAIN,
}


def rows() -> list[dict]:
    return [
        {"dataset": "toy", "split": "train", "sample_id": image, "ground_truth": truth, "prediction": answer}
        for image, (truth, answers) in ROLLOUTS.items()
        for answer in answers
    ]


def category_of(dataset, truth, prediction):
    return CATEGORIES.get((truth, prediction))


def chance(k: int, n: int = 4) -> float:
    return 1 - (1 - 1 / k) ** n


def test_figures_per_level_counted_by_hand():
    figures = luck_figures(rows(), category_of, TaxonomyJudge(TAXONOMY, close_levels=1))
    assert figures["images"] == 4 and figures["rollouts_per_image"] == 4
    levels = figures["levels"]
    assert list(levels) == ["generic", "group", "fine"]
    assert levels["generic"] == pytest.approx(
        {"nodes": 1, "images": 4, "reached": 3 / 4, "chance": 1.0, "best": 1 / 4, "best_single": 1 / 4}, abs=1e-6
    )
    # group: reached by i1 (a finer rollout) and i2; i2's best is group, reached by two rollouts
    assert levels["group"] == pytest.approx(
        {"nodes": 2, "images": 4, "reached": 2 / 4, "chance": chance(2), "best": 1 / 4, "best_single": 0.0}, abs=1e-6
    )
    assert levels["fine"] == pytest.approx(
        {"nodes": 5, "images": 4, "reached": 1 / 4, "chance": chance(5), "best": 1 / 4, "best_single": 1 / 4}, abs=1e-6
    )


def test_reached_level_rules():
    red = TAXONOMY.classes["Red Finch"]
    assert reached_level(TAXONOMY, red, "red finch", Category.SPECIFIC, 1) == FINE
    assert reached_level(TAXONOMY, red, "a finer one", Category.MORE_SPECIFIC, 1) == FINE  # counts as specific
    assert reached_level(TAXONOMY, red, "finch", Category.LESS_SPECIFIC, 1) == GROUP
    assert reached_level(TAXONOMY, red, "bird", Category.GENERIC, 1) == GENERIC
    # names the taxonomy does not know (LLM verdicts): the coarsest level the verdict guarantees
    assert reached_level(TAXONOMY, red, "small red songbird", Category.LESS_SPECIFIC, 1) == GROUP
    assert reached_level(TAXONOMY, red, "small red songbird", Category.LESS_SPECIFIC, 2) == GENERIC
    assert reached_level(TAXONOMY, red, "animal with feathers", Category.GENERIC, 1) == GENERIC
    for category in (Category.WRONG, Category.ABSTAIN, None):
        assert reached_level(TAXONOMY, red, "blue jay", category, 1) is None
    assert reached_level(TAXONOMY, red, None, None, 1) is None  # a format error


def test_truth_labels_are_read_as_the_judge_reads_them():
    lower = [{**row, "ground_truth": row["ground_truth"].lower()} for row in rows()]
    figures = luck_figures(lower, lambda d, truth, p: category_of(d, truth.title(), p), TaxonomyJudge(TAXONOMY))
    assert figures["levels"]["fine"]["best_single"] == pytest.approx(1 / 4)


def test_unknown_truth_is_an_error_naming_it():
    dodo = {"dataset": "toy", "split": "train", "sample_id": "i5", "ground_truth": "Dodo", "prediction": "bird"}
    bad = [*rows(), dodo]
    with pytest.raises(ValueError, match=r"toy: ground truth 'Dodo' is not a class of its taxonomy"):
        luck_figures(bad, category_of, TaxonomyJudge(TAXONOMY))


def write_table(path, records):
    columns = {name: [record.get(name) for record in records] for name in PREDICTION_SCHEMA.names}
    columns["sample_index"] = [index % 4 for index in range(len(records))]
    columns["format_error"] = [record["prediction"] is None for record in records]
    pq.write_table(pa.table({name: columns[name] for name in PREDICTION_SCHEMA.names}, schema=PREDICTION_SCHEMA), path)


def test_predictions_tables_through_the_judge_cascade(tmp_path):
    """Every table with several rollouts per image, judged by the real cascade (closed world, no LLM);
    a greedy table (one answer per image) and a dataset without a taxonomy are left out."""
    (tmp_path / "harvest").mkdir()
    harvest = tmp_path / "harvest" / "predictions.parquet"
    write_table(harvest, [row for row in rows() if row["prediction"] != "unjudged"])
    (tmp_path / "greedy").mkdir()
    write_table(tmp_path / "greedy" / "predictions.parquet", [row for row in rows() if row["sample_id"] == "i1"][:1])
    (tmp_path / "other").mkdir()
    write_table(tmp_path / "other" / "predictions.parquet", [{**row, "dataset": "untaxed"} for row in rows()[:8]])

    service = JudgeService(open_store(tmp_path / "store"), {"toy": TAXONOMY}, closed_world=["toy"])
    with service:
        tables = (harvest, tmp_path / "other" / "predictions.parquet")
        table = [row for path in tables for row in pq.read_table(path).to_pylist()]
        pairs = [(r["dataset"], r["ground_truth"], r["prediction"]) for r in table if r["prediction"] is not None]
        verdicts = service.resolve(pairs)
        luck = luck_of_predictions(tmp_path, verdicts, service.taxonomy_judge)
        names = service.judge_names()
    assert list(luck) == [str(harvest)]
    figures = luck[str(harvest)]["toy"]["train"]
    # i4 has three rollouts here; the cascade's verdicts agree with CATEGORIES
    assert figures["rollouts_per_image"] == pytest.approx(15 / 4)
    assert figures["levels"]["fine"]["best_single"] == pytest.approx(1 / 4)
    assert figures["levels"]["group"]["best"] == pytest.approx(1 / 4) and figures["levels"]["group"]["best_single"] == 0
    assert figures["levels"]["group"]["chance"] == pytest.approx((3 * chance(2) + chance(2, 3)) / 4)
    judge = service.taxonomy_judge("toy")
    assert names == {"exact": "exact match", judge.judge_id: "taxonomy of toy (closed world, close_levels 1)"}
