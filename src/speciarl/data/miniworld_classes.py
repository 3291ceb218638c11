"""The mini world's classes: two domains, each a 3-level taxonomy (generic > group > fine).

Domain A (`miniworld_a`) stands for birds and is used for RL training; domain B (`miniworld_b`)
stands for cars and is held out. Each group has a difficulty that says how visible the cue
separating its fine classes is at 112 px:
  easy    the whole body colour differs;
  medium  a medium-sized part differs (a neck, a breast patch, a roof, side stripes, a spoiler);
  hard    a tiny mark of a few pixels (params `hard_detail`) or a small hue shift of the body
          (params `hue_step`), with 6-7 near-identical siblings so a lucky guess is rare.
Groups themselves are told apart by silhouette (beak, legs, neck, tail; cab, bed, roof line).

A look is a dict read by the renderer (miniworld_draw): colours are (hue degrees, saturation,
value) triples; `mark` is the colour of the hard groups' tiny mark (None: no mark);
`hue_shift` moves every plumage/paint colour by that many `hue_step`s.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from speciarl.data.taxonomy import Taxonomy

DOMAIN_A = "miniworld_a"
DOMAIN_B = "miniworld_b"
DOMAINS = (DOMAIN_A, DOMAIN_B)
LEVELS = ["generic", "group", "fine"]
DIFFICULTIES = ("easy", "medium", "hard")

Colour = tuple[float, float, float]

# Named colours shared by both domains (hue degrees, saturation, value).
RED: Colour = (356, 0.85, 0.80)
RUBY: Colour = (348, 0.80, 0.70)
ORANGE: Colour = (28, 0.90, 0.95)
GOLD: Colour = (46, 0.85, 0.90)
YELLOW: Colour = (54, 0.85, 0.95)
GREEN: Colour = (130, 0.70, 0.60)
EMERALD: Colour = (145, 0.80, 0.65)
TEAL: Colour = (178, 0.75, 0.60)
BLUE: Colour = (215, 0.85, 0.85)
NAVY: Colour = (222, 0.75, 0.45)
VIOLET: Colour = (280, 0.65, 0.75)
MAROON: Colour = (345, 0.70, 0.40)
CHESTNUT: Colour = (18, 0.75, 0.55)
TAN: Colour = (35, 0.40, 0.80)
WHITE: Colour = (0, 0.0, 0.97)
SILVER: Colour = (210, 0.05, 0.78)
GREY: Colour = (210, 0.08, 0.60)
SLATE: Colour = (212, 0.30, 0.55)
CHARCOAL: Colour = (220, 0.15, 0.30)
BLACK: Colour = (0, 0.0, 0.08)


@dataclass(frozen=True)
class FineClass:
    name: str
    look: dict = field(default_factory=dict)
    synonyms: tuple[str, ...] = ()


@dataclass(frozen=True)
class Group:
    name: str
    difficulty: str
    cue: str  # what separates the fine classes, for people reading the manifest
    look: dict  # defaults shared by the fine classes (silhouette and colours)
    classes: tuple[FineClass, ...]
    synonyms: tuple[str, ...] = ()


@dataclass(frozen=True)
class Domain:
    dataset: str
    kind: str  # "bird" or "car": which renderer draws it
    generic: str
    groups: tuple[Group, ...]
    synonyms: tuple[str, ...] = ()

    def classes(self) -> list[tuple[Group, FineClass]]:
        return [(group, fine) for group in self.groups for fine in group.classes]


def _hue_siblings(names: list[str]) -> tuple[FineClass, ...]:
    """Siblings that differ only by body hue, centred on the group's base colour."""
    centre = (len(names) - 1) / 2
    return tuple(FineClass(name, {"hue_shift": index - centre}) for index, name in enumerate(names))


BIRDS = Domain(
    dataset=DOMAIN_A,
    kind="bird",
    generic="bird",
    synonyms=("Aves",),
    groups=(
        Group(
            "finch",
            "easy",
            "whole body colour",
            {"shape": "finch", "wing": BLACK, "wing_bar": WHITE, "beak": (30, 0.3, 0.75)},
            (
                FineClass("crimson finch", {"body": RED}, ("Fringilla rubra",)),
                FineClass("citrine finch", {"body": YELLOW}),
                FineClass("slate finch", {"body": SLATE}),
                FineClass("snow finch", {"body": WHITE}, ("white finch",)),
            ),
            ("Fringillidae",),
        ),
        Group(
            "parrot",
            "easy",
            "whole body colour",
            {"shape": "parrot", "beak": (40, 0.15, 0.9)},
            (
                FineClass("emerald parrot", {"body": EMERALD}, ("Psittacula smaragdina",)),
                FineClass("scarlet parrot", {"body": RED}),
                FineClass("cobalt parrot", {"body": BLUE}, ("blue parrot",)),
                FineClass("sunburst parrot", {"body": ORANGE}),
            ),
            ("Psittacidae",),
        ),
        Group(
            "heron",
            "medium",
            "neck and crown colour",
            {"shape": "heron", "body": GREY, "beak": GOLD, "legs": (40, 0.5, 0.6)},
            (
                FineClass("grey heron", {}, ("gray heron", "Ardea grisea")),
                FineClass("chestnut-necked heron", {"neck": CHESTNUT}),
                FineClass("black-crowned heron", {"crown": BLACK, "neck": CHARCOAL}),
                FineClass("white-necked heron", {"neck": WHITE}),
            ),
            ("Ardeidae",),
        ),
        Group(
            "kingfisher",
            "medium",
            "breast colour",
            {"shape": "kingfisher", "body": (200, 0.85, 0.80), "beak": BLACK},
            (
                FineClass("rufous-breasted kingfisher", {"breast": CHESTNUT}),
                FineClass("white-breasted kingfisher", {"breast": WHITE}),
                FineClass("yellow-breasted kingfisher", {"breast": YELLOW}),
                FineClass("banded kingfisher", {"breast": WHITE, "band": NAVY}, ("belted kingfisher",)),
                FineClass("azure kingfisher", {"breast": (200, 0.85, 0.80)}, ("Alcedo azurea",)),
            ),
            ("Alcedinidae",),
        ),
        Group(
            "warbler",
            "hard",
            "tiny crown patch colour",
            {"shape": "warbler", "body": (62, 0.60, 0.75), "wing": (75, 0.55, 0.50), "beak": CHARCOAL},
            (
                FineClass("orange-crowned warbler", {"mark": ORANGE}, ("Leiothlypis aurantia",)),
                FineClass("ruby-crowned warbler", {"mark": RUBY}),
                FineClass("blue-crowned warbler", {"mark": BLUE}),
                FineClass("black-crowned warbler", {"mark": BLACK}),
                FineClass("white-crowned warbler", {"mark": WHITE}),
                FineClass("violet-crowned warbler", {"mark": VIOLET}),
                FineClass("plain warbler", {}, ("uncrowned warbler",)),
            ),
            ("wood warbler", "Parulidae"),
        ),
        Group(
            "sparrow",
            "hard",
            "small shift of plumage hue",
            {"shape": "sparrow", "body": (36, 0.55, 0.62), "wing": (30, 0.60, 0.42), "beak": (30, 0.3, 0.45)},
            _hue_siblings(
                [
                    "rust sparrow",
                    "cinnamon sparrow",
                    "tawny sparrow",
                    "sand sparrow",
                    "straw sparrow",
                    "olive sparrow",
                ]
            ),
            ("Passerellidae",),
        ),
    ),
)

CARS = Domain(
    dataset=DOMAIN_B,
    kind="car",
    generic="car",
    synonyms=("automobile", "motorcar"),
    groups=(
        Group(
            "pickup truck",
            "easy",
            "whole body colour",
            {"shape": "pickup"},
            (
                FineClass("Harbor Scout pickup", {"body": RED}),
                FineClass("Summit Ridge pickup", {"body": NAVY}),
                FineClass("Prairie Hauler pickup", {"body": YELLOW}),
                FineClass("Timber Mule pickup", {"body": GREEN}),
            ),
            ("pickup",),
        ),
        Group(
            "minivan",
            "easy",
            "whole body colour",
            {"shape": "minivan"},
            (
                FineClass("Meadow Voyager minivan", {"body": WHITE}),
                FineClass("Breeze Caravan minivan", {"body": ORANGE}),
                FineClass("Crest Nomad minivan", {"body": TEAL}),
                FineClass("Haven Shuttle minivan", {"body": MAROON}),
            ),
            ("people carrier", "MPV"),
        ),
        Group(
            "roadster",
            "medium",
            "side stripes or rear spoiler",
            {"shape": "roadster", "body": (5, 0.75, 0.75)},
            (
                FineClass("Comet Spyder roadster", {}),
                FineClass("Blaze Streak roadster", {"stripes": 1}),
                FineClass("Rocket Twin roadster", {"stripes": 2}),
                FineClass("Zephyr Wing roadster", {"spoiler": True}),
            ),
            ("convertible",),
        ),
        Group(
            "sedan",
            "medium",
            "roof colour",
            {"shape": "sedan", "body": (215, 0.35, 0.50)},
            (
                FineClass("Atlas Regent sedan", {"roof": BLACK}),
                FineClass("Orion Senator sedan", {"roof": WHITE}),
                FineClass("Pioneer Envoy sedan", {"roof": RED}),
                FineClass("Vista Consul sedan", {"roof": TAN}),
                FineClass("Glacier Baron sedan", {}),
            ),
            ("saloon",),
        ),
        Group(
            "coupe",
            "hard",
            "tiny wheel hub colour",
            {"shape": "coupe", "body": (0, 0.0, 0.85), "mark": SILVER},
            (
                FineClass("Vector Arrow coupe", {}),
                FineClass("Vector Dart coupe", {"mark": GOLD}),
                FineClass("Vector Lance coupe", {"mark": RED}),
                FineClass("Vector Blade coupe", {"mark": BLUE}),
                FineClass("Vector Bolt coupe", {"mark": GREEN}),
                FineClass("Vector Sabre coupe", {"mark": BLACK}),
            ),
            ("sports coupe",),
        ),
        Group(
            "hatchback",
            "hard",
            "small shift of paint hue",
            {"shape": "hatchback", "body": (300, 0.45, 0.72)},
            _hue_siblings(
                [
                    "Pebble City hatchback",
                    "Pebble Metro hatchback",
                    "Pebble Urban hatchback",
                    "Pebble Sprint hatchback",
                    "Pebble Swift hatchback",
                    "Pebble Zip hatchback",
                ]
            ),
            ("hatch",),
        ),
    ),
)

_DOMAINS = {BIRDS.dataset: BIRDS, CARS.dataset: CARS}


def miniworld_domain(dataset: str) -> Domain:
    try:
        return _DOMAINS[dataset]
    except KeyError:
        raise ValueError(f"unknown mini world domain {dataset!r} (allowed: {', '.join(DOMAINS)})") from None


def _car_model_synonyms(domain: Domain) -> dict[str, list[str]]:
    """Cars are also called by make and model alone ("Harbor Scout pickup" = "Harbor Scout")."""
    if domain.kind != "car":
        return {}
    return {fine.name: [fine.name.rsplit(" ", 1)[0]] for _, fine in domain.classes()}


def miniworld_taxonomy(dataset: str) -> Taxonomy:
    """The domain's taxonomy (levels generic > group > fine), as saved to taxonomy.json."""
    domain = miniworld_domain(dataset)
    paths = {
        fine.name: [("generic", domain.generic), ("group", group.name), ("fine", fine.name)]
        for group, fine in domain.classes()
    }
    synonyms: dict[str, list[str]] = {domain.generic: list(domain.synonyms)}
    for group in domain.groups:
        synonyms[group.name] = list(group.synonyms)
    for _, fine in domain.classes():
        synonyms.setdefault(fine.name, []).extend(fine.synonyms)
    for name, extra in _car_model_synonyms(domain).items():
        synonyms[name].extend(extra)
    return Taxonomy.from_paths(dataset, LEVELS, paths, synonyms)


def miniworld_classes(dataset: str) -> list[str]:
    """Fine class names of a domain, in taxonomy order."""
    return [fine.name for _, fine in miniworld_domain(dataset).classes()]


def miniworld_groups(dataset: str) -> dict[str, dict]:
    """Per group: difficulty, the visual cue between its fine classes, and its fine classes."""
    return {
        group.name: {
            "difficulty": group.difficulty,
            "cue": group.cue,
            "classes": [fine.name for fine in group.classes],
        }
        for group in miniworld_domain(dataset).groups
    }


def class_look(dataset: str, label: str) -> tuple[str, dict]:
    """(renderer kind, full look) of a fine class: the group's defaults overridden by the class's."""
    domain = miniworld_domain(dataset)
    for group, fine in domain.classes():
        if fine.name == label:
            return domain.kind, {**group.look, **fine.look}
    raise KeyError(f"{dataset}: unknown mini world class {label!r}")
