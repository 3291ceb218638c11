"""The prepare stage keeps a prepared split only while it still matches its manifest."""

from __future__ import annotations

import io

from rich.console import Console

from speciarl.data import prepared
from speciarl.data.prepare import prepare_datasets

from .layouts import build_pets


def test_a_prepared_split_that_no_longer_matches_its_manifest_is_redone(data_params, tmp_path):
    params = data_params("pets", source=str(build_pets(tmp_path / "pets")), wordnet_dir=None)
    quiet = Console(file=io.StringIO())
    prepare_datasets(params, console=quiet)
    shard = prepared.split_dir(params.prepared_dir, "pets", "test") / "part-00000.parquet"
    shard.unlink()  # the manifest's settings still match: without the check this split would be kept
    prepare_datasets(params, console=quiet)
    assert shard.is_file()
    assert prepared.check_split(params.prepared_dir, "pets", "test")["num_samples"] > 0
