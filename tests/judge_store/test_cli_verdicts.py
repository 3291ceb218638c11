"""`speciarl verdicts ...`: a session through the installed command, and its error handling."""

import json
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from store_world import make_verdict

from speciarl.cli import main
from speciarl.judge.store import VerdictStore
from speciarl.judge.store_checks import KnownJudges
from speciarl.labels import Category

UNCHECKED = KnownJudges(allow_unknown=True).check
SCRIPT = Path(sys.executable).with_name("speciarl")
COMMAND = [str(SCRIPT)] if SCRIPT.exists() else [sys.executable, "-m", "speciarl.cli"]


def speciarl(*args, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([*COMMAND, *map(str, args)], cwd=cwd, capture_output=True, text=True, timeout=120)


def row(truth, prediction, category, judge="human"):
    return json.dumps({"ground_truth": truth, "prediction": prediction, "category": category, "judge": judge})


def test_share_verdicts_between_two_stores(tmp_path):
    # each CLI start pays for importing every subcommand's libraries: keep this to a few calls
    (tmp_path / "mine.jsonl").write_text(
        row("lion", "panthera leo", "specific") + "\n" + row("lion", "cat", "generic") + "\n"
    )
    (tmp_path / "theirs.jsonl").write_text(
        row("lion", "cat", "wrong") + "\n" + row("dog", "samoyed", "more specific") + "\n"
    )
    VerdictStore(tmp_path / "mine").import_(tmp_path / "mine.jsonl", UNCHECKED)
    VerdictStore(tmp_path / "theirs").import_(tmp_path / "theirs.jsonl", UNCHECKED)

    refused = speciarl("verdicts", "merge", "--into", "mine", "theirs", cwd=tmp_path)
    assert (
        refused.returncode == 2
        and "unknown judge 'human'" in refused.stderr
        and "--allow-unknown-judges" in refused.stderr
    )
    merge = speciarl("verdicts", "merge", "--allow-unknown-judges", "--into", "mine", "theirs", cwd=tmp_path)
    assert merge.returncode == 1, merge.stderr  # a conflict: reported, both verdicts kept, the rest merged
    assert "1 new, 0 duplicates, 1 conflicts" in merge.stdout
    assert "'lion', prediction 'cat': " in merge.stdout and "both kept" in merge.stdout

    stats = speciarl("verdicts", "stats", "--store", "mine", "--json", cwd=tmp_path)
    assert stats.returncode == 0, stats.stderr
    counts = json.loads(stats.stdout)
    assert counts["verdicts"] == 3 and counts["by_judge"] == {"human": 3} and counts["conflicts"] == 1
    assert counts["by_category"]["generic"] == 1 and counts["by_category"]["more specific"] == 1

    missing = speciarl("verdicts", "export", "--store", "nowhere", "--out", "all.parquet", cwd=tmp_path)
    assert missing.returncode != 0 and missing.stderr.strip().splitlines() == [
        "speciarl verdicts: error: verdict store not found: nowhere"
    ]
    assert not (tmp_path / "all.parquet").exists()


def run_main(capsys, *args) -> tuple[int, str, str]:
    code = main([str(arg) for arg in args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_bad_input_is_one_clear_line(tmp_path, capsys):
    bad = tmp_path / "bad.jsonl"
    bad.write_text(row("lion", "cat", "wrong") + "\n" + row("lion", "cat", "format_error") + "\n")
    code, _, err = run_main(capsys, "verdicts", "import", "--allow-unknown-judges", "--store", tmp_path / "s", bad)
    assert code == 2 and err.count("\n") == 1 and f"{bad}: line 2: category 'format_error'" in err
    assert len(VerdictStore(tmp_path / "s")) == 0  # nothing of a bad file is imported

    code, _, err = run_main(capsys, "verdicts", "export", "--store", tmp_path / "s", "--out", tmp_path / "x.csv")
    assert code == 2 and "unknown extension '.csv'" in err

    for command in (["export", "--out", tmp_path / "x.jsonl"], ["compact"], ["stats"]):
        code, _, err = run_main(capsys, "verdicts", command[0], "--store", tmp_path / "absent", *command[1:])
        assert code == 2 and "verdict store not found" in err

    code, _, err = run_main(capsys, "verdicts", "merge", "--into", tmp_path / "s", tmp_path / "absent")
    assert code == 2 and "verdict store not found" in err
    code, _, err = run_main(capsys, "verdicts", "import", "--store", tmp_path / "s", tmp_path / "absent.jsonl")
    assert code == 2 and "absent.jsonl" in err


def test_compact_and_stats_output(tmp_path, capsys):
    first, second = VerdictStore(tmp_path), VerdictStore(tmp_path)
    first.put_many([make_verdict(i) for i in range(50)])
    second.put_many([make_verdict(1, Category.WRONG, created=0.0)])  # judged before it saw the first's
    first.close()
    second.close()

    code, out, _ = run_main(capsys, "verdicts", "compact", "--store", tmp_path)
    assert code == 0 and "2 files" in out and "-> 1 files" in out and "50 verdicts" in out
    code, out, _ = run_main(capsys, "verdicts", "stats", "--store", tmp_path)
    assert code == 0 and f"{tmp_path}: 50 verdicts" in out and "conflicts: 1 keys" in out
    assert f"{make_verdict(1).key}: 'wrong' (the verdict) vs 'specific'" in out

    code, out, _ = run_main(capsys, "verdicts", "export", "--store", tmp_path, "--out", tmp_path / "v.jsonl")
    assert code == 0 and "exported 50 verdicts" in out
    lines = (tmp_path / "v.jsonl").read_text().splitlines()
    assert len(lines) == 50 and set(json.loads(lines[0])) == {
        "ground_truth",
        "prediction",
        "category",
        "judge",
        "key",
        "created",
    }


@pytest.mark.parametrize("extension", [".jsonl", ".parquet"])
def test_import_export_through_the_cli(tmp_path, capsys, extension):
    VerdictStore(tmp_path / "a").put_many([make_verdict(i) for i in range(30)])
    out = tmp_path / f"v{extension}"
    assert run_main(capsys, "verdicts", "export", "--store", tmp_path / "a", "--out", out)[0] == 0
    table = pq.read_table(out) if extension == ".parquet" else None
    assert table is None or table.column_names == ["ground_truth", "prediction", "category", "judge", "key", "created"]
    code, text, _ = run_main(
        capsys, "verdicts", "import", "--allow-unknown-judges", "--store", tmp_path / "b", out, out
    )
    assert code == 0 and "30 new, 0 duplicates" in text and "0 new, 30 duplicates" in text
    assert sorted(v.key for v in VerdictStore(tmp_path / "b").iter_verdicts()) == sorted(
        make_verdict(i).key for i in range(30)
    )
