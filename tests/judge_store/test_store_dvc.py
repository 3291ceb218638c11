"""A verdict store shared through a DVC remote: add, push, pull elsewhere, extend, compact, merge,
and the safe way to pull a colleague's store over local verdicts that are not shared yet."""

import os
import shutil

import pytest
from dvc.exceptions import DvcException
from dvc.repo import Repo
from store_world import make_verdict

from speciarl.judge.store import VerdictStore, merge_stores
from speciarl.judge.store_checks import KnownJudges
from speciarl.labels import Category

UNCHECKED = KnownJudges(allow_unknown=True).check  # the tests' judge is no judge of this project's


def shared_repo(tmp_path, name):
    """A DVC project (no git) whose default remote is tmp_path/remote."""
    (tmp_path / name).mkdir()
    repo = Repo.init(tmp_path / name, no_scm=True)
    with repo.config.edit() as config:
        config["remote"]["shared"] = {"url": str(tmp_path / "remote")}
        config["core"]["remote"] = "shared"
        config["core"]["site_cache_dir"] = str(tmp_path / "site-cache")  # keep DVC's state in the test
    return repo


def git_pull(source, target):
    """What `git pull` brings: the other side's .dvc file."""
    shutil.copy(source / "verdicts.dvc", target / "verdicts.dvc")


def test_share_a_store_through_a_dvc_remote(tmp_path):
    alice, bob = tmp_path / "alice", tmp_path / "bob"
    repo = shared_repo(tmp_path, "alice")
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
    git_pull(alice, bob)
    Repo(bob).pull()
    pulled = VerdictStore(bob / "verdicts")
    assert sorted(v.key for v in pulled.iter_verdicts()) == sorted(make_verdict(i).key for i in range(400))

    # bob extends and compacts the checked-out files; alice merges bob's store
    pulled.put_many([make_verdict(i) for i in range(400, 450)])
    pulled.compact()
    assert VerdictStore(bob / "verdicts").stats()["segments"] == 0
    report = merge_stores(alice / "verdicts", [bob / "verdicts"], UNCHECKED)
    assert (report.new, report.duplicates, report.conflicts) == (50, 400, [])
    assert len(VerdictStore(alice / "verdicts")) == 450


def test_pulling_over_unshared_local_verdicts_loses_none(tmp_path):
    alice, bob = tmp_path / "alice", tmp_path / "bob"
    alice_repo, bob_repo = shared_repo(tmp_path, "alice"), shared_repo(tmp_path, "bob")
    with VerdictStore(alice / "verdicts") as store:
        store.put_many([make_verdict(i) for i in range(100)])
    alice_repo.add(str(alice / "verdicts"))
    alice_repo.push()
    git_pull(alice, bob)
    bob_repo.pull()

    # both judge on: bob's 30 verdicts are not shared, one of them conflicts with one of alice's
    with VerdictStore(bob / "verdicts") as store:
        store.put_many([make_verdict(i) for i in range(100, 130)])
    with VerdictStore(alice / "verdicts") as store:
        store.put_many([make_verdict(i) for i in range(200, 250)])
        store.put_many([make_verdict(129, Category.ABSTAIN, created=1_600_000_000.0)])
    alice_repo.add(str(alice / "verdicts"))
    alice_repo.push()
    git_pull(alice, bob)

    with pytest.raises(DvcException, match="unsaved files"):  # plain `dvc pull` refuses; --force would delete them
        bob_repo.pull()
    assert len(VerdictStore(bob / "verdicts")) == 130

    # the safe way (README): move the local store aside, pull, merge it back
    os.rename(bob / "verdicts", bob / "verdicts.local")
    bob_repo.pull()
    report = merge_stores(bob / "verdicts", [bob / "verdicts.local"], UNCHECKED)
    assert report.new == 29 and len(report.conflicts) == 1
    merged = VerdictStore(bob / "verdicts")
    everyone = [*range(130), *range(200, 250)]
    assert sorted(v.key for v in merged.iter_verdicts()) == sorted(make_verdict(i).key for i in everyone)
    assert merged.get(make_verdict(129).key).category is Category.ABSTAIN  # the earliest, as on alice's side
    assert merged.conflicts() == [
        (make_verdict(129).key, Category.ABSTAIN, make_verdict(129).category)
    ]  # bob's is kept too
