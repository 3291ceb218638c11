"""WordNet hypernyms for class names, read from a plain WordNet 3.0 database folder.

nltk's reader expects its own packaging of WordNet: a `lexnames` file and an `index.sense` file
that Debian's wordnet-base does not ship, and a mapping step that looks for nltk's downloaded
copy. `open_wordnet` therefore builds a reader-ready copy of the folder in the cache (adding the
45 lexicographer file names of lexnames(5) and an empty sense index, which nothing here needs)
and reads it with that mapping step turned off.
"""

from __future__ import annotations

import functools
import hashlib
import shutil
import warnings
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from speciarl.atomic import atomic_directory

# WordNet 3.0 lexicographer files, numbered from 00 (lexnames(5)): name, syntactic category.
LEXNAMES = (
    ("adj.all", 3),
    ("adj.pert", 3),
    ("adv.all", 4),
    ("noun.Tops", 1),
    ("noun.act", 1),
    ("noun.animal", 1),
    ("noun.artifact", 1),
    ("noun.attribute", 1),
    ("noun.body", 1),
    ("noun.cognition", 1),
    ("noun.communication", 1),
    ("noun.event", 1),
    ("noun.feeling", 1),
    ("noun.food", 1),
    ("noun.group", 1),
    ("noun.location", 1),
    ("noun.motive", 1),
    ("noun.object", 1),
    ("noun.person", 1),
    ("noun.phenomenon", 1),
    ("noun.plant", 1),
    ("noun.possession", 1),
    ("noun.process", 1),
    ("noun.quantity", 1),
    ("noun.relation", 1),
    ("noun.shape", 1),
    ("noun.state", 1),
    ("noun.substance", 1),
    ("noun.time", 1),
    ("verb.body", 2),
    ("verb.change", 2),
    ("verb.cognition", 2),
    ("verb.communication", 2),
    ("verb.competition", 2),
    ("verb.consumption", 2),
    ("verb.contact", 2),
    ("verb.creation", 2),
    ("verb.emotion", 2),
    ("verb.motion", 2),
    ("verb.perception", 2),
    ("verb.possession", 2),
    ("verb.social", 2),
    ("verb.stative", 2),
    ("verb.weather", 2),
    ("adj.ppl", 3),
)
DATABASE_FILES = (
    "data.noun",
    "data.verb",
    "data.adj",
    "data.adv",
    "index.noun",
    "index.verb",
    "index.adj",
    "index.adv",
    "noun.exc",
    "verb.exc",
    "adj.exc",
    "adv.exc",
)
OPTIONAL_FILES = ("cntlist.rev",)


def _reader_folder(source: Path, cache_dir: Path) -> Path:
    """A copy of `source` with the extra files nltk's reader opens; rebuilt when the source changes."""
    stamp = "|".join(f"{name}:{(source / name).stat().st_size}" for name in DATABASE_FILES)
    tag = hashlib.sha1(f"{source.resolve()}|{stamp}".encode()).hexdigest()[:12]
    folder = cache_dir / f"wordnet-{tag}"
    if (folder / "lexnames").exists():
        return folder
    with atomic_directory(folder) as tmp:
        for name in DATABASE_FILES + OPTIONAL_FILES:
            if (source / name).exists():
                # a plain copy: nltk refuses symlinks and hard links (they may point outside its data roots)
                shutil.copyfile(source / name, tmp / name)
        (tmp / "index.sense").write_text("")
        (tmp / "lexnames").write_text("".join(f"{i:02d}\t{name}\t{cat}\n" for i, (name, cat) in enumerate(LEXNAMES)))
    return folder


@functools.lru_cache(maxsize=4)
def open_wordnet(source_dir: str | None, cache_dir: str):
    """An nltk WordNet reader over `source_dir`, or None (with the reason) when there is none.

    Returns (reader or None, reason or None). Cached: loading the index takes a few seconds.
    """
    if not source_dir:
        return None, "no WordNet folder configured (data.wordnet_dir is null)"
    source = Path(source_dir)
    missing = [name for name in DATABASE_FILES if not (source / name).is_file()]
    if missing:
        reason = f"no WordNet database at {source} (missing {missing[0]}); install wordnet-base or set data.wordnet_dir"
        return None, reason
    import nltk
    from nltk.corpus.reader.wordnet import WordNetCorpusReader

    class PlainWordNet(WordNetCorpusReader):
        def map_wn(self, version="wordnet"):
            # maps synsets of nltk's downloaded WordNet onto this one, for multilingual data we never use
            return None

    folder = _reader_folder(source, Path(cache_dir))
    # nltk only opens corpora under its data path
    if str(folder) not in nltk.data.path:
        nltk.data.path.append(str(folder))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "multilingual functions are not available"
        return PlainWordNet(str(folder), None), None


def _display(lemma: str) -> str:
    return lemma.replace("_", " ")


def _lemma_candidates(name: str) -> list[str]:
    """The class name, then ever shorter endings of it: "giant white arum lily" -> ..., "arum lily", "lily".

    English compound names put the head noun last, so an ending names a broader kind of the class.
    Each is tried as written and with hyphens as spaces ("black-eyed susan", "black eyed susan").
    """
    words = name.lower().split()
    candidates = []
    for i in range(len(words)):
        ending = " ".join(words[i:])
        candidates += [ending] if "-" not in ending else [ending, ending.replace("-", " ")]
    return candidates


def _sense(wordnet, lemma: str, lexname: str, exact: bool):
    """The sense of `lemma` in `lexname`: the most frequent for the class itself; for a head noun
    the one with the most kinds below it ("cake" the baked good, not the patty), None if tied."""
    senses = [s for s in wordnet.synsets(lemma.replace(" ", "_"), pos="n") if s.lexname() == lexname]
    if exact or len(senses) <= 1:
        return senses[0] if senses else None
    sizes = [len(set(s.closure(lambda x: x.hyponyms()))) for s in senses]
    best = max(sizes)
    return senses[sizes.index(best)] if sizes.count(best) == 1 else None


@dataclass
class WordNetPaths:
    """Root-to-leaf paths under a generic root for each class, from WordNet hypernyms."""

    class_paths: dict[str, list[tuple[str, str]]] = field(default_factory=dict)
    # node id ("/"-joined names, as taxonomy.py builds them) -> extra names of that node
    synonyms: dict[str, list[str]] = field(default_factory=dict)
    unmatched: list[str] = field(default_factory=list)
    by_head_noun: list[str] = field(default_factory=list)


def hypernym_paths(
    wordnet,
    class_names: Iterable[str],
    root: str,
    lexname: str,
    anchors: Sequence[str],
    head_noun: bool,
    senses: Mapping[str, str] | None = None,
) -> WordNetPaths:
    """For each class: root > hypernyms below the deepest anchor > class (levels generic/group/class).

    Only senses in the lexicographer file `lexname` count (so "bird of paradise" is the plant in
    noun.plant, not the bird). With `head_noun`, a class not in WordNet is placed under the sense
    of its longest ending that is ("chicken curry" under "curry"): right for dish names, wrong for
    flower names ("siam tulip" is no tulip). Unmatched classes sit directly under the root.
    `senses` names the synset of a class where the most frequent sense is not the dataset's.
    """
    result = WordNetPaths()
    anchor_set = set(anchors)
    for name in class_names:
        synset, exact = (wordnet.synset(senses[name]), True) if name in (senses or {}) else (None, False)
        for candidate in [] if synset else _lemma_candidates(name):
            exact = candidate.replace("-", " ") == name.lower().replace("-", " ")
            if not exact and not head_noun:
                break
            synset = _sense(wordnet, candidate, lexname, exact)
            if synset is not None:
                break
        if synset is None:
            result.unmatched.append(name)
            result.class_paths[name] = [("generic", root), ("class", name)]
            continue
        # an exact match IS the class; a head-noun match is a broader kind the class sits under
        chain = _below_anchor(synset, anchor_set) + ([] if exact else [synset])
        path = [("generic", root)]
        node_id = root
        for hypernym in chain:
            label = _display(hypernym.lemma_names()[0])
            if label.lower() == root.lower() or label.lower() == name.lower():
                continue
            path.append(("group", label))
            node_id = f"{node_id}/{label}"
            others = [_display(n) for n in hypernym.lemma_names()[1:]]
            if others:
                result.synonyms.setdefault(node_id, []).extend(others)
        path.append(("class", name))
        if exact:
            # the class itself is the synset: its other lemmas (often the Latin name) are synonyms
            names = [_display(n) for n in synset.lemma_names()]
            result.synonyms[f"{node_id}/{name}"] = [n for n in names if n.lower() != name.lower()]
        else:
            result.by_head_noun.append(f"{name} -> {_display(synset.lemma_names()[0])}")
        result.class_paths[name] = path
    return result


def _below_anchor(synset, anchors: set[str]) -> list:
    """The hypernyms of `synset`, root-most first, below the deepest anchor of a hypernym path
    (none if no path passes an anchor).

    A synset with several hypernyms has several paths, which nltk lists in an order that changes
    from run to run: the longest chain below an anchor wins, ties go to the alphabetically first,
    so the same WordNet always gives the same taxonomy.
    """
    chains = []
    for path in synset.hypernym_paths():
        names = [s.name() for s in path[:-1]]
        deepest = max((i for i, n in enumerate(names) if n in anchors), default=None)
        if deepest is not None:
            chains.append(path[deepest + 1 : -1])
    return min(chains, key=lambda chain: (-len(chain), [s.name() for s in chain]), default=[])
