"""CUB-200-2011: official archive layout, official train/test split, AviList taxonomy.

Layout (CUB_200_2011.tgz): CUB_200_2011/{images.txt, image_class_labels.txt, train_test_split.txt,
classes.txt, images/<class folder>/<file>.jpg}. Files outside CUB_200_2011/ in the archive
(attributes.txt) are not read. Labels (display names) are AviList's English names of CUB's
species ("022.Chuck_will_Widow" -> "Chuck-will's-widow", "110.Geococcyx" -> "Greater Roadrunner");
CUB's own name, spelled out from the folder ("Chuck-will Widow"), stays a synonym, next to the
scientific name. A class AviList does not name (the Myrtle Warbler, a subspecies group) keeps
CUB's name. Taxonomy: bird > order > family > genus > species, from the AviList 2025 table that
the `birdnames` package ships; a class AviList lacks sits directly under "bird" (with a warning).
"""

from __future__ import annotations

import csv
import functools
import importlib.util
import re
from dataclasses import dataclass
from pathlib import Path

from speciarl.data.archive import Layout
from speciarl.data.params import CubParams
from speciarl.data.real.base import LoadContext, LoadedDataset, Record, build_taxonomy, read_rows

NAME = "cub"
FILES = ("images.txt", "image_class_labels.txt", "train_test_split.txt", "classes.txt", "images")
LEVELS = ["generic", "order", "family", "genus", "species", "subspecies"]
ROOT = "bird"
AVILIST_CSV = "data/processed/avilist_2025_taxonomy.csv"

# CUB names that AviList spells differently or that changed since 2011 -> AviList scientific name.
# (Possessives without "'s", hyphens and grey/gray are handled by the matching key instead.)
AVILIST_NAMES = {
    "Artic Tern": "Sterna paradisaea",  # CUB misspelling
    "Bank Swallow": "Riparia riparia",  # "Sand Martin" in AviList
    "Cape Glossy Starling": "Lamprotornis nitens",  # "Cape Starling"
    "Cardinal": "Cardinalis cardinalis",
    "Cliff Swallow": "Petrochelidon pyrrhonota",  # "American Cliff Swallow"
    "Common Raven": "Corvus corax",  # "Northern Raven"
    "Eared Grebe": "Podiceps nigricollis",  # "Black-necked Grebe"
    "Florida Jay": "Aphelocoma coerulescens",  # "Florida Scrub Jay"
    "Forsters Tern": "Sterna forsteri",
    "Frigatebird": "Fregata magnificens",
    "Geococcyx": "Geococcyx californianus",  # CUB names the genus; the birds are Greater Roadrunners
    "Green Violetear": "Colibri thalassinus",  # split since; the old name stays with C. thalassinus
    "Herring Gull": "Larus smithsonianus",  # CUB's birds are North American: "American Herring Gull"
    "House Wren": "Troglodytes aedon",  # "Northern House Wren" after the split
    "Le Conte Sparrow": "Ammospiza leconteii",
    "Mockingbird": "Mimus polyglottos",
    "Myrtle Warbler": "Setophaga coronata coronata",  # a subspecies group of Yellow-rumped Warbler
    "Nelson Sharp-tailed Sparrow": "Ammospiza nelsoni",  # "Nelson's Sparrow" since the split
    "Nighthawk": "Chordeiles minor",
    "Sayornis": "Sayornis saya",  # CUB names the genus; the birds are Say's Phoebes
    "Tree Sparrow": "Spizelloides arborea",  # "American Tree Sparrow"
    "Whip-poor Will": "Antrostomus vociferus",  # "Eastern Whip-poor-will" after the split
    "White Pelican": "Pelecanus erythrorhynchos",
    "White-breasted Kingfisher": "Halcyon smyrnensis",  # "White-throated Kingfisher"
    "Yellow Warbler": "Setophaga aestiva",  # "American Yellow Warbler" after the split
}


def clean_name(folder: str) -> str:
    """ "001.Black_footed_Albatross" -> "Black-footed Albatross": CUB's name, spelled out from its folder.

    CUB writes hyphens as "_" followed by a lowercase word, and spaces as "_" before a capital.
    """
    name = folder.split(".", 1)[1] if re.match(r"^\d+\.", folder) else folder
    words = [w for w in name.split("_") if w]
    out = words[0]
    for word in words[1:]:
        out += ("-" if word[0].islower() else " ") + word
    return out


def _match_key(name: str) -> str:
    name = name.lower().replace("\u2019", "'")
    name = re.sub(r"'s\b", "", name).replace("'", "")
    name = re.sub(r"[-_\s]+", " ", name).strip()
    return name.replace("grey", "gray")


@functools.lru_cache(maxsize=1)
def avilist() -> tuple[dict[str, dict], dict[str, list[dict]]]:
    """AviList rows by scientific name, and species rows by matching key of the common name."""
    spec = importlib.util.find_spec("birdnames")
    if spec is None or not spec.submodule_search_locations:
        raise ValueError("cub: the birdnames package (AviList table) is not installed")
    path = Path(list(spec.submodule_search_locations)[0]) / AVILIST_CSV
    if not path.exists():
        raise ValueError(f"cub: AviList table not found at {path} (birdnames package layout changed?)")
    by_scientific: dict[str, dict] = {}
    by_common: dict[str, list[dict]] = {}
    with path.open(encoding="utf-8", newline="") as f:
        for row in csv.DictReader(f):
            rank = row["avilist_taxon_rank"]
            if rank not in ("species", "subspecies"):
                continue
            by_scientific[row["scientific_name"]] = row
            if rank == "species" and row["avilist_common_name"]:
                by_common.setdefault(_match_key(row["avilist_common_name"]), []).append(row)
    return by_scientific, by_common


@dataclass(frozen=True)
class AviListMatch:
    """Where a CUB class sits in AviList: its display name, taxonomy path and synonyms by node id."""

    display: str
    path: list[tuple[str, str]]
    synonyms: dict[str, list[str]]


def avilist_path(cub_name: str) -> AviListMatch | None:
    """The AviList match of a CUB class (by CUB's spelled-out name), or None if AviList has none."""
    by_scientific, by_common = avilist()
    if cub_name in AVILIST_NAMES:
        row = by_scientific.get(AVILIST_NAMES[cub_name])
    else:
        rows = by_common.get(_match_key(cub_name), [])
        row = rows[0] if len(rows) == 1 else None
    if row is None:
        return None
    upper = [
        ("generic", ROOT),
        ("order", row["avilist_order"]),
        ("family", row["avilist_family"]),
        ("genus", row["genus"]),
    ]
    ids = "/".join(name for _, name in upper)
    synonyms: dict[str, list[str]] = {}
    # AviList names species only; a subspecies group keeps CUB's name
    display = row["avilist_common_name"] or cub_name
    if row["avilist_taxon_rank"] == "subspecies":
        species = by_scientific[" ".join(row["scientific_name"].split()[:2])]
        species_name = species["avilist_common_name"] or species["scientific_name"]
        path = upper + [("species", species_name), ("subspecies", display)]
        synonyms[f"{ids}/{species_name}"] = [species["scientific_name"]]
        leaf = f"{ids}/{species_name}/{display}"
    else:
        path = upper + [("species", display)]
        leaf = f"{ids}/{display}"
    # CUB names two classes by their genus ("Sayornis", "Geococcyx"): that name stays the genus's,
    # so an answer naming the genus reads as less specific, not as the species
    synonyms[leaf] = [name for name in (cub_name, row["scientific_name"]) if name != row["genus"]]
    return AviListMatch(display, path, synonyms)


def load(params: CubParams, ctx: LoadContext) -> LoadedDataset:
    layout = Layout(NAME, params.source, ctx.cache_dir)
    files = layout.require(FILES)
    class_rows = read_rows(files["classes.txt"], 2, "'<class id> <class folder>'")
    matches = {class_id: (clean_name(folder), avilist_path(clean_name(folder))) for class_id, folder in class_rows}
    classes = {class_id: match.display if match else cub_name for class_id, (cub_name, match) in matches.items()}
    paths = dict(read_rows(files["images.txt"], 2, "'<image id> <relative path>'"))
    labels = dict(read_rows(files["image_class_labels.txt"], 2, "'<image id> <class id>'"))
    is_train = dict(read_rows(files["train_test_split.txt"], 2, "'<image id> <is_training_image>'"))

    splits: dict[str, list[Record]] = {"train": [], "test": []}
    images_dir = files["images"]
    for image_id, rel in paths.items():
        try:
            label = classes[labels[image_id]]
            split = {"1": "train", "0": "test"}[is_train[image_id]]
        except KeyError as exc:
            raise ValueError(f"cub: image {image_id} ({rel}) has no valid class or split entry ({exc})") from None
        splits[split].append(Record(key=f"images/{rel}", label=label, image=images_dir / rel))

    class_paths, synonyms, unmatched = {}, {ROOT: ["Aves"]}, []
    for cub_name, match in matches.values():
        if match is None:
            unmatched.append(cub_name)
            class_paths[cub_name] = [("generic", ROOT), ("species", cub_name)]
        else:
            class_paths[match.display] = match.path
            synonyms.update(match.synonyms)
    warnings = []
    if unmatched:
        warnings.append(
            f"cub: {len(unmatched)} classes not found in AviList, placed under '{ROOT}': {', '.join(unmatched)}"
        )
    taxonomy = build_taxonomy(NAME, LEVELS, class_paths, synonyms)
    return LoadedDataset(taxonomy, {s: splits[s] for s in params.splits}, warnings)
