"""Fixtures of the real-dataset tests: a shared cache and DataParams for one dataset."""

from __future__ import annotations

from pathlib import Path

import pytest

from speciarl.data.params import DataParams

from .layouts import WORDNET_DIR


@pytest.fixture(scope="session")
def cache_dir(tmp_path_factory) -> Path:
    # shared by all tests: WordNet is loaded once per process and cached per cache folder
    return tmp_path_factory.mktemp("cache")


@pytest.fixture
def data_params(tmp_path, cache_dir):
    """DataParams for one real dataset: data_params("cub", source=..., subset=...)."""

    def make(
        name: str, workers: int = 1, max_corrupt_fraction: float = 0.01, wordnet_dir=str(WORDNET_DIR), **dataset
    ) -> DataParams:
        return DataParams.model_validate(
            {
                "prepared_dir": str(tmp_path / "prepared"),
                "datasets": [name],
                "cache_dir": str(cache_dir),
                "wordnet_dir": wordnet_dir,
                "workers": workers,
                "max_corrupt_fraction": max_corrupt_fraction,
                name: dataset,
            }
        )

    return make
