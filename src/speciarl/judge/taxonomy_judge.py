"""The rule and taxonomy levels of the judge cascade: cheap, exact, and conservative.

Every verdict here is a function of (taxonomy, normalised truth, normalised prediction) only, so it
can be cached under a key built from the normalised pair. Anything the taxonomy cannot settle
returns None and goes on to the LLM judge: a missing verdict costs one request, a wrong one
corrupts the reward.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import re

from speciarl.data.taxonomy import Taxonomy
from speciarl.labels import Category, normalize

TAXONOMY_JUDGE_VERSION = 1
"""Bump whenever a rule below changes a verdict: it is part of the taxonomy judge id."""

# Refusals, written as they read; compared after normalisation ("I don't know" -> "i don t know").
ABSTAIN_PHRASES = frozenset(
    normalize(phrase)
    for phrase in (
        "none",
        "none of the above",
        "none of these",
        "nothing",
        "null",
        "n/a",
        "no answer",
        "no idea",
        "abstain",
        "i abstain",
        "unknown",
        "not known",
        "unsure",
        "uncertain",
        "unclear",
        "undetermined",
        "unidentified",
        "unidentifiable",
        "not sure",
        "i'm not sure",
        "i am not sure",
        "i don't know",
        "i do not know",
        "don't know",
        "dont know",
        "i dont know",
        "cannot tell",
        "can't tell",
        "cant tell",
        "i cannot tell",
        "i can't tell",
        "cannot say",
        "can't say",
        "i cannot say",
        "cannot determine",
        "can't determine",
        "cannot be determined",
        "unable to determine",
        "unable to tell",
        "unable to identify",
        "cannot identify",
        "can't identify",
        "impossible to tell",
        "hard to tell",
    )
)

_ARTICLES = ("a ", "an ", "the ")
_DASHES = re.compile(r"[^\w\s]")  # after normalize() only dash punctuation is neither
_OPTION_WORD = re.compile(r"\b(?:or|and or|versus|vs)\b")
_CONNECTOR = "and"  # allowed between listed options ("crow and raven")
_MAX_SEGMENT_TOKENS = 12  # longer answers are sentences, not label lists: leave them to the LLM
_MAX_SEGMENTATIONS = 64


def judge_by_taxonomy(
    taxonomy: Taxonomy, truth_label: str, prediction: str, *, close_levels: int = 1
) -> Category | None:
    """The verdict the taxonomy alone supports, or None when it cannot decide (see TaxonomyJudge)."""
    return TaxonomyJudge(taxonomy, close_levels).judge(truth_label, prediction)


class TaxonomyJudge:
    """One dataset's taxonomy, indexed for judging many pairs.

    A node named by the prediction relates to the truth's node: same node = specific, an ancestor
    at most `close_levels` taxonomy levels above = less specific, a higher ancestor = generic, a
    descendant = more specific, any other node = wrong. A name shared by several nodes decides only
    when every reading gives the same verdict.

    `closed`: the taxonomy lists every name a correct answer can use (a world built from it), so
    text that names no node, or names one off the truth's lineage, is wrong rather than undecided.
    """

    def __init__(self, taxonomy: Taxonomy, close_levels: int = 1, closed: bool = False) -> None:
        if close_levels < 0:
            raise ValueError(f"close_levels must be >= 0, got {close_levels}")
        self.taxonomy = taxonomy
        self.close_levels = close_levels
        self.closed = closed
        self.judge_id = _judge_id(taxonomy, close_levels, closed)
        self._lineage = {node_id: [n.id for n in taxonomy.lineage(node_id)] for node_id in taxonomy.nodes}
        self._ancestors = {node_id: frozenset(chain) for node_id, chain in self._lineage.items()}
        self._lineage_name_cache: dict[str, list[str]] = {}
        # Names are matched in "loose" form, where a dash equals a space ("737-200" = "737 200").
        self._by_name: dict[str, list[str]] = {}
        for node in taxonomy.nodes.values():
            for name in (node.name, *node.synonyms):
                ids = self._by_name.setdefault(loose(name), [])
                if node.id not in ids:
                    ids.append(node.id)
        # class label -> node; None where two labels read alike but differ in node
        self._classes: dict[str, str | None] = {}
        for label, node_id in taxonomy.classes.items():
            name = loose(label)
            self._classes[name] = node_id if self._classes.get(name, node_id) == node_id else None

    def judge(self, truth_label: str, prediction: str) -> Category | None:
        """`truth_label`: a class label (raw or normalised); `prediction`: free text."""
        pred = loose(prediction)
        if not pred:
            return Category.WRONG  # nothing but punctuation: malformed
        if pred == loose(truth_label):
            return Category.SPECIFIC
        truth_node = self._classes.get(loose(truth_label))

        named = self._nodes_named(pred)
        if named:
            return self._relation_verdict(truth_node, named, pred)
        if pred in ABSTAIN_PHRASES:
            return Category.ABSTAIN
        if _names_options(pred):
            return Category.WRONG

        kind, nodes = self._read_as_names(pred)
        if kind == "options":
            return Category.WRONG
        if kind == "qualified":
            return self._relation_verdict(truth_node, nodes, pred)
        return Category.WRONG if self.closed and truth_node is not None else None

    # Relations ----------------------------------------------------------------------------------

    def _nodes_named(self, pred: str) -> list[str]:
        """Nodes whose name or synonym is the prediction, with a leading article dropped if needed."""
        found = self._by_name.get(pred, [])
        if found:
            return found
        for article in _ARTICLES:
            if pred.startswith(article):
                return self._by_name.get(pred[len(article) :], [])
        return []

    def _relation_verdict(self, truth_node: str | None, candidates: list[str], pred: str) -> Category | None:
        if truth_node is None:
            return None
        verdicts = {self._relation(truth_node, node, pred) for node in candidates}
        return verdicts.pop() if len(verdicts) == 1 else None

    def _relation(self, truth_node: str, node: str, pred: str) -> Category | None:
        if node == truth_node:
            return Category.SPECIFIC
        if node in self._ancestors[truth_node]:
            levels_up = self._level_index(truth_node) - self._level_index(node)
            return Category.LESS_SPECIFIC if levels_up <= self.close_levels else Category.GENERIC
        if truth_node in self._ancestors[node]:
            return Category.MORE_SPECIFIC
        # Off the truth's lineage. A word sequence of the truth's own names ("hummer" for "am general
        # hummer suv 2000") may still be a correct reading the tree does not encode: the LLM decides.
        if not self.closed and any(_contains_words(name, pred) for name in self._lineage_names(truth_node)):
            return None
        return Category.WRONG

    def _level_index(self, node_id: str) -> int:
        return self.taxonomy.levels.index(self.taxonomy.nodes[node_id].level)

    def _lineage_names(self, node_id: str) -> list[str]:
        """Every name of the node, its ancestors and its class labels (cached: most verdicts need it)."""
        if node_id not in self._lineage_name_cache:
            names = [loose(label) for label, target in self.taxonomy.classes.items() if target == node_id]
            for ancestor in self._lineage[node_id]:
                node = self.taxonomy.nodes[ancestor]
                names.extend(loose(name) for name in (node.name, *node.synonyms))
            self._lineage_name_cache[node_id] = names
        return self._lineage_name_cache[node_id]

    def _related(self, a: str, b: str) -> bool:
        return a in self._ancestors[b] or b in self._ancestors[a]

    # Answers that are not one name --------------------------------------------------------------

    def _read_as_names(self, pred: str) -> tuple[str | None, list[str]]:
        """Read an answer that is not itself a name as a sequence of node names.

        Normalisation turned "robin, cardinal" and "x/y" into "robin cardinal" and "x y". Returns
        ("options", []) when every reading lists mutually unrelated nodes (several options: wrong),
        ("qualified", nodes) when every reading is one lineage such as "boeing 737-200" or
        "bengal cat" (the answer names the deepest node), and (None, []) otherwise.
        """
        tokens = pred.split()
        if len(tokens) > _MAX_SEGMENT_TOKENS:
            return None, []
        readings = self._segmentations(tokens)
        if not readings:
            return None, []
        kinds = set()
        deepest: set[str] = set()
        for segments, used_connector in readings:
            if self._all_unrelated(segments):
                kinds.add("options")
                continue
            chains = [] if used_connector else self._chains(segments)
            if not chains:
                return None, []
            kinds.add("qualified")
            deepest.update(max(chain, key=lambda node: len(self._lineage[node])) for chain in chains)
        if kinds == {"options"}:
            return "options", []
        if kinds == {"qualified"}:
            return "qualified", sorted(deepest)
        return None, []

    def _segmentations(self, tokens: list[str]) -> list[tuple[list[list[str]], bool]]:
        """Every split of the tokens into >= 2 node names, optionally joined by "and"."""
        results: list[tuple[list[list[str]], bool]] = []

        def extend(start: int, segments: list[list[str]], used_connector: bool) -> None:
            if len(results) > _MAX_SEGMENTATIONS:
                return
            if start == len(tokens):
                if len(segments) >= 2:
                    results.append((list(segments), used_connector))
                return
            if segments and tokens[start] == _CONNECTOR and start + 1 < len(tokens):
                extend(start + 1, segments, True)
            for end in range(start + 1, len(tokens) + 1):
                nodes = self._by_name.get(" ".join(tokens[start:end]))
                if nodes:
                    segments.append(nodes)
                    extend(end, segments, used_connector)
                    segments.pop()

        extend(0, [], False)
        return results if len(results) <= _MAX_SEGMENTATIONS else []

    def _all_unrelated(self, segments: list[list[str]]) -> bool:
        return all(
            not self._related(a, b)
            for first, second in itertools.combinations(segments, 2)
            for a in first
            for b in second
        )

    def _chains(self, segments: list[list[str]]) -> list[tuple[str, ...]]:
        """Choices of one node per segment that all lie on a single root-to-node lineage."""
        return [
            choice
            for choice in itertools.product(*segments)
            if all(self._related(a, b) for a, b in itertools.combinations(choice, 2))
        ]


def _judge_id(taxonomy: Taxonomy, close_levels: int, closed: bool) -> str:
    """Changes with the rules, the taxonomy and the closeness: a stored verdict is never stale."""
    blob = json.dumps(
        {
            "version": TAXONOMY_JUDGE_VERSION,
            "taxonomy": taxonomy.to_json(),
            "close_levels": close_levels,
            "closed": closed,
        },
        sort_keys=True,
        ensure_ascii=False,
    )
    return "taxonomy:" + hashlib.sha256(blob.encode()).hexdigest()[:16]


def empty_taxonomy(dataset: str) -> Taxonomy:
    """A taxonomy with no nodes: only the rules (abstain, malformed, several options) apply."""
    return Taxonomy(dataset, [], {}, {})


def loose(text: str) -> str:
    """normalize(), then every dash is a space: the form names are matched in."""
    return " ".join(_DASHES.sub(" ", normalize(text)).split())


def _contains_words(text: str, words: str) -> bool:
    return f" {words} " in f" {text} "


def _names_options(pred: str) -> bool:
    """An explicit choice between alternatives: "robin or cardinal", "a vs b"."""
    parts = [part.strip() for part in _OPTION_WORD.split(pred)]
    return len(parts) >= 2 and all(part and part != "either" for part in parts)
