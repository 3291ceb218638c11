"""What an import or a merge may add to a verdict store: KnownJudges.check.

A verdict taken from a file or another store must be one that a judge of this project could have
given. `check(verdict, where)` raises ValueError, starting with `where` (file and line, or store and
key), unless:

- `created` is a plausible unix time: not before EARLIEST_CREATED, at most MAX_CLOCK_SKEW_S ahead
  of this machine's clock (the earliest verdict wins a conflict, so a forged date would win them all);
- judge "exact" (the cascade's first level) gave it: identical truth and prediction, "specific";
- a taxonomy judge we know gave it: that judge is run again and must give the same category;
- an LLM judge we know gave it (it cannot be run again here, so it is taken as it is);
- or, with allow_unknown, any other judge (a human, another taxonomy, a colleague's LLM), taken
  unchecked.

KnownJudges.from_params knows the judges of a params.yaml: the taxonomy judge of every prepared
taxonomy (`data.prepared_dir`, with the `judge.taxonomy` settings) and the LLM judges of
`judge.llm` and `judge.eval_llm`. Keys are checked where they are read (store_exchange, store_format).
Importing this module imports the cascade (and the OpenAI client): the CLI imports it only to
import or merge.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterable
from pathlib import Path

from speciarl.config import load_section, read_raw
from speciarl.data.taxonomy import Taxonomy
from speciarl.judge.cascade import EXACT_JUDGE
from speciarl.judge.llm import llm_judge_id
from speciarl.judge.store_verdict import Verdict
from speciarl.judge.taxonomy_judge import TaxonomyJudge
from speciarl.labels import Category

EARLIEST_CREATED = 1_577_836_800.0  # 2020-01-01 UTC: older than any speciarl verdict
MAX_CLOCK_SKEW_S = 86_400.0


class KnownJudges:
    """The judges whose verdicts are accepted, and the deterministic ones, run again to check them."""

    def __init__(
        self,
        taxonomy_judges: Iterable[TaxonomyJudge] = (),
        llm_judge_ids: Iterable[str] = (),
        *,
        allow_unknown: bool = False,
        described_as: str = "the given judges",
    ) -> None:
        self.taxonomy_judges = {judge.judge_id: judge for judge in taxonomy_judges}
        self.llm_judge_ids = frozenset(llm_judge_ids)
        self.allow_unknown = allow_unknown
        self.described_as = described_as
        self._now = time.time()

    @classmethod
    def from_params(cls, path: Path, *, allow_unknown: bool = False) -> KnownJudges:
        """The judges of params file `path` (taxonomies from its data.prepared_dir, where present)."""
        raw = read_raw(path)
        judge, data = load_section("judge", path, raw), load_section("data", path, raw)
        taxonomy_judges = []
        for taxonomy_file in sorted(Path(data.prepared_dir).glob("*/taxonomy.json")):
            dataset = taxonomy_file.parent.name
            # the cascade's settings for this dataset (JudgeService.taxonomy_judge)
            close = judge.taxonomy.close_levels_by_dataset.get(dataset, judge.taxonomy.close_levels)
            closed = dataset in judge.taxonomy.closed_world
            taxonomy_judges.append(TaxonomyJudge(Taxonomy.load(taxonomy_file), close, closed=closed))
        llm_ids = [
            llm_judge_id(llm.model, llm.revision, llm.chat_template_kwargs)
            for llm in (judge.llm, judge.eval_llm)
            if llm is not None and llm.configured
        ]
        return cls(taxonomy_judges, llm_ids, allow_unknown=allow_unknown, described_as=f"the judges of {path}")

    def check(self, verdict: Verdict, where: str) -> None:
        created = verdict.created
        if not (math.isfinite(created) and EARLIEST_CREATED <= created <= self._now + MAX_CLOCK_SKEW_S):
            raise ValueError(f"{where}: created {created!r} is not a plausible unix time (2020-01-01 to now)")
        category = verdict.category
        if verdict.judge == EXACT_JUDGE:
            if verdict.ground_truth != verdict.prediction or category is not Category.SPECIFIC:
                raise ValueError(
                    f"{where}: judge 'exact' decides only identical truth and prediction, as 'specific'; "
                    f"this verdict says {verdict.ground_truth!r} vs {verdict.prediction!r} is {category.value!r}"
                )
            return
        taxonomy_judge = self.taxonomy_judges.get(verdict.judge)
        if taxonomy_judge is not None:
            expected = taxonomy_judge.judge(verdict.ground_truth, verdict.prediction)
            if expected is not category:
                said = "cannot decide it" if expected is None else f"says {expected.value!r}"
                raise ValueError(
                    f"{where}: judge {verdict.judge} {said} for {verdict.ground_truth!r} vs {verdict.prediction!r}, "
                    f"not {category.value!r}"
                )
            return
        if verdict.judge in self.llm_judge_ids or self.allow_unknown:
            return
        raise ValueError(
            f"{where}: unknown judge {verdict.judge!r} (not 'exact' nor one of {self.described_as}; "
            "--allow-unknown-judges takes it unchecked)"
        )
