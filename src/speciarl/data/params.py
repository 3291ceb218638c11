"""Schema of the `data` section of params.yaml."""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field, ValidationInfo, field_validator

from speciarl.config import NonEmptyStr, Section, UniqueList
from speciarl.data.miniworld_params import MiniWorldParams

# "miniworld" renders both mini world domains (miniworld_a, miniworld_b); the others are the real datasets.
DatasetName = Literal["miniworld", "cub", "aircraft", "flowers102", "food101", "pets", "cars"]


class SubsetParams(Section):
    """A deterministic random subset of a split: the same seed always picks the same samples."""

    size: int = Field(ge=1)
    seed: int = 0


class RealDatasetParams(Section):
    """Where one real dataset comes from and which of its splits to prepare."""

    # Split names the source defines; a subclass lists its own.
    official_splits: ClassVar[tuple[str, ...]] = ()

    source: NonEmptyStr
    splits: UniqueList[str]
    # split name -> subset of that split (e.g. the paper trains on {train: {size: 3000, seed: 42}} of CUB)
    subset: dict[str, SubsetParams] = {}

    @field_validator("splits")
    @classmethod
    def _known_splits(cls, splits: list[str]) -> list[str]:
        if not splits:
            raise ValueError("list at least one split")
        for split in splits:
            if cls.official_splits and split not in cls.official_splits:
                raise ValueError(f"unknown split {split!r} (allowed: {', '.join(cls.official_splits)})")
        return splits

    @field_validator("subset")
    @classmethod
    def _subset_of_listed_split(cls, subset: dict, info: ValidationInfo) -> dict:
        for split in subset:
            if split not in info.data.get("splits", ()):
                raise ValueError(f"split {split!r} is not in splits {info.data.get('splits')}")
        return subset


class CubParams(RealDatasetParams):
    official_splits: ClassVar = ("train", "test")
    # CUB_200_2011.tgz, or the folder it extracts to
    source: NonEmptyStr = "data/raw/CUB_200_2011.tgz"
    splits: UniqueList[str] = ["train", "test"]


class AircraftParams(RealDatasetParams):
    official_splits: ClassVar = ("train", "val", "trainval", "test")
    # fgvc-aircraft-2013b.tar.gz, or the folder it extracts to
    source: NonEmptyStr = "data/raw/fgvc-aircraft-2013b.tar.gz"
    splits: UniqueList[str] = ["train", "val", "test"]


class Flowers102Params(RealDatasetParams):
    # the official splits are train, val, test; a split file defines its own (checked when it is read)
    official_splits: ClassVar = ()
    # a folder with 102flowers.tgz (or its jpg/ folder), imagelabels.mat and setid.mat
    source: NonEmptyStr = "data/raw/flowers102"
    splits: UniqueList[str] = ["train", "val", "test"]
    # optional JSON split file replacing setid.mat, e.g. CoOp's split_zhou_OxfordFlowers.json:
    # {"train": [["image_04677.jpg", 0, "pink primrose"], ...], "val": [...], "test": [...]}
    split_file: NonEmptyStr | None = None


class Food101Params(RealDatasetParams):
    official_splits: ClassVar = ("train", "test")
    # food-101.tar.gz, or the folder it extracts to
    source: NonEmptyStr = "data/raw/food-101.tar.gz"
    splits: UniqueList[str] = ["train", "test"]


class PetsParams(RealDatasetParams):
    official_splits: ClassVar = ("trainval", "test")
    # a folder with images.tar.gz and annotations.tar.gz (or their images/ and annotations/ folders)
    source: NonEmptyStr = "data/raw/oxford-iiit-pet"
    splits: UniqueList[str] = ["trainval", "test"]


class CarsParams(RealDatasetParams):
    official_splits: ClassVar = ("train", "test")
    # a Hugging Face dataset id, or a local folder laid out like it (README.md + data/<split>-*.parquet)
    source: NonEmptyStr = "tanganke/stanford_cars"
    # the dataset repository commit to load (ignored for a local folder)
    revision: str | None = "6875eacf7f3231c41c4093f12c0e0c98dcadab5b"
    splits: UniqueList[str] = ["train", "test"]


class DataParams(Section):
    prepared_dir: NonEmptyStr = "data/prepared"
    datasets: UniqueList[DatasetName] = Field(["miniworld"], min_length=1)
    miniworld: MiniWorldParams = MiniWorldParams()
    max_corrupt_fraction: float = Field(0.01, ge=0.0, le=1.0)
    # extracted archives and the prepared WordNet folder (reused between runs; not a pipeline output)
    cache_dir: NonEmptyStr = "data/cache"
    # a WordNet 3.0 database folder (data.noun, index.noun, ...) for Food-101 / Flowers102 hypernyms;
    # null, or a folder that does not exist, skips them with a warning
    wordnet_dir: NonEmptyStr | None = "/usr/share/wordnet"
    # processes that decode and check images
    workers: int = Field(2, ge=1, le=64)
    cub: CubParams = CubParams()
    aircraft: AircraftParams = AircraftParams()
    flowers102: Flowers102Params = Flowers102Params()
    food101: Food101Params = Food101Params()
    pets: PetsParams = PetsParams()
    cars: CarsParams = CarsParams()
