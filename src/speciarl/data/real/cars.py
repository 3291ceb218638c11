"""Stanford Cars, from the Hugging Face dataset `tanganke/stanford_cars` (the official download is gone).

That dataset has an `image` column and a ClassLabel `label` whose names are the 196 official class
names ("AM General Hummer SUV 2000"), with train (8,144) and test (8,041) splits and seven
corrupted copies of test (contrast, gaussian_noise, ...), each stored as parquet shards
(data/<split>-NNNNN-of-NNNNN.parquet). Only the shards of the configured splits are downloaded and
prepared: the dataset card's per-split file lists are read first, then a builder over just those
files runs. The source may also be a local folder laid out the same way (README.md with the
features and configs, data/<split>-*.parquet); it needs no network.
Taxonomy: car > make ("AM General") > model ("AM General Hummer SUV") > class (the model year).
Errors: an unreachable or malformed dataset, a split it does not have, or columns other than
`image` + ClassLabel `label` stop with one line naming data.cars.source.
"""

from __future__ import annotations

import re
from pathlib import Path

from speciarl.data.params import CarsParams
from speciarl.data.real.base import LoadContext, LoadedDataset, Record, build_taxonomy

NAME = "cars"
LEVELS = ["generic", "make", "model", "year"]
ROOT = "car"
ROOT_SYNONYMS = ["automobile", "vehicle", "motor vehicle"]
# makes of the 196 classes whose name has more than one word
MULTI_WORD_MAKES = ("AM General", "Aston Martin", "Land Rover")


def parse_name(name: str) -> tuple[str, str, str | None]:
    """ "AM General Hummer SUV 2000" -> ("AM General", "Hummer SUV", "2000"); year None if absent."""
    words = name.split()
    year = words.pop() if len(words) > 1 and re.fullmatch(r"(19|20)\d\d", words[-1]) else None
    rest = " ".join(words)
    make = next((m for m in MULTI_WORD_MAKES if rest == m or rest.startswith(m + " ")), words[0])
    model = rest[len(make) :].strip()
    return make, model, year


def _load(params: CarsParams, ctx: LoadContext) -> dict:
    """{split: datasets.Dataset} for the configured splits, preparing no other split's files."""
    import datasets

    local = Path(params.source).is_dir()
    revision = None if local else params.revision
    where = params.source if local else f"{params.source}@{params.revision}"
    cache_dir = str(ctx.cache_dir / "huggingface")
    try:
        # the card's configs, resolved to each split's files: only metadata is fetched here
        listed = datasets.load_dataset_builder(params.source, revision=revision, cache_dir=cache_dir).config.data_files
    except Exception as exc:  # the hub client and the builders raise many unrelated types
        raise ValueError(f"cars: cannot load the dataset {where} (data.cars.source): {_first_line(exc)}") from None
    for split in params.splits:
        if split not in (listed or {}):
            raise ValueError(
                f"cars: the dataset {where} has no split {split!r} (it has: {', '.join(listed or {}) or 'none'})"
            )
    try:
        builder = datasets.load_dataset_builder(
            params.source,
            revision=revision,
            cache_dir=cache_dir,
            data_files={split: list(listed[split]) for split in params.splits},
        )
        builder.download_and_prepare()
        return {split: builder.as_dataset(split=split) for split in params.splits}
    except Exception as exc:
        raise ValueError(f"cars: cannot load the dataset {where} (data.cars.source): {_first_line(exc)}") from None


def _first_line(exc: Exception) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__


def load(params: CarsParams, ctx: LoadContext) -> LoadedDataset:
    import datasets

    dataset = _load(params, ctx)
    features = dataset[params.splits[0]].features
    if not isinstance(features.get("label"), datasets.ClassLabel) or "image" not in features:
        raise ValueError(f"cars: the dataset {params.source} needs an 'image' column and a ClassLabel 'label' column")
    names = features["label"].names

    splits = {}
    for split in params.splits:
        # raw encoded bytes, read row by row when the image is needed
        table = dataset[split].cast_column("image", datasets.Image(decode=False))
        splits[split] = [
            Record(f"{split}/{index:05d}", names[label], image=lambda t=table, i=index: t[i]["image"]["bytes"])
            for index, label in enumerate(table["label"])
        ]

    class_paths, synonyms = {}, {ROOT: ROOT_SYNONYMS}
    for name in names:
        make, model, year = parse_name(name)
        model_name = f"{make} {model}".strip()
        path = [("generic", ROOT), ("make", make), ("model", model_name)]
        if year is not None:
            path.append(("year", name))
            synonyms[f"{ROOT}/{make}/{model_name}/{name}"] = [f"{year} {model_name}"]  # "2012 Tesla Model S Sedan"
        synonyms[f"{ROOT}/{make}/{model_name}"] = [model]
        class_paths[name] = path
    taxonomy = build_taxonomy(NAME, LEVELS, class_paths, synonyms)
    return LoadedDataset(taxonomy, splits)
