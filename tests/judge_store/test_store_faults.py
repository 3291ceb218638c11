"""Faults the verdict store must survive without losing or poisoning verdicts: a damaged segment
block, bit flips in a compacted file, forged or contradictory imports and merges."""

import json
import os
import random

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from store_world import make_verdict

from speciarl.cli import main
from speciarl.data.taxonomy import Node, Taxonomy
from speciarl.judge import store_format
from speciarl.judge.store import Verdict, VerdictStore, merge_stores, verdict_key
from speciarl.judge.store_checks import KnownJudges
from speciarl.judge.taxonomy_judge import TaxonomyJudge
from speciarl.labels import Category

BIT_FLIPS = 120


def files(root, prefix):
    return sorted(name for name in os.listdir(root) if name.startswith(prefix))


def three_block_segment(root):
    """A finished segment holding three put_many batches of 1,000; returns its path and block offsets."""
    store = VerdictStore(root)
    offsets = []
    for first in (0, 1000, 2000):
        offsets.append(store._writer.size if store._writer else len(store_format.SEGMENT_HEADER))
        store.put_many([make_verdict(i) for i in range(first, first + 1000)])
    store.close()
    (segment,) = files(root, "seg-")
    return root / segment, offsets


def third_block_end(path):
    """Where the last verdict block ends: the closing writer's empty block follows it."""
    return path.stat().st_size - len(store_format.encode_block({name: [] for name in store_format.COLUMNS}))


def flip(path, position, count=1):
    data = bytearray(path.read_bytes())
    for offset in range(position, position + count):
        data[offset] ^= 0xFF
    path.write_bytes(bytes(data))


def test_a_damaged_block_loses_only_its_own_verdicts(tmp_path, capsys):
    path, (_, second, third) = three_block_segment(tmp_path)
    original = path.read_bytes()
    flip(path, (second + third) // 2, count=2)  # the middle of the second block's payload

    store = VerdictStore(tmp_path)
    assert sorted(v.key for v in store.iter_verdicts()) == sorted(
        make_verdict(i).key for i in [*range(1000), *range(2000, 3000)]
    )
    stats = store.stats()
    assert stats["torn_bytes"] == 0
    assert stats["damaged"] == [{"file": path.name, "offset": second, "bytes": third - second, "blocks_skipped": 1}]

    assert main(["verdicts", "stats", "--store", str(tmp_path)]) == 1
    out = capsys.readouterr().out
    assert f"corruption: {path.name}: {third - second} unreadable bytes at offset {second} (1 blocks skipped" in out

    damaged = path.read_bytes()
    assert main(["verdicts", "compact", "--store", str(tmp_path)]) == 1
    out = capsys.readouterr().out
    assert "2000 verdicts" in out and f"corruption: {path.name}: " in out and "quarantine" in out
    assert files(tmp_path, "seg-") == [] and (tmp_path / "quarantine" / path.name).read_bytes() == damaged
    compacted = VerdictStore(tmp_path)
    assert len(compacted) == 2000 and compacted.stats()["damaged"] == [] and compacted.stats()["quarantined_files"] == 1

    # the quarantined bytes are all there: repaired, they give back the lost block
    (tmp_path / "quarantine" / path.name).write_bytes(original)
    os.replace(tmp_path / "quarantine" / path.name, tmp_path / path.name)
    assert len(VerdictStore(tmp_path)) == 3000


def test_damage_in_the_header_or_the_last_block_of_a_closed_segment_is_not_a_torn_tail(tmp_path):
    path, (_, _, third) = three_block_segment(tmp_path)
    original = path.read_bytes()
    flip(path, 3)  # the segment header
    store = VerdictStore(tmp_path)
    assert len(store) == 3000 and store.stats()["damaged"][0]["offset"] == 0

    path.write_bytes(original)
    flip(path, third_block_end(path) - 10)  # the last verdict block
    store = VerdictStore(tmp_path)
    assert len(store) == 2000 and store.stats()["torn_bytes"] == 0
    assert store.stats()["damaged"] == [
        {"file": path.name, "offset": third, "bytes": third_block_end(path) - third, "blocks_skipped": 1}
    ]


def test_a_torn_tail_is_kept_in_quarantine_and_compaction_succeeds(tmp_path, capsys):
    path, _ = three_block_segment(tmp_path)
    torn = path.read_bytes()[: third_block_end(path) - 100]  # a writer killed while writing its third batch
    path.write_bytes(torn)
    assert main(["verdicts", "compact", "--store", str(tmp_path)]) == 0
    assert f"torn tail: {path.name}:" in capsys.readouterr().out
    assert (tmp_path / "quarantine" / path.name).read_bytes() == torn and len(VerdictStore(tmp_path)) == 2000


def test_bit_flips_in_a_compacted_file_never_read_back_different(tmp_path):
    store = VerdictStore(tmp_path)
    verdicts = [make_verdict(i) for i in range(2000)]
    store.put_many(verdicts)
    store.compact()
    (base,) = files(tmp_path, "base-")
    path = tmp_path / base
    intact = path.read_bytes()
    expected = sorted((v.key, v.ground_truth, v.prediction, v.category, v.judge, v.created) for v in verdicts)
    rng = random.Random(12)
    outcomes = {"same": 0, "error": 0}
    for position in rng.sample(range(len(intact)), BIT_FLIPS):
        damaged = bytearray(intact)
        damaged[position] ^= 1 << rng.randrange(8)
        path.write_bytes(bytes(damaged))
        try:
            read = VerdictStore(tmp_path, create=False)
        except ValueError as error:
            assert base in str(error)
            outcomes["error"] += 1
            continue
        got = sorted(
            (v.key, v.ground_truth, v.prediction, v.category, v.judge, v.created) for v in read.iter_verdicts()
        )
        assert got == expected, f"a flip at byte {position} of {len(intact)} read back different"
        outcomes["same"] += 1
    assert outcomes["error"] > BIT_FLIPS // 2  # most flips land in checksummed data pages


def test_a_file_of_forged_rows_is_refused_on_read(tmp_path):
    store = VerdictStore(tmp_path)
    store.put_many([make_verdict(i) for i in range(10)])
    store.compact()
    (base,) = files(tmp_path, "base-")
    table = pq.read_table(tmp_path / base)
    predictions = table.column("prediction").to_pylist()
    predictions[3] = "guess 4000"  # keeps the key of another pair: checksums alone would pass it
    forged = table.set_column(2, "prediction", pa.array(predictions)).replace_schema_metadata(table.schema.metadata)
    pq.write_table(forged, tmp_path / base, write_page_checksum=True)
    with pytest.raises(ValueError, match=f"{base}: verdict .* does not match its content"):
        VerdictStore(tmp_path)

    other = tmp_path / "segment"
    other.mkdir()
    with open(other / f"seg-{0:020d}-1-00000000.vlog", "wb") as f:
        columns = {name: [getattr(make_verdict(1), name)] for name in store_format.COLUMNS}
        columns["category"], columns["ground_truth"] = ["specific"], ["species 2"]
        f.write(store_format.SEGMENT_HEADER + store_format.encode_block(columns))
    with pytest.raises(ValueError, match="block at offset 27: verdict .* does not match its content"):
        VerdictStore(other)


def test_put_many_refuses_a_verdict_under_another_pairs_key(tmp_path):
    store = VerdictStore(tmp_path)
    forged = Verdict(make_verdict(2).key, "species 1", "guess 1", Category.WRONG, "llm:test-judge", 1_700_000_000.0)
    with pytest.raises(ValueError, match="verdict 1: key .* is not the verdict_key"):
        store.put_many([make_verdict(1), forged])
    assert len(VerdictStore(tmp_path)) == 0


def record(truth, prediction, category, judge, **extra):
    return json.dumps({"ground_truth": truth, "prediction": prediction, "category": category, "judge": judge, **extra})


def bird_taxonomy():
    nodes = {
        "corvid": Node("corvid", "corvid", "family", None),
        "crow": Node("crow", "crow", "species", "corvid"),
        "raven": Node("raven", "raven", "species", "corvid"),
    }
    return Taxonomy("birds", ["family", "species"], nodes, {"crow": "crow", "raven": "raven"})


def test_import_refuses_what_no_judge_of_ours_could_have_said(tmp_path, capsys):
    taxonomy_judge = TaxonomyJudge(bird_taxonomy())
    taxonomy_id = taxonomy_judge.judge_id
    judges = KnownJudges([taxonomy_judge], ["llm:ours"])
    good = [
        record("crow", "crow", "specific", "exact"),
        record("crow", "corvid", "less specific", taxonomy_id),
        record("crow", "large black bird", "generic", "llm:ours"),
    ]
    bad = [  # (what the error says, a regular expression; the line)
        (
            "key [0-9a-f]{32} belongs to another pair",
            record("crow", "raven", "wrong", "llm:ours", key=verdict_key("crow", "rook", "llm:ours")),
        ),
        ("judge 'exact' decides only identical", record("crow", "crow", "wrong", "exact")),
        ("judge 'exact' decides only identical", record("crow", "raven", "specific", "exact")),
        (f"judge {taxonomy_id} says 'wrong'", record("crow", "raven", "specific", taxonomy_id)),
        (f"judge {taxonomy_id} cannot decide", record("crow", "black bird", "specific", taxonomy_id)),
        ("unknown judge 'llm:theirs'", record("crow", "raven", "wrong", "llm:theirs")),
        (
            "created 4102444800.0 is not a plausible",
            record("crow", "raven", "wrong", "llm:ours", created=4_102_444_800.0),
        ),
        ("created 0.0 is not a plausible", record("crow", "raven", "wrong", "llm:ours", created=0.0)),
        ("created -5.0 is not a plausible", record("crow", "raven", "wrong", "llm:ours", created=-5.0)),
    ]
    store = VerdictStore(tmp_path / "store")
    for number, (message, line) in enumerate(bad):
        path = tmp_path / f"bad{number}.jsonl"
        path.write_text("\n".join([*good, line]) + "\n")
        with pytest.raises(ValueError, match=f"{path}: line 4: {message}"):
            store.import_(path, judges.check)
        assert len(store) == 0  # nothing of a file with a bad line

    path.write_text("\n".join(good) + "\n")
    assert store.import_(path, judges.check) == 3
    with_unknown = KnownJudges([taxonomy_judge], allow_unknown=True).check
    path.write_text(record("crow", "raven", "wrong", "llm:theirs") + "\n")
    assert store.import_(path, with_unknown) == 1
    path.write_text(
        record("crow", "crow", "wrong", "exact") + "\n"
    )  # the flag takes unknown judges, not contradictions
    with pytest.raises(ValueError, match="judge 'exact' decides only identical"):
        store.import_(path, with_unknown)

    # through the command: one line naming the file and line, exit 2
    path.write_text(record("crow", "raven", "wrong", "human") + "\n" + record("crow", "crow", "wrong", "exact") + "\n")
    code = main(["verdicts", "import", "--store", str(tmp_path / "cli"), str(path)])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and f"{path}: line 1: unknown judge 'human'" in err
    code = main(["verdicts", "import", "--allow-unknown-judges", "--store", str(tmp_path / "cli"), str(path)])
    assert code == 2 and f"{path}: line 2: judge 'exact' decides only identical" in capsys.readouterr().err
    assert len(VerdictStore(tmp_path / "cli")) == 0


def test_merge_refuses_a_store_holding_a_poisoned_verdict(tmp_path):
    poisoned = Verdict(verdict_key("crow", "crow", "exact"), "crow", "crow", Category.WRONG, "exact", 1_700_000_000.0)
    source = VerdictStore(tmp_path / "theirs")
    source.put_many([make_verdict(1), poisoned])
    source.close()
    with pytest.raises(ValueError, match=f"theirs: verdict {poisoned.key}: judge 'exact' decides only identical"):
        merge_stores(tmp_path / "mine", [tmp_path / "theirs"], KnownJudges(allow_unknown=True).check)
    assert len(VerdictStore(tmp_path / "mine")) == 0
