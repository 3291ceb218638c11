"""A verdict store shared through a DVC remote: add, push, pull elsewhere, extend, compact, merge."""

import shutil

from conftest import make_verdict
from dvc.repo import Repo

from speciarl.judge.store import VerdictStore, merge_stores


def test_share_a_store_through_a_dvc_remote(tmp_path):
    remote, alice, bob = tmp_path / "remote", tmp_path / "alice", tmp_path / "bob"
    alice.mkdir()
    repo = Repo.init(alice, no_scm=True)
    with repo.config.edit() as config:
        config["remote"]["shared"] = {"url": str(remote)}
        config["core"]["remote"] = "shared"
        config["core"]["site_cache_dir"] = str(tmp_path / "site-cache")  # keep DVC's state in the test
    store = VerdictStore(alice / "verdicts")
    store.put_many([make_verdict(i) for i in range(300)])
    store.compact()  # a base file, the lock file ...
    store.put_many([make_verdict(i) for i in range(300, 400)])  # ... and a segment
    store.close()
    repo.add(str(alice / "verdicts"))
    repo.push()

    # bob: same DVC config and .dvc file, no data, no cache
    (bob / ".dvc").mkdir(parents=True)
    shutil.copy(alice / ".dvc" / "config", bob / ".dvc" / "config")
    shutil.copy(alice / "verdicts.dvc", bob / "verdicts.dvc")
    Repo(bob).pull()
    pulled = VerdictStore(bob / "verdicts")
    assert sorted(v.key for v in pulled.iter_verdicts()) == sorted(make_verdict(i).key for i in range(400))

    # bob extends and compacts the checked-out files; alice merges bob's store
    pulled.put_many([make_verdict(i) for i in range(400, 450)])
    pulled.compact()
    assert VerdictStore(bob / "verdicts").stats()["segments"] == 0
    report = merge_stores(alice / "verdicts", [bob / "verdicts"])
    assert (report.new, report.duplicates, report.conflicts) == (50, 400, [])
    assert len(VerdictStore(alice / "verdicts")) == 450
