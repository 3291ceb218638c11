"""Oxford-IIIT Pets: official layout, trainval/test split, pet > cat|dog > breed.

The official download is images.tar.gz (images/<Breed>_<n>.jpg) and annotations.tar.gz
(annotations/trainval.txt, annotations/test.txt with lines "<image> <class id> <species> <breed id>",
species 1 = cat, 2 = dog). Labels: "american_pit_bull_terrier" -> "American Pit Bull Terrier".
"""

from __future__ import annotations

from speciarl.data.archive import Layout
from speciarl.data.params import PetsParams
from speciarl.data.real.base import LoadContext, LoadedDataset, Record, build_taxonomy, read_rows

NAME = "pets"
LEVELS = ["generic", "species", "breed"]
ROOT = "pet"
SPECIES = {"1": "cat", "2": "dog"}
SYNONYMS = {
    "pet": ["animal"],
    "cat": ["domestic cat", "house cat", "Felis catus"],
    "dog": ["domestic dog", "Canis familiaris"],
    # the dataset's short names of these breeds
    "German Shorthaired": ["German Shorthaired Pointer"],
    "Wheaten Terrier": ["Soft-coated Wheaten Terrier"],
    "Saint Bernard": ["St. Bernard"],
    "Shiba Inu": ["Shiba"],
    "Great Pyrenees": ["Pyrenean Mountain Dog"],
}


def clean_name(breed: str) -> str:
    return " ".join(word[:1].upper() + word[1:] for word in breed.split("_") if word)


def load(params: PetsParams, ctx: LoadContext) -> LoadedDataset:
    layout = Layout(NAME, params.source, ctx.cache_dir)
    images = layout.find("images", archives=["images.tar.gz"])
    lists = [f"annotations/{split}.txt" for split in ("trainval", "test")]
    annotations = layout.require(lists, archives=["annotations.tar.gz"])

    species_of: dict[str, str] = {}
    splits = {}
    for split in ("trainval", "test"):
        path = annotations[f"annotations/{split}.txt"]
        records = []
        for image, _class_id, species, _breed_id in read_rows(path, 4, "'<image> <class id> <species> <breed id>'"):
            if species not in SPECIES:
                raise ValueError(f"pets: {path}: image {image} has species {species!r} (expected 1 = cat or 2 = dog)")
            label = clean_name(image.rsplit("_", 1)[0])
            if species_of.setdefault(label, SPECIES[species]) != SPECIES[species]:
                raise ValueError(f"pets: {path}: breed {label!r} is listed as both cat and dog")
            records.append(Record(key=f"images/{image}.jpg", label=label, image=images / f"{image}.jpg"))
        splits[split] = records

    class_paths = {
        label: [("generic", ROOT), ("species", kind), ("breed", label)] for label, kind in sorted(species_of.items())
    }
    synonyms = {}
    for label, kind in species_of.items():
        synonyms[f"{ROOT}/{kind}/{label}"] = SYNONYMS.get(label, [])
    for node in (ROOT, f"{ROOT}/cat", f"{ROOT}/dog"):
        synonyms[node] = SYNONYMS[node.rsplit("/", 1)[-1]]
    taxonomy = build_taxonomy(NAME, LEVELS, class_paths, synonyms)
    return LoadedDataset(taxonomy, {split: splits[split] for split in params.splits})
