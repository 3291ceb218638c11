"""The world itself: taxonomies, disjoint domains, a measurable spectrum of difficulty, params."""

import io
from pathlib import Path

import numpy as np
import pytest
import yaml
from PIL import Image

from speciarl.config import ParamsError, load_section
from speciarl.data import prepared
from speciarl.data.miniworld_classes import (
    DIFFICULTIES,
    DOMAINS,
    LEVELS,
    class_look,
    miniworld_domain,
    miniworld_groups,
    miniworld_taxonomy,
)
from speciarl.data.miniworld_draw import render_image
from speciarl.data.miniworld_params import MiniWorldParams
from speciarl.data.taxonomy import Taxonomy
from speciarl.labels import normalize


@pytest.mark.parametrize("dataset", DOMAINS)
def test_taxonomy_has_three_levels_and_a_path_for_every_class(dataset, small_world):
    root, manifests = small_world
    taxonomy = miniworld_taxonomy(dataset)
    assert Taxonomy.load(prepared.taxonomy_path(root, dataset)).to_json() == taxonomy.to_json()
    assert taxonomy.levels == LEVELS == ["generic", "group", "fine"]
    assert sorted(taxonomy.classes) == sorted(manifests[f"{dataset}/train"]["classes"])
    (root_node,) = taxonomy.children(None)
    for label, node_id in taxonomy.classes.items():
        lineage = taxonomy.lineage(node_id)
        assert [n.level for n in lineage] == LEVELS
        assert lineage[0] == root_node and lineage[-1].name == label
    # every name and synonym leads back to exactly its own node
    for node in taxonomy.nodes.values():
        for name in (node.name, *node.synonyms):
            assert taxonomy.find(name) == [node.id], name


@pytest.mark.parametrize("dataset", DOMAINS)
def test_synonyms_at_fine_and_group_level(dataset):
    taxonomy = miniworld_taxonomy(dataset)
    fine = [n for n in taxonomy.nodes.values() if n.level == "fine" and n.synonyms]
    groups = [n for n in taxonomy.nodes.values() if n.level == "group" and n.synonyms]
    assert len(fine) >= 5 and len(groups) >= 4
    if dataset == "miniworld_a":
        (node_id,) = taxonomy.find("gray-necked egret")
        assert (
            taxonomy.path("grey-necked egret")
            == ["bird", "egret", "grey-necked egret"]
            == [n.name for n in taxonomy.lineage(node_id)]
        )
        (node_id,) = taxonomy.find("Egretta")  # a group's genus
        assert taxonomy.nodes[node_id].name == "egret"
    else:
        (node_id,) = taxonomy.find("harbor blaze pickup truck")
        assert taxonomy.nodes[node_id].name == "Harbor Blaze pickup"
        (node_id,) = taxonomy.find("harbor pickup truck")  # a group's body style synonym
        assert taxonomy.nodes[node_id].name == "Harbor pickup"


def test_domains_share_no_name():
    names = {}
    for dataset in DOMAINS:
        taxonomy = miniworld_taxonomy(dataset)
        names[dataset] = {normalize(n) for node in taxonomy.nodes.values() for n in (node.name, *node.synonyms)}
    assert not names["miniworld_a"] & names["miniworld_b"]
    assert miniworld_domain("miniworld_a").generic == "bird" and miniworld_domain("miniworld_b").generic == "car"


@pytest.mark.parametrize("dataset", DOMAINS)
def test_every_domain_spans_the_difficulties_and_hard_groups_are_crowded(dataset):
    groups = miniworld_groups(dataset)
    assert {g["difficulty"] for g in groups.values()} == set(DIFFICULTIES)
    hard = [g for g in groups.values() if g["difficulty"] == "hard"]
    assert len(hard) >= 2 and all(len(g["classes"]) >= 5 for g in hard)


def render(dataset: str, label: str, seed: int, **params) -> np.ndarray:
    kind, look = class_look(dataset, label)
    jpeg = render_image(kind, look, MiniWorldParams(**params).model_dump(), np.random.default_rng([seed]))
    return np.asarray(Image.open(io.BytesIO(jpeg)), np.int32)


def sibling_difference(dataset: str, group: dict, seeds=range(6), **params) -> float:
    """Median share of pixels that change clearly between two siblings drawn with the same nuisances."""
    first, second = group["classes"][:2]
    shares = [
        (np.abs(render(dataset, first, s, **params) - render(dataset, second, s, **params)).sum(-1) > 60).mean()
        for s in seeds
    ]
    return float(np.median(shares))


@pytest.mark.parametrize("dataset", DOMAINS)
def test_difficulty_is_the_size_of_what_separates_siblings(dataset):
    """Same pose, background and noise: easy siblings differ in many pixels, hard ones in very few.

    Compared within a silhouette: a heron's whole body is smaller than a kingfisher's head and
    breast, so the sizes of different body plans do not line up across the domain."""
    by_shape: dict[str, dict[str, list[float]]] = {}
    for group in miniworld_groups(dataset).values():
        shape = class_look(dataset, group["classes"][0])[1]["shape"]
        by_difficulty = by_shape.setdefault(shape, {d: [] for d in DIFFICULTIES})
        by_difficulty[group["difficulty"]].append(sibling_difference(dataset, group))
    for shape, by_difficulty in by_shape.items():
        assert max(by_difficulty["hard"]) < 0.005 < min(by_difficulty["medium"]), shape
        assert max(by_difficulty["medium"]) < min(by_difficulty["easy"]), shape


@pytest.mark.parametrize("dataset", DOMAINS)
def test_every_sibling_looks_different(dataset):
    """No two fine classes of a group render alike (a mark the colour of the body it sits on would)."""
    for group in miniworld_groups(dataset).values():
        images = [render(dataset, label, 0) for label in group["classes"]]
        for i, first in enumerate(images):
            for j in range(i + 1, len(images)):
                assert (first != images[j]).any(), (group["classes"][i], group["classes"][j])


def group_with_cue(dataset: str, cue: str) -> dict:
    """The first group whose siblings differ by `cue`: tests name the cue, not the group, to survive renames."""
    return next(group for group in miniworld_groups(dataset).values() if group["cue"] == cue)


def test_hard_detail_sets_the_mark_size():
    group = group_with_cue("miniworld_a", "tiny crown patch colour")
    small = sibling_difference("miniworld_a", group, hard_detail=0.03)
    large = sibling_difference("miniworld_a", group, hard_detail=0.12)
    assert 0 < small < large / 4


def test_hue_step_zero_makes_hue_siblings_identical():
    group = group_with_cue("miniworld_b", "small shift of paint hue")
    first, second = group["classes"][:2]
    assert (render("miniworld_b", first, 1, hue_step=0.0) == render("miniworld_b", second, 1, hue_step=0.0)).all()
    assert (render("miniworld_b", first, 1) != render("miniworld_b", second, 1)).any()


def test_unknown_domain_and_class():
    with pytest.raises(ValueError, match="unknown mini world domain 'miniworld_c'"):
        miniworld_taxonomy("miniworld_c")
    with pytest.raises(KeyError, match="unknown mini world class 'dodo'"):
        class_look("miniworld_a", "dodo")


@pytest.mark.parametrize(
    "key, value, message",
    [
        ("image_size", 0, r"data\.miniworld\.image_size: Input should be greater than or equal to 28 \(got 0\)"),
        ("train_per_domain", 0, r"data\.miniworld\.train_per_domain: .*greater than or equal to 1"),
        ("hard_detail", 0, r"data\.miniworld\.hard_detail: .*greater than 0"),
        ("hue_step", -1, r"data\.miniworld\.hue_step: .*greater than or equal to 0"),
        ("seed", -1, r"data\.miniworld\.seed: .*greater than or equal to 0"),
        ("scale_min", 0.99, r"data\.miniworld: .*scale_min \(0\.99\) must not exceed scale_max \(0\.95\)"),
        ("hard_detial", 0.1, r"data\.miniworld\.hard_detial: unknown key \(allowed: .*hard_detail"),
    ],
)
def test_bad_params_name_the_key(tmp_path, key, value, message):
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump({"data": {"miniworld": {key: value}}}))
    with pytest.raises(ParamsError, match=message):
        load_section("data", path)


def test_repo_params_hold_every_knob():
    repo = yaml.safe_load((Path(__file__).resolve().parents[2] / "params.yaml").read_text())
    assert set(repo["data"]["miniworld"]) == set(MiniWorldParams.model_fields)
