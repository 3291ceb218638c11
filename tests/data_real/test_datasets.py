"""Each real dataset, from a small copy in its official layout, through `prepare`."""

from __future__ import annotations

import io
import re
from pathlib import Path

import pytest
from PIL import Image

from speciarl.data import prepared
from speciarl.data.prepare import prepare_real
from speciarl.data.real import base, flowers102, food101
from speciarl.data.real.base import LoadContext, read_curated_groups, wordnet_taxonomy
from speciarl.data.real.cars import parse_name
from speciarl.data.real.cub import avilist_path, clean_name
from speciarl.data.taxonomy import Taxonomy
from speciarl.labels import normalize

from .cars_classes import CARS_196_CLASSES
from .cub_classes import CUB_200_CLASSES
from .food101_classes import FOOD_101_CLASSES
from .layouts import (
    CARS,
    CARS_SHARDS,
    CUB_IMAGE_MODES,
    FIRST_AIRCRAFT_ID,
    HAS_WORDNET,
    WORDNET_DIR,
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


def image_of(table, dataset, key) -> Image.Image:
    (row,) = [r for r in table if r["sample_id"] == prepared.sample_id(dataset, key)]
    return Image.open(io.BytesIO(row["image"]))


def test_cub_splits_labels_and_avilist_taxonomy(data_params, tmp_path):
    params = data_params("cub", source=str(build_cub(tmp_path)), workers=2)  # the worker-pool path
    manifests = prepare_real("cub", params)
    assert set(manifests) == {"train", "test"}
    train, manifest = assert_valid_split(params, "cub", "train", 8)
    assert_valid_split(params, "cub", "test", 4)
    assert manifest["classes"] == ["Black-footed Albatross", "Imaginary Bird", "Myrtle Warbler", "Say's Phoebe"]
    key = "images/001.Black_footed_Albatross/Black_footed_Albatross_0000_1.jpg"
    assert prepared.sample_id("cub", key) in {r["sample_id"] for r in train}
    # greyscale JPEGs are kept as they are; CMYK ones become RGB; the "._*" files are never read
    grey, cmyk = (CUB_IMAGE_MODES[2], 2), (CUB_IMAGE_MODES[5], 5)
    assert (
        grey[0] == "L"
        and image_of(train, "cub", "images/001.Black_footed_Albatross/Black_footed_Albatross_0001_2.jpg").mode == "L"
    )
    assert cmyk[0] == "CMYK" and image_of(train, "cub", "images/103.Sayornis/Sayornis_0001_5.jpg").mode == "RGB"
    assert manifest["num_corrupt"] == 0

    tax = taxonomy(params, "cub")
    assert tax.path("Black-footed Albatross") == [
        "bird",
        "Procellariiformes",
        "Diomedeidae",
        "Phoebastria",
        "Black-footed Albatross",
    ]
    assert tax.path("Myrtle Warbler") == [
        "bird",
        "Passeriformes",
        "Parulidae",
        "Setophaga",
        "Yellow-rumped Warbler",
        "Myrtle Warbler",
    ]
    # CUB's "Sayornis" is Say's Phoebe: the class carries AviList's name and the scientific one,
    # while "Sayornis" stays the genus's name (an answer naming the genus is less specific)
    leaf = tax.classes["Say's Phoebe"]
    assert tax.path("Say's Phoebe") == ["bird", "Passeriformes", "Tyrannidae", "Sayornis", "Say's Phoebe"]
    assert tax.find("Sayornis saya") == [leaf]
    assert tax.find("Sayornis") == ["bird/Passeriformes/Tyrannidae/Sayornis"]
    assert tax.path("Imaginary Bird") == ["bird", "Imaginary Bird"]
    assert any("Imaginary Bird" in w and "AviList" in w for w in manifest["warnings"])


def test_cub_names_spelled_out_from_folders():
    assert clean_name("001.Black_footed_Albatross") == "Black-footed Albatross"
    assert clean_name("159.Black_and_white_Warbler") == "Black-and-white Warbler"
    assert clean_name("187.American_Three_toed_Woodpecker") == "American Three-toed Woodpecker"
    assert clean_name("022.Chuck_will_Widow") == "Chuck-will Widow"


def test_cub_every_class_of_the_real_dataset_gets_its_avilist_name():
    matches = {clean_name(folder): avilist_path(clean_name(folder)) for folder in CUB_200_CLASSES}
    assert [name for name, match in matches.items() if match is None] == []
    display = {name: match.display for name, match in matches.items()}
    assert len(set(display.values())) == 200
    assert display["Chuck-will Widow"] == "Chuck-will's-widow"
    assert display["Whip-poor Will"] == "Eastern Whip-poor-will"
    assert display["Brewer Blackbird"] == "Brewer's Blackbird"
    assert display["Forsters Tern"] == "Forster's Tern"
    assert display["Geococcyx"] == "Greater Roadrunner"
    assert display["Myrtle Warbler"] == "Myrtle Warbler"  # a subspecies group: AviList names species only
    # the mechanical form stays a name of the class, except where it is the genus's own name
    leaf = matches["Chuck-will Widow"]
    assert leaf.synonyms[f"{'/'.join(n for _, n in leaf.path)}"] == ["Chuck-will Widow", "Antrostomus carolinensis"]
    roadrunner = matches["Geococcyx"]
    assert roadrunner.synonyms[f"{'/'.join(n for _, n in roadrunner.path)}"] == ["Geococcyx californianus"]


def test_cub_from_an_extracted_folder_gives_the_same_samples(data_params, tmp_path):
    archive = data_params("cub", source=str(build_cub(tmp_path / "a")))
    folder = data_params("cub", source=str(build_cub(tmp_path / "b", archive=False)))
    folder.prepared_dir = str(tmp_path / "prepared_b")
    first, second = prepare_real("cub", archive), prepare_real("cub", folder)
    assert first["train"]["content_hash"] == second["train"]["content_hash"]
    assert [r["sample_id"] for r in rows(archive, "cub", "test")] == [
        r["sample_id"] for r in rows(folder, "cub", "test")
    ]


def test_aircraft_variants_under_family_and_manufacturer(data_params, tmp_path):
    params = data_params("aircraft", source=str(build_aircraft(tmp_path)), splits=["trainval", "test"])
    prepare_real("aircraft", params)
    assert_valid_split(params, "aircraft", "trainval", 10)
    test, manifest = assert_valid_split(params, "aircraft", "test", 5)
    assert manifest["classes"] == ["707-320", "737-800", "A340-300", "Cessna 172", "F/A-18"]
    tax = taxonomy(params, "aircraft")
    assert tax.path("707-320") == ["aircraft", "Boeing", "Boeing 707", "707-320"]
    assert tax.path("A340-300") == ["aircraft", "Airbus", "A340", "A340-300"]
    assert tax.find("Boeing 707-320") == [tax.classes["707-320"]]
    assert tax.find("Airbus A340") == ["aircraft/Airbus/A340"]
    # "/" and spaces inside names, and a variant named like its family
    assert tax.path("F/A-18") == ["aircraft", "McDonnell Douglas", "F/A-18", "F/A-18"]
    assert tax.path("Cessna 172") == ["aircraft", "Cessna", "Cessna 172", "Cessna 172"]
    # the family and its variant share the name, so the maker-prefixed name names both
    assert tax.find("McDonnell Douglas F/A-18") == ["aircraft/McDonnell Douglas/F/A-18", tax.classes["F/A-18"]]
    # image ids keep their leading zeros ("0034311.jpg", not "34311.jpg")
    test_ids = [f"{FIRST_AIRCRAFT_ID + 2 + 3 * i:07d}" for i in range(5)]
    assert test_ids[0] == "0034311"
    assert {r["sample_id"] for r in test} == {prepared.sample_id("aircraft", f"data/images/{i}.jpg") for i in test_ids}


def test_flowers_official_split_names_and_taxonomy(data_params, tmp_path):
    params = data_params("flowers102", source=str(build_flowers(tmp_path)))
    prepare_real("flowers102", params)
    train, manifest = assert_valid_split(params, "flowers102", "train", 4)
    assert_valid_split(params, "flowers102", "val", 4)
    assert_valid_split(params, "flowers102", "test", 8)
    assert manifest["classes"] == ["bird of paradise", "daffodil", "pink primrose", "rose"]
    assert {r["sample_id"] for r in train} == {
        prepared.sample_id("flowers102", f"jpg/image_{n:05d}.jpg") for n in (1, 2, 3, 4)
    }
    tax = taxonomy(params, "flowers102")
    # the curated table places classes WordNet lacks or gets wrong, with or without WordNet
    assert tax.path("pink primrose") == ["flower", "Onagraceae", "Oenothera", "pink primrose"]
    assert tax.path("bird of paradise") == ["flower", "Strelitziaceae", "Strelitzia", "bird of paradise"]
    assert "Strelitzia reginae" in tax.node_of("bird of paradise").synonyms
    assert tax.path("rose") == ["flower", "Rosaceae", "Rosa", "rose"]
    assert tax.find("rose family") == ["flower/Rosaceae"]
    assert any("classes placed by the curated table flowers102_groups.txt" in w for w in manifest["warnings"])
    if HAS_WORDNET:
        assert tax.path("daffodil") == ["flower", "bulbous plant", "narcissus", "daffodil"]
        assert "Narcissus pseudonarcissus" in tax.node_of("daffodil").synonyms
        assert any("classes placed by WordNet hypernyms" in w and "daffodil" in w for w in manifest["warnings"])
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
    assert tax.path("ramen") == ["food", "dish", "soup", "noodle soup", "ramen"]  # not in WordNet 3.0: curated
    assert any("classes placed by the curated table food101_groups.txt: ramen" in w for w in manifest["warnings"])
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
    assert taxonomy(params, "food101").path("ramen") == ["food", "dish", "soup", "noodle soup", "ramen"]
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
    assert image_of(trainval, "pets", "images/Bengal_1.jpg").format == "JPEG"  # a PNG named .jpg, re-encoded
    cmyk = image_of(trainval, "pets", "images/Abyssinian_2.jpg")
    assert (cmyk.format, cmyk.mode) == ("JPEG", "RGB")


def test_cars_from_a_local_hf_folder(data_params, tmp_path):
    # the folder also lists a "contrast" split whose shard is unreadable: it is never prepared
    params = data_params("cars", source=str(build_cars(tmp_path)))
    prepare_real("cars", params)
    _, manifest = assert_valid_split(params, "cars", "train", len(CARS) * CARS_SHARDS["train"])
    assert_valid_split(params, "cars", "test", len(CARS) * CARS_SHARDS["test"])
    assert manifest["num_classes"] == len(CARS)
    tax = taxonomy(params, "cars")
    # every one of the 196 names: car > make > model > year
    assert sorted(tax.classes) == sorted(CARS_196_CLASSES)
    assert all(len(tax.path(name)) == 4 for name in CARS_196_CLASSES)
    levels = {level: sum(node.level == level for node in tax.nodes.values()) for level in tax.levels}
    assert levels == {"generic": 1, "make": 49, "model": 189, "year": 196}
    assert tax.path("Ram C/V Cargo Van Minivan 2012") == [
        "car",
        "Ram",
        "Ram C/V Cargo Van Minivan",
        "Ram C/V Cargo Van Minivan 2012",
    ]
    assert tax.path("AM General Hummer SUV 2000") == [
        "car",
        "AM General",
        "AM General Hummer SUV",
        "AM General Hummer SUV 2000",
    ]
    assert tax.path("Tesla Model S Sedan 2012") == ["car", "Tesla", "Tesla Model S Sedan", "Tesla Model S Sedan 2012"]
    assert tax.find("2012 Tesla Model S Sedan") == [tax.classes["Tesla Model S Sedan 2012"]]


def test_cars_prepares_only_the_configured_splits(data_params, tmp_path):
    params = data_params("cars", source=str(build_cars(tmp_path)), splits=["test"])
    params.cache_dir = str(tmp_path / "own_cache")  # the shared cache holds other tests' splits
    assert set(prepare_real("cars", params)) == {"test"}
    cached = {p.name for p in Path(params.cache_dir, "huggingface").rglob("*.arrow")}
    assert cached and not any("train" in name or "contrast" in name for name in cached)


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


# Taxonomies of the full class lists ---------------------------------------------------------------

FULL_LISTS = {
    "flowers102": flowers102.class_names,
    "food101": lambda: [food101.clean_name(folder) for folder in FOOD_101_CLASSES],
}


def full_taxonomy(dataset: str, cache_dir, wordnet_dir) -> tuple[Taxonomy, list[str]]:
    ctx = LoadContext(cache_dir, wordnet_dir)
    names = FULL_LISTS[dataset]()
    if dataset == "flowers102":
        return wordnet_taxonomy(
            dataset,
            names,
            flowers102.ROOT,
            flowers102.ROOT_SYNONYMS,
            "noun.plant",
            flowers102.ANCHORS,
            False,
            ctx,
            flowers102.SENSES,
        )
    return wordnet_taxonomy(
        dataset, names, food101.ROOT, food101.ROOT_SYNONYMS, "noun.food", food101.ANCHORS, True, ctx
    )


@pytest.mark.parametrize("dataset", ["flowers102", "food101"])
def test_every_curated_row_names_a_class_and_no_group_repeats_a_class_name(dataset):
    table = read_curated_groups(Path(base.__file__).with_name(f"{dataset}_groups.txt"))
    names = FULL_LISTS[dataset]()
    assert [name for name in table if name not in names] == []
    class_names = {normalize(n) for name in table for n in (name, *table[name].synonyms)} | {
        normalize(n) for n in names
    }
    group_names = {normalize(n) for row in table.values() for group, synonyms in row.groups for n in (group, *synonyms)}
    assert group_names & class_names == set()


@pytest.mark.skipif(not HAS_WORDNET, reason="needs a WordNet database (Debian package wordnet-base)")
@pytest.mark.parametrize(("dataset", "wordnet", "curated"), [("flowers102", 26, 76), ("food101", 57, 44)])
def test_every_class_of_the_full_list_sits_under_an_intermediate_node(dataset, wordnet, curated, cache_dir):
    tax, warnings = full_taxonomy(dataset, cache_dir, str(WORDNET_DIR))
    names = FULL_LISTS[dataset]()
    assert [name for name in names if len(tax.path(name)) < 3] == []
    # "dish" is also a name of the root: on its own it is no intermediate kind
    assert [name for name in names if tax.path(name)[1:-1] == ["dish"]] == []
    placed = dict(re.findall(r"(\d+) classes placed by (WordNet|the curated table)", " ".join(warnings)))
    assert placed == {str(wordnet): "WordNet", str(curated): "the curated table"}
    assert not any("directly under" in w for w in warnings)


def test_without_wordnet_only_the_curated_classes_have_groups(cache_dir):
    tax, warnings = full_taxonomy("flowers102", cache_dir, None)
    grouped = [name for name in FULL_LISTS["flowers102"]() if len(tax.path(name)) > 2]
    assert len(grouped) == 76 and "daffodil" not in grouped
    assert any("WordNet hypernyms skipped" in w for w in warnings)
