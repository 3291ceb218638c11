"""Oxford Flowers102: jpg/, imagelabels.mat, setid.mat; official or user-supplied splits.

The official download is three files: 102flowers.tgz (holding jpg/image_00001.jpg ...),
imagelabels.mat (`labels`, 1-based class per image) and setid.mat (`trnid`, `valid`, `tstid`,
1-based image numbers). Class names come from the published list of 102 names shipped with this
package. A split file (e.g. CoOp's split_zhou_OxfordFlowers.json) may replace setid.mat.
Taxonomy: flower > family > genus > class from the curated table flowers102_groups.txt for the 76
classes WordNet 3.0 lacks, confuses with another plant, or only files under growth forms ("herb",
"shrub"); flower > WordNet hypernyms (noun.plant) > class for the other 26, matched by their own
name only (flower names are not compositional: a "siam tulip" is no tulip, so no head-noun
fallback). Without WordNet those 26 sit directly under "flower", with a warning.
"""

from __future__ import annotations

import json
from pathlib import Path

from speciarl.data.archive import Layout
from speciarl.data.params import Flowers102Params
from speciarl.data.real.base import LoadContext, LoadedDataset, Record, wordnet_taxonomy

NAME = "flowers102"
CLASS_NAMES_FILE = Path(__file__).with_name("flowers102_classes.txt")
OFFICIAL_SPLITS = {"train": "trnid", "val": "valid", "test": "tstid"}
ROOT = "flower"
ROOT_SYNONYMS = ["plant", "flowering plant"]
# WordNet senses below these are the hierarchy; above them it is too abstract to be an answer
ANCHORS = ("plant.n.02", "vascular_plant.n.01", "spermatophyte.n.01", "angiosperm.n.01", "flower.n.01")
# classes whose most frequent WordNet sense is another plant than the one the dataset shows
SENSES = {
    "black-eyed susan": "black-eyed_susan.n.03",  # Rudbeckia, not the Thunbergia vine
    "canterbury bells": "canterbury_bell.n.02",  # Campanula medium
}


def class_names() -> list[str]:
    names = [line.strip() for line in CLASS_NAMES_FILE.read_text(encoding="utf-8").splitlines() if line.strip()]
    if len(names) != 102:
        raise ValueError(f"{CLASS_NAMES_FILE}: expected 102 class names, found {len(names)}")
    return names


def _mat_vector(path: Path, key: str) -> list[int]:
    from scipy.io import loadmat

    try:
        data = loadmat(path)
    except Exception as exc:  # scipy raises several unrelated types for a damaged file
        raise ValueError(f"{path}: not a readable .mat file ({exc})") from None
    if key not in data:
        raise ValueError(f"{path}: no variable {key!r} (found: {', '.join(k for k in data if not k.startswith('__'))})")
    return [int(v) for v in data[key].ravel()]


def _image_number(entry, split_file: Path, split: str) -> tuple[int, int | None]:
    """(1-based image number, 0-based label or None) of one split-file entry."""
    path, label = (entry[0], entry[1] if len(entry) > 1 else None) if isinstance(entry, list) else (entry, None)
    stem = Path(str(path)).name
    if not (stem.startswith("image_") and stem.endswith(".jpg") and stem[6:-4].isdigit()):
        raise ValueError(f"{split_file}: split {split!r}: entry {entry!r} does not name an image_NNNNN.jpg file")
    return int(stem[6:-4]), (int(label) if label is not None else None)


def read_split_file(split_file: Path, labels: list[int]) -> dict[str, list[int]]:
    """Split name -> 1-based image numbers, from a JSON file {split: [entry, ...]}.

    An entry is an image path or [path, 0-based label, ...] (CoOp's format); a given label must
    agree with imagelabels.mat, so a split file for another numbering is caught.
    """
    try:
        raw = json.loads(split_file.read_text(encoding="utf-8"))
    except FileNotFoundError:
        message = f"flowers102: split file not found: {split_file} (data.flowers102.split_file)"
        raise FileNotFoundError(message) from None
    except json.JSONDecodeError as exc:
        raise ValueError(f"{split_file}: not valid JSON ({exc})") from None
    if not isinstance(raw, dict) or not all(isinstance(v, list) for v in raw.values()):
        raise ValueError(f"{split_file}: expected an object mapping split names to lists of images")
    splits: dict[str, list[int]] = {}
    for split, entries in raw.items():
        numbers = []
        for entry in entries:
            number, label = _image_number(entry, split_file, split)
            if not 1 <= number <= len(labels):
                raise ValueError(f"{split_file}: split {split!r}: image {number} is not among the {len(labels)} images")
            if label is not None and label != labels[number - 1] - 1:
                raise ValueError(
                    f"{split_file}: split {split!r}: image_{number:05d}.jpg has label {label}, "
                    f"imagelabels.mat says {labels[number - 1] - 1} (0-based)"
                )
            numbers.append(number)
        splits[split] = numbers
    return splits


def load(params: Flowers102Params, ctx: LoadContext) -> LoadedDataset:
    layout = Layout(NAME, params.source, ctx.cache_dir)
    files = layout.require(["imagelabels.mat"] + ([] if params.split_file else ["setid.mat"]))
    jpg = layout.find("jpg", archives=["102flowers.tgz"])
    labels = _mat_vector(files["imagelabels.mat"], "labels")
    names = class_names()
    if any(not 1 <= label <= len(names) for label in labels):
        raise ValueError(f"{files['imagelabels.mat']}: labels outside 1..{len(names)}")

    if params.split_file:
        available = read_split_file(Path(params.split_file), labels)
    else:
        available = {split: _mat_vector(files["setid.mat"], key) for split, key in OFFICIAL_SPLITS.items()}
    for split in params.splits:
        if split not in available:
            raise ValueError(f"data.flowers102.splits: unknown split {split!r} (allowed: {', '.join(available)})")

    def record(number: int) -> Record:
        if not 1 <= number <= len(labels):
            raise ValueError(f"flowers102: split lists image {number}, but imagelabels.mat has {len(labels)} images")
        filename = f"image_{number:05d}.jpg"
        return Record(key=f"jpg/{filename}", label=names[labels[number - 1] - 1], image=jpg / filename)

    splits = {split: [record(n) for n in available[split]] for split in params.splits}
    taxonomy, warnings = wordnet_taxonomy(NAME, names, ROOT, ROOT_SYNONYMS, "noun.plant", ANCHORS, False, ctx, SENSES)
    return LoadedDataset(taxonomy, splits, warnings)
