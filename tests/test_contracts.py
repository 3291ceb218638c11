"""The shared data contracts: taxonomy files and prepared splits."""

import json

import pytest

from speciarl.data import prepared
from speciarl.data.taxonomy import Taxonomy

LEVELS = ["order", "family", "genus", "species"]
PATHS = {
    "Golden-winged Warbler": [
        ("order", "Passeriformes"), ("family", "Parulidae"), ("genus", "Vermivora"), ("species", "Golden-winged Warbler"),
    ],
    "Blue-winged Warbler": [
        ("order", "Passeriformes"), ("family", "Parulidae"), ("genus", "Vermivora"), ("species", "Blue-winged Warbler"),
    ],
    "Laysan Albatross": [
        ("order", "Procellariiformes"), ("family", "Diomedeidae"), ("genus", "Phoebastria"), ("species", "Laysan Albatross"),
    ],
}


def make_taxonomy() -> Taxonomy:
    return Taxonomy.from_paths("cub", LEVELS, PATHS, synonyms={"Golden-winged Warbler": ["Vermivora chrysoptera"]})


def test_taxonomy_round_trip_and_queries(tmp_path):
    taxonomy = make_taxonomy()
    taxonomy.save(tmp_path / "taxonomy.json")
    loaded = Taxonomy.load(tmp_path / "taxonomy.json")
    assert loaded.to_json() == taxonomy.to_json()
    assert loaded.path("Golden-winged Warbler") == ["Passeriformes", "Parulidae", "Vermivora", "Golden-winged Warbler"]
    (node_id,) = loaded.find("vermivora  CHRYSOPTERA")
    assert loaded.nodes[node_id].name == "Golden-winged Warbler"
    assert [n.name for n in loaded.children("Passeriformes/Parulidae")] == ["Vermivora"]
    assert loaded.depth(loaded.classes["Laysan Albatross"]) == 3


def test_taxonomy_rejects_dangling_references(tmp_path):
    raw = make_taxonomy().to_json()
    raw["classes"]["Ghost"] = "nowhere"
    (tmp_path / "t.json").write_text(json.dumps(raw))
    with pytest.raises(ValueError, match="class 'Ghost' points to unknown node 'nowhere'"):
        Taxonomy.load(tmp_path / "t.json")


def row(i: int) -> dict:
    return {
        "sample_id": prepared.sample_id("cub", f"img/{i}.jpg"),
        "dataset": "cub",
        "split": "train",
        "image": b"\xff\xd8jpeg%d" % i,
        "label": "Laysan Albatross",
        "label_path": [name for _, name in PATHS["Laysan Albatross"]],
    }


def test_split_writer_is_atomic_and_readable(tmp_path):
    with prepared.SplitWriter(tmp_path, "cub", "train", shard_rows=2) as writer:
        for i in range(5):
            writer.add(row(i))
        manifest = writer.commit({"classes": ["Laysan Albatross"]})
    assert manifest["num_samples"] == 5 and manifest["num_shards"] == 3
    table = prepared.read_split(tmp_path, "cub", "train")
    assert table.num_rows == 5 and table.schema == prepared.SAMPLE_SCHEMA
    assert sum(len(b) for b in prepared.iter_split(tmp_path, "cub", "train", batch_size=2)) == 5

    # A failure while rewriting leaves the previous complete split in place and no partial folder.
    with pytest.raises(RuntimeError):
        with prepared.SplitWriter(tmp_path, "cub", "train") as writer:
            writer.add(row(9))
            raise RuntimeError("crash")
    assert prepared.read_manifest(tmp_path, "cub", "train")["content_hash"] == manifest["content_hash"]
    assert [p.name for p in (tmp_path / "cub").iterdir()] == ["train"]


def test_incomplete_split_is_not_readable(tmp_path):
    (tmp_path / "cub" / "test").mkdir(parents=True)
    with pytest.raises(FileNotFoundError, match="cub/test is missing or incomplete"):
        prepared.read_split(tmp_path, "cub", "test")


def test_sample_ids_are_stable():
    assert prepared.sample_id("cub", "a.jpg") == prepared.sample_id("cub", "a.jpg") != prepared.sample_id("cub", "b.jpg")
