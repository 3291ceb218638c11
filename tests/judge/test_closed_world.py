"""Closed-world taxonomies: text that names no node is wrong instead of undecided."""

import json

from speciarl import cli
from speciarl.data.miniworld import miniworld_taxonomy
from speciarl.judge.cascade import EXACT_JUDGE
from speciarl.judge.store import VerdictStore, verdict_key
from speciarl.judge.taxonomy_judge import TaxonomyJudge
from speciarl.labels import Category, normalize


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


def test_judge_cli_closed_world_needs_no_llm(tmp_path, capsys):
    taxonomy = miniworld_taxonomy("miniworld_a")
    taxonomy.save(tmp_path / "taxonomy.json")
    truth = next(label for label in taxonomy.classes if "warbler" in label)
    answers = {
        truth: Category.SPECIFIC,
        "warbler": Category.LESS_SPECIFIC,
        "b1rd": Category.WRONG,
        "songbird with a crown": Category.WRONG,
    }
    pairs = tmp_path / "pairs.jsonl"
    pairs.write_text("".join(json.dumps({"ground_truth": truth, "prediction": answer}) + "\n" for answer in answers))
    args = ["judge", "--pairs", str(pairs), "--taxonomy", str(tmp_path / "taxonomy.json")]

    # An open taxonomy leaves the malformed answers to an LLM, and there is none.
    assert cli.main([*args, "--store", str(tmp_path / "open")]) == 1
    assert "2 of 4 unique pairs have no verdict" in capsys.readouterr().err

    assert cli.main([*args, "--store", str(tmp_path / "closed"), "--closed-world"]) == 0
    stats = json.loads(capsys.readouterr().out)
    assert (stats["undecided"], stats["llm_calls"], stats["exact"] + stats["taxonomy"]) == (0, 0, 4)
    closed_judge = TaxonomyJudge(taxonomy, closed=True).judge_id
    expected = {
        verdict_key(normalize(truth), normalize(answer), EXACT_JUDGE if answer == truth else closed_judge): category
        for answer, category in answers.items()
    }
    stored = VerdictStore(tmp_path / "closed").get_many(list(expected))
    assert {key: verdict.category for key, verdict in stored.items()} == expected


def test_judge_cli_closed_world_without_a_taxonomy_is_one_line(tmp_path, capsys):
    pairs = tmp_path / "pairs.jsonl"
    pairs.write_text(json.dumps({"ground_truth": "robin", "prediction": "b1rd"}) + "\n")
    assert cli.main(["judge", "--pairs", str(pairs), "--store", str(tmp_path / "s"), "--closed-world"]) == 2
    error = "speciarl judge: error: --closed-world needs the world's taxonomy (--taxonomy FILE)\n"
    assert capsys.readouterr().err == error
    assert not (tmp_path / "s").exists()
