"""The shared data contracts: taxonomy files and prepared splits."""

import json

import pytest

from speciarl.data import prepared
from speciarl.data.taxonomy import Taxonomy

LEVELS = ["order", "family", "genus", "species"]
PATHS = {
    "Golden-winged Warbler": [
        ("order", "Passeriformes"),
        ("family", "Parulidae"),
        ("genus", "Vermivora"),
        ("species", "Golden-winged Warbler"),
    ],
    "Blue-winged Warbler": [
        ("order", "Passeriformes"),
        ("family", "Parulidae"),
        ("genus", "Vermivora"),
        ("species", "Blue-winged Warbler"),
    ],
    "Laysan Albatross": [
        ("order", "Procellariiformes"),
        ("family", "Diomedeidae"),
        ("genus", "Phoebastria"),
        ("species", "Laysan Albatross"),
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
    assert (
        prepared.sample_id("cub", "a.jpg") == prepared.sample_id("cub", "a.jpg") != prepared.sample_id("cub", "b.jpg")
    )


def two_shard_split(root) -> dict:
    with prepared.SplitWriter(root, "cub", "test", shard_rows=3) as writer:
        for i in range(6):
            writer.add(row(i))
        return writer.commit({})


def read_all(root) -> None:
    """Both readers, to the end."""
    prepared.read_split(root, "cub", "test", columns=["sample_id"])
    list(prepared.iter_split(root, "cub", "test"))


def test_a_split_that_no_longer_matches_its_manifest_is_refused(tmp_path):
    two_shard_split(tmp_path)
    folder = prepared.split_dir(tmp_path, "cub", "test")
    first, second = folder / "part-00000.parquet", folder / "part-00001.parquet"
    original = second.read_bytes()
    read_all(tmp_path)

    second.unlink()  # half the split gone
    readers = (
        lambda: prepared.read_split(tmp_path, "cub", "test"),
        lambda: list(prepared.iter_split(tmp_path, "cub", "test")),
    )
    for read in readers:
        with pytest.raises(
            ValueError, match=r"cub/test .*does not match its manifest: shard part-00001\.parquet is missing"
        ):
            read()

    second.write_bytes(original)
    (folder / "part-00002.parquet").write_bytes(first.read_bytes())  # a stray extra shard: duplicate sample ids
    with pytest.raises(ValueError, match=r"stray shard part-00002\.parquet is not in the manifest"):
        read_all(tmp_path)
    (folder / "part-00002.parquet").unlink()

    second.write_bytes(first.read_bytes())  # same shape, other content
    with pytest.raises(ValueError, match=r"does not match its manifest: the content hash differs"):
        read_all(tmp_path)

    second.write_bytes(original[: len(original) // 2])  # truncated
    with pytest.raises(ValueError, match=r"part-00001\.parquet: unreadable shard of cub/test"):
        read_all(tmp_path)

    second.write_bytes(original)
    read_all(tmp_path)


def test_a_corrupt_manifest_names_its_file(tmp_path):
    two_shard_split(tmp_path)
    manifest = prepared.split_dir(tmp_path, "cub", "test") / prepared.MANIFEST
    text = manifest.read_text()
    manifest.write_text(text[: len(text) // 2])
    with pytest.raises(ValueError, match=rf"{manifest}: corrupt manifest, not valid JSON"):
        prepared.read_manifest(tmp_path, "cub", "test")
    manifest.write_text(json.dumps({"dataset": "cub"}))
    with pytest.raises(
        ValueError, match=rf"{manifest}: corrupt manifest, num_samples, num_shards, content_hash missing"
    ):
        prepared.read_split(tmp_path, "cub", "test")
