"""Schema of the `evaluate` section of params.yaml."""

from __future__ import annotations

from speciarl.config import Section


class EvaluateParams(Section):
    out_dir: str = "data/eval"
    report_dir: str = "report"
