"""Run a policy over prepared splits into a predictions table (PREDICTION_SCHEMA), resumably.

Work goes batch by batch (`batch_size` images, in the split's stored order). Each finished batch is
written as a part file under a parts folder, atomically; a rerun after a crash skips the sample ids
already in parts, so the remaining batches are the same ones an uninterrupted run would form and
their seeds (derived from the batch's first sample id) are the same too. The finished table is
written last, atomically, and only then are the parts removed: a predictions file on disk is always
complete, and parts alone never look like one. A `run.json` in the parts folder records what the
parts were made with; parts from a different run configuration are discarded, never mixed in.

Splits are checked against their manifests before the model loads. An image that cannot be decoded
is skipped, named (dataset, split, sample id) and counted, as the prepare stage does: more than
`max_corrupt_fraction` of a split's images to run stops the run with a ValueError naming the split
and the first bad sample, keeping the finished parts. Skipping happens before batches are formed,
so a resumed run forms the same batches as an uninterrupted one.
"""

from __future__ import annotations

import hashlib
import io
import json
import shutil
import sys
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from PIL import Image
from tqdm import tqdm

from speciarl.atomic import atomic_path, atomic_write_text
from speciarl.data.prepared import check_split, iter_split, read_manifest, read_split
from speciarl.labels import extract_answer
from speciarl.policy.generation import Backend, SamplingConfig, make_backend
from speciarl.policy.params import HarvestParams, PolicyParams, PredictParams
from speciarl.policy.prompts import get_prompt
from speciarl.predictions import PREDICTION_SCHEMA, PREDICTIONS_FILE

RUN_FILE = "run.json"


@dataclass(frozen=True)
class GenerationJob:
    """What to generate: a policy id and prompt, how to sample, over which splits (and sample ids)."""

    policy_id: str
    prompt_name: str
    prompt_text: str
    sampling: SamplingConfig
    splits: tuple[tuple[str, str], ...]
    # per (dataset, split): the sample ids to run; None runs every sample of every split
    only: dict[tuple[str, str], frozenset[str]] | None = None


def decode_image(data: bytes) -> Image.Image:
    return Image.open(io.BytesIO(data)).convert("RGB")


class CorruptImages:
    """Images of a job that cannot be decoded, per split; past `max_fraction` of a split: ValueError."""

    def __init__(self, sizes: dict[tuple[str, str], int], max_fraction: float):
        self.sizes, self.max_fraction = sizes, max_fraction
        self.skipped: dict[tuple[str, str], list[tuple[str, str]]] = {key: [] for key in sizes}

    def decode(self, row: dict) -> Image.Image | None:
        """The row's image as RGB, or None (reported and counted) when it cannot be decoded."""
        try:
            return decode_image(row["image"])
        except Image.UnidentifiedImageError:
            reason = "not an image format that can be read"
        except (OSError, SyntaxError, ValueError, TypeError, EOFError, Image.DecompressionBombError) as exc:
            reason = " ".join(f"{type(exc).__name__}: {exc}".split())
        key = (row["dataset"], row["split"])
        skipped = self.skipped[key]
        skipped.append((row["sample_id"], reason))
        total = self.sizes[key]
        if len(skipped) > self.max_fraction * total:
            first_id, first_reason = skipped[0]
            raise ValueError(
                f"{key[0]}/{key[1]}: {len(skipped)} of {total} images cannot be decoded, more than "
                f"data.max_corrupt_fraction ({self.max_fraction}) allows; first: sample {first_id} ({first_reason})"
            )
        tqdm.write(f"{key[0]}/{key[1]}: sample {row['sample_id']}: corrupt image skipped ({reason})", file=sys.stderr)
        return None

    def summary(self) -> str | None:
        """'dataset/split: n of total images skipped as corrupt' per split with any, or None."""
        parts = [f"{d}/{s}: {len(ids)} of {self.sizes[(d, s)]}" for (d, s), ids in self.skipped.items() if ids]
        return f"corrupt images skipped: {', '.join(parts)}" if parts else None


def batch_seed(seed: int, first_sample_id: str) -> int:
    """The sampling seed of a batch: fixed by the run seed and the batch's first sample (fits 32 bits)."""
    return int(hashlib.sha256(f"{seed}:{first_sample_id}".encode()).hexdigest()[:8], 16)


def completion_rows(samples: list[dict], completions: list[list[str]], job: GenerationJob, seed: int) -> list[dict]:
    """PREDICTION_SCHEMA rows: one per completion, `sample_index` 0..n-1 within each sample."""
    if len(completions) != len(samples):
        raise ValueError(f"backend returned completions for {len(completions)} of {len(samples)} images")
    rows = []
    for sample, texts in zip(samples, completions, strict=True):
        if len(texts) != job.sampling.n:
            raise ValueError(
                f"backend returned {len(texts)} completions for {sample['sample_id']}, not {job.sampling.n}"
            )
        for index, text in enumerate(texts):
            answer = extract_answer(text)
            rows.append(
                {
                    "sample_id": sample["sample_id"],
                    "dataset": sample["dataset"],
                    "split": sample["split"],
                    "ground_truth": sample["label"],
                    "policy_id": job.policy_id,
                    "prompt_name": job.prompt_name,
                    "prompt_text": job.prompt_text,
                    "sample_index": index,
                    "raw_text": text,
                    "prediction": answer,
                    "format_error": answer is None,
                    "seed": seed,
                    "temperature": job.sampling.temperature,
                    "top_p": job.sampling.top_p,
                }
            )
    return rows


def choose_sample_ids(
    prepared_dir: str | Path, dataset: str, split: str, count: int | None, seed: int
) -> frozenset[str]:
    """`count` sample ids of a split drawn without replacement by `seed` (all of them if count is None)."""
    ids = read_split(prepared_dir, dataset, split, columns=["sample_id"]).column("sample_id").to_pylist()
    if not ids:
        raise ValueError(f"prepared split {dataset}/{split} in {prepared_dir} is empty")
    if count is None or count >= len(ids):
        return frozenset(ids)
    chosen = np.random.default_rng(seed).choice(len(ids), size=count, replace=False)
    return frozenset(ids[i] for i in chosen)


def split_sizes(prepared_dir: str | Path, job: GenerationJob) -> dict[tuple[str, str], int]:
    """Samples to run per split, each split checked against its manifest; ValueError naming an empty one."""
    sizes = {}
    for dataset, split in job.splits:
        total = check_split(prepared_dir, dataset, split)["num_samples"]
        if total == 0:
            raise ValueError(f"prepared split {dataset}/{split} in {prepared_dir} is empty")
        sizes[(dataset, split)] = total if job.only is None else len(job.only[(dataset, split)])
    return sizes


def source_signature(source: str | Path | None) -> object:
    """Identifies a model/adapter folder's contents cheaply (file names, sizes, mtimes); a hub id as is."""
    if source is None:
        return None
    path = Path(source)
    if not path.is_dir():
        return str(source)
    return sorted(
        (str(file.relative_to(path)), file.stat().st_size, file.stat().st_mtime_ns)
        for file in path.rglob("*")
        if file.is_file()
    )


class PartStore:
    """Part files of one unfinished run, in `parts_dir`, keyed by the run's fingerprint."""

    def __init__(self, parts_dir: Path, fingerprint: dict):
        self.dir = parts_dir
        fingerprint = json.loads(json.dumps(fingerprint))  # as it reads back from run.json
        run_file = parts_dir / RUN_FILE
        if parts_dir.exists():
            recorded = json.loads(run_file.read_text()) if run_file.is_file() else None
            if recorded != fingerprint:
                tqdm.write(f"{parts_dir}: parts from a different run configuration, starting over")
                shutil.rmtree(parts_dir)
        parts_dir.mkdir(parents=True, exist_ok=True)
        if not run_file.is_file():
            atomic_write_text(run_file, json.dumps(fingerprint, indent=1, sort_keys=True))
        self.parts = sorted(parts_dir.glob("part-*.parquet"))

    def finished_ids(self) -> set[str]:
        ids: set[str] = set()
        for part in self.parts:
            ids.update(pq.read_table(part, columns=["sample_id"]).column("sample_id").to_pylist())
        return ids

    def write(self, rows: list[dict]) -> None:
        path = self.dir / f"part-{len(self.parts):06d}.parquet"
        with atomic_path(path) as temp:
            pq.write_table(pa.Table.from_pylist(rows, schema=PREDICTION_SCHEMA), temp)
        self.parts.append(path)

    def table(self) -> pa.Table:
        if not self.parts:
            return PREDICTION_SCHEMA.empty_table()
        return pa.concat_tables(pq.read_table(part, schema=PREDICTION_SCHEMA) for part in self.parts)


def pending_batches(
    prepared_dir: str | Path, job: GenerationJob, batch_size: int, finished: set[str], corrupt: CorruptImages
) -> Iterator[list[dict]]:
    """Batches of unfinished samples, split by split in stored order; batches never span two splits.

    Each row's `image` is decoded (RGB); rows whose image cannot be decoded go to `corrupt` instead.
    """
    for dataset, split in job.splits:
        only = None if job.only is None else job.only[(dataset, split)]
        batch: list[dict] = []
        for rows in iter_split(prepared_dir, dataset, split, batch_size=max(batch_size, 256)):
            for row in rows:
                if (only is None or row["sample_id"] in only) and row["sample_id"] not in finished:
                    image = corrupt.decode(row)
                    if image is None:
                        continue
                    batch.append({**row, "image": image})
                    if len(batch) == batch_size:
                        yield batch
                        batch = []
        if batch:
            yield batch


def run_job(
    backend: Backend,
    job: GenerationJob,
    prepared_dir: str | Path,
    out_file: str | Path,
    parts_dir: str | Path,
    batch_size: int,
    fingerprint: dict,
    progress: bool = True,
    max_corrupt_fraction: float = 0.0,
) -> pa.Table:
    """Generate every pending batch, then write `out_file` atomically and drop the parts. Returns the table.

    `max_corrupt_fraction`: share of a split's images that may be skipped as undecodable (0: none).
    """
    out_file, parts_dir = Path(out_file), Path(parts_dir)
    sizes = split_sizes(prepared_dir, job)
    corrupt = CorruptImages(sizes, max_corrupt_fraction)
    if out_file.exists():
        out_file.unlink()  # a finished run being redone: nothing may look complete until it is
    inputs = {f"{d}/{s}": read_manifest(prepared_dir, d, s).get("content_hash") for d, s in job.splits}
    fingerprint = {**fingerprint, "job": _job_fingerprint(job), "inputs": inputs, "batch_size": batch_size}
    store = PartStore(parts_dir, fingerprint)
    finished = store.finished_ids()
    if finished and progress:
        tqdm.write(f"{parts_dir}: resuming, {len(finished)} samples already done")
    bar = tqdm(
        total=sum(sizes.values()),
        initial=len(finished),
        unit="sample",
        desc=f"{job.policy_id}/{job.prompt_name}",
        disable=not progress,
        dynamic_ncols=True,
    )
    with bar:
        for batch in pending_batches(prepared_dir, job, batch_size, finished, corrupt):
            seed = batch_seed(job.sampling.seed, batch[0]["sample_id"])
            completions = backend.generate(
                [row["image"] for row in batch], job.prompt_text, job.sampling.with_seed(seed)
            )
            store.write(completion_rows(batch, completions, job, seed))
            bar.update(len(batch))
    if corrupt.summary():
        tqdm.write(f"{job.policy_id}/{job.prompt_name}: {corrupt.summary()}", file=sys.stderr)
    table = store.table()
    with atomic_path(out_file) as temp:
        pq.write_table(table, temp, compression="zstd")
    shutil.rmtree(parts_dir)
    return table


def _job_fingerprint(job: GenerationJob) -> dict:
    return {
        "policy_id": job.policy_id,
        "prompt_name": job.prompt_name,
        "prompt_text": job.prompt_text,
        "sampling": asdict(job.sampling),
        "splits": [list(entry) for entry in job.splits],
        "only": None if job.only is None else {f"{d}/{s}": sorted(ids) for (d, s), ids in job.only.items()},
    }


def policy_fingerprint(policy: PolicyParams, adapter: str | Path | None) -> dict:
    """What in the policy settings changes the completions (device aside)."""
    return {
        "model": policy.model,
        "model_files": source_signature(policy.model),
        "adapter": None if adapter is None else str(adapter),
        "adapter_files": source_signature(adapter),
        "backend": policy.backend,
        "dtype": policy.dtype,
        "min_pixels": policy.min_pixels,
        "max_pixels": policy.max_pixels,
    }


def harvest(
    policy: PolicyParams,
    params: HarvestParams,
    prepared_dir: str | Path,
    progress: bool = True,
    backend: Backend | None = None,
    max_corrupt_fraction: float = 0.0,
) -> pa.Table:
    """Best-of-N rollouts of the base policy on a seeded subset of one split -> `params.out`.

    `backend`: an already loaded backend of `policy` (default: loaded here). `max_corrupt_fraction`:
    share of the images that may be skipped as undecodable (params data.max_corrupt_fraction)."""
    job = GenerationJob(
        policy_id="base",
        prompt_name=params.prompt,
        prompt_text=get_prompt(params.prompt),
        sampling=SamplingConfig(
            n=params.n,
            temperature=params.temperature,
            top_p=params.top_p,
            max_new_tokens=policy.max_new_tokens,
            seed=params.seed,
        ),
        splits=((params.dataset, params.split),),
        only={
            (params.dataset, params.split): choose_sample_ids(
                prepared_dir, params.dataset, params.split, params.max_images, params.seed
            )
        },
    )
    out = Path(params.out)
    parts = out.with_name(f"{out.name}.parts")
    return _run(policy, None, job, prepared_dir, out, parts, progress, backend, max_corrupt_fraction)


def predict(
    policy: PolicyParams,
    params: PredictParams,
    prepared_dir: str | Path,
    policy_id: str = "base",
    adapter: str | Path | None = None,
    prompt_name: str | None = None,
    best_of_n: bool = False,
    progress: bool = True,
    backend: Backend | None = None,
    max_corrupt_fraction: float = 0.0,
) -> Path:
    """Greedy predictions with `prompt_name` (or best-of-N samples) on every split in `params.splits`.

    Output: <out_dir>/<policy_id>-<prompt_name or best_of_n>/predictions.parquet. Returns the folder.
    `max_corrupt_fraction`: share of a split's images that may be skipped as undecodable.
    """
    if best_of_n == (prompt_name is not None):
        raise ValueError("predict: give either a prompt name or best_of_n, not both or neither")
    if best_of_n:
        settings = params.best_of_n
        prompt_name, folder = settings.prompt, f"{policy_id}-best_of_n"
        sampling = SamplingConfig(
            n=settings.n,
            temperature=settings.temperature,
            top_p=settings.top_p,
            max_new_tokens=policy.max_new_tokens,
            seed=params.seed,
        )
    else:
        folder = f"{policy_id}-{prompt_name}"
        sampling = SamplingConfig(max_new_tokens=policy.max_new_tokens, seed=params.seed)
    job = GenerationJob(
        policy_id=policy_id,
        prompt_name=prompt_name,
        prompt_text=get_prompt(prompt_name),
        sampling=sampling,
        splits=tuple(tuple(entry.split("/", 1)) for entry in params.splits),
    )
    out_dir = Path(params.out_dir) / folder
    parts = out_dir / "parts"
    _run(policy, adapter, job, prepared_dir, out_dir / PREDICTIONS_FILE, parts, progress, backend, max_corrupt_fraction)
    return out_dir


def _run(
    policy, adapter, job, prepared_dir, out_file: Path, parts_dir: Path, progress: bool, backend, max_corrupt_fraction
) -> pa.Table:
    split_sizes(prepared_dir, job)  # missing, empty or damaged splits fail before the model loads
    backend = backend or make_backend(policy, adapter)
    return run_job(
        backend,
        job,
        prepared_dir,
        out_file,
        parts_dir,
        policy.batch_size,
        policy_fingerprint(policy, adapter),
        progress,
        max_corrupt_fraction,
    )
