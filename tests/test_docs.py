"""The documents are self-contained: no file of the repository points to documents or paths a user
does not have, and every anchor of docs/method.md cited anywhere (and every in-page `(#...)` link inside
docs/method.md) names a heading of docs/method.md, as GitHub renders its anchors.

Pointing outside means: naming an upper-case document (`NAME.md`, as README.md) that is no file of
the repository; a relative path that climbs out of the repository from the file's folder, or, outside
tests/ (whose fixtures name such paths on purpose), one that climbs out from the repository root and
does not exist from the file's folder; or an absolute path of the machine the project was built on
(under /work/).
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
METHOD = ROOT / "docs" / "method.md"
DOCUMENT_NAME = re.compile(r"\b[A-Z][A-Z0-9_]*\.md\b")
CLIMBING_PATH = re.compile(r"(?<![\w.])(?:\.\./)+[\w./-]*")
BUILD_MACHINE_PATH = re.compile(r"(?<![\w.])/work/")
CITATION = re.compile(r"docs/method\.md#([\w-]+)")
LOCAL_LINK = re.compile(r"\]\(#([\w-]+)\)")


def repository_texts() -> dict[str, str]:
    """Tracked files and new files git does not ignore, text only; this file aside, whose examples
    point outside on purpose."""
    try:
        listed = subprocess.run(
            ["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
            cwd=ROOT,
            capture_output=True,
            check=True,
        ).stdout
    except (OSError, subprocess.CalledProcessError):
        pytest.skip("not a git checkout: the repository's files cannot be listed")
    texts = {}
    for name in listed.decode().split("\0"):
        path = ROOT / name
        if not name or not path.is_file() or path == Path(__file__).resolve():
            continue
        data = path.read_bytes()
        if b"\0" in data:
            continue  # binary
        try:
            texts[name] = data.decode()
        except UnicodeDecodeError:
            continue
    return texts


def anchor(heading: str) -> str:
    """GitHub's anchor of a Markdown heading: lowercase, punctuation dropped, spaces to dashes."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def method_anchors() -> set[str]:
    return {anchor(line.lstrip("#")) for line in METHOD.read_text().splitlines() if re.match(r"#{1,6} ", line)}


def test_anchor_follows_github():
    assert anchor("Deliberate departures from the authors' code") == "deliberate-departures-from-the-authors-code"
    assert anchor("The `null` control, always") == "the-null-control-always"
    assert anchor("Training recipe of the paper") == "training-recipe-of-the-paper"


def outside_references(name: str, line: str, documents: set[str]) -> list[str]:
    """What `line` of the repository file `name` cites that lies outside the repository."""
    found = [document for document in DOCUMENT_NAME.findall(line) if document not in documents]
    folder = (ROOT / name).parent
    for path in CLIMBING_PATH.findall(line):
        from_root = not name.startswith("tests/") and not folder.joinpath(path).exists()
        if _escapes(folder, path) or (from_root and _escapes(ROOT, path)):
            found.append(path)
    return found + BUILD_MACHINE_PATH.findall(line)


def _escapes(base: Path, path: str) -> bool:
    return not base.joinpath(path).resolve().is_relative_to(ROOT)


def test_outside_references_are_recognised():
    documents = {"README.md"}
    assert outside_references("README.md", "see README.md and `docs/method.md#metrics`", documents) == []
    assert outside_references("src/speciarl/x.py", "(NOTES.md section 5)", documents) == ["NOTES.md"]
    assert outside_references("workflow/envs/x.yaml", "-r ../../constraints/cpu.txt", documents) == []
    assert outside_references("README.md", "facts in ../notes/facts.txt", documents) == ["../notes/facts.txt"]
    assert outside_references("src/speciarl/x.py", "facts in ../notes", documents) == ["../notes"]
    assert outside_references("tests/data/test_x.py", "reject '../../escape.txt'", documents) == []
    assert outside_references("tests/x.py", "cwd = '/work/project'", documents) == ["/work/"]


def test_no_file_points_outside_the_repository():
    texts = repository_texts()
    documents = {Path(name).name for name in texts}
    found = [
        f"{name}:{number}: {reference}"
        for name, text in texts.items()
        for number, line in enumerate(text.splitlines(), 1)
        for reference in outside_references(name, line, documents)
    ]
    assert not found, "files cite what a user does not have:\n" + "\n".join(found)


def test_every_cited_method_section_exists():
    anchors = method_anchors()
    citations = [
        (f"{name}:{number}", cited)
        for name, text in repository_texts().items()
        for number, line in enumerate(text.splitlines(), 1)
        for cited in CITATION.findall(line) + (LOCAL_LINK.findall(line) if name == "docs/method.md" else [])
    ]
    assert citations, "nothing cites docs/method.md"
    missing = [f"{where}: #{cited}" for where, cited in citations if cited not in anchors]
    assert not missing, f"no such heading in docs/method.md (has: {', '.join(sorted(anchors))}):\n" + "\n".join(missing)
