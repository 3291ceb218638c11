"""Small copies of the six real datasets, in their official layouts, built from generated images."""

from __future__ import annotations

import io
import json
import os
import tarfile
from pathlib import Path

from PIL import Image

# the Debian wordnet-base folder; point the variable elsewhere to run the tests as on a machine without it
WORDNET_DIR = Path(os.environ.get("SPECIARL_TEST_WORDNET_DIR", "/usr/share/wordnet"))
HAS_WORDNET = (WORDNET_DIR / "data.noun").is_file()


def jpeg_bytes(seed: int, size: tuple[int, int] = (40, 30), fmt: str = "JPEG", mode: str = "RGB") -> bytes:
    """A small distinct image; `mode` "L" or "CMYK" gives the greyscale and CMYK JPEGs real archives hold."""
    image = Image.new("RGB", size, ((seed * 53) % 256, (seed * 97) % 256, (seed * 31) % 256))
    image.putpixel((seed % size[0], 0), (255, 255, 255))  # no two images alike
    out = io.BytesIO()
    image.convert(mode).save(out, fmt)
    return out.getvalue()


def apple_double(path: Path) -> None:
    """The "._<name>" resource-fork file a macOS tar adds next to `path`: not an image, never listed."""
    write(path.with_name(f"._{path.name}"), b"\x00\x05\x16\x07\x00\x02\x00\x00Mac OS X        ")


def write(path: Path, data: bytes | str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data if isinstance(data, bytes) else data.encode())


def tar_folder(folder: Path, archive: Path) -> Path:
    """Pack `folder` (as its top-level directory) into a .tgz, like the official downloads."""
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(folder, arcname=folder.name)
    return archive


def tar_contents(base: Path, names: list[str], archive: Path) -> Path:
    """Pack the named entries of `base` at the archive's top level (Flowers, Pets downloads)."""
    with tarfile.open(archive, "w:gz") as tar:
        for name in names:
            tar.add(base / name, arcname=name)
    return archive


# CUB-200-2011 ------------------------------------------------------------------------------------

CUB_CLASSES = ["001.Black_footed_Albatross", "103.Sayornis", "171.Myrtle_Warbler", "201.Imaginary_Bird"]
# as in the real archive: some images are greyscale, a few CMYK (image ids of this copy)
CUB_IMAGE_MODES = {2: "L", 5: "CMYK"}


def build_cub(tmp: Path, per_class: int = 3, corrupt: int = 0, drop: str | None = None, archive: bool = True) -> Path:
    """CUB_200_2011.tgz with per_class images per class: the first per_class-1 train, the last test.

    Like the real archive it holds attributes.txt next to CUB_200_2011/, greyscale and CMYK JPEGs,
    and AppleDouble "._*" files beside some images. `corrupt` of the training images are truncated
    JPEGs; `drop` leaves out one layout file.
    """
    root = tmp / "src" / "CUB_200_2011"
    images, labels, split, classes = [], [], [], []
    image_id = 0
    for class_id, folder in enumerate(CUB_CLASSES, 1):
        classes.append(f"{class_id} {folder}")
        for n in range(per_class):
            image_id += 1
            rel = f"{folder}/{folder.split('.', 1)[1]}_{n:04d}_{image_id}.jpg"
            data = jpeg_bytes(image_id, mode=CUB_IMAGE_MODES.get(image_id, "RGB"))
            if corrupt and n == 0:
                data, corrupt = data[: len(data) // 3], corrupt - 1
            write(root / "images" / rel, data)
            if n == 0:
                apple_double(root / "images" / rel)
            images.append(f"{image_id} {rel}")
            labels.append(f"{image_id} {class_id}")
            split.append(f"{image_id} {0 if n == per_class - 1 else 1}")
    files = {
        "images.txt": images,
        "image_class_labels.txt": labels,
        "train_test_split.txt": split,
        "classes.txt": classes,
    }
    for name, lines in files.items():
        if name != drop:
            write(root / name, "\n".join(lines) + "\n")
    if not archive:
        return root
    write(root.parent / "attributes.txt", "1 has_bill_shape::curved_(up_or_down)\n")  # top level, outside CUB_200_2011/
    return tar_contents(root.parent, [root.name, "attributes.txt"], tmp / "CUB_200_2011.tgz")


# FGVC-Aircraft 2013b -----------------------------------------------------------------------------

# as in the real lists: names with "/" and spaces, a variant named like its family
AIRCRAFT = [
    ("707-320", "Boeing 707", "Boeing"),
    ("737-800", "Boeing 737", "Boeing"),
    ("A340-300", "A340", "Airbus"),
    ("F/A-18", "F/A-18", "McDonnell Douglas"),
    ("Cessna 172", "Cessna 172", "Cessna"),
]
FIRST_AIRCRAFT_ID = 34309  # image ids are 7 digits with leading zeros ("0034309")


def build_aircraft(tmp: Path) -> Path:
    root = tmp / "src" / "fgvc-aircraft-2013b"
    data = root / "data"
    lines = {
        (level, split): []
        for level in ("variant", "family", "manufacturer")
        for split in ("train", "val", "test", "trainval")
    }
    number = FIRST_AIRCRAFT_ID - 1
    for variant, family, maker in AIRCRAFT:
        for split in ("train", "val", "test"):
            number += 1
            image_id = f"{number:07d}"
            write(data / "images" / f"{image_id}.jpg", jpeg_bytes(number))
            for level, name in (("variant", variant), ("family", family), ("manufacturer", maker)):
                lines[level, split].append(f"{image_id} {name}")
                if split != "test":
                    lines[level, "trainval"].append(f"{image_id} {name}")
    for (level, split), rows in lines.items():
        write(data / f"images_{level}_{split}.txt", "\n".join(rows) + "\n")
    write(data / "variants.txt", "\n".join(v for v, _, _ in AIRCRAFT) + "\n")
    return tar_folder(root, tmp / "fgvc-aircraft-2013b.tar.gz")


# Flowers102 --------------------------------------------------------------------------------------

# 1-based class numbers of the published list: pink primrose, bird of paradise, daffodil, rose
FLOWER_CLASSES = [1, 8, 42, 74]


def build_flowers(tmp: Path) -> Path:
    """A folder like the official download: 102flowers.tgz (with an AppleDouble "._*" file in jpg/),
    imagelabels.mat, setid.mat (4 images per class)."""
    from scipy.io import savemat

    folder = tmp / "flowers102"
    staging = tmp / "staging"
    labels = []
    for number in range(1, 4 * len(FLOWER_CLASSES) + 1):
        write(staging / "jpg" / f"image_{number:05d}.jpg", jpeg_bytes(number))
        labels.append(FLOWER_CLASSES[(number - 1) % len(FLOWER_CLASSES)])
    apple_double(staging / "jpg" / "image_00001.jpg")
    folder.mkdir(parents=True)
    tar_contents(staging, ["jpg"], folder / "102flowers.tgz")
    savemat(folder / "imagelabels.mat", {"labels": [labels]})
    # images 1-4 train, 5-8 val, 9-16 test (one of each class in train and val)
    savemat(folder / "setid.mat", {"trnid": [[1, 2, 3, 4]], "valid": [[5, 6, 7, 8]], "tstid": [list(range(9, 17))]})
    return folder


def coop_split_file(tmp: Path) -> Path:
    """A split file in CoOp's format (0-based labels): other images per split than setid.mat."""

    def entry(number: int) -> list:
        return [f"image_{number:05d}.jpg", FLOWER_CLASSES[(number - 1) % 4] - 1, "name"]

    path = tmp / "split_zhou_OxfordFlowers.json"
    path.write_text(
        json.dumps(
            {"train": [entry(n) for n in range(1, 9)], "val": [entry(9)], "test": [entry(n) for n in range(10, 17)]}
        )
    )
    return path


# Food-101 ----------------------------------------------------------------------------------------

FOOD_CLASSES = ["apple_pie", "chicken_curry", "ramen"]


def build_food(tmp: Path) -> Path:
    root = tmp / "src" / "food-101"
    train, test = [], []
    for c, folder in enumerate(FOOD_CLASSES):
        for n in range(3):
            image_id = 100 + 10 * c + n
            write(root / "images" / folder / f"{image_id}.jpg", jpeg_bytes(image_id, mode="L" if n == 1 else "RGB"))
            apple_double(root / "images" / folder / f"{image_id}.jpg")
            (test if n == 2 else train).append(f"{folder}/{image_id}")
    write(root / "meta" / "classes.txt", "\n".join(FOOD_CLASSES) + "\n")
    write(root / "meta" / "train.txt", "\n".join(train) + "\n")
    write(root / "meta" / "test.txt", "\n".join(test) + "\n")
    return tar_folder(root, tmp / "food-101.tar.gz")


# Oxford-IIIT Pets --------------------------------------------------------------------------------

PETS = [("Abyssinian", 1), ("Bengal", 1), ("american_bulldog", 2), ("german_shorthaired", 2)]


def build_pets(tmp: Path) -> Path:
    """A folder with images.tar.gz and annotations.tar.gz, with the real set's quirks: one 'jpg' is
    really a PNG and one is CMYK, annotations/list.txt opens with "#" comment lines, and the
    annotations archive holds AppleDouble "._*" files."""
    staging = tmp / "staging"
    trainval, test = [], []
    for class_id, (breed, species) in enumerate(PETS, 1):
        for n in range(1, 4):
            name = f"{breed}_{n}"
            fmt = "PNG" if (breed, n) == ("Bengal", 1) else "JPEG"
            mode = "CMYK" if (breed, n) == ("Abyssinian", 2) else "RGB"
            write(staging / "images" / f"{name}.jpg", jpeg_bytes(class_id * 10 + n, fmt=fmt, mode=mode))
            (test if n == 3 else trainval).append(f"{name} {class_id} {species} {class_id}")
    write(staging / "annotations" / "trainval.txt", "\n".join(trainval) + "\n")
    write(staging / "annotations" / "test.txt", "\n".join(test) + "\n")
    header = "#Image CLASS-ID SPECIES BREED ID\n#ID: 1:37 Class ids\n#SPECIES: 1:Cat 2:Dog\n"
    write(staging / "annotations" / "list.txt", header + "\n".join(trainval + test) + "\n")
    apple_double(staging / "annotations" / "trainval.txt")
    folder = tmp / "oxford-iiit-pet"
    folder.mkdir(parents=True)
    tar_contents(staging, ["images"], folder / "images.tar.gz")
    tar_contents(staging, ["annotations"], folder / "annotations.tar.gz")
    return folder


# Stanford Cars (Hugging Face layout) -------------------------------------------------------------

# the classes that get images; the ClassLabel lists all 196 names, as the real dataset does
CARS = [
    "AM General Hummer SUV 2000",
    "Acura RL Sedan 2012",
    "Aston Martin V8 Vantage Convertible 2012",
    "Tesla Model S Sedan 2012",
]
CARS_SHARDS = {
    "train": 2,
    "test": 2,
}  # images per class in each split, one shard per image (multi-shard, as on the hub)


def build_cars(tmp: Path) -> Path:
    """A local dataset folder laid out like tanganke/stanford_cars: README.md (configs, ClassLabel
    names, split sizes) and data/<split>-NNNNN-of-NNNNN.parquet shards with an image column.

    It also lists a corrupted-test split, "contrast", whose only shard is not parquet at all: a
    loader that prepares splits nobody asked for fails on it.
    """
    import datasets

    from .cars_classes import CARS_196_CLASSES

    folder = tmp / "stanford_cars"
    features = datasets.Features({"image": datasets.Image(), "label": datasets.ClassLabel(names=CARS_196_CLASSES)})
    for split, count in CARS_SHARDS.items():
        for shard in range(count):
            rows = {"image": [], "label": []}
            for name in CARS:
                label = CARS_196_CLASSES.index(name)
                rows["image"].append(
                    {"bytes": jpeg_bytes(label * 7 + shard + (50 if split == "test" else 0)), "path": None}
                )
                rows["label"].append(label)
            path = folder / "data" / f"{split}-{shard:05d}-of-{count:05d}.parquet"
            path.parent.mkdir(parents=True, exist_ok=True)
            datasets.Dataset.from_dict(rows, features=features).to_parquet(str(path))
    write(folder / "data" / "contrast-00000-of-00001.parquet", b"not a parquet file")
    names = "\n".join(f"          '{i}': {name}" for i, name in enumerate(CARS_196_CLASSES))
    sizes = "\n".join(
        f"  - name: {split}\n    num_bytes: {1000 * count}\n    num_examples: {len(CARS) * count}"
        for split, count in {**CARS_SHARDS, "contrast": 2}.items()
    )
    write(
        folder / "README.md",
        f"""---
dataset_info:
  features:
  - name: image
    dtype: image
  - name: label
    dtype:
      class_label:
        names:
{names}
  splits:
{sizes}
configs:
- config_name: default
  data_files:
  - split: train
    path: data/train-*
  - split: test
    path: data/test-*
  - split: contrast
    path: data/contrast-*
---
# stanford cars (test copy)
""",
    )
    return folder
