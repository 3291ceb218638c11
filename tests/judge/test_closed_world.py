"""Closed-world taxonomies: text that names no node is wrong instead of undecided."""

from speciarl.data.miniworld import miniworld_taxonomy
from speciarl.judge.taxonomy_judge import TaxonomyJudge
from speciarl.labels import Category


def test_closed_world_decides_what_an_open_taxonomy_leaves_to_the_llm():
    taxonomy = miniworld_taxonomy("miniworld_a")
    truth = next(label for label in taxonomy.classes if "warbler" in label)
    open_judge, closed_judge = TaxonomyJudge(taxonomy), TaxonomyJudge(taxonomy, closed=True)
    for malformed in ("yellow>scarlet parrot", "songbird with a crown", "b1rd"):
        assert open_judge.judge(truth, malformed) is None
        assert closed_judge.judge(truth, malformed) is Category.WRONG
    # Everything the taxonomy decides is decided the same way.
    assert closed_judge.judge(truth, truth) is Category.SPECIFIC
    assert closed_judge.judge(truth, "warbler") is Category.LESS_SPECIFIC
    assert closed_judge.judge(truth, "i don't know") is Category.ABSTAIN
    assert open_judge.judge_id != closed_judge.judge_id
