"""Per-dataset label hierarchies, stored as `taxonomy.json` next to the prepared splits.

File format (version 1):
    {
      "format": "speciarl.taxonomy/1",
      "dataset": "cub",
      "levels": ["order", "family", "genus", "species"],       # root-most first
      "nodes": [{"id": "...", "name": "...", "level": "...", "parent": "..." | null,
                 "synonyms": ["..."]}, ...],
      "classes": {"<label>": "<node id>", ...}                  # every dataset label -> its node
    }
Node ids are the "/"-joined names of the root-to-node path, so they are stable and readable.
A node may sit at any level (datasets whose hierarchy is ragged skip levels).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from speciarl.atomic import atomic_write_text
from speciarl.labels import normalize

FORMAT = "speciarl.taxonomy/1"


@dataclass(frozen=True)
class Node:
    id: str
    name: str
    level: str
    parent: str | None
    synonyms: tuple[str, ...] = ()


@dataclass
class Taxonomy:
    dataset: str
    levels: list[str]
    nodes: dict[str, Node]
    classes: dict[str, str]
    _by_name: dict[str, list[str]] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        for node in self.nodes.values():
            if node.parent is not None and node.parent not in self.nodes:
                raise ValueError(f"taxonomy {self.dataset}: node {node.id!r} has unknown parent {node.parent!r}")
            if node.level not in self.levels:
                raise ValueError(f"taxonomy {self.dataset}: node {node.id!r} has unknown level {node.level!r}")
        for label, node_id in self.classes.items():
            if node_id not in self.nodes:
                raise ValueError(f"taxonomy {self.dataset}: class {label!r} points to unknown node {node_id!r}")
        self._by_name = {}
        for node in self.nodes.values():
            for name in (node.name, *node.synonyms):
                ids = self._by_name.setdefault(normalize(name), [])
                if node.id not in ids:
                    ids.append(node.id)

    # Construction -------------------------------------------------------------------------------

    @classmethod
    def from_paths(
        cls,
        dataset: str,
        levels: Sequence[str],
        class_paths: dict[str, Sequence[tuple[str, str]]],
        synonyms: dict[str, Iterable[str]] | None = None,
    ) -> Taxonomy:
        """Build from each class's root-to-leaf path of (level, name) pairs.

        `synonyms` maps a node name (any level) to extra names of that node.
        """
        synonyms = synonyms or {}
        nodes: dict[str, Node] = {}
        classes: dict[str, str] = {}
        for label, path in class_paths.items():
            if not path:
                raise ValueError(f"taxonomy {dataset}: class {label!r} has an empty path")
            parent = None
            for level, name in path:
                node_id = name if parent is None else f"{parent}/{name}"
                if node_id not in nodes:
                    nodes[node_id] = Node(node_id, name, level, parent, tuple(synonyms.get(name, ())))
                parent = node_id
            classes[label] = parent
        return cls(dataset, list(levels), nodes, classes)

    # Persistence --------------------------------------------------------------------------------

    def to_json(self) -> dict:
        return {
            "format": FORMAT,
            "dataset": self.dataset,
            "levels": self.levels,
            "nodes": [
                {"id": n.id, "name": n.name, "level": n.level, "parent": n.parent, "synonyms": list(n.synonyms)}
                for n in self.nodes.values()
            ],
            "classes": self.classes,
        }

    def save(self, path: str | Path) -> None:
        atomic_write_text(path, json.dumps(self.to_json(), indent=1, ensure_ascii=False))

    @classmethod
    def load(cls, path: str | Path) -> Taxonomy:
        path = Path(path)
        try:
            raw = json.loads(path.read_text())
        except FileNotFoundError:
            raise FileNotFoundError(f"taxonomy file not found: {path}") from None
        except json.JSONDecodeError as exc:
            raise ValueError(f"{path}: not valid JSON ({exc})") from None
        if raw.get("format") != FORMAT:
            raise ValueError(f"{path}: format is {raw.get('format')!r}, expected {FORMAT!r}")
        try:
            nodes = {
                n["id"]: Node(n["id"], n["name"], n["level"], n["parent"], tuple(n.get("synonyms", ())))
                for n in raw["nodes"]
            }
            return cls(raw["dataset"], list(raw["levels"]), nodes, dict(raw["classes"]))
        except KeyError as exc:
            raise ValueError(f"{path}: missing key {exc}") from None

    # Queries ------------------------------------------------------------------------------------

    def node_of(self, label: str) -> Node:
        try:
            return self.nodes[self.classes[label]]
        except KeyError:
            raise KeyError(f"taxonomy {self.dataset}: unknown class {label!r}") from None

    def lineage(self, node_id: str) -> list[Node]:
        """Root-to-node list of nodes."""
        chain = []
        current: str | None = node_id
        while current is not None:
            node = self.nodes[current]
            chain.append(node)
            current = node.parent
        return chain[::-1]

    def path(self, label: str) -> list[str]:
        """Root-to-leaf display names for a class label (the `label_path` column)."""
        return [node.name for node in self.lineage(self.classes[label])]

    def find(self, text: str) -> list[str]:
        """Ids of nodes whose name or synonym normalises to the same string as `text`."""
        return list(self._by_name.get(normalize(text), ()))

    def children(self, node_id: str | None) -> list[Node]:
        return [n for n in self.nodes.values() if n.parent == node_id]

    def depth(self, node_id: str) -> int:
        return len(self.lineage(node_id)) - 1
