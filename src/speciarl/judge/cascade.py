"""JudgeService: the one object training and evaluation ask for verdicts.

For every unique (dataset, normalised truth, normalised prediction) it runs the cascade
exact match -> taxonomy judge -> LLM judge, with the verdict store in front: a pair whose verdict
is stored (under the id of the level that decides it) is never judged again. Every level's
verdicts are stored, the cheap ones too, so an export of the store is the complete record of what
was judged. LLM verdicts are written as they arrive, batched only while the previous write is
still being fsync'd, so a crash loses at most the requests in flight.

A store that cannot be opened or written (read-only, full disk) raises VerdictStoreError, one line
naming the store and the cause. Pairs left without a verdict are counted, and the first few are
kept in `stats["failure_examples"]` with their cause; `describe_undecided` names one for an error line.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import time
from collections import Counter
from collections.abc import Callable, Coroutine, Iterable, Sequence
from pathlib import Path

from tqdm import tqdm

from speciarl.data.taxonomy import Taxonomy
from speciarl.judge.llm import LLMJudge, LLMResult
from speciarl.judge.params import JudgeParams
from speciarl.judge.store import Verdict, VerdictStore, verdict_key
from speciarl.judge.taxonomy_judge import TaxonomyJudge, empty_taxonomy
from speciarl.labels import Category, normalize
from speciarl.stage import RunFailure

EXACT_JUDGE = "exact"
PairKey = tuple[str, str, str]
"""(dataset, normalised ground truth, normalised prediction)."""

_STAT_KEYS = (
    "pairs",
    "unique",
    "store_hits",
    "exact",
    "taxonomy",
    "llm",
    "llm_calls",
    "retries",
    "failures",
    "undecided",
)
_MAX_FAILURE_EXAMPLES = 5
NO_LLM_CAUSE = "the taxonomy cannot decide it and no LLM judge is configured (judge.llm)"


class VerdictStoreError(RunFailure):
    """The verdict store cannot be opened or written; str() is one line naming the store and the cause."""


def open_store(root: str | Path) -> VerdictStore:
    """The verdict store at `root` (created if missing); VerdictStoreError if it cannot be."""
    try:
        return VerdictStore(root)
    except OSError as exc:
        raise VerdictStoreError(f"verdict store {root} cannot be opened: {_os_reason(exc)}") from None


def describe_undecided(stats: dict) -> str:
    """'e.g. dataset: 'truth' vs 'prediction' (cause)' for the first pair a run left without a verdict.

    Every pair left without a verdict is noted (the first _MAX_FAILURE_EXAMPLES), so there is one."""
    first = stats["failure_examples"][0]
    return f"e.g. {first['dataset']}: {first['ground_truth']!r} vs {first['prediction']!r} ({first['error']})"


def _os_reason(exc: OSError) -> str:
    return f"{exc.strerror or exc}" + (f" ({exc.filename})" if exc.filename else "")


class JudgeService:
    """`judge([(dataset, ground_truth_label, prediction_text), ...]) -> [Category | None, ...]`.

    None means no verdict: no LLM is configured for a pair the taxonomy cannot decide, the LLM is
    unreachable, or it replied with garbage on every attempt. Use as a context manager (or call
    close()) so that a managed judge server is stopped.
    """

    def __init__(
        self,
        store: VerdictStore,
        taxonomies: dict[str, Taxonomy],
        llm: LLMJudge | None = None,
        *,
        close_levels: int = 1,
        close_levels_by_dataset: dict[str, int] | None = None,
        closed_world: Iterable[str] = (),
    ) -> None:
        self.store = store
        self.llm = llm
        self._taxonomies = dict(taxonomies)
        self._close_levels = close_levels
        self._close_levels_by_dataset = dict(close_levels_by_dataset or {})
        self._closed_world = frozenset(closed_world)
        self._taxonomy_judges: dict[str, TaxonomyJudge] = {}
        self._counts: Counter = Counter()
        self._failure_examples: list[dict] = []

    @classmethod
    def from_params(cls, judge_params: JudgeParams, prepared_dir: str | Path, which: str = "train") -> JudgeService:
        """Taxonomies from <prepared_dir>/<dataset>/taxonomy.json, the store, and the LLM judge of
        `which` ("train": judge.llm; "eval": judge.eval_llm, falling back to judge.llm)."""
        if which not in ("train", "eval"):
            raise ValueError(f"which must be 'train' or 'eval', got {which!r}")
        if not Path(prepared_dir).is_dir():
            raise FileNotFoundError(
                f"prepared data not found: {prepared_dir} (data.prepared_dir; run the prepare stage)"
            )
        taxonomies = {
            path.parent.name: Taxonomy.load(path) for path in sorted(Path(prepared_dir).glob("*/taxonomy.json"))
        }
        section, llm_params = "judge.llm", judge_params.llm
        if which == "eval" and judge_params.eval_llm is not None:
            section, llm_params = "judge.eval_llm", judge_params.eval_llm
        return cls(
            open_store(judge_params.store),
            taxonomies,
            LLMJudge.from_params(llm_params, f"{section}.api_key_env"),
            close_levels=judge_params.taxonomy.close_levels,
            close_levels_by_dataset=judge_params.taxonomy.close_levels_by_dataset,
            closed_world=judge_params.taxonomy.closed_world,
        )

    def __enter__(self) -> JudgeService:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    def close(self) -> None:
        """Stop a managed judge server; release this process's store segment (it stays readable)."""
        if self.llm is not None:
            self.llm.close()
        self.store.close()

    @property
    def stats(self) -> dict:
        """Totals over every call: pairs asked, unique pairs, how each was settled, LLM traffic."""
        stats = {name: self._counts[name] for name in _STAT_KEYS}
        stats["failure_examples"] = list(self._failure_examples)
        return stats

    def judge_id(self, dataset: str) -> str:
        """Who decides `dataset`'s pairs: the taxonomy judge's id and the LLM judge's (verdicts of
        another judge id may differ, so a training run records it to never resume under another)."""
        llm = self.llm.judge_id if self.llm is not None else "no-llm"
        return f"{EXACT_JUDGE}+{self.taxonomy_judge(dataset).judge_id}+{llm}"

    def judge_names(self) -> dict[str, str]:
        """{judge id: what the judge is} for the verdicts this service can give (ids are hashes)."""
        names = {EXACT_JUDGE: "exact match"}
        for dataset in sorted(self._taxonomies):
            judge = self.taxonomy_judge(dataset)
            world = "closed world" if judge.closed else "open world"
            names[judge.judge_id] = f"taxonomy of {dataset} ({world}, close_levels {judge.close_levels})"
        if self.llm is not None:
            revision = f" (revision {self.llm.revision})" if self.llm.revision else ""
            names[self.llm.judge_id] = f"LLM {self.llm.model}{revision}"
        return names

    # Judging ------------------------------------------------------------------------------------

    def judge(self, pairs: Sequence[tuple[str, str, str]], progress: bool = False) -> list[Category | None]:
        """Verdict categories for (dataset, ground_truth_label, prediction_text) triples."""
        verdicts = self.resolve(pairs, progress=progress)
        return [_category(verdicts[key]) for key in (pair_key(*pair) for pair in pairs)]

    def resolve(self, pairs: Iterable[tuple[str, str, str]], progress: bool = False) -> dict[PairKey, Verdict | None]:
        """The verdict record (or None) of every unique normalised pair among `pairs`."""
        unique: dict[PairKey, None] = {}
        for index, (dataset, truth, prediction) in enumerate(pairs):
            if truth is None or prediction is None:
                raise ValueError(
                    f"pair {index}: ground truth and prediction must be text, got {truth!r}, {prediction!r}"
                )
            unique.setdefault(pair_key(dataset, truth, prediction))
            self._counts["pairs"] += 1
        self._counts["unique"] += len(unique)

        decided, to_llm = self._cheap_levels(unique)
        llm_keys = {key: verdict_key(key[1], key[2], self.llm.judge_id) for key in to_llm} if self.llm else {}
        stored = self.store.get_many([verdict.key for _, verdict in decided.values()] + list(llm_keys.values()))

        results: dict[PairKey, Verdict | None] = {}
        new: list[Verdict] = []
        for key, (level, verdict) in decided.items():
            hit = stored.get(verdict.key)
            if hit is not None:
                results[key] = hit
                self._counts["store_hits"] += 1
            else:
                results[key] = verdict
                new.append(verdict)
                self._counts[level] += 1
        if new:
            self._put(new)

        asked: list[PairKey] = []
        for key in to_llm:
            hit = stored.get(llm_keys[key]) if self.llm else None
            if hit is not None:
                results[key] = hit
                self._counts["store_hits"] += 1
            elif self.llm is None:
                results[key] = None
                self._counts["undecided"] += 1
                self._note_failure(key, NO_LLM_CAUSE)
            else:
                asked.append(key)
        if asked:
            results.update(_run(self._ask_llm(asked, progress)))
        return results

    def _cheap_levels(self, unique: Iterable[PairKey]) -> tuple[dict[PairKey, tuple[str, Verdict]], list[PairKey]]:
        """Exact match, then the taxonomy judge; returns (decided, left for the LLM)."""
        decided: dict[PairKey, tuple[str, Verdict]] = {}
        left: list[PairKey] = []
        now = time.time()
        for key in unique:
            dataset, truth, prediction = key
            if not truth:
                raise ValueError(f"dataset {dataset!r}: a ground truth label is empty after normalisation")
            if truth == prediction:
                decided[key] = ("exact", _verdict(truth, prediction, Category.SPECIFIC, EXACT_JUDGE, now))
                continue
            taxonomy_judge = self.taxonomy_judge(dataset)
            category = taxonomy_judge.judge(truth, prediction)
            if category is None:
                left.append(key)
            else:
                decided[key] = ("taxonomy", _verdict(truth, prediction, category, taxonomy_judge.judge_id, now))
        return decided, left

    def taxonomy_judge(self, dataset: str) -> TaxonomyJudge:
        """The cascade's taxonomy level for `dataset` (an empty taxonomy when none was prepared)."""
        if dataset not in self._taxonomy_judges:
            taxonomy = self._taxonomies.get(dataset) or empty_taxonomy(dataset)
            close = self._close_levels_by_dataset.get(dataset, self._close_levels)
            self._taxonomy_judges[dataset] = TaxonomyJudge(taxonomy, close, closed=dataset in self._closed_world)
        return self._taxonomy_judges[dataset]

    async def _ask_llm(self, keys: list[PairKey], progress: bool) -> dict[PairKey, Verdict | None]:
        llm = self.llm
        writer = _GroupCommit(self._put)
        verdicts: dict[int, Verdict] = {}
        bar = tqdm(total=len(keys), desc="judge (LLM)", unit="pair", disable=not progress)

        def on_verdict(index: int, category: Category) -> None:
            _, truth, prediction = keys[index]
            verdicts[index] = _verdict(truth, prediction, category, llm.judge_id, time.time())
            writer.add(verdicts[index])

        def on_done(result: LLMResult) -> None:
            bar.update(1)
            self._counts["llm_calls"] += result.requests
            self._counts["retries"] += max(0, result.requests - 1)

        try:
            results = await llm.judge_async([(truth, prediction) for _, truth, prediction in keys], on_verdict, on_done)
        finally:
            bar.close()
            await writer.close()  # every verdict that did arrive is stored, even when the run stops
        answered: dict[PairKey, Verdict | None] = {}
        for index, (key, result) in enumerate(zip(keys, results, strict=True)):
            answered[key] = verdicts.get(index)
            if result.category is not None:
                self._counts["llm"] += 1
                continue
            self._counts["failures"] += 1
            self._counts["undecided"] += 1
            self._note_failure(key, result.error)
        return answered

    def _note_failure(self, key: PairKey, cause: str | None) -> None:
        if len(self._failure_examples) < _MAX_FAILURE_EXAMPLES:
            self._failure_examples.append(
                {"dataset": key[0], "ground_truth": key[1], "prediction": key[2], "error": cause}
            )

    def _put(self, verdicts: list[Verdict]) -> None:
        try:
            self.store.put_many(verdicts)
        except OSError as exc:
            raise VerdictStoreError(f"verdict store {self.store.root} cannot be written: {_os_reason(exc)}") from None


def pair_key(dataset: str, ground_truth: str, prediction: str) -> PairKey:
    return dataset, normalize(ground_truth), normalize(prediction)


def _verdict(truth: str, prediction: str, category: Category, judge: str, created: float) -> Verdict:
    return Verdict(verdict_key(truth, prediction, judge), truth, prediction, category, judge, created)


def _category(verdict: Verdict | None) -> Category | None:
    return None if verdict is None else verdict.category


class _GroupCommit:
    """Stores verdicts as they arrive: one put_many at a time, each taking all that queued up
    while the previous one was being written (an fsync per verdict would cap the throughput)."""

    def __init__(self, put: Callable[[list[Verdict]], None]) -> None:
        self.put = put
        self.pending: list[Verdict] = []
        self.task: asyncio.Task | None = None

    def add(self, verdict: Verdict) -> None:
        self.pending.append(verdict)
        if self.task is None or self.task.done():
            if self.task is not None:
                self.task.result()  # a failed write stops the run instead of dropping verdicts
            self.task = asyncio.get_running_loop().create_task(self._flush())

    async def _flush(self) -> None:
        while self.pending:
            batch, self.pending = self.pending, []
            await asyncio.to_thread(self.put, batch)

    async def close(self) -> None:
        if self.task is not None:
            await self.task
        await self._flush()


def _run(coroutine: Coroutine):
    """Run a coroutine from synchronous code, also when the caller already runs an event loop."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coroutine)
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coroutine).result()
