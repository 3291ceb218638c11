"""Exact reruns: every dvc.yaml stage lists as deps every project file its script runs.

The closure of a stage is computed statically from its script (`python stages/X.py` in its cmd):
every `speciarl` module it imports, at the top or inside a function, then what those import, with
their parent packages' __init__.py; a string constant naming a speciarl module (importlib's lazy
registries) counts as an import. speciarl.config loads a section's schema module by name only for
the sections a stage reads, so a stage's closure takes the schema modules of the params sections
it declares (config.SECTIONS). A module that reads files next to itself (uses __file__) brings the
other files of its folder. A dep covers a file when it is that file or a folder above it.
"""

from __future__ import annotations

import ast
import copy
import re
from pathlib import Path

import pytest
import yaml

from speciarl.config import SECTIONS

REPO = Path(__file__).resolve().parents[1]
SRC = REPO / "src"
PACKAGE = "speciarl"
_MODULE_STRING = re.compile(rf"({PACKAGE}(?:\.\w+)+)(?::\w+)?")
_SCRIPT = re.compile(r"\bpython\s+(stages/\S+\.py)")


def module_file(name: str, src: Path = SRC) -> Path | None:
    """The file of module `name` under `src`, or None when it is not a project module."""
    base = src.joinpath(*name.split("."))
    for candidate in (base / "__init__.py", base.with_suffix(".py")):
        if candidate.is_file():
            return candidate
    return None


def imported_modules(path: Path, name: str | None, src: Path = SRC) -> set[str]:
    """The project modules that the file `path` (module `name`; None for a script) imports."""
    tree = ast.parse(path.read_text(), filename=str(path))
    package = name if path.name == "__init__.py" else (name or "").rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                parts = package.split(".")
                base = ".".join(parts[: len(parts) - node.level + 1])
                module = f"{base}.{node.module}" if node.module else base
            else:
                module = node.module or ""
            found.add(module)
            found.update(f"{module}.{alias.name}" for alias in node.names)  # `from pkg import submodule`
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and name != f"{PACKAGE}.config":
            match = _MODULE_STRING.fullmatch(node.value)
            if match:
                found.add(match.group(1))
    return {module for module in found if module_file(module, src) is not None}


def closure(roots: set[str], src: Path = SRC) -> set[Path]:
    """Every file that importing `roots` runs or reads: modules, parent packages, files next to a
    module that reads them through __file__."""
    files: set[Path] = set()
    seen: set[str] = set()
    todo = list(roots)
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        parts = name.split(".")
        todo.extend(".".join(parts[:end]) for end in range(1, len(parts)))
        path = module_file(name, src)
        files.add(path)
        if "__file__" in path.read_text():
            files.update(p for p in path.parent.iterdir() if p.is_file() and p.suffix != ".py")
        todo.extend(imported_modules(path, name, src))
    return files


def stage_definitions(dvc_yaml: Path = REPO / "dvc.yaml") -> dict[str, dict]:
    """Each stage of dvc.yaml by name; a foreach/matrix stage by its template (`do`)."""
    stages = yaml.safe_load(dvc_yaml.read_text())["stages"]
    return {name: definition.get("do", definition) for name, definition in stages.items()}


def declared_sections(definition: dict) -> set[str]:
    sections = set()
    for entry in definition.get("params", []):
        keys = entry if isinstance(entry, str) else [key for file_keys in entry.values() for key in file_keys]
        for key in [keys] if isinstance(keys, str) else keys:
            sections.add(key.split(".")[0])
    return sections & set(SECTIONS)


def required_files(definition: dict, repo: Path = REPO) -> set[str]:
    """Repo-relative paths of the stage's script and of every project file it runs or reads."""
    script = _SCRIPT.search(definition["cmd"])
    assert script, f"cmd does not run a stage script: {definition['cmd']!r}"
    script_path = repo / script.group(1)
    roots = imported_modules(script_path, None, repo / "src")
    roots |= {SECTIONS[section].partition(":")[0] for section in declared_sections(definition)}
    files = {script_path} | closure(roots, repo / "src")
    return {path.relative_to(repo).as_posix() for path in files}


def missing_deps(name: str, definition: dict, repo: Path = REPO) -> list[str]:
    """One line per project file that stage `name` runs or reads but its deps do not cover."""
    deps = [dep.rstrip("/") for dep in definition.get("deps", []) if "${" not in dep]
    return [
        f"dvc.yaml: stage {name!r} runs {path} but its deps do not list it (nor a folder above it)"
        for path in sorted(required_files(definition, repo))
        if not any(path == dep or path.startswith(dep + "/") for dep in deps)
    ]


@pytest.mark.parametrize("name", sorted(stage_definitions()))
def test_stage_deps_cover_every_module_it_imports(name):
    assert missing_deps(name, stage_definitions()[name]) == []


def test_closure_follows_lazy_relative_and_string_imports(tmp_path):
    package = tmp_path / "src" / PACKAGE
    (package / "sub").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "sub" / "__init__.py").write_text("from . import lazy\n")
    (package / "sub" / "lazy.py").write_text("def f():\n    from ..strings import X\n")
    (package / "strings.py").write_text(f"X = ['{PACKAGE}.registered:Thing']\n")
    (package / "registered.py").write_text("from pathlib import Path\nTABLE = Path(__file__).with_name('table.txt')\n")
    (package / "table.txt").write_text("data\n")
    (package / "unused.py").write_text("")
    (tmp_path / "stages").mkdir()
    (tmp_path / "stages" / "s.py").write_text(f"def main():\n    import {PACKAGE}.sub\n")
    required = required_files({"cmd": "python stages/s.py --flag"}, tmp_path)
    modules = ("__init__.py", "sub/__init__.py", "sub/lazy.py", "strings.py", "registered.py", "table.txt")
    assert required == {"stages/s.py", *(f"src/{PACKAGE}/{name}" for name in modules)}


def test_a_removed_dep_is_named():
    definitions = stage_definitions()
    name = "train"
    mutated = copy.deepcopy(definitions[name])
    removed = next(dep for dep in mutated["deps"] if dep.startswith(f"src/{PACKAGE}/judge"))
    mutated["deps"].remove(removed)
    problems = missing_deps(name, mutated)
    assert problems and all(f"stage {name!r}" in line and removed in line for line in problems), problems
    mutated = copy.deepcopy(definitions[name])
    mutated["deps"].remove(f"stages/{name}.py")
    assert missing_deps(name, mutated) == [
        f"dvc.yaml: stage {name!r} runs stages/{name}.py but its deps do not list it (nor a folder above it)"
    ]
