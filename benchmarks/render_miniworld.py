"""Mini world render speed: images/s, total seconds and peak RSS for the params' sizes.

    python benchmarks/render_miniworld.py [--params params.yaml] [--workers N] [--out DIR] [--sheet PNG]

Renders both domains (train + test) into a temporary folder (or --out) and prints the numbers.
Peak RSS is reported for this process and for the largest render worker. --sheet also writes a
contact sheet (a few test images of every class, one row per class) to look at the world.
"""

from __future__ import annotations

import argparse
import io
import resource
import tempfile
import time
from pathlib import Path

from PIL import Image, ImageDraw

from speciarl.config import load_section
from speciarl.data import prepared
from speciarl.data.miniworld import render_miniworld
from speciarl.data.miniworld_classes import DOMAINS, miniworld_classes

LABEL_WIDTH = 190


def contact_sheet(root: str | Path, path: str | Path, per_class: int = 6) -> None:
    rows = []
    for dataset in DOMAINS:
        table = prepared.read_split(root, dataset, "test", columns=["label", "image"]).to_pylist()
        for label in miniworld_classes(dataset):
            rows.append((label, [r["image"] for r in table if r["label"] == label][:per_class]))
    size = Image.open(io.BytesIO(rows[0][1][0])).width
    sheet = Image.new("RGB", (LABEL_WIDTH + per_class * size, len(rows) * size), "white")
    draw = ImageDraw.Draw(sheet)
    for r, (label, images) in enumerate(rows):
        draw.text((4, r * size + size // 2), label, fill="black")
        for c, jpeg in enumerate(images):
            sheet.paste(Image.open(io.BytesIO(jpeg)), (LABEL_WIDTH + c * size, r * size))
    sheet.save(path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--workers", type=int, default=None, help="render processes (default: usable CPUs)")
    parser.add_argument("--out", default=None, help="prepared folder to write (default: a temporary one)")
    parser.add_argument("--sheet", default=None, help="also write a contact sheet PNG here")
    args = parser.parse_args()
    params = load_section("data", args.params).miniworld

    with tempfile.TemporaryDirectory() as tmp:
        root = args.out or tmp
        start = time.perf_counter()
        manifests = render_miniworld(params, root, workers=args.workers)
        seconds = time.perf_counter() - start
        if args.sheet:
            contact_sheet(root, args.sheet)
    images = sum(m["num_samples"] for m in manifests.values())
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime
    print(
        f"images: {images} ({params.image_size}x{params.image_size}, "
        f"{params.train_per_domain} train + {params.test_per_domain} test per domain)"
    )
    print(f"total: {seconds:.1f} s")
    print(f"throughput: {images / seconds:.0f} images/s")
    # CPU seconds do not depend on what else runs on the machine; wall time does
    print(f"cpu: {cpu:.1f} s (this process and its workers, including start-up)")
    print(f"peak RSS: main {own.ru_maxrss / 1024:.0f} MiB, largest worker {children.ru_maxrss / 1024:.0f} MiB")
    if args.sheet:
        print(f"contact sheet: {args.sheet}")


if __name__ == "__main__":
    main()
