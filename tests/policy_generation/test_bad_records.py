"""Bad prepared data reaching `harvest` and `predict`: a damaged split is refused, a bad image is named and skipped."""

import shutil

import pyarrow.parquet as pq
import pytest
from generation_world import COLOURS, DATASET, jpeg, load_stage

from speciarl.data.prepared import SplitWriter, sample_id, split_dir
from speciarl.predictions import PREDICTIONS_FILE

HARVEST = load_stage("harvest")
PREDICT = load_stage("predict")
GOOD = 6


@pytest.fixture
def own_prepared(tmp_path, prepared):
    """A copy of the shared prepared data that a test may damage, plus a split `bad` with two bad images."""
    root = tmp_path / "own_prepared"
    shutil.copytree(prepared, root)
    truncated = jpeg(COLOURS["red square"], 99)
    with SplitWriter(root, DATASET, "bad", shard_rows=4) as writer:
        images = [jpeg(COLOURS["red square"], i) for i in range(GOOD)]
        images += [b"not an image at all", truncated[: len(truncated) // 2]]
        for i, image in enumerate(images):
            writer.add(
                {
                    "sample_id": sample_id(DATASET, f"bad/{i}"),
                    "dataset": DATASET,
                    "split": "bad",
                    "image": image,
                    "label": "red square",
                    "label_path": ["shape", "red square"],
                }
            )
        writer.commit({})
    return root


def test_a_split_missing_a_shard_or_with_a_stray_one_is_refused(write_params, own_prepared, tmp_path, capsys):
    folder = split_dir(own_prepared, DATASET, "test")  # 6 images in shards of 4: part-00000, part-00001
    params = write_params(
        data={"prepared_dir": str(own_prepared)}, predict={"splits": [f"{DATASET}/test"]}, harvest={"split": "test"}
    )
    second = folder / "part-00001.parquet"
    kept = second.read_bytes()
    second.unlink()
    assert PREDICT.main(["--policy", "base", "--prompt", "general", "--params", str(params)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("predict: error: prepared split toy/test") and "\n" not in err
    assert "does not match its manifest: shard part-00001.parquet is missing" in err
    assert HARVEST.main(["--params", str(params)]) == 2
    assert "shard part-00001.parquet is missing" in capsys.readouterr().err

    second.write_bytes(kept)
    shutil.copy(folder / "part-00000.parquet", folder / "part-00002.parquet")
    assert PREDICT.main(["--policy", "base", "--prompt", "general", "--params", str(params)]) == 2
    assert "stray shard part-00002.parquet is not in the manifest" in capsys.readouterr().err
    assert not list(tmp_path.glob(f"predictions/*/{PREDICTIONS_FILE}"))


def test_a_corrupt_manifest_is_named(write_params, own_prepared, capsys):
    manifest = split_dir(own_prepared, DATASET, "test") / "manifest.json"
    manifest.write_text(manifest.read_text()[:40])
    params = write_params(data={"prepared_dir": str(own_prepared)}, predict={"splits": [f"{DATASET}/test"]})
    assert PREDICT.main(["--policy", "base", "--prompt", "general", "--params", str(params)]) == 2
    err = capsys.readouterr().err.strip()
    assert f"{manifest}: corrupt manifest, not valid JSON" in err and "\n" not in err


def test_corrupt_images_are_named_skipped_and_counted(write_params, own_prepared, tmp_path, capsys):
    bad_ids = [sample_id(DATASET, f"bad/{i}") for i in (GOOD, GOOD + 1)]
    splits = {"splits": [f"{DATASET}/bad"]}

    # one of 8 is already more than the default share (0.01): stop, naming the split and the bad sample
    strict = write_params(data={"prepared_dir": str(own_prepared)}, predict=splits)
    assert PREDICT.main(["--policy", "base", "--prompt", "general", "--params", str(strict)]) == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err.startswith(
        "predict: error: toy/bad: 1 of 8 images cannot be decoded, more than data.max_corrupt_fraction"
    )
    assert f"first: sample {bad_ids[0]} (not an image format that can be read)" in err and "BytesIO" not in err
    assert not (tmp_path / "predictions" / "base-general" / PREDICTIONS_FILE).exists()
    assert list((tmp_path / "predictions" / "base-general" / "parts").glob("part-*.parquet"))  # finished batches kept

    lenient = write_params(
        data={"prepared_dir": str(own_prepared), "max_corrupt_fraction": 0.25},
        predict=splits,
        harvest={"split": "bad", "max_images": None, "n": 1},
    )
    assert PREDICT.main(["--policy", "base", "--prompt", "general", "--params", str(lenient)]) == 0
    err = capsys.readouterr().err
    for bad in bad_ids:
        assert f"toy/bad: sample {bad}: corrupt image skipped" in err
    assert "corrupt images skipped: toy/bad: 2 of 8" in err and "BytesIO" not in err
    rows = pq.read_table(tmp_path / "predictions" / "base-general" / PREDICTIONS_FILE).to_pylist()
    assert len(rows) == GOOD and not {row["sample_id"] for row in rows} & set(bad_ids)

    assert HARVEST.main(["--params", str(lenient)]) == 0
    assert "corrupt images skipped: toy/bad: 2 of 8" in capsys.readouterr().err
