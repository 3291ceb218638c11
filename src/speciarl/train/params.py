"""Schema of the `train` section of params.yaml."""

from __future__ import annotations

from speciarl.config import Section


class RunParams(Section):
    reward: str = "speciarl"


class TrainParams(Section):
    out_dir: str = "data/runs"
    runs: dict[str, RunParams] = {"speciarl": RunParams(reward="speciarl"), "binary": RunParams(reward="binary")}
    seed: int = 0
