"""The `prepare` stage: every dataset of `data.datasets` into the prepared layout (prepared.py).

For a real dataset: its loader (speciarl.data.real.<name>) lists the samples of each official
split and builds the taxonomy; this module picks the configured subsets, checks and encodes the
images in worker processes, and writes each split atomically with a manifest. Corrupt images are
skipped, counted and listed; more than `data.max_corrupt_fraction` of them fails the split, which
then leaves no output behind. A split already prepared with the same settings, and still matching
its manifest (prepared.check_split), is kept as is.
"""

from __future__ import annotations

import hashlib
import importlib
import json
import multiprocessing
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from speciarl.data import prepared
from speciarl.data.params import DataParams, RealDatasetParams
from speciarl.data.real.base import LoadContext, LoadedDataset, Record
from speciarl.data.real.images import encode_image

LOADERS = {
    "cub": "speciarl.data.real.cub",
    "aircraft": "speciarl.data.real.aircraft",
    "flowers102": "speciarl.data.real.flowers102",
    "food101": "speciarl.data.real.food101",
    "pets": "speciarl.data.real.pets",
    "cars": "speciarl.data.real.cars",
}
DATASETS = ("miniworld", *LOADERS)
# bump when the prepared output of the same source and params changes, so old splits are redone
PREPARE_VERSION = 1
BATCH = 256  # records per batch handed to the workers (two batches are in flight at most)


# Images ------------------------------------------------------------------------------------------


def _payload(record: Record) -> str | bytes:
    return str(record.image) if isinstance(record.image, Path) else record.image()


def _encoded(records: Sequence[Record], pool) -> Iterator[tuple[Record, tuple[bytes | None, str | None]]]:
    """(record, encode_image result) in the order of `records`, computed lazily batch by batch.

    With a pool the next batch is already being encoded while the caller writes the current one.
    """
    batches = [records[i : i + BATCH] for i in range(0, len(records), BATCH)]
    if pool is None:
        for batch in batches:
            yield from zip(batch, map(encode_image, map(_payload, batch)), strict=True)
        return
    pending = None
    for batch in batches:
        job = pool.map_async(encode_image, [_payload(r) for r in batch], chunksize=16)
        if pending is not None:
            yield from zip(pending[0], pending[1].get(), strict=True)
        pending = (batch, job)
    if pending is not None:
        yield from zip(pending[0], pending[1].get(), strict=True)


@contextmanager
def worker_pool(workers: int):
    """A process pool of `workers` processes, or None (encode inline) for a single worker."""
    if workers <= 1:
        yield None
        return
    # spawn, not fork: the parent may hold threads (arrow, datasets) that a fork would copy mid-lock
    with multiprocessing.get_context("spawn").Pool(workers) as pool:
        yield pool


# Subsets -----------------------------------------------------------------------------------------


def subset_order(records: Sequence[Record], dataset: str, seed: int) -> list[Record]:
    """`records` in a random order fixed by the seed and each sample's id.

    A subset of size n is the first n readable records of this order: the same seed gives the
    same samples whatever order the source lists them in, and a larger n only adds samples.
    """

    def rank(record: Record) -> str:
        return hashlib.sha256(f"{seed}:{prepared.sample_id(dataset, record.key)}".encode()).hexdigest()

    return sorted(records, key=rank)


# Splits ------------------------------------------------------------------------------------------


def write_split(
    root: Path,
    dataset: str,
    split: str,
    records: Sequence[Record],
    loaded: LoadedDataset,
    settings: dict,
    max_corrupt_fraction: float,
    pool,
    progress: Progress | None,
) -> dict:
    """Encode and write one split; returns its manifest. Raises ValueError on too many corrupt images."""
    if not records:
        raise ValueError(f"{dataset}/{split}: the source lists no images for this split")
    subset = settings["dataset_params"]["subset"].get(split)
    wanted = len(records)
    if subset is not None:
        if subset["size"] > len(records):
            raise ValueError(
                f"data.{dataset}.subset.{split}.size: {subset['size']} is larger than "
                f"the {split} split ({len(records)} samples)"
            )
        records, wanted = subset_order(records, dataset, subset["seed"]), subset["size"]
    task = progress.add_task(f"{dataset}/{split}", total=wanted) if progress else None

    label_paths = {label: loaded.taxonomy.path(label) for label in loaded.taxonomy.classes}
    counts: Counter = Counter()
    corrupt: list[dict] = []
    seen = written = 0
    with prepared.SplitWriter(root, dataset, split) as writer:
        for record, (image, reason) in _encoded(records, pool):
            seen += 1
            if image is None:
                corrupt.append({"key": record.key, "reason": reason})
                if len(corrupt) > max_corrupt_fraction * max(wanted, seen):
                    raise ValueError(_too_many_corrupt(dataset, split, corrupt, seen, max_corrupt_fraction))
                continue
            writer.add(
                {
                    "sample_id": prepared.sample_id(dataset, record.key),
                    "dataset": dataset,
                    "split": split,
                    "image": image,
                    "label": record.label,
                    "label_path": label_paths[record.label],
                }
            )
            counts[record.label] += 1
            written += 1
            if progress:
                progress.advance(task)
            if written == wanted:
                break
        if len(corrupt) > max_corrupt_fraction * seen:
            raise ValueError(_too_many_corrupt(dataset, split, corrupt, seen, max_corrupt_fraction))
        if subset is not None and written < wanted:
            raise ValueError(f"{dataset}/{split}: only {written} readable images for a subset of {wanted}")
        manifest = writer.commit(
            {
                "classes": sorted(counts),
                "class_counts": dict(sorted(counts.items())),
                "num_classes": len(counts),
                "num_candidates": len(records),
                "num_corrupt": len(corrupt),
                "corrupt": corrupt,
                "params": settings,
                "warnings": loaded.warnings,
            }
        )
    if progress:
        progress.update(task, completed=wanted)
    return manifest


def _too_many_corrupt(dataset: str, split: str, corrupt: list[dict], seen: int, limit: float) -> str:
    first = corrupt[0]
    return (
        f"{dataset}/{split}: {len(corrupt)} of {seen} images checked are corrupt or missing, more than "
        f"data.max_corrupt_fraction = {limit} allows (first: {first['key']}: {first['reason']})"
    )


# Datasets ----------------------------------------------------------------------------------------


def _settings(name: str, params: DataParams) -> dict:
    """What a prepared split depends on; a split prepared with other settings is redone."""
    ds_params: RealDatasetParams = getattr(params, name)
    source = Path(ds_params.source)
    stat = source.stat() if source.exists() else None
    settings = {
        "prepare_version": PREPARE_VERSION,
        "dataset_params": ds_params.model_dump(mode="json"),
        "source_stat": [stat.st_size, stat.st_mtime_ns] if stat and source.is_file() else None,
        "max_corrupt_fraction": params.max_corrupt_fraction,
        "wordnet_dir": params.wordnet_dir if name in ("food101", "flowers102") else None,
    }
    return json.loads(json.dumps(settings))


def _up_to_date(root: Path, name: str, splits: Sequence[str], settings: dict) -> bool:
    if not prepared.taxonomy_path(root, name).exists():
        return False
    for split in splits:
        try:
            if prepared.check_split(root, name, split).get("params") != settings:
                return False
        except (FileNotFoundError, ValueError):  # missing, or no longer what its manifest says: redo it
            return False
    return True


def prepare_real(
    name: str, params: DataParams, force: bool = False, progress: Progress | None = None
) -> dict[str, dict]:
    """Prepare one real dataset; returns {split: manifest}. Splits already prepared alike are kept."""
    if name not in LOADERS:
        raise ValueError(f"unknown dataset {name!r} (allowed: {', '.join(DATASETS)})")
    root = Path(params.prepared_dir)
    ds_params: RealDatasetParams = getattr(params, name)
    settings = _settings(name, params)
    if not force and _up_to_date(root, name, ds_params.splits, settings):
        if progress:
            progress.console.print(f"{name}: already prepared with these settings ({', '.join(ds_params.splits)})")
        return {split: prepared.read_manifest(root, name, split) for split in ds_params.splits}

    ctx = LoadContext(cache_dir=Path(params.cache_dir), wordnet_dir=params.wordnet_dir)
    loaded: LoadedDataset = importlib.import_module(LOADERS[name]).load(ds_params, ctx)
    for split, records in loaded.splits.items():
        unknown = {r.label for r in records} - set(loaded.taxonomy.classes)
        if unknown:
            raise ValueError(f"{name}/{split}: labels missing from the taxonomy: {sorted(unknown)[:5]}")
    (root / name).mkdir(parents=True, exist_ok=True)
    loaded.taxonomy.save(prepared.taxonomy_path(root, name))

    manifests = {}
    with worker_pool(params.workers) as pool:
        for split in ds_params.splits:
            manifests[split] = write_split(
                root, name, split, loaded.splits[split], loaded, settings, params.max_corrupt_fraction, pool, progress
            )
    return manifests


def _render_miniworld(params: DataParams) -> dict[str, dict[str, dict]]:
    try:
        from speciarl.data.miniworld import render_miniworld
    except ImportError as exc:
        raise ValueError(f"miniworld: the mini world renderer is not available ({exc})") from None
    results: dict[str, dict[str, dict]] = {}
    for key, manifest in render_miniworld(params.miniworld, params.prepared_dir, workers=params.workers).items():
        dataset, split = key.split("/")
        results.setdefault(dataset, {})[split] = manifest
    return results


def prepare_datasets(
    params: DataParams, force: bool = False, console: Console | None = None
) -> dict[str, dict[str, dict]]:
    """Prepare every dataset of `params.datasets`; returns {dataset: {split: manifest}}."""
    unknown = [name for name in params.datasets if name not in DATASETS]
    if unknown:
        raise ValueError(f"data.datasets: unknown dataset {unknown[0]!r} (allowed: {', '.join(DATASETS)})")
    console = console or Console(stderr=True)
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    results: dict[str, dict[str, dict]] = {}
    for name in params.datasets:
        if name == "miniworld":
            console.print("miniworld: rendering")
            results.update(_render_miniworld(params))  # shows its own progress
            continue
        with Progress(*columns, console=console) as progress:
            results[name] = prepare_real(name, params, force, progress)
        for warning in next(iter(results[name].values()))["warnings"]:
            console.print(f"[yellow]warning:[/] {warning}", highlight=False)
    return results
