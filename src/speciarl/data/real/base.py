"""What every real-dataset loader returns, and the helpers they share.

Taxonomies from WordNet (Flowers102, Food-101) combine two sources per class: a curated table
shipped next to the loader (<dataset>_groups.txt) where it has the class, WordNet's hypernyms
otherwise. Which source placed which class is listed in the dataset's warnings (and so in every
manifest). A malformed table row stops with one line naming the file and line.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

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


@dataclass(frozen=True)
class CuratedClass:
    """One row of a curated groups table: where a class sits (the row also says why, for readers)."""

    groups: list[tuple[str, list[str]]]  # (group name, its synonyms), broad to narrow, under the root
    synonyms: list[str]  # extra names of the class


CURATED_COLUMNS = "'<class>\\t<group [synonyms]> > ...\\t<class synonyms>\\t<why not WordNet>'"


def _names(cell: str) -> list[str]:
    return [name.strip() for name in cell.split(";") if name.strip()]


def read_curated_groups(path: Path) -> dict[str, CuratedClass]:
    """Class -> its curated row, from a tab-separated table (format in the table's header comment)."""
    table: dict[str, CuratedClass] = {}
    for line_no, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip() or line.startswith("#"):
            continue
        fields = line.split("\t")
        # every row names its class and groups, and says why WordNet is not used for the class
        if len(fields) != 4 or not all(fields[i].strip() for i in (0, 1, 3)):
            raise ValueError(f"{path}:{line_no}: expected {CURATED_COLUMNS}, got {line[:80]!r}")
        name, groups_cell, synonyms_cell = (field.strip() for field in fields[:3])
        groups = []
        for group in groups_cell.split(" > "):
            match = re.fullmatch(r"([^\[\]]+?)\s*(?:\[([^\[\]]*)\])?", group.strip())
            if match is None:
                raise ValueError(f"{path}:{line_no}: group {group.strip()!r} is not 'name' or 'name [synonym; ...]'")
            groups.append((match.group(1), _names(match.group(2) or "")))
        if name in table:
            raise ValueError(f"{path}:{line_no}: class {name!r} is listed twice")
        table[name] = CuratedClass(groups, _names(synonyms_cell))
    return table


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
    """generic > groups > class: the groups from the curated table where it lists the class, else
    from WordNet hypernyms; generic > class where neither has the class (or WordNet is missing)."""
    table_path = Path(__file__).with_name(f"{dataset}_groups.txt")
    table = read_curated_groups(table_path)
    curated = [name for name in names if name in table]
    others = [name for name in names if name not in table]
    class_paths: dict[str, list[tuple[str, str]]] = {}
    synonyms: dict[str, list[str]] = {root: list(root_synonyms)}
    warnings = []
    wordnet, reason = open_wordnet(ctx.wordnet_dir, str(ctx.cache_dir))
    if wordnet is None:
        class_paths.update({name: [("generic", root), ("class", name)] for name in others})
        warnings.append(f"{dataset}: WordNet hypernyms skipped: {reason}")
    else:
        found = hypernym_paths(wordnet, others, root, lexname, anchors, head_noun, senses)
        class_paths.update(found.class_paths)
        synonyms.update(found.synonyms)
        if found.unmatched:
            warnings.append(
                f"{dataset}: {len(found.unmatched)} classes neither in the curated table nor in WordNet ({lexname}), "
                f"placed directly under '{root}': {', '.join(found.unmatched)}"
            )
        if found.by_head_noun:
            warnings.append(
                f"{dataset}: {len(found.by_head_noun)} classes placed under their head noun's WordNet sense: "
                f"{', '.join(found.by_head_noun)}"
            )
        matched = [name for name in others if name not in found.unmatched]
        warnings.append(f"{dataset}: {len(matched)} classes placed by WordNet hypernyms: {', '.join(matched)}")
    for name in curated:
        row = table[name]
        path, node_id = [("generic", root)], root
        for group, group_synonyms in row.groups:
            path.append(("group", group))
            node_id = f"{node_id}/{group}"
            synonyms.setdefault(node_id, []).extend(group_synonyms)
        class_paths[name] = path + [("class", name)]
        synonyms[f"{node_id}/{name}"] = row.synonyms
    if curated:
        warnings.append(
            f"{dataset}: {len(curated)} classes placed by the curated table {table_path.name}: {', '.join(curated)}"
        )
    return build_taxonomy(dataset, WORDNET_LEVELS, class_paths, synonyms), warnings
