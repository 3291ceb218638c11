"""The mini world's classes: two domains, each a 3-level taxonomy (generic > group > fine) at CUB's scale.

Domain A (`miniworld_a`) stands for birds and is used for RL training; domain B (`miniworld_b`)
stands for cars and is held out. Each domain has 30 groups of 6 fine classes (180), so a uniformly
random group name is right 1 time in 30 and a lucky group hit is rare, as among CUB's 200 species.
A group is told apart by its silhouette (5 body plans or body styles) together with a signature
colour (a bird's wings and tail, a car's lower body; 6 colours). Each group has a difficulty that
says how visible the cue separating its fine classes is at 112 px:
  easy    the whole body colour differs;
  medium  a medium-sized part differs (a bird's head or neck, a car's side stripe);
  hard    a tiny mark of a few pixels (params `hard_detail`: a crown patch, a hub cap) or a small
          hue shift of the body (params `hue_step`): six near-identical siblings.
Difficulties rotate over the grid, so every silhouette and every signature colour meets each one.

A look is a dict read by the renderer (miniworld_draw): colours are (hue degrees, saturation,
value) triples; `mark` is the colour of the tiny mark (None: none); `hue_shift` moves the body
colour by that many `hue_step`s.
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
PINK: Colour = (330, 0.45, 0.95)


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


# Building a domain ------------------------------------------------------------------------------
#
# A domain is a grid: each silhouette (a bird's body plan, a car's body style) appears with each
# signature colour (a bird's wings and tail, a car's lower body), and each cell is a group of six
# fine classes. Group names are what a field guide or a dealer would call them; fine names are
# compositional, as real species and model names often are ("orange-crowned warbler"): a cue word
# that says what separates the siblings, then the group's name.

SIGNATURES: tuple[tuple[str, Colour], ...] = (
    ("black", BLACK),
    ("white", WHITE),
    ("red", RED),
    ("yellow", YELLOW),
    ("blue", BLUE),
    ("green", GREEN),
)
# Colours of the easy and medium cues: none is close to a signature colour, so a fine class never
# hides its group's signature.
CUE_COLOURS: tuple[tuple[str, Colour], ...] = (
    ("orange", ORANGE),
    ("violet", VIOLET),
    ("teal", TEAL),
    ("pink", PINK),
    ("grey", SLATE),
    ("buff", TAN),
)
# Colours of the tiny mark: none is a cue colour either, so a mark never vanishes into the body it sits on.
MARK_COLOURS: tuple[tuple[str, Colour | None], ...] = (
    ("gold", GOLD),
    ("ruby", RUBY),
    ("blue", BLUE),
    ("black", BLACK),
    ("white", WHITE),
    ("plain", None),
)
HUE_STEPS = 6
# Which difficulty (and which hard cue) each signature gets, rotated by one per silhouette so that
# every signature colour and every silhouette meets every difficulty.
CUE_CYCLE = ("easy", "medium", "hard_mark", "easy", "medium", "hard_hue")


def _cue(silhouette_index: int, signature_index: int) -> str:
    return CUE_CYCLE[(signature_index + silhouette_index) % len(CUE_CYCLE)]


def _base_colour(silhouette_index: int, signature_index: int) -> Colour:
    """Body colour of a group whose siblings share it (medium and hard groups)."""
    return CUE_COLOURS[(2 * silhouette_index + signature_index) % len(CUE_COLOURS)][1]


def _hue_shifts() -> list[float]:
    """Hue steps of the six hue siblings, centred on the group's base colour."""
    centre = (HUE_STEPS - 1) / 2
    return [index - centre for index in range(HUE_STEPS)]


# The difficulty of each kind of cue, and the siblings' own looks under it (the group's look holds
# the rest). `medium_part` is what the medium siblings colour: a bird's head or neck, a car's stripe.
CUE_DIFFICULTY = {"easy": "easy", "medium": "medium", "hard_mark": "hard", "hard_hue": "hard"}


def _sibling_looks(cue: str, medium_part: str) -> list[dict]:
    if cue == "easy":
        return [{"body": colour} for _, colour in CUE_COLOURS]
    if cue == "medium":
        return [{medium_part: colour} for _, colour in CUE_COLOURS]
    if cue == "hard_mark":
        return [{"mark": colour} for _, colour in MARK_COLOURS]
    return [{"hue_shift": shift} for shift in _hue_shifts()]


def _grey_synonym(name: str) -> tuple[str, ...]:
    return (name.replace("grey", "gray"),) if "grey" in name else ()


# Birds: five body plans (the renderer's shapes) x six wing colours = 30 groups of six species.
# (shape, ((group name, its genus as a scientific synonym), ...)): real birds of that body plan.
BIRD_PLANS: tuple[tuple[str, tuple[tuple[str, str], ...]], ...] = (
    (
        "heron",
        (
            ("heron", "Ardea"),
            ("egret", "Egretta"),
            ("bittern", "Botaurus"),
            ("ibis", "Threskiornis"),
            ("stork", "Ciconia"),
            ("crane", "Grus"),
        ),
    ),
    (
        "parrot",
        (
            ("parrot", "Psittacus"),
            ("macaw", "Ara"),
            ("lorikeet", "Trichoglossus"),
            ("cockatoo", "Cacatua"),
            ("parakeet", "Psittacula"),
            ("conure", "Aratinga"),
        ),
    ),
    (
        "kingfisher",
        (
            ("kingfisher", "Alcedo"),
            ("jacamar", "Galbula"),
            ("motmot", "Momotus"),
            ("bee-eater", "Merops"),
            ("roller", "Coracias"),
            ("kookaburra", "Dacelo"),
        ),
    ),
    (
        "finch",
        (
            ("finch", "Fringilla"),
            ("grosbeak", "Coccothraustes"),
            ("bunting", "Emberiza"),
            ("cardinal", "Cardinalis"),
            ("sparrow", "Passer"),
            ("junco", "Junco hyemalis"),
        ),
    ),
    (
        "warbler",
        (
            ("warbler", "Setophaga"),
            ("vireo", "Vireo olivaceus"),
            ("wren", "Troglodytes"),
            ("kinglet", "Regulus"),
            ("gnatcatcher", "Polioptila"),
            ("flycatcher", "Empidonax"),
        ),
    ),
)
BIRD_EASY_WORDS = ("flame", "violet", "teal", "rosy", "slaty", "buff")
BIRD_HUE_WORDS = ("rust", "cinnamon", "tawny", "sand", "straw", "olive")


def _bird_names(cue: str, part: str, name: str) -> list[str]:
    if cue == "easy":
        return [f"{word} {name}" for word in BIRD_EASY_WORDS]
    if cue == "medium":
        return [f"{word}-{part}ed {name}" for word, _ in CUE_COLOURS]
    if cue == "hard_mark":
        return [f"{word} {name}" if colour is None else f"{word}-crowned {name}" for word, colour in MARK_COLOURS]
    return [f"{word} {name}" for word in BIRD_HUE_WORDS]


BIRD_CUES = {
    "easy": "whole body colour",
    "medium": "{part} colour",
    "hard_mark": "tiny crown patch colour",
    "hard_hue": "small shift of plumage hue",
}


def _bird_group(plan_index: int, shape: str, signature_index: int, name: str, genus: str) -> Group:
    _, wing = SIGNATURES[signature_index]
    cue = _cue(plan_index, signature_index)
    part = "neck" if shape == "heron" else "head"  # a heron's head is its neck's tip
    look = {"shape": shape, "wing": wing, "body": _base_colour(plan_index, signature_index)}
    classes = tuple(
        FineClass(fine, fine_look, _grey_synonym(fine))
        for fine, fine_look in zip(_bird_names(cue, part, name), _sibling_looks(cue, part), strict=True)
    )
    return Group(name, CUE_DIFFICULTY[cue], BIRD_CUES[cue].format(part=part), look, classes, (genus,))


BIRDS = Domain(
    dataset=DOMAIN_A,
    kind="bird",
    generic="bird",
    synonyms=("Aves",),
    groups=tuple(
        _bird_group(plan_index, shape, signature_index, name, genus)
        for plan_index, (shape, groups) in enumerate(BIRD_PLANS)
        for signature_index, (name, genus) in enumerate(groups)
    ),
)

# Cars: five body styles x six makes, a make's cars recognisable by the colour of their lower
# body (its signature) = 30 groups of six models. A model is "<make> <model> <body style>" (a make
# reuses its model names across body styles, as real makes do); the model word says what separates
# the siblings.
CAR_STYLES: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    ("pickup", "pickup", ("pickup truck",)),
    ("minivan", "minivan", ("people carrier", "MPV")),
    ("roadster", "roadster", ("convertible",)),
    ("sedan", "sedan", ("saloon",)),
    ("hatchback", "hatchback", ("hatch",)),
)
CAR_MAKES = ("Harbor", "Summit", "Prairie", "Meadow", "Crest", "Vector")
CAR_MODEL_WORDS = {
    "easy": ("Blaze", "Orchid", "Lagoon", "Coral", "Granite", "Dune"),
    "medium": ("Comet", "Rocket", "Streak", "Bolt", "Dash", "Flash"),
    "hard_mark": ("Arrow", "Dart", "Lance", "Blade", "Sabre", "Classic"),
    "hard_hue": ("City", "Metro", "Urban", "Sprint", "Swift", "Zip"),
}


CAR_CUES = {
    "easy": "body colour",
    "medium": "side stripe colour",
    "hard_mark": "tiny wheel hub colour",
    "hard_hue": "small shift of paint hue",
}


def _car_group(style_index: int, shape: str, style: str, synonyms: tuple[str, ...], make_index: int) -> Group:
    make = CAR_MAKES[make_index]
    _, band = SIGNATURES[make_index]
    cue = _cue(style_index, make_index)
    look = {"shape": shape, "band": band, "body": _base_colour(style_index, make_index)}
    classes = tuple(
        FineClass(f"{make} {word} {style}", fine_look, (f"{make} {word} {synonyms[0]}",))
        for word, fine_look in zip(CAR_MODEL_WORDS[cue], _sibling_looks(cue, "stripe"), strict=True)
    )
    group_synonyms = tuple(f"{make} {synonym}" for synonym in synonyms)
    return Group(f"{make} {style}", CUE_DIFFICULTY[cue], CAR_CUES[cue], look, classes, group_synonyms)


CARS = Domain(
    dataset=DOMAIN_B,
    kind="car",
    generic="car",
    synonyms=("automobile", "motorcar"),
    groups=tuple(
        _car_group(style_index, shape, style, synonyms, make_index)
        for style_index, (shape, style, synonyms) in enumerate(CAR_STYLES)
        for make_index in range(len(CAR_MAKES))
    ),
)


_DOMAINS = {BIRDS.dataset: BIRDS, CARS.dataset: CARS}


def miniworld_domain(dataset: str) -> Domain:
    try:
        return _DOMAINS[dataset]
    except KeyError:
        raise ValueError(f"unknown mini world domain {dataset!r} (allowed: {', '.join(DOMAINS)})") from None


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
