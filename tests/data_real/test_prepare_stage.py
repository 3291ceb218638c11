"""`prepare_datasets`: several datasets in one run, the mini world dispatch, WordNet's reader folder."""

from __future__ import annotations

import io
import sys
import types

import pytest
from rich.console import Console

from speciarl.data import prepared
from speciarl.data.prepare import prepare_datasets
from speciarl.data.wordnet import LEXNAMES, _below_anchor, open_wordnet

from .layouts import HAS_WORDNET, WORDNET_DIR, build_food, build_pets


def test_prepares_each_listed_dataset_with_progress_and_warnings(data_params, tmp_path):
    params = data_params("pets", source=str(build_pets(tmp_path / "pets")), wordnet_dir=None)
    params.datasets = ["pets", "food101"]
    params.food101.source = str(build_food(tmp_path / "food"))
    console = Console(record=True, width=200)
    results = prepare_datasets(params, console=console)
    assert {d: sorted(m) for d, m in results.items()} == {"pets": ["test", "trainval"], "food101": ["test", "train"]}
    assert prepared.read_manifest(params.prepared_dir, "food101", "test")["num_samples"] == 3
    output = console.export_text()
    assert "pets/trainval" in output and "food101/train" in output
    assert "warning: food101: WordNet hypernyms skipped" in output


def test_miniworld_is_rendered_by_its_module(data_params, tmp_path, monkeypatch):
    calls = []

    def render_miniworld(params, prepared_dir, workers=None):
        calls.append((params, prepared_dir, workers))
        return {"miniworld_a/train": {"num_samples": 1}, "miniworld_b/test": {"num_samples": 2}}

    monkeypatch.setitem(
        sys.modules, "speciarl.data.miniworld", types.SimpleNamespace(render_miniworld=render_miniworld)
    )
    params = data_params("cub")
    params.datasets = ["miniworld"]
    results = prepare_datasets(params, console=Console(file=io.StringIO()))
    assert calls == [(params.miniworld, params.prepared_dir, params.workers)]
    assert results == {"miniworld_a": {"train": {"num_samples": 1}}, "miniworld_b": {"test": {"num_samples": 2}}}


def test_wordnet_absent_is_a_reason_not_an_error(tmp_path):
    assert open_wordnet(None, str(tmp_path)) == (None, "no WordNet folder configured (data.wordnet_dir is null)")
    reader, reason = open_wordnet(str(tmp_path / "nowhere"), str(tmp_path))
    assert reader is None and "missing data.noun" in reason


@pytest.mark.skipif(not HAS_WORDNET, reason="needs a WordNet database (Debian package wordnet-base)")
def test_wordnet_reader_folder_has_lexnames_and_sense_index(cache_dir):
    reader, reason = open_wordnet(str(WORDNET_DIR), str(cache_dir))
    assert reason is None
    (folder,) = [p for p in cache_dir.glob("wordnet-*") if (p / "lexnames").exists()]
    lines = (folder / "lexnames").read_text().splitlines()
    assert len(lines) == len(LEXNAMES) == 45
    assert lines[13] == "13\tnoun.food\t1" and lines[20] == "20\tnoun.plant\t1"
    assert (folder / "index.sense").read_text() == ""
    assert reader.synset("daffodil.n.01").lexname() == "noun.plant"


class FakeSynset:
    """Just what `_below_anchor` reads of an nltk synset."""

    def __init__(self, name: str, paths: list[list[FakeSynset]] | None = None):
        self._name, self._paths = name, paths or []

    def name(self) -> str:
        return self._name

    def hypernym_paths(self) -> list[list[FakeSynset]]:
        return self._paths


def test_wordnet_chain_does_not_depend_on_nltk_path_order():
    # frozen yogurt has two hypernyms; nltk lists their paths in an order that varies between runs
    food, course, dessert, frozen, yogurt = (
        FakeSynset(name) for name in ("food.n.01", "course.n.07", "dessert.n.01", "frozen_dessert.n.01", "yogurt.n.01")
    )

    def chain(*paths) -> list[str]:
        leaf = FakeSynset("leaf.n.01", [path + [None] for path in paths])  # a path ends with the synset itself
        return [synset.name() for synset in _below_anchor(leaf, {"food.n.01"})]

    short, long = [food, yogurt], [food, course, dessert, frozen]
    assert chain(short, long) == chain(long, short) == ["course.n.07", "dessert.n.01", "frozen_dessert.n.01"]
    # equally long: the alphabetically first
    b, a = [food, FakeSynset("b.n.01")], [food, FakeSynset("a.n.01")]
    assert chain(b, a) == chain(a, b) == ["a.n.01"]
