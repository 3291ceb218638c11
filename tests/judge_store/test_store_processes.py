"""The verdict store across processes: concurrent writers, kill -9 mid-write, compaction while
writers run."""

import multiprocessing
import os
import signal
import threading
import time

from store_world import make_verdict, start_writer, stored_indices

from speciarl.judge.store import VerdictStore


def check_contains(store: VerdictStore, indices) -> None:
    expected = [make_verdict(index) for index in sorted(indices)]
    found = store.get_many([verdict.key for verdict in expected])
    missing = [verdict for verdict in expected if found.get(verdict.key) != verdict]
    assert not missing, f"{len(missing)} stored verdicts missing or different, e.g. {missing[:3]}"


def test_concurrent_writers_with_overlapping_keys(tmp_path):
    # four processes, each sharing 200 keys with each neighbour and having 100 or more of its own
    writers = [start_writer(tmp_path, first=300 * n, count=500, batch=25) for n in range(4)]
    outputs = [writer.communicate(timeout=60) for writer in writers]
    for writer, (_, stderr) in zip(writers, outputs, strict=True):
        assert writer.returncode == 0, stderr
    assert set().union(*(stored_indices(out) for out, _ in outputs)) == set(range(1400))

    store = VerdictStore(tmp_path)
    assert len(store) == 1400
    check_contains(store, range(1400))
    stats = store.stats()
    assert stats["conflicts"] == 0 and stats["torn_bytes"] == 0 and stats["segments"] == 4


def test_kill_9_mid_write_loses_only_what_was_in_flight(tmp_path):
    reported: set[int] = set()
    first = 0
    for batches, delay in ((1, 0.0), (3, 0.005), (5, 0.013)):  # each kill leaves a dead segment
        writer = start_writer(tmp_path, first=first, count=10_000_000, batch=2000)
        for _ in range(batches):  # let it store a few batches, then kill it at some point of the next
            assert writer.stdout.readline().startswith("stored")
        time.sleep(delay)
        os.kill(writer.pid, signal.SIGKILL)
        output, _ = writer.communicate(timeout=30)
        assert writer.returncode == -signal.SIGKILL
        reported |= stored_indices(output) | set(range(first, first + 2000 * batches))
        first = max(reported, default=first) + 1_000_000  # the next writer writes other keys

    store = VerdictStore(tmp_path)
    check_contains(store, reported)
    stats = store.stats()
    assert stats["segments"] == 3
    # nothing but whole batches: what is stored beyond the reported is at most the batches in flight
    assert len(store) - len(reported) in range(0, 3 * 2000 + 1, 2000)

    store.compact()  # the dead writers' segments are folded, torn tails dropped
    compacted = VerdictStore(tmp_path)
    assert compacted.stats()["segments"] == 0 and compacted.stats()["torn_bytes"] == 0
    check_contains(compacted, reported)


def test_compaction_while_writers_run(tmp_path):
    writers = [start_writer(tmp_path, first=n * 400, count=400, batch=20, delay=0.01) for n in range(2)]
    compactor = VerdictStore(tmp_path)
    while any(writer.poll() is None for writer in writers):
        compactor.compact()
        time.sleep(0.05)
    outputs = [writer.communicate(timeout=30) for writer in writers]
    for writer, (_, stderr) in zip(writers, outputs, strict=True):
        assert writer.returncode == 0, stderr
    compactor.compact()
    store = VerdictStore(tmp_path)
    assert len(store) == 800 and store.stats()["segments"] == 0 and store.stats()["base_files"] == 1
    check_contains(store, range(800))


def test_threads_share_one_store(tmp_path):
    store = VerdictStore(tmp_path)

    def put(first):
        for start in range(first, first + 200, 20):
            store.put_many([make_verdict(index) for index in range(start, start + 20)])
            store.get_many([make_verdict(index).key for index in range(0, 400, 7)])

    threads = [threading.Thread(target=put, args=(first,)) for first in (0, 100, 200)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(store) == 400 and store.stats()["segments"] == 1
    check_contains(VerdictStore(tmp_path), range(400))


def test_a_forked_child_writes_its_own_segment(tmp_path):
    store = VerdictStore(tmp_path)
    store.put_many([make_verdict(0)])
    child = multiprocessing.get_context("fork").Process(target=store.put_many, args=([make_verdict(1)],))
    child.start()
    child.join()
    assert child.exitcode == 0
    store.put_many([make_verdict(2)])
    assert store.stats()["segments"] == 2
    check_contains(VerdictStore(tmp_path), range(3))
