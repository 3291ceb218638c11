"""Prepare throughput on a generated CUB-layout archive; prints images/s, the time extrapolated to
the real CUB-200-2011 (11,788 images; target under 2 minutes) and peak memory (target under 2 GB).

    .venv/bin/python benchmarks/prepare_throughput.py [--images 2000] [--workers 2]

The archive has CUB's layout and its 200 class names, and photo-sized JPEGs (500x375, textured so
they compress like photos). Timed: the whole `prepare` of the dataset (extraction, AviList taxonomy,
decoding every image, parquet shards, manifests).
"""

from __future__ import annotations

import argparse
import multiprocessing
import resource
import shutil
import sys
import tarfile
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
REAL_CUB_IMAGES = 11_788


def photo_like(seed: int) -> bytes:
    """A 500x375 JPEG with smooth shapes and grain, about the size of a CUB photo."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:375, 0:500].astype(np.float32)
    base = np.stack([np.sin(x / rng.uniform(20, 80) + c) * np.cos(y / rng.uniform(20, 80) - c) for c in range(3)], -1)
    pixels = 128 + 90 * base + rng.normal(0, 12, base.shape)
    image = Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))
    from io import BytesIO

    out = BytesIO()
    image.save(out, "JPEG", quality=85)
    return out.getvalue()


def cpu_seconds() -> float:
    """CPU time of this process and of its finished children (the worker pool, once closed)."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def build_archive(workdir: Path, count: int) -> tuple[Path, int]:
    sys.path.insert(0, str(REPO))
    from tests.data_real.cub_classes import CUB_200_CLASSES

    root = workdir / "CUB_200_2011"
    lines = {"images.txt": [], "image_class_labels.txt": [], "train_test_split.txt": []}
    total = 0
    with multiprocessing.get_context("spawn").Pool(2) as pool:
        for i, data in enumerate(pool.imap(photo_like, range(count), chunksize=32), 1):
            class_id = (i - 1) % len(CUB_200_CLASSES) + 1
            folder = CUB_200_CLASSES[class_id - 1]
            rel = f"{folder}/{folder.split('.', 1)[1]}_{i:05d}.jpg"
            (root / "images" / folder).mkdir(parents=True, exist_ok=True)
            (root / "images" / rel).write_bytes(data)
            total += len(data)
            lines["images.txt"].append(f"{i} {rel}")
            lines["image_class_labels.txt"].append(f"{i} {class_id}")
            lines["train_test_split.txt"].append(f"{i} {i % 2}")
    lines["classes.txt"] = [f"{i} {name}" for i, name in enumerate(CUB_200_CLASSES, 1)]
    for name, rows in lines.items():
        (root / name).write_text("\n".join(rows) + "\n")
    archive = workdir / "CUB_200_2011.tgz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(root, arcname=root.name)
    shutil.rmtree(root)
    return archive, total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=2000)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()

    from speciarl.data.params import DataParams
    from speciarl.data.prepare import prepare_real

    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        archive, image_bytes = build_archive(workdir, args.images)
        print(
            f"archive: {args.images} images, {image_bytes / args.images / 1024:.0f} KiB per image, "
            f"{archive.stat().st_size / 2**20:.0f} MiB"
        )
        params = DataParams.model_validate(
            {
                "prepared_dir": str(workdir / "prepared"),
                "cache_dir": str(workdir / "cache"),
                "datasets": ["cub"],
                "workers": args.workers,
                "cub": {"source": str(archive)},
            }
        )
        cpu_before = cpu_seconds()
        start = time.perf_counter()
        manifests = prepare_real("cub", params)
        elapsed = time.perf_counter() - start
        cpu = cpu_seconds() - cpu_before
    written = sum(m["num_samples"] for m in manifests.values())
    rate = written / elapsed
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    workers = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    print(f"prepared {written} images in {elapsed:.1f} s with {args.workers} worker(s): {rate:.0f} images/s")
    print(
        f"real CUB-200-2011 ({REAL_CUB_IMAGES} images), extrapolated: {REAL_CUB_IMAGES / rate:.0f} s (target < 120 s)"
    )
    # on a shared machine the wall time depends on the other load; the CPU time does not
    print(
        f"CPU time {cpu:.1f} s ({cpu / written * 1000:.1f} ms per image, all processes): on {args.workers} idle cores "
        f"about {REAL_CUB_IMAGES * cpu / written / max(1, args.workers):.0f} s for the real CUB"
    )
    # the children include the two processes that generated the archive (small next to the prepare workers)
    print(
        f"peak RSS: main process {own:.0f} MiB, largest child {workers:.0f} MiB, "
        f"sum {own + args.workers * workers:.0f} MiB at most (target < 2048 MiB)"
    )


if __name__ == "__main__":
    main()
