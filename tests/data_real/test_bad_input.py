"""Bad input to `prepare`: each a clear one-line error, and nothing half-written left as valid output."""

from __future__ import annotations

import subprocess
import sys
import tarfile
from pathlib import Path

import pytest
import yaml

from speciarl.config import ParamsError, load_section
from speciarl.data import prepared
from speciarl.data.archive import extract
from speciarl.data.prepare import prepare_real
from speciarl.data.real.base import read_curated_groups

from .layouts import build_cub, build_pets, jpeg_bytes

REPO = Path(__file__).resolve().parents[2]


def test_missing_archive_names_the_path(data_params, tmp_path):
    params = data_params("cub", source=str(tmp_path / "nowhere" / "CUB_200_2011.tgz"))
    with pytest.raises(
        FileNotFoundError, match=r"cub: source not found: .*nowhere/CUB_200_2011.tgz \(set data.cub.source\)"
    ):
        prepare_real("cub", params)


def test_missing_layout_file_is_named(data_params, tmp_path):
    params = data_params("cub", source=str(build_cub(tmp_path, drop="train_test_split.txt")))
    with pytest.raises(FileNotFoundError, match=r"cub: train_test_split.txt not found in .*CUB_200_2011.tgz"):
        prepare_real("cub", params)
    assert not Path(params.prepared_dir, "cub").exists()


def test_pets_missing_annotations_archive_is_named(data_params, tmp_path):
    source = build_pets(tmp_path)
    (source / "annotations.tar.gz").unlink()
    params = data_params("pets", source=str(source))
    with pytest.raises(FileNotFoundError, match=r"annotations/trainval.txt not found .* or inside annotations.tar.gz"):
        prepare_real("pets", params)


def test_malformed_layout_line_names_file_and_line(data_params, tmp_path):
    folder = build_cub(tmp_path, archive=False)
    (folder / "classes.txt").write_text("1 001.Black_footed_Albatross\n2\n")
    with pytest.raises(ValueError, match=r"classes.txt:2: expected '<class id> <class folder>', got '2'"):
        prepare_real("cub", data_params("cub", source=str(folder)))


def test_corrupt_images_under_the_threshold_are_skipped_and_listed(data_params, tmp_path):
    params = data_params("cub", source=str(build_cub(tmp_path, per_class=5, corrupt=1)), max_corrupt_fraction=0.1)
    manifest = prepare_real("cub", params)["train"]
    assert manifest["num_corrupt"] == 1 and manifest["num_samples"] == 15
    (entry,) = manifest["corrupt"]
    assert entry["key"] == "images/001.Black_footed_Albatross/Black_footed_Albatross_0000_1.jpg"
    assert "unreadable image" in entry["reason"]


def test_corrupt_images_over_the_threshold_fail_and_leave_nothing(data_params, tmp_path):
    params = data_params("cub", source=str(build_cub(tmp_path, corrupt=2)), max_corrupt_fraction=0.1)
    with pytest.raises(
        ValueError, match=r"cub/train: \d+ of \d+ images checked are corrupt .* data.max_corrupt_fraction = 0.1"
    ):
        prepare_real("cub", params)
    leftovers = list(Path(params.prepared_dir, "cub").iterdir())
    assert [p.name for p in leftovers] == [prepared.TAXONOMY]  # no split folder, no partial one
    with pytest.raises(FileNotFoundError):
        prepared.read_manifest(params.prepared_dir, "cub", "train")


def test_a_failed_rerun_keeps_the_previous_complete_split(data_params, tmp_path):
    good = data_params("cub", source=str(build_cub(tmp_path / "good")), splits=["train"])
    before = prepare_real("cub", good)["train"]
    bad = data_params("cub", source=str(build_cub(tmp_path / "bad", corrupt=4)), splits=["train"])
    with pytest.raises(ValueError, match="corrupt"):
        prepare_real("cub", bad)
    assert prepared.read_manifest(good.prepared_dir, "cub", "train")["content_hash"] == before["content_hash"]


def test_a_subset_skips_corrupt_images_and_needs_enough_readable_ones(data_params, tmp_path):
    source = str(build_cub(tmp_path, per_class=5, corrupt=1))  # 16 train images, 1 corrupt
    subset = data_params(
        "cub", source=source, splits=["train"], subset={"train": {"size": 15, "seed": 3}}, max_corrupt_fraction=0.1
    )
    manifest = prepare_real("cub", subset)["train"]
    assert manifest["num_samples"] == 15 and manifest["num_corrupt"] == 1
    whole = data_params(
        "cub", source=source, splits=["train"], subset={"train": {"size": 16, "seed": 3}}, max_corrupt_fraction=0.1
    )
    with pytest.raises(ValueError, match=r"cub/train: only 15 readable images for a subset of 16"):
        prepare_real("cub", whole, force=True)


def test_subset_larger_than_the_split(data_params, tmp_path):
    params = data_params("cub", source=str(build_cub(tmp_path)), subset={"train": {"size": 9, "seed": 0}})
    with pytest.raises(ValueError, match=r"data.cub.subset.train.size: 9 is larger than the train split \(8 samples\)"):
        prepare_real("cub", params)


def test_unknown_dataset_name_lists_the_allowed_ones(tmp_path):
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump({"data": {"datasets": ["cubb"]}}))
    with pytest.raises(ParamsError) as err:
        load_section("data", path)
    assert "data.datasets.0" in str(err.value) and "'cub'" in str(err.value) and "'miniworld'" in str(err.value)
    with pytest.raises(ValueError, match=r"unknown dataset 'cubb' \(allowed: miniworld, cub, aircraft"):
        prepare_real("cubb", load_section("data", REPO / "params.yaml"))


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"cub": {"sorce": "x"}}, r"data\.cub\.sorce: unknown key \(allowed: .*source"),
        ({"cub": {"splits": ["tran"]}}, r"data\.cub\.splits: .*unknown split 'tran' \(allowed: train, test\)"),
        ({"pets": {"subset": {"train": {"size": 5}}}}, r"data\.pets\.subset: .*split 'train' is not in splits"),
        ({"cub": {"subset": {"train": {"size": 0}}}}, r"data\.cub\.subset\.train\.size: .*greater than or equal to 1"),
        ({"workers": 0}, r"data\.workers: .*greater than or equal to 1"),
    ],
)
def test_params_errors_are_one_line_naming_the_key(tmp_path, data, message):
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump({"data": data}))
    with pytest.raises(ParamsError, match=message) as err:
        load_section("data", path)
    assert "\n" not in str(err.value)


def _tar_with(tmp_path: Path, member: tarfile.TarInfo, data: bytes = b"x") -> Path:
    archive = tmp_path / "evil.tar"
    with tarfile.open(archive, "w") as tar:
        ok = tarfile.TarInfo("top/ok.txt")
        ok.size = 2
        tar.addfile(ok, __import__("io").BytesIO(b"ok"))
        member.size = len(data) if member.isfile() else 0
        tar.addfile(member, __import__("io").BytesIO(data) if member.isfile() else None)
    return archive


@pytest.mark.parametrize(
    "member",
    [
        tarfile.TarInfo("top/../../escape.txt"),
        tarfile.TarInfo("/etc/evil.txt"),
        pytest.param("symlink", id="link-outside"),
    ],
    ids=["dotdot", "absolute", "link-outside"],
)
def test_unsafe_archive_members_are_rejected(tmp_path, member):
    if member == "symlink":
        member = tarfile.TarInfo("top/link")
        member.type = tarfile.SYMTYPE
        member.linkname = "/etc/passwd"
    cache = tmp_path / "cache"
    with pytest.raises(ValueError, match=r"evil.tar: unsafe archive member .* rejected"):
        extract(_tar_with(tmp_path, member), cache)
    assert not (tmp_path / "escape.txt").exists()
    assert not any(p.name.endswith(".complete") for p in cache.rglob("*"))  # nothing looks extracted


def test_truncated_archive_is_a_clear_error(data_params, tmp_path):
    archive = build_cub(tmp_path)
    archive.write_bytes(archive.read_bytes()[: archive.stat().st_size // 2])
    with pytest.raises(ValueError, match=r"CUB_200_2011.tgz: cannot read the archive"):
        prepare_real("cub", data_params("cub", source=str(archive)))


def test_stage_rejects_unknown_dataset_and_typo_with_one_line(tmp_path):
    for data, expected in (
        ({"datasets": ["cubb"]}, "data.datasets.0"),
        ({"prepared_dirr": "x"}, "data.prepared_dirr: unknown key"),
    ):
        path = tmp_path / "params.yaml"
        path.write_text(yaml.safe_dump({"data": data}))
        run = subprocess.run(
            [sys.executable, "stages/prepare.py", "--params", str(path)], cwd=REPO, capture_output=True, text=True
        )
        assert run.returncode != 0
        (line,) = run.stderr.strip().splitlines()
        assert line.startswith("prepare: error:") and expected in line


def test_stage_prepares_a_dataset(tmp_path, cache_dir):
    source = build_pets(tmp_path)
    path = tmp_path / "params.yaml"
    prepared_dir = tmp_path / "prepared"
    data = {
        "datasets": ["pets"],
        "prepared_dir": str(prepared_dir),
        "cache_dir": str(cache_dir),
        "workers": 1,
        "pets": {"source": str(source)},
    }
    path.write_text(yaml.safe_dump({"data": data}))
    run = subprocess.run(
        [sys.executable, "stages/prepare.py", "--params", str(path)], cwd=REPO, capture_output=True, text=True
    )
    assert run.returncode == 0, run.stderr
    assert "pets/test: 4 samples, 4 classes" in run.stdout
    assert prepared.read_manifest(prepared_dir, "pets", "trainval")["num_samples"] == 8


@pytest.mark.parametrize(
    ("row", "message"),
    [
        ("rose\tRosaceae\n", r"groups.txt:2: expected '<class>.*', got 'rose\\tRosaceae'"),
        ("rose\tRosaceae\tRosa rubiginosa\t\n", r"groups.txt:2: expected '<class>.*<why not WordNet>'"),
        (
            "rose\tRosaceae [rose family\t\tx\n",
            r"groups.txt:2: group 'Rosaceae \[rose family' is not 'name' or 'name \[synonym; \.\.\.\]'",
        ),
        ("rose\tRosaceae\t\tx\nrose\tRosaceae\t\ty\n", r"groups.txt:3: class 'rose' is listed twice"),
    ],
)
def test_malformed_curated_groups_row_names_file_and_line(tmp_path, row, message):
    table = tmp_path / "flowers102_groups.txt"
    table.write_text("# header\n" + row)
    with pytest.raises(ValueError, match=message) as err:
        read_curated_groups(table)
    assert "\n" not in str(err.value)


def test_jpeg_helper_makes_distinct_images():
    assert jpeg_bytes(1) != jpeg_bytes(2)
