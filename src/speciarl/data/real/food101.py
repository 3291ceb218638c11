"""Food-101: official archive layout and train/test split.

Layout (food-101.tar.gz): food-101/{images/<class>/<id>.jpg, meta/classes.txt, meta/train.txt,
meta/test.txt}; split files list "<class>/<id>" without the extension. Labels: "apple_pie" ->
"apple pie". Taxonomy: food > dish types or cuisines > class from the curated table
food101_groups.txt for the 44 dishes WordNet 3.0 lacks, files only under "dish" (a name of the
root) or under a misleading head noun; food > WordNet hypernyms (noun.food) > class for the other
57, a dish missing from WordNet going under its head noun's sense ("chicken curry" under "curry").
Without WordNet those 57 sit directly under "food", with a warning.
"""

from __future__ import annotations

from speciarl.data.archive import Layout
from speciarl.data.params import Food101Params
from speciarl.data.real.base import LoadContext, LoadedDataset, Record, read_rows, wordnet_taxonomy

NAME = "food101"
ROOT = "food"
ROOT_SYNONYMS = ["dish", "meal"]
ANCHORS = ("food.n.01", "food.n.02", "nutriment.n.01")


def clean_name(folder: str) -> str:
    return folder.replace("_", " ").strip()


def load(params: Food101Params, ctx: LoadContext) -> LoadedDataset:
    layout = Layout(NAME, params.source, ctx.cache_dir)
    files = layout.require(["images", "meta/classes.txt", *(f"meta/{split}.txt" for split in params.splits)])
    folders = [row[0] for row in read_rows(files["meta/classes.txt"], 1, "'<class folder>'")]
    labels = {folder: clean_name(folder) for folder in folders}
    images = files["images"]

    splits = {}
    for split in params.splits:
        records = []
        for (entry,) in read_rows(files[f"meta/{split}.txt"], 1, "'<class>/<image id>'"):
            folder = entry.split("/", 1)[0]
            if folder not in labels:
                raise ValueError(f"food101: meta/{split}.txt: {entry!r} names a class not in meta/classes.txt")
            records.append(Record(key=f"images/{entry}.jpg", label=labels[folder], image=images / f"{entry}.jpg"))
        splits[split] = records
    names = list(labels.values())
    taxonomy, warnings = wordnet_taxonomy(NAME, names, ROOT, ROOT_SYNONYMS, "noun.food", ANCHORS, True, ctx)
    return LoadedDataset(taxonomy, splits, warnings)
