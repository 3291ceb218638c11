"""FGVC-Aircraft 2013b: official archive layout and splits; labels are variants.

Layout (fgvc-aircraft-2013b.tar.gz): fgvc-aircraft-2013b/data/{images/<id>.jpg,
images_{variant,family,manufacturer}_{train,val,trainval,test}.txt} with lines "<id> <name>".
Taxonomy: aircraft > manufacturer ("Boeing") > family ("Boeing 707") > variant ("707-320"), read
from the dataset's own per-image annotations of the three levels.
"""

from __future__ import annotations

from speciarl.data.archive import Layout
from speciarl.data.params import AircraftParams
from speciarl.data.real.base import LoadContext, LoadedDataset, Record, build_taxonomy, read_rows

NAME = "aircraft"
LEVEL_NAMES = ("variant", "family", "manufacturer")
ANNOTATED_SPLITS = ("train", "val", "test")  # trainval is their union
LEVELS = ["generic", "manufacturer", "family", "variant"]
ROOT = "aircraft"
ROOT_SYNONYMS = ["airplane", "aeroplane", "plane"]


def _annotation(level: str, split: str) -> str:
    return f"data/images_{level}_{split}.txt"


def _with_maker(name: str, maker: str) -> str:
    """The name with its manufacturer in front ("A340" -> "Airbus A340"), or without it if it has one."""
    return name[len(maker) + 1 :] if name.startswith(maker + " ") else f"{maker} {name}"


def load(params: AircraftParams, ctx: LoadContext) -> LoadedDataset:
    layout = Layout(NAME, params.source, ctx.cache_dir)
    wanted = [_annotation(level, split) for split in ANNOTATED_SPLITS for level in LEVEL_NAMES]
    files = layout.require(["data/images", *wanted])

    # image id -> {level: name}, per annotated split
    annotations: dict[str, dict[str, dict[str, str]]] = {}
    for split in ANNOTATED_SPLITS:
        per_image: dict[str, dict[str, str]] = {}
        for level in LEVEL_NAMES:
            path = files[_annotation(level, split)]
            for image_id, name in read_rows(path, 2, f"'<image id> <{level}>'"):
                per_image.setdefault(image_id, {})[level] = name
        for image_id, names in per_image.items():
            if len(names) != len(LEVEL_NAMES):
                missing = [lvl for lvl in LEVEL_NAMES if lvl not in names][0]
                raise ValueError(f"aircraft: image {image_id} of split {split} has no {missing} annotation")
        annotations[split] = per_image

    family_of: dict[str, str] = {}
    maker_of: dict[str, str] = {}
    for per_image in annotations.values():
        for names in per_image.values():
            variant, family, maker = names["variant"], names["family"], names["manufacturer"]
            if family_of.setdefault(variant, family) != family:
                raise ValueError(
                    f"aircraft: variant {variant!r} is annotated with two families ({family_of[variant]!r}, {family!r})"
                )
            if maker_of.setdefault(family, maker) != maker:
                raise ValueError(
                    f"aircraft: family {family!r} is annotated with two manufacturers ({maker_of[family]!r}, {maker!r})"
                )

    class_paths, synonyms = {}, {ROOT: ROOT_SYNONYMS}
    for variant, family in sorted(family_of.items()):
        maker = maker_of[family]
        class_paths[variant] = [("generic", ROOT), ("manufacturer", maker), ("family", family), ("variant", variant)]
        synonyms[f"{ROOT}/{maker}/{family}"] = [_with_maker(family, maker)]
        synonyms[f"{ROOT}/{maker}/{family}/{variant}"] = [_with_maker(variant, maker)]
    taxonomy = build_taxonomy(NAME, LEVELS, class_paths, synonyms)

    images = files["data/images"]

    def records(split: str) -> list[Record]:
        parts = ("train", "val") if split == "trainval" else (split,)
        return [
            Record(key=f"data/images/{image_id}.jpg", label=names["variant"], image=images / f"{image_id}.jpg")
            for part in parts
            for image_id, names in annotations[part].items()
        ]

    return LoadedDataset(taxonomy, {split: records(split) for split in params.splits})
