"""The verdict store in one process: round trip, durability, validation, torn tails, conflicts,
compaction, export/import."""

import dataclasses
import json
import os

import pyarrow.parquet as pq
import pytest
from store_world import make_verdict

from speciarl.judge import store_format
from speciarl.judge.store import MergeReport, Verdict, VerdictStore, merge_stores, verdict_key
from speciarl.judge.store_checks import KnownJudges
from speciarl.judge.store_index import SortedKeys, key_words
from speciarl.labels import FORMAT_ERROR, Category

# judge ids of these tests are no judge of this project's: taken unchecked
UNCHECKED = KnownJudges(allow_unknown=True).check


def files(root, prefix):
    return sorted(name for name in os.listdir(root) if name.startswith(prefix))


def test_verdict_key_is_unambiguous_and_stable():
    assert verdict_key("a b", "c", "j") != verdict_key("a", "b c", "j")
    assert verdict_key("a", "bc", "j") != verdict_key("ab", "c", "j")
    assert verdict_key("a", "b", "j1") != verdict_key("a", "b", "j2")
    assert verdict_key("blue jay", "jay", "exact") == verdict_key("blue jay", "jay", "exact")
    assert len(verdict_key("", "", "x")) == 32
    with pytest.raises(TypeError):
        verdict_key("a", None, "j")


def test_round_trip_and_reopen(tmp_path):
    verdicts = [make_verdict(i) for i in range(500)]
    store = VerdictStore(tmp_path / "store")
    assert store.put_many(verdicts[:300]) == 300
    assert store.put_many(verdicts) == 200  # only the new ones
    assert store.put_many(verdicts[:10]) == 0
    assert len(store) == 500 and verdicts[7].key in store
    assert store.get(verdicts[7].key) == verdicts[7]
    assert store.get(make_verdict(10_000).key) is None
    found = store.get_many([v.key for v in verdicts[:5]] + ["0" * 32])
    assert found == {v.key: v for v in verdicts[:5]}
    store.close()

    reopened = VerdictStore(tmp_path / "store")
    assert sorted(reopened.iter_verdicts(), key=lambda v: v.key) == sorted(verdicts, key=lambda v: v.key)
    assert all(isinstance(v.category, Category) for v in reopened.iter_verdicts())


def test_missing_store_is_an_error_when_not_creating(tmp_path):
    with pytest.raises(FileNotFoundError, match="verdict store not found"):
        VerdictStore(tmp_path / "absent", create=False)


@pytest.mark.parametrize(
    "bad",
    [
        {"category": FORMAT_ERROR},
        {"category": "specific"},  # the value, not the Category
        {"category": None},
        {"key": "not-a-key"},
        {"judge": ""},
        {"created": float("nan")},
        {"prediction": None},
    ],
)
def test_errors_are_never_stored(tmp_path, bad):
    store = VerdictStore(tmp_path)
    good = make_verdict(1)
    with pytest.raises((TypeError, ValueError), match="verdict 1"):
        store.put_many([good, dataclasses.replace(good, **bad)])
    assert len(store) == 0 and len(VerdictStore(tmp_path)) == 0  # nothing of the batch was written
    with pytest.raises(TypeError):
        store.put_many([("key", "truth", "prediction", "specific", "judge", 0.0)])


def test_unencodable_text_fails_before_writing(tmp_path):
    store = VerdictStore(tmp_path)
    bad = dataclasses.replace(make_verdict(2), prediction="\ud800")
    with pytest.raises(UnicodeEncodeError):
        store.put_many([make_verdict(1), bad])
    assert len(VerdictStore(tmp_path)) == 0
    assert store.put_many([make_verdict(1)]) == 1


def test_torn_tails_are_ignored(tmp_path):
    store = VerdictStore(tmp_path)
    store.put_many([make_verdict(i) for i in range(100)])
    store.put_many([make_verdict(i) for i in range(100, 150)])
    store.close()
    (segment,) = files(tmp_path, "seg-")
    path = tmp_path / segment
    block = store_format.encode_block({name: [] for name in store_format.COLUMNS})
    closed = path.read_bytes()
    assert closed.endswith(block)  # a closing writer's last block has no rows
    intact = closed[: -len(block)]  # what a writer killed after its second put_many leaves

    for tail in (block[:5], block[:-3], b"\x00" * 40, os.urandom(200)):
        path.write_bytes(intact + tail)
        reopened = VerdictStore(tmp_path)
        assert len(reopened) == 150
        assert reopened.stats()["torn_bytes"] == len(tail)

    # a block whose payload was not completely written (its CRC fails) is dropped with what follows
    corrupted = bytearray(intact)
    corrupted[-1] ^= 0xFF
    path.write_bytes(bytes(corrupted))
    assert len(VerdictStore(tmp_path)) == 100

    path.write_bytes(intact + block[:-3])
    store = VerdictStore(tmp_path)
    store.put_many([make_verdict(150)])  # a new writer writes to a new segment
    store.compact()  # folds the torn segment and drops its tail
    store.close()
    assert files(tmp_path, "seg-") == []
    reopened = VerdictStore(tmp_path)
    assert len(reopened) == 151 and reopened.stats()["torn_bytes"] == 0


def test_a_segment_being_created_is_skipped(tmp_path):
    VerdictStore(tmp_path).put_many([make_verdict(1)])
    (tmp_path / f"seg-{0:020d}-1-00000000.vlog").write_bytes(store_format.SEGMENT_HEADER[:4])
    assert len(VerdictStore(tmp_path)) == 1
    (tmp_path / f"seg-{1:020d}-1-00000000.vlog").write_bytes(b"something else entirely")
    with pytest.raises(ValueError, match="not a speciarl verdict segment"):
        VerdictStore(tmp_path)


def test_refresh_sees_other_writers(tmp_path):
    reader = VerdictStore(tmp_path)
    writer = VerdictStore(tmp_path)
    writer.put_many([make_verdict(i) for i in range(10)])
    assert len(reader) == 0
    assert reader.get(make_verdict(3).key) == make_verdict(3)  # a miss refreshes
    assert len(reader) == 10
    writer.put_many([make_verdict(10)])
    assert reader.refresh() == 1


def test_conflicts_first_verdict_wins_everywhere(tmp_path, caplog):
    early = make_verdict(1, Category.SPECIFIC, created=100.0)
    late = make_verdict(1, Category.WRONG, created=200.0)
    first_writer, second_writer = VerdictStore(tmp_path), VerdictStore(tmp_path)
    # both judged the pair before seeing each other's verdict; the later one is written first
    second_writer.put_many([late])
    first_writer.put_many([early])
    assert first_writer.put_many([late]) == 0  # refused: this store already has a verdict for the key
    assert "verdict conflict" in caplog.text

    for store in (VerdictStore(tmp_path), first_writer, second_writer):
        store.refresh()
        assert store.get(early.key) == early
        assert store.conflicts() == [(early.key, Category.SPECIFIC, Category.WRONG)]
        assert store.stats()["conflicts"] == 1

    first_writer.close()
    second_writer.close()
    first_writer.compact()
    assert len(files(tmp_path, "base-")) == 1 and files(tmp_path, "seg-") == []
    compacted = VerdictStore(tmp_path)
    assert compacted.get(early.key) == early
    assert compacted.conflicts() == [(early.key, Category.SPECIFIC, Category.WRONG)]


def test_merge_keeps_both_sides_of_a_conflict_and_the_earliest_wins(tmp_path):
    target, source = VerdictStore(tmp_path / "a"), VerdictStore(tmp_path / "b")
    target.put_many([make_verdict(i) for i in range(10)])
    source.put_many([make_verdict(i) for i in range(5, 15) if i not in (7, 8)])
    source.put_many([make_verdict(8, Category.ABSTAIN, created=1_750_000_000.0)])  # later than the target's
    source.put_many([make_verdict(7, Category.ABSTAIN, created=1_600_000_000.0)])  # earlier: it becomes the verdict
    report = merge_stores(tmp_path / "a", [tmp_path / "b"], UNCHECKED)
    assert report.new == 5 and report.duplicates == 3
    assert sorted(report.conflicts) == sorted(
        [
            (make_verdict(7).key, Category.ABSTAIN, make_verdict(7).category),
            (make_verdict(8).key, make_verdict(8).category, Category.ABSTAIN),
        ]
    )
    merged = VerdictStore(tmp_path / "a")
    assert merged.get(make_verdict(7).key).category is Category.ABSTAIN and merged.get(
        make_verdict(8).key
    ) == make_verdict(8)
    assert len(merged) == 15 and merged.stats()["conflicts"] == 2  # both sides' verdicts are kept
    again = merge_stores(tmp_path / "a", [tmp_path / "b"], UNCHECKED)  # key 7: the source's is the verdict now
    assert again == MergeReport(0, 9, [(make_verdict(8).key, make_verdict(8).category, Category.ABSTAIN)])
    assert VerdictStore(tmp_path / "a").stats()["conflicts"] == 2
    with pytest.raises(FileNotFoundError):
        merge_stores(tmp_path / "a", [tmp_path / "missing"], UNCHECKED)


def test_compaction_preserves_content_and_leaves_live_writers_alone(tmp_path):
    verdicts = [make_verdict(i) for i in range(1000)]
    finished = VerdictStore(tmp_path)
    for start in range(0, 600, 100):
        finished.put_many(verdicts[start : start + 100])
    finished.close()
    live = VerdictStore(tmp_path)
    live.put_many(verdicts[600:800])
    debris = tmp_path / ".base-x.parquet.0123456789ab.partial"  # the temporary name of speciarl.atomic
    debris.write_bytes(b"debris of a crashed compaction")

    compactor = VerdictStore(tmp_path)
    compactor.compact()
    assert len(files(tmp_path, "base-")) == 1 and not debris.exists()
    assert files(tmp_path, "seg-") == [live._writer.name]  # still open: left alone

    live.put_many(verdicts[800:])  # the live writer goes on after the compaction
    compactor.compact()
    assert len(files(tmp_path, "seg-")) == 1
    live.close()
    compactor.compact()
    assert files(tmp_path, "seg-") == [] and len(files(tmp_path, "base-")) == 1
    reopened = VerdictStore(tmp_path)
    assert sorted(reopened.iter_verdicts(), key=lambda v: v.key) == sorted(verdicts, key=lambda v: v.key)
    base = pq.read_table(tmp_path / files(tmp_path, "base-")[0])
    assert base.column("key").to_pylist() == sorted(v.key for v in verdicts)
    # after a compaction by another instance, an older reader still sees everything
    assert len(live) == 1000 and live.refresh() == 0


@pytest.mark.parametrize("extension", [".jsonl", ".parquet"])
def test_export_import_round_trip(tmp_path, extension):
    store = VerdictStore(tmp_path / "a")
    exact = Verdict(verdict_key("jay", "jay", "exact"), "jay", "jay", Category.SPECIFIC, "exact", 1_700_000_000.0)
    verdicts = [make_verdict(i) for i in range(200)] + [exact]
    store.put_many(verdicts)
    out = tmp_path / f"verdicts{extension}"
    assert store.export(out) == 201
    copy = VerdictStore(tmp_path / "b")
    assert copy.import_(out, UNCHECKED) == 201
    assert copy.import_(out, UNCHECKED) == 0
    assert sorted(copy.iter_verdicts(), key=lambda v: v.key) == sorted(verdicts, key=lambda v: v.key)


def test_import_without_key_computes_it(tmp_path):
    path = tmp_path / "human.jsonl"
    path.write_text(
        json.dumps({"ground_truth": "lion", "prediction": "panthera leo", "category": "specific", "judge": "human"})
        + "\n\n"
    )
    store = VerdictStore(tmp_path / "s")
    assert store.import_(path, UNCHECKED) == 1
    verdict = store.get(verdict_key("lion", "panthera leo", "human"))
    assert verdict is not None and verdict.category is Category.SPECIFIC and verdict.created > 0


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("{not json", "line 2: not valid JSON"),
        ('["a list"]', "line 2: expected a JSON object"),
        (
            '{"ground_truth": "lion", "prediction": "cat", "category": "format_error", "judge": "x"}',
            "line 2: category 'format_error'",
        ),
        (
            '{"ground_truth": "lion", "prediction": "Cat", "category": "wrong", "judge": "x"}',
            "line 2: prediction 'Cat' is not normalised",
        ),
        ('{"ground_truth": "lion", "prediction": "cat", "category": "wrong"}', "line 2: judge must be a string"),
        (
            '{"ground_truth": "lion", "prediction": "cat", "category": "wrong", "judge": "x", "key": "XYZ"}',
            "line 2: key 'XYZ'",
        ),
    ],
)
def test_import_rejects_a_bad_row_and_imports_nothing(tmp_path, line, message):
    good = '{"ground_truth": "lion", "prediction": "cat", "category": "wrong", "judge": "x"}'
    path = tmp_path / "bad.jsonl"
    path.write_text(good + "\n" + line + "\n")
    store = VerdictStore(tmp_path / "s")
    with pytest.raises(ValueError, match=message) as error:
        store.import_(path, UNCHECKED)
    assert str(path) in str(error.value) and len(store) == 0


def test_import_and_export_check_the_file(tmp_path):
    store = VerdictStore(tmp_path / "s")
    with pytest.raises(ValueError, match="unknown extension '.csv'"):
        store.export(tmp_path / "x.csv")
    with pytest.raises(ValueError, match="unknown extension"):
        store.import_(tmp_path / "x.txt", UNCHECKED)
    (tmp_path / "x.parquet").write_bytes(b"not parquet")
    with pytest.raises(ValueError, match="not a readable parquet file"):
        store.import_(tmp_path / "x.parquet", UNCHECKED)
    store.export(tmp_path / "e.parquet")
    table = pq.read_table(tmp_path / "e.parquet").drop_columns(["judge"])
    pq.write_table(table, tmp_path / "nojudge.parquet")
    with pytest.raises(ValueError, match=r"missing columns \['judge'\]"):
        store.import_(tmp_path / "nojudge.parquet", UNCHECKED)


def test_verdict_is_immutable():
    verdict = make_verdict(1)
    with pytest.raises(dataclasses.FrozenInstanceError):
        verdict.category = Category.WRONG
    assert isinstance(verdict, Verdict)


def test_key_words_accept_only_well_formed_keys():
    key = verdict_key("a", "b", "c")
    assert key_words([key, key]).shape == (2, 2)
    for bad in (key.upper(), key[:30] + " 0", key[:31], key + "0", "g" * 32, "\uff10" * 32):
        assert key_words([key, bad]) is None
    assert key_words([key, None]) is None


def test_the_sorted_index_misses_only_keys_sharing_high_bits():
    # forged keys: the store refuses them, and real keys sharing 64 bits are not to be found
    twins = [
        dataclasses.replace(make_verdict(i), key="ab" * 8 + suffix) for i, suffix in ((1, "0" * 16), (2, "f" * 16))
    ]
    others = [make_verdict(i) for i in range(3, 1000)]
    index = SortedKeys({v.key: v for v in twins + others})
    queries = [v.key for v in twins + others[:100]] + ["ab" * 8 + "1" * 16, "0" * 32]
    found, missed = index.find(queries)
    assert found == {v.key: v for v in [*twins, *others[:100]] if v.key not in missed}
    assert set(missed) <= {twins[0].key, twins[1].key, "ab" * 8 + "1" * 16, "0" * 32} and "0" * 32 in missed
    assert index.find(queries + ["short"]) is None  # the store looks such batches up in its dict


def test_batched_lookups_with_late_changes(tmp_path):
    store = VerdictStore(tmp_path)
    others = [make_verdict(i) for i in range(3, 10_000)]
    store.put_many(others)
    batch = others[:100]  # batches this large go through the sorted index
    expected = {v.key: v for v in batch}
    queries = [v.key for v in batch] + ["0" * 32]
    assert store.get_many(queries) == expected
    assert store.get_many(queries + [batch[0].key.upper(), "short", None]) == expected  # the dict's way

    added = [make_verdict(i) for i in range(10_000, 10_100)]  # after the index was built
    store.put_many(added)
    assert store.get_many([v.key for v in added]) == {v.key: v for v in added}

    earlier = make_verdict(5, Category.ABSTAIN, created=0.0)  # another writer's earlier verdict
    other = VerdictStore(tmp_path / "other")
    other.put_many([earlier])
    other.close()
    for path in (tmp_path / "other").glob("seg-*"):
        path.rename(tmp_path / path.name)
    assert store.refresh() == 0
    assert store.get_many([v.key for v in others[:100]])[earlier.key] == earlier


def test_a_damaged_base_file_is_named(tmp_path):
    store = VerdictStore(tmp_path)
    store.put_many([make_verdict(i) for i in range(10)])
    store.compact()
    (base,) = files(tmp_path, "base-")
    (tmp_path / base).write_bytes((tmp_path / base).read_bytes()[:-20])
    with pytest.raises(ValueError, match=f"{base}: unreadable verdict base file"):
        VerdictStore(tmp_path)
