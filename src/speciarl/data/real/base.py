"""What every real-dataset loader returns, and the helpers they share."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Sequence

from speciarl.data.taxonomy import Taxonomy
from speciarl.data.wordnet import hypernym_paths, open_wordnet
from speciarl.labels import normalize

WORDNET_LEVELS = ["generic", "group", "class"]


@dataclass(frozen=True)
class Record:
    """One sample of the source, before its image is read."""

    key: str  # the sample's own key in the source (its relative path); sample_id derives from it
    label: str  # the clean display name of its class
    image: Path | Callable[[], bytes]  # the image file, or a function returning its encoded bytes


@dataclass
class LoadedDataset:
    taxonomy: Taxonomy
    splits: dict[str, list[Record]]  # split name -> records in the source's order
    warnings: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class LoadContext:
    cache_dir: Path
    wordnet_dir: str | None


def build_taxonomy(
    dataset: str,
    levels: Sequence[str],
    class_paths: dict[str, Sequence[tuple[str, str]]],
    synonyms: dict[str, Iterable[str]] | None = None,
) -> Taxonomy:
    """Like Taxonomy.from_paths, but synonyms are keyed by node id, not by name.

    Names repeat across levels in real hierarchies (CUB's class "Sayornis" sits in the genus
    Sayornis), and a name-keyed synonym would land on both nodes.
    """
    taxonomy = Taxonomy.from_paths(dataset, levels, class_paths)
    nodes = {}
    for node_id, node in taxonomy.nodes.items():
        seen = {normalize(node.name)}
        extra = []
        for name in (synonyms or {}).get(node_id, ()):
            if name and normalize(name) not in seen:
                seen.add(normalize(name))
                extra.append(name)
        nodes[node_id] = dataclasses.replace(node, synonyms=tuple(extra))
    return Taxonomy(dataset, list(levels), nodes, dict(taxonomy.classes))


def read_rows(path: Path, fields: int, expected: str) -> list[list[str]]:
    """Whitespace-separated rows of a text file of the official layout (the last field keeps its spaces).

    A row with fewer fields is an error naming the file, the line and the expected format.
    """
    rows = []
    for line_no, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        row = line.split(maxsplit=fields - 1)
        if len(row) < fields:
            raise ValueError(f"{path}:{line_no}: expected {expected}, got {line[:80]!r}")
        rows.append(row)
    return rows


def wordnet_taxonomy(
    dataset: str,
    names: Sequence[str],
    root: str,
    root_synonyms: Sequence[str],
    lexname: str,
    anchors: Sequence[str],
    head_noun: bool,
    ctx: LoadContext,
    senses: dict[str, str] | None = None,
) -> tuple[Taxonomy, list[str]]:
    """generic > WordNet hypernyms > class where WordNet has the class; generic > class otherwise."""
    wordnet, reason = open_wordnet(ctx.wordnet_dir, str(ctx.cache_dir))
    if wordnet is None:
        paths = {name: [("generic", root), ("class", name)] for name in names}
        taxonomy = build_taxonomy(dataset, WORDNET_LEVELS, paths, {root: root_synonyms})
        return taxonomy, [f"{dataset}: WordNet hypernyms skipped: {reason}"]
    found = hypernym_paths(wordnet, names, root, lexname, anchors, head_noun, senses)
    warnings = []
    if found.unmatched:
        warnings.append(
            f"{dataset}: {len(found.unmatched)} classes not in WordNet ({lexname}), placed directly under "
            f"'{root}': {', '.join(found.unmatched)}"
        )
    if found.by_head_noun:
        warnings.append(
            f"{dataset}: {len(found.by_head_noun)} classes placed under their head noun's WordNet sense: "
            f"{', '.join(found.by_head_noun)}"
        )
    return build_taxonomy(dataset, WORDNET_LEVELS, found.class_paths, {root: root_synonyms, **found.synonyms}), warnings
