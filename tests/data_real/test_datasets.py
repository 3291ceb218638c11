"""Each real dataset, from a small copy in its official layout, through `prepare`."""

from __future__ import annotations

import io

import pytest
from PIL import Image

from speciarl.data import prepared
from speciarl.data.prepare import prepare_real
from speciarl.data.real.cars import parse_name
from speciarl.data.real.cub import clean_name
from speciarl.data.taxonomy import Taxonomy

from .layouts import (
    HAS_WORDNET,
    build_aircraft,
    build_cars,
    build_cub,
    build_flowers,
    build_food,
    build_pets,
    coop_split_file,
)


def rows(params, dataset, split):
    return prepared.read_split(params.prepared_dir, dataset, split).to_pylist()


def taxonomy(params, dataset) -> Taxonomy:
    return Taxonomy.load(prepared.taxonomy_path(params.prepared_dir, dataset))


def assert_valid_split(params, dataset, split, expected_count):
    table = rows(params, dataset, split)
    manifest = prepared.read_manifest(params.prepared_dir, dataset, split)
    tax = taxonomy(params, dataset)
    assert len(table) == manifest["num_samples"] == expected_count
    assert manifest["class_counts"] == {label: sum(r["label"] == label for r in table) for label in manifest["classes"]}
    assert len({r["sample_id"] for r in table}) == len(table)
    for row in table:
        assert row["dataset"] == dataset and row["split"] == split
        assert row["image"][:2] == b"\xff\xd8"  # JPEG
        Image.open(io.BytesIO(row["image"])).load()
        assert row["label_path"] == tax.path(row["label"])
        assert row["label_path"][-1] == row["label"]
    return table, manifest


def test_cub_splits_labels_and_avilist_taxonomy(data_params, tmp_path):
    params = data_params("cub", source=str(build_cub(tmp_path)), workers=2)  # the worker-pool path
    manifests = prepare_real("cub", params)
    assert set(manifests) == {"train", "test"}
    train, manifest = assert_valid_split(params, "cub", "train", 8)
    assert_valid_split(params, "cub", "test", 4)
    assert manifest["classes"] == ["Black-footed Albatross", "Imaginary Bird", "Myrtle Warbler", "Sayornis"]
    key = "images/001.Black_footed_Albatross/Black_footed_Albatross_0000_1.jpg"
    assert prepared.sample_id("cub", key) in {r["sample_id"] for r in train}

    tax = taxonomy(params, "cub")
    assert tax.path("Black-footed Albatross") == ["bird", "Procellariiformes", "Diomedeidae", "Phoebastria", "Black-footed Albatross"]
    assert tax.path("Myrtle Warbler") == ["bird", "Passeriformes", "Parulidae", "Setophaga", "Yellow-rumped Warbler", "Myrtle Warbler"]
    # CUB's "Sayornis" is Say's Phoebe: its synonyms sit on the class, not on the genus of the same name
    (leaf,) = [i for i in tax.find("Say's Phoebe")]
    assert leaf == tax.classes["Sayornis"]
    assert tax.find("Sayornis saya") == [leaf]
    assert not tax.nodes["bird/Passeriformes/Tyrannidae/Sayornis"].synonyms
    assert tax.path("Imaginary Bird") == ["bird", "Imaginary Bird"]
    assert any("Imaginary Bird" in w and "AviList" in w for w in manifest["warnings"])


def test_cub_display_names():
    assert clean_name("001.Black_footed_Albatross") == "Black-footed Albatross"
    assert clean_name("159.Black_and_white_Warbler") == "Black-and-white Warbler"
    assert clean_name("187.American_Three_toed_Woodpecker") == "American Three-toed Woodpecker"


def test_cub_every_class_of_the_real_dataset_is_in_avilist():
    from speciarl.data.real.cub import avilist_path

    from .cub_classes import CUB_200_CLASSES

    missing = [name for name in CUB_200_CLASSES if avilist_path(clean_name(name)) is None]
    assert missing == []


def test_cub_from_an_extracted_folder_gives_the_same_samples(data_params, tmp_path):
    archive = data_params("cub", source=str(build_cub(tmp_path / "a")))
    folder = data_params("cub", source=str(build_cub(tmp_path / "b", archive=False)))
    folder.prepared_dir = str(tmp_path / "prepared_b")
    first, second = prepare_real("cub", archive), prepare_real("cub", folder)
    assert first["train"]["content_hash"] == second["train"]["content_hash"]
    assert [r["sample_id"] for r in rows(archive, "cub", "test")] == [r["sample_id"] for r in rows(folder, "cub", "test")]


def test_aircraft_variants_under_family_and_manufacturer(data_params, tmp_path):
    params = data_params("aircraft", source=str(build_aircraft(tmp_path)), splits=["trainval", "test"])
    prepare_real("aircraft", params)
    assert_valid_split(params, "aircraft", "trainval", 6)
    test, manifest = assert_valid_split(params, "aircraft", "test", 3)
    assert manifest["classes"] == ["707-320", "737-800", "A340-300"]
    tax = taxonomy(params, "aircraft")
    assert tax.path("707-320") == ["aircraft", "Boeing", "Boeing 707", "707-320"]
    assert tax.path("A340-300") == ["aircraft", "Airbus", "A340", "A340-300"]
    assert tax.find("Boeing 707-320") == [tax.classes["707-320"]]
    assert tax.find("Airbus A340") == ["aircraft/Airbus/A340"]
    assert {r["sample_id"] for r in test} == {prepared.sample_id("aircraft", f"data/images/{1000003 + 3 * i}.jpg") for i in range(3)}


def test_flowers_official_split_names_and_taxonomy(data_params, tmp_path):
    params = data_params("flowers102", source=str(build_flowers(tmp_path)))
    prepare_real("flowers102", params)
    train, manifest = assert_valid_split(params, "flowers102", "train", 4)
    assert_valid_split(params, "flowers102", "val", 4)
    assert_valid_split(params, "flowers102", "test", 8)
    assert manifest["classes"] == ["bird of paradise", "daffodil", "pink primrose", "rose"]
    assert {r["sample_id"] for r in train} == {prepared.sample_id("flowers102", f"jpg/image_{n:05d}.jpg") for n in (1, 2, 3, 4)}
    tax = taxonomy(params, "flowers102")
    if HAS_WORDNET:
        assert tax.path("daffodil") == ["flower", "bulbous plant", "narcissus", "daffodil"]
        assert "Narcissus pseudonarcissus" in tax.node_of("daffodil").synonyms
        # the plant, not the bird of paradise
        assert "Strelitzia reginae" in tax.node_of("bird of paradise").synonyms
        # flower names are not compositional: no head-noun guess, listed as unmatched
        assert tax.path("pink primrose") == ["flower", "pink primrose"]
    else:
        assert tax.path("daffodil") == ["flower", "daffodil"]
        assert any("WordNet hypernyms skipped" in w for w in manifest["warnings"])


def test_flowers_split_file_replaces_setid(data_params, tmp_path):
    params = data_params("flowers102", source=str(build_flowers(tmp_path)), split_file=str(coop_split_file(tmp_path)))
    manifests = prepare_real("flowers102", params)
    assert {s: m["num_samples"] for s, m in manifests.items()} == {"train": 8, "val": 1, "test": 7}
    assert manifests["train"]["params"]["dataset_params"]["split_file"].endswith("split_zhou_OxfordFlowers.json")


def test_flowers_split_file_with_wrong_labels_is_rejected(data_params, tmp_path):
    bad = tmp_path / "bad_split.json"
    bad.write_text('{"train": [["image_00001.jpg", 5, "x"]], "val": [], "test": []}')
    params = data_params("flowers102", source=str(build_flowers(tmp_path)), split_file=str(bad))
    with pytest.raises(ValueError, match=r"image_00001.jpg has label 5, imagelabels.mat says 0"):
        prepare_real("flowers102", params)


def test_food_names_and_wordnet_hypernyms(data_params, tmp_path):
    params = data_params("food101", source=str(build_food(tmp_path)))
    prepare_real("food101", params)
    _, manifest = assert_valid_split(params, "food101", "train", 6)
    assert_valid_split(params, "food101", "test", 3)
    assert manifest["classes"] == ["apple pie", "chicken curry", "ramen"]
    tax = taxonomy(params, "food101")
    assert tax.path("ramen") == ["food", "ramen"]  # not in WordNet 3.0 either way
    if HAS_WORDNET:
        assert tax.path("apple pie") == ["food", "baked goods", "pastry", "pie", "apple pie"]
        assert tax.path("chicken curry") == ["food", "dish", "curry", "chicken curry"]  # under its head noun
        assert any("chicken curry -> curry" in w for w in manifest["warnings"])
    else:
        assert tax.path("apple pie") == ["food", "apple pie"]


def test_food_without_wordnet_is_generic_over_class(data_params, tmp_path):
    params = data_params("food101", source=str(build_food(tmp_path)), wordnet_dir=None)
    manifests = prepare_real("food101", params)
    assert taxonomy(params, "food101").path("apple pie") == ["food", "apple pie"]
    assert any("WordNet hypernyms skipped" in w for w in manifests["test"]["warnings"])


def test_pets_species_level_and_png_reencoded(data_params, tmp_path):
    params = data_params("pets", source=str(build_pets(tmp_path)))
    prepare_real("pets", params)
    trainval, manifest = assert_valid_split(params, "pets", "trainval", 8)
    assert_valid_split(params, "pets", "test", 4)
    assert manifest["classes"] == ["Abyssinian", "American Bulldog", "Bengal", "German Shorthaired"]
    tax = taxonomy(params, "pets")
    assert tax.path("Bengal") == ["pet", "cat", "Bengal"]
    assert tax.path("American Bulldog") == ["pet", "dog", "American Bulldog"]
    assert tax.find("German Shorthaired Pointer") == [tax.classes["German Shorthaired"]]
    assert tax.find("domestic dog") == ["pet/dog"]
    png = next(r for r in trainval if r["sample_id"] == prepared.sample_id("pets", "images/Bengal_1.jpg"))
    assert Image.open(io.BytesIO(png["image"])).format == "JPEG"


def test_cars_from_a_local_hf_folder(data_params, tmp_path):
    params = data_params("cars", source=str(build_cars(tmp_path)))
    prepare_real("cars", params)
    _, manifest = assert_valid_split(params, "cars", "train", 8)
    assert_valid_split(params, "cars", "test", 4)
    assert manifest["num_classes"] == 4
    tax = taxonomy(params, "cars")
    assert tax.path("AM General Hummer SUV 2000") == ["car", "AM General", "AM General Hummer SUV", "AM General Hummer SUV 2000"]
    assert tax.path("Tesla Model S Sedan 2012") == ["car", "Tesla", "Tesla Model S Sedan", "Tesla Model S Sedan 2012"]
    assert tax.find("2012 Tesla Model S Sedan") == [tax.classes["Tesla Model S Sedan 2012"]]


def test_car_name_parsing():
    assert parse_name("AM General Hummer SUV 2000") == ("AM General", "Hummer SUV", "2000")
    assert parse_name("Land Rover Range Rover SUV 2012") == ("Land Rover", "Range Rover SUV", "2012")
    assert parse_name("Mercedes-Benz C-Class Sedan 2012") == ("Mercedes-Benz", "C-Class Sedan", "2012")
    assert parse_name("Ram C/V Cargo Van Minivan 2012") == ("Ram", "C/V Cargo Van Minivan", "2012")


def test_subset_is_deterministic_and_nested(data_params, tmp_path):
    source = str(build_cub(tmp_path, per_class=5))  # 16 train images

    def ids(size, seed, name):
        params = data_params("cub", source=source, splits=["train"], subset={"train": {"size": size, "seed": seed}})
        params.prepared_dir = str(tmp_path / name)
        manifest = prepare_real("cub", params)["train"]
        assert manifest["num_samples"] == size and manifest["num_candidates"] == 16
        return {r["sample_id"] for r in rows(params, "cub", "train")}

    first, again = ids(5, 0, "a"), ids(5, 0, "b")
    assert first == again
    assert first <= ids(9, 0, "c")  # a larger subset only adds samples
    assert ids(5, 1, "d") != first


def test_a_second_run_keeps_prepared_splits_and_force_redoes_them(data_params, tmp_path):
    params = data_params("pets", source=str(build_pets(tmp_path)))
    prepare_real("pets", params)
    manifest = prepared.split_dir(params.prepared_dir, "pets", "test") / prepared.MANIFEST
    before = manifest.stat().st_mtime_ns
    prepare_real("pets", params)
    assert manifest.stat().st_mtime_ns == before
    prepare_real("pets", params, force=True)
    assert manifest.stat().st_mtime_ns != before
