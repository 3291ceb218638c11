"""Golden tests of the taxonomy judge on the shape of each real dataset's taxonomy and the mini world.

None means "cannot decide, ask the LLM": it is the expected answer wherever the tree does not
settle the question, and never a wrong verdict by accident.
"""

import pytest

from speciarl.data.taxonomy import Taxonomy
from speciarl.judge.taxonomy_judge import ABSTAIN_PHRASES, TaxonomyJudge, judge_by_taxonomy
from speciarl.labels import normalize

MORE, SPEC, LESS, GEN, ABST, WRONG = "more specific", "specific", "less specific", "generic", "abstain", "wrong"

# CUB: order > family > genus > species; scientific names are synonyms of the common names.
CUB = Taxonomy.from_paths(
    "cub",
    ["order", "family", "genus", "species"],
    {
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
        "Northern Cardinal": [
            ("order", "Passeriformes"),
            ("family", "Cardinalidae"),
            ("genus", "Cardinalis"),
            ("species", "Northern Cardinal"),
        ],
        "American Crow": [
            ("order", "Passeriformes"),
            ("family", "Corvidae"),
            ("genus", "Corvus"),
            ("species", "American Crow"),
        ],
        "Common Raven": [
            ("order", "Passeriformes"),
            ("family", "Corvidae"),
            ("genus", "Corvus"),
            ("species", "Common Raven"),
        ],
        "Song Sparrow": [
            ("order", "Passeriformes"),
            ("family", "Passerellidae"),
            ("genus", "Melospiza"),
            ("species", "Song Sparrow"),
        ],
        "House Sparrow": [
            ("order", "Passeriformes"),
            ("family", "Passeridae"),
            ("genus", "Passer"),
            ("species", "House Sparrow"),
        ],
        "Laysan Albatross": [
            ("order", "Procellariiformes"),
            ("family", "Diomedeidae"),
            ("genus", "Phoebastria"),
            ("species", "Laysan Albatross"),
        ],
    },
    synonyms={
        "Golden-winged Warbler": ["Vermivora chrysoptera"],
        "Blue-winged Warbler": ["Vermivora cyanoptera"],
        "Northern Cardinal": ["Cardinalis cardinalis"],
        "Parulidae": ["New World warbler", "warbler"],
        "Passeriformes": ["perching bird", "songbird"],
        "Corvidae": ["crow family"],
        "Diomedeidae": ["albatross"],
        "Passerellidae": ["sparrow"],  # "sparrow" names two families: ambiguous on purpose
        "Passeridae": ["sparrow"],
    },
)


@pytest.mark.parametrize(
    "truth, prediction, expected",
    [
        ("Golden-winged Warbler", "Golden-winged Warbler", SPEC),
        ("Golden-winged Warbler", "golden winged warbler", SPEC),  # a dash reads as a space
        ("Golden-winged Warbler", "Vermivora chrysoptera", SPEC),  # scientific synonym
        ("Golden-winged Warbler", "a golden-winged warbler", SPEC),
        ("Golden-winged Warbler", "Vermivora", LESS),  # genus: 1 level up
        ("Golden-winged Warbler", "warbler", LESS),  # family: 2 levels up, close for CUB
        ("Golden-winged Warbler", "Passeriformes", GEN),
        ("Golden-winged Warbler", "songbird", GEN),
        ("Golden-winged Warbler", "Blue-winged Warbler", WRONG),  # sibling
        ("Golden-winged Warbler", "Laysan Albatross", WRONG),
        ("Golden-winged Warbler", "albatross", WRONG),
        ("Golden-winged Warbler", "Parulidae Golden-winged Warbler", SPEC),  # qualified name
        ("Golden-winged Warbler", "warbler, Vermivora", LESS),  # one lineage: the deepest, genus
        ("Golden-winged Warbler", "None", ABST),
        ("Golden-winged Warbler", "I don't know.", ABST),
        ("Golden-winged Warbler", "Cannot tell", ABST),
        ("Golden-winged Warbler", "robin or cardinal", WRONG),  # several options, labels or not
        ("Golden-winged Warbler", "either a warbler or a vireo", WRONG),
        ("Golden-winged Warbler", "American Crow, Common Raven", WRONG),
        ("Golden-winged Warbler", "American Crow/Blue-winged Warbler", WRONG),
        ("Golden-winged Warbler", "Common Raven and Laysan Albatross", WRONG),
        ("Golden-winged Warbler", "Golden-winged Warbler/Blue-winged Warbler", WRONG),
        ("Golden-winged Warbler", "???", WRONG),  # malformed: nothing left
        ("Golden-winged Warbler", "b1rd", None),  # not a name: the LLM decides
        ("Golden-winged Warbler", "yellow bird", None),
        ("Golden-winged Warbler", "warbler Vermivora Corvus", None),  # neither one lineage nor options
        ("Golden-winged Warbler", "warblers", None),
        ("Song Sparrow", "sparrow", None),  # two families: less specific or wrong, ambiguous
        ("American Crow", "sparrow", WRONG),  # wrong under every reading
        ("American Crow", "crow family", LESS),
        ("Unknown Bird Class", "Vermivora", None),  # the truth is not a class: no relation known
        ("Unknown Bird Class", "none", ABST),
    ],
)
def test_cub(truth, prediction, expected):
    assert judge_by_taxonomy(CUB, truth, prediction, close_levels=2) == expected


def test_close_levels_moves_the_less_specific_boundary():
    assert judge_by_taxonomy(CUB, "Golden-winged Warbler", "warbler", close_levels=1) == GEN
    assert judge_by_taxonomy(CUB, "Golden-winged Warbler", "Vermivora", close_levels=0) == GEN
    with pytest.raises(ValueError, match="close_levels"):
        TaxonomyJudge(CUB, close_levels=-1)


# FGVC-Aircraft: manufacturer > family > variant. "A320" names both a family and a variant.
AIRCRAFT = Taxonomy.from_paths(
    "aircraft",
    ["manufacturer", "family", "variant"],
    {
        "707-320": [("manufacturer", "Boeing"), ("family", "Boeing 707"), ("variant", "707-320")],
        "737-200": [("manufacturer", "Boeing"), ("family", "Boeing 737"), ("variant", "737-200")],
        "737-300": [("manufacturer", "Boeing"), ("family", "Boeing 737"), ("variant", "737-300")],
        "757-200": [("manufacturer", "Boeing"), ("family", "Boeing 757"), ("variant", "757-200")],
        "A320": [("manufacturer", "Airbus"), ("family", "A320"), ("variant", "A320")],
        "A321": [("manufacturer", "Airbus"), ("family", "A320"), ("variant", "A321")],
        "F/A-18": [("manufacturer", "McDonnell Douglas"), ("family", "F/A-18"), ("variant", "F/A-18")],
    },
    synonyms={"Boeing 707": ["707"], "Boeing 737": ["737"]},
)


@pytest.mark.parametrize(
    "truth, prediction, expected",
    [
        ("707-320", "Boeing 707", LESS),  # product line
        ("707-320", "707", LESS),
        ("757-200", "Boeing", GEN),
        ("737-200", "737-300", WRONG),  # sibling variant
        ("737-200", "Boeing 737-200", SPEC),  # manufacturer + variant: one lineage
        ("737-200", "737 200", SPEC),
        ("737-200", "757-200", WRONG),
        ("A320", "a320", SPEC),
        ("A321", "A320", None),  # the family (less specific) or the sibling variant (wrong)
        ("A321", "Airbus", GEN),
        ("F/A-18", "F/A-18", SPEC),
        ("F/A-18", "FA-18", None),
        ("757-200", "commercial airliner", None),  # correct, but not in the tree: the LLM decides
        ("757-200", "Boeing or Airbus", WRONG),
    ],
)
def test_aircraft(truth, prediction, expected):
    assert judge_by_taxonomy(AIRCRAFT, truth, prediction) == expected


# Oxford-IIIT Pets: pet > cat | dog > breed. "dog" for a breed is generic (docs/method.md#verdict-categories): close 0.
PETS = Taxonomy.from_paths(
    "pets",
    ["pet", "species", "breed"],
    {
        breed: [("pet", "pet"), ("species", species), ("breed", breed)]
        for species, breeds in {
            "cat": ["Abyssinian", "Bengal", "Persian"],
            "dog": ["Samoyed", "Yorkshire Terrier", "American Bulldog", "Staffordshire Bull Terrier"],
        }.items()
        for breed in breeds
    },
    synonyms={"dog": ["domestic dog", "canis familiaris"], "cat": ["domestic cat"]},
)


@pytest.mark.parametrize(
    "truth, prediction, expected",
    [
        ("Samoyed", "dog", GEN),
        ("Samoyed", "Canis familiaris", GEN),
        ("Samoyed", "pet", GEN),
        ("Samoyed", "cat", WRONG),
        ("Bengal", "Persian", WRONG),
        ("Bengal", "Bengal cat", SPEC),
        ("Bengal", "cat, Bengal", SPEC),
        ("Samoyed", "cat or dog", WRONG),
        ("Samoyed", "dog/cat", WRONG),
        ("Samoyed", "samoyed dog", SPEC),
        ("Yorkshire Terrier", "terrier", None),  # not a node
        ("American Bulldog", "bulldog", None),
        ("Staffordshire Bull Terrier", "staffordshire", None),
    ],
)
def test_pets(truth, prediction, expected):
    assert judge_by_taxonomy(PETS, truth, prediction, close_levels=0) == expected


def test_descendant_of_the_truth_is_more_specific():
    # docs/method.md#verdict-categories: "samoyed" for the truth "dog"; classes need not be leaves.
    taxonomy = Taxonomy.from_paths(
        "animals",
        ["kingdom", "species", "breed"],
        {
            "dog": [("kingdom", "animal"), ("species", "dog")],
            "Samoyed": [("kingdom", "animal"), ("species", "dog"), ("breed", "Samoyed")],
            "cat": [("kingdom", "animal"), ("species", "cat")],
        },
    )
    assert judge_by_taxonomy(taxonomy, "dog", "samoyed") == MORE
    assert judge_by_taxonomy(taxonomy, "cat", "samoyed") == WRONG
    assert judge_by_taxonomy(taxonomy, "samoyed", "dog") == LESS


# Stanford Cars: make > model > year, names from the class names.
CARS = Taxonomy.from_paths(
    "cars",
    ["make", "model", "year"],
    {
        "Audi S4 Sedan 2012": [("make", "Audi"), ("model", "Audi S4 Sedan"), ("year", "Audi S4 Sedan 2012")],
        "Audi S4 Sedan 2007": [("make", "Audi"), ("model", "Audi S4 Sedan"), ("year", "Audi S4 Sedan 2007")],
        "Audi TT RS Coupe 2012": [("make", "Audi"), ("model", "Audi TT RS Coupe"), ("year", "Audi TT RS Coupe 2012")],
        "AM General Hummer SUV 2000": [
            ("make", "AM General"),
            ("model", "AM General Hummer SUV"),
            ("year", "AM General Hummer SUV 2000"),
        ],
        "HUMMER H2 SUT Crew Cab 2009": [
            ("make", "HUMMER"),
            ("model", "HUMMER H2 SUT Crew Cab"),
            ("year", "HUMMER H2 SUT Crew Cab 2009"),
        ],
    },
)


@pytest.mark.parametrize(
    "truth, prediction, expected",
    [
        ("Audi S4 Sedan 2012", "Audi S4 Sedan", LESS),
        ("Audi S4 Sedan 2012", "Audi", GEN),
        ("Audi S4 Sedan 2012", "audi s4 sedan 2007", WRONG),  # sibling year
        ("Audi S4 Sedan 2012", "Audi TT RS Coupe", WRONG),
        ("Audi S4 Sedan 2012", "Audi S4 Sedan 2011", None),  # not a class: the LLM decides
        ("Audi S4 Sedan 2012", "sedan", None),
        ("HUMMER H2 SUT Crew Cab 2009", "Hummer", GEN),
        # The make HUMMER is off this truth's lineage, but "hummer" is in its name: not "wrong".
        ("AM General Hummer SUV 2000", "Hummer", None),
        ("AM General Hummer SUV 2000", "Audi", WRONG),
    ],
)
def test_cars(truth, prediction, expected):
    assert judge_by_taxonomy(CARS, truth, prediction) == expected


# Food-101 / Flowers102: WordNet hypernym chains of varying length (a ragged tree).
FOOD = Taxonomy.from_paths(
    "food101",
    ["l0", "l1", "l2", "l3"],
    {
        "pizza": [("l0", "food"), ("l1", "dish"), ("l2", "pizza")],
        "chocolate cake": [("l0", "food"), ("l1", "dessert"), ("l2", "cake"), ("l3", "chocolate cake")],
        "carrot cake": [("l0", "food"), ("l1", "dessert"), ("l2", "cake"), ("l3", "carrot cake")],
        "ice cream": [("l0", "food"), ("l1", "dessert"), ("l2", "ice cream")],
        "macaroni and cheese": [("l0", "food"), ("l1", "dish"), ("l2", "macaroni and cheese")],
    },
    synonyms={"pizza": ["pizza pie"], "dessert": ["sweet"], "ice cream": ["icecream"]},
)
FLOWERS = Taxonomy.from_paths(
    "flowers102",
    ["l0", "l1", "l2", "l3"],
    {
        "pink primrose": [("l0", "plant"), ("l1", "herb"), ("l2", "primrose"), ("l3", "pink primrose")],
        "sunflower": [("l0", "plant"), ("l1", "flower"), ("l2", "sunflower")],
        "english marigold": [("l0", "plant"), ("l1", "flower"), ("l2", "calendula"), ("l3", "english marigold")],
    },
    synonyms={"sunflower": ["helianthus"], "english marigold": ["calendula officinalis", "pot marigold"]},
)


@pytest.mark.parametrize(
    "taxonomy, truth, prediction, expected",
    [
        (FOOD, "pizza", "Pizza pie", SPEC),
        (FOOD, "pizza", "dish", LESS),
        (FOOD, "pizza", "food", GEN),
        (FOOD, "chocolate cake", "cake", LESS),
        (FOOD, "chocolate cake", "dessert", GEN),
        (FOOD, "chocolate cake", "carrot cake", WRONG),
        (FOOD, "chocolate cake", "ice cream", WRONG),
        (FOOD, "ice cream", "sweet", LESS),
        (FOOD, "macaroni and cheese", "Macaroni & Cheese", None),  # "&" is dropped, not read as "and"
        (FOOD, "pizza", "ice cream and chocolate cake", WRONG),
        (FOOD, "chocolate cake", "chocolate", None),
        (FLOWERS, "pink primrose", "primrose", LESS),
        (FLOWERS, "pink primrose", "plant", GEN),
        (FLOWERS, "english marigold", "Pot marigold", SPEC),
        (FLOWERS, "english marigold", "sunflower", WRONG),
        (FLOWERS, "english marigold", "marigold", None),
    ],
)
def test_wordnet_like(taxonomy, truth, prediction, expected):
    assert judge_by_taxonomy(taxonomy, truth, prediction) == expected


# The mini world shape: generic > group > fine class, 5+ near-identical siblings in a hard group.
MINI = Taxonomy.from_paths(
    "miniworld_a",
    ["generic", "group", "fine"],
    {
        **{
            f"{color} finch": [("generic", "bird"), ("group", "finch"), ("fine", f"{color} finch")]
            for color in ("red", "crimson", "scarlet", "ruby", "cherry")
        },
        "blue jay": [("generic", "bird"), ("group", "jay"), ("fine", "blue jay")],
        "green jay": [("generic", "bird"), ("group", "jay"), ("fine", "green jay")],
    },
    synonyms={"red finch": ["rubra"]},
)


@pytest.mark.parametrize(
    "truth, prediction, expected",
    [
        ("red finch", "red finch", SPEC),
        ("red finch", "Rubra", SPEC),
        ("red finch", "finch", LESS),
        ("red finch", "bird", GEN),
        ("red finch", "crimson finch", WRONG),
        ("red finch", "blue jay", WRONG),
        ("red finch", "jay", WRONG),
        ("red finch", "none", ABST),
        ("red finch", "finch or jay", WRONG),
        ("red finch", "red finch, crimson finch", WRONG),
        ("red finch", "finch bird", LESS),
    ],
)
def test_mini_world(truth, prediction, expected):
    assert judge_by_taxonomy(MINI, truth, prediction) == expected


def test_a_verdict_depends_only_on_the_normalised_pair():
    # The store keys verdicts by the normalised pair, so every raw spelling must agree.
    for raw in ("Crimson Finch", "crimson-finch?", " CRIMSON   finch "):
        assert judge_by_taxonomy(MINI, "Red Finch", raw) == judge_by_taxonomy(MINI, "red finch", normalize(raw))


def test_abstain_phrases_are_normalised_and_not_taxonomy_names():
    assert all(phrase == normalize(phrase) for phrase in ABSTAIN_PHRASES)
    for taxonomy in (CUB, AIRCRAFT, PETS, CARS, FOOD, FLOWERS, MINI):
        assert not ABSTAIN_PHRASES & {normalize(n.name) for n in taxonomy.nodes.values()}


def test_judge_id_tracks_taxonomy_and_closeness():
    ids = {TaxonomyJudge(CUB, 1).judge_id, TaxonomyJudge(CUB, 2).judge_id, TaxonomyJudge(MINI, 1).judge_id}
    assert len(ids) == 3 and all(i.startswith("taxonomy:") for i in ids)
    assert (
        TaxonomyJudge(CUB, 2).judge_id
        == TaxonomyJudge(
            Taxonomy.from_paths(
                "cub",
                CUB.levels,
                {
                    label: [(CUB.nodes[n].level, CUB.nodes[n].name) for n in [x.id for x in CUB.lineage(node)]]
                    for label, node in CUB.classes.items()
                },
                {n.name: n.synonyms for n in CUB.nodes.values() if n.synonyms},
            ),
            2,
        ).judge_id
    )
