"""render_miniworld: prepared layout, sizes, determinism, atomic output."""

import io
from collections import Counter

import pyarrow.parquet as pq
import pytest
from PIL import Image

from speciarl.data import miniworld, prepared
from speciarl.data.miniworld import SPLITS, render_miniworld
from speciarl.data.miniworld_classes import DOMAINS, miniworld_classes
from speciarl.data.miniworld_params import MiniWorldParams
from speciarl.data.taxonomy import Taxonomy


def split_images(root, dataset, split) -> list[bytes]:
    return prepared.read_split(root, dataset, split, columns=["image"]).column("image").to_pylist()


def test_writes_both_domains_with_sizes_from_params(small_world, small_params):
    root, manifests = small_world
    assert sorted(manifests) == sorted(f"{d}/{s}" for d in DOMAINS for s in SPLITS)
    for dataset in DOMAINS:
        taxonomy = Taxonomy.load(prepared.taxonomy_path(root, dataset))
        for split in SPLITS:
            expected = small_params.train_per_domain if split == "train" else small_params.test_per_domain
            table = prepared.read_split(root, dataset, split)
            manifest = prepared.read_manifest(root, dataset, split)
            assert manifest == manifests[f"{dataset}/{split}"]
            assert table.schema.equals(prepared.SAMPLE_SCHEMA)
            assert table.num_rows == manifest["num_samples"] == expected
            rows = table.to_pylist()
            assert [r["sample_id"] for r in rows] == [
                prepared.sample_id(dataset, f"{split}/{i:06d}") for i in range(expected)
            ]
            assert {r["dataset"] for r in rows} == {dataset} and {r["split"] for r in rows} == {split}
            for row in rows:
                assert row["label_path"] == taxonomy.path(row["label"])
            counts = Counter(r["label"] for r in rows)
            assert manifest["classes"] == miniworld_classes(dataset)
            assert manifest["counts"] == {label: counts[label] for label in manifest["classes"]}
            # balanced: every class present, counts differ by at most one
            assert max(manifest["counts"].values()) - min(manifest["counts"].values()) <= 1
            assert manifest["params"] == small_params.model_dump()
            image = Image.open(io.BytesIO(rows[0]["image"]))
            assert (image.format, image.size, image.mode) == ("JPEG", (112, 112), "RGB")


def test_train_and_test_images_differ(small_world):
    root, _ = small_world
    for dataset in DOMAINS:
        assert not set(split_images(root, dataset, "train")) & set(split_images(root, dataset, "test"))


def test_same_seed_is_byte_identical_whatever_the_workers(tmp_path, small_world, small_params):
    root, manifests = small_world
    again = render_miniworld(small_params, tmp_path, workers=2)  # a process pool this time
    for key, manifest in manifests.items():
        assert again[key]["content_hash"] == manifest["content_hash"]
        dataset, split = key.split("/")
        assert split_images(tmp_path, dataset, split) == split_images(root, dataset, split)


def test_another_seed_gives_other_images(tmp_path, small_world, small_params):
    root, manifests = small_world
    other = render_miniworld(small_params.model_copy(update={"seed": 4}), tmp_path, workers=1)
    assert other["miniworld_a/train"]["content_hash"] != manifests["miniworld_a/train"]["content_hash"]
    assert not set(split_images(tmp_path, "miniworld_a", "train")) & set(split_images(root, "miniworld_a", "train"))


def test_image_size_from_params(tmp_path):
    params = MiniWorldParams(image_size=56, train_per_domain=3, test_per_domain=2)
    render_miniworld(params, tmp_path, workers=1)
    (image,) = split_images(tmp_path, "miniworld_b", "test")[:1]
    assert Image.open(io.BytesIO(image)).size == (56, 56)


def test_failure_keeps_the_previous_complete_split(tmp_path, monkeypatch):
    params = MiniWorldParams(train_per_domain=5, test_per_domain=4)
    before = render_miniworld(params, tmp_path, workers=1)
    shard = tmp_path / "miniworld_a" / "train" / "part-00000.parquet"
    old_rows = pq.read_table(shard).num_rows

    def broken(*args):
        raise RuntimeError("renderer crashed")

    monkeypatch.setattr(miniworld, "_render_chunk", broken)
    with pytest.raises(RuntimeError, match="renderer crashed"):
        render_miniworld(params.model_copy(update={"train_per_domain": 9}), tmp_path, workers=1)
    assert prepared.read_manifest(tmp_path, "miniworld_a", "train") == before["miniworld_a/train"]
    assert pq.read_table(shard).num_rows == old_rows
    assert not [p for p in (tmp_path / "miniworld_a").iterdir() if "partial" in p.name]


def test_workers_must_be_positive(tmp_path):
    with pytest.raises(ValueError, match="workers must be at least 1"):
        render_miniworld(MiniWorldParams(), tmp_path, workers=0)
