"""Synonym replacement from WordNet 3.0 as a positive view (the paper's Table 1 "synonym replacement").

Eligible words are those that are not stop words and have WordNet synonyms; each replaced word gets one
of its synonyms drawn uniformly at random. ``--positive synonym`` replaces **one** eligible word, as the
paper's row ("use nlpaug to randomly replace one word with its synonym"); ``synonym:K`` replaces
``max(1, r(K·n))`` distinct eligible words of a sentence of ``n`` whitespace-separated words, as EDA's
synonym replacement (Wei & Zou 2019; ``r`` = stochastic rounding, as for the other augmentations; fewer
if fewer are eligible). Either way the positive differs from the anchor whenever a word can be replaced.
Punctuation around a word and a leading capital are kept; a multi-word synonym (``"motor vehicle"``)
is inserted with a space.

Synonyms of a word are read from WordNet's database files (the WNDB format that NLTK's ``wordnet``
corpus and Debian's ``wordnet-base`` ship): the lemmas of every synset of every base form of the word
in any part of speech, most frequent sense first, the word itself excluded. Base forms come from
WordNet's *morphy*: the exception lists (``noun.exc`` …) and its suffix rules, keeping only forms that
WordNet lists (``dogs`` → ``dog``, ``ran`` → ``run``). The replacement is the synonym's base form, as in EDA.

The database directory is
found at ``$WORDNET_DIR``, ``<data dir>/wordnet`` (``$SIMCSE_DATA`` or the default data directory; filled
by ``simcse-analyze data --download --only wordnet``), NLTK's ``nltk_data/corpora/wordnet`` or
``/usr/share/wordnet``.
"""

from __future__ import annotations

import functools
import os
import random
import re
from dataclasses import dataclass
from pathlib import Path

from simcse_analysis.errors import InputError

from .augment import AugmentedViews, parse_ratio, stochastic_round
from .views import ViewFn, register_positive

ENV_VAR = "WORDNET_DIR"
PARTS_OF_SPEECH: tuple[str, ...] = ("noun", "verb", "adj", "adv")
#: WordNet's morphy detachment rules: (suffix, replacement) per part of speech.
MORPHY_RULES: dict[str, tuple[tuple[str, str], ...]] = {
    "noun": (("s", ""), ("ses", "s"), ("xes", "x"), ("zes", "z"), ("ches", "ch"), ("shes", "sh"),
             ("men", "man"), ("ies", "y")),
    "verb": (("s", ""), ("ies", "y"), ("es", "e"), ("es", ""), ("ed", "e"), ("ed", ""), ("ing", "e"),
             ("ing", "")),
    "adj": (("er", ""), ("est", ""), ("er", "e"), ("est", "e")),
    "adv": (),
}
#: Words never replaced: EDA's English stop-word list.
STOP_WORDS: frozenset[str] = frozenset(["i", "me", "my", "myself", "we", "our", "ours", "ourselves", "you", "your", "yours", "yourself", "yourselves", "he", "him", "his", "himself", "she", "her", "hers", "herself", "it", "its", "itself", "they", "them", "their", "theirs", "themselves", "what", "which", "who", "whom", "this", "that", "these", "those", "am", "is", "are", "was", "were", "be", "been", "being", "have", "has", "had", "having", "do", "does", "did", "doing", "a", "an", "the", "and", "but", "if", "or", "because", "as", "until", "while", "of", "at", "by", "for", "with", "about", "against", "between", "into", "through", "during", "before", "after", "above", "below", "to", "from", "up", "down", "in", "out", "on", "off", "over", "under", "again", "further", "then", "once", "here", "there", "when", "where", "why", "how", "all", "any", "both", "each", "few", "more", "most", "other", "some", "such", "no", "nor", "not", "only", "own", "same", "so", "than", "too", "very", "s", "t", "can", "will", "just", "don", "should", "now"])
_WORD = re.compile(r"^(\W*)([A-Za-z][A-Za-z'-]*[A-Za-z]|[A-Za-z])(\W*)$")


def wordnet_candidates() -> list[Path]:
    """Directories searched for WordNet's database files, in order."""
    from simcse_analysis.datadir import default_data_dir

    out = [Path(os.environ[ENV_VAR])] if os.environ.get(ENV_VAR) else []
    out.append(default_data_dir() / "wordnet")
    roots = [Path(os.environ["NLTK_DATA"])] if os.environ.get("NLTK_DATA") else []
    roots += [Path.home() / "nltk_data", Path("/usr/share/nltk_data"), Path("/usr/local/share/nltk_data"),
              Path("/usr/lib/nltk_data"), Path("/usr/local/lib/nltk_data")]
    out += [r / "corpora" / "wordnet" for r in roots]
    out.append(Path("/usr/share/wordnet"))
    return out


def find_wordnet_dir() -> Path:
    """The first candidate holding ``index.noun`` and ``data.noun``, else :class:`InputError` with the fix."""
    for d in wordnet_candidates():
        if (d / "index.noun").is_file() and (d / "data.noun").is_file():
            return d
    raise InputError("--positive synonym needs WordNet 3.0's database files (index.noun, data.noun, …): run "
                     "`simcse-analyze data --download --only wordnet`, or set WORDNET_DIR to a directory holding "
                     "them (NLTK's nltk_data/corpora/wordnet or Debian's /usr/share/wordnet work)")


def _lemma(word: str) -> str:
    """A database lemma as text: ``motor_vehicle`` → ``motor vehicle``; adjective markers ``(ip)`` dropped."""
    return re.sub(r"\([a-z]+\)$", "", word).replace("_", " ")


@dataclass(frozen=True)
class WordNet:
    """The part of WordNet synonym replacement needs: lemma → synset offsets, synset → lemmas, exceptions."""

    index: dict[str, dict[str, tuple[int, ...]]]   # pos -> lemma -> synset offsets (most frequent first)
    synsets: dict[str, dict[int, tuple[str, ...]]]  # pos -> offset -> lemmas
    exceptions: dict[str, dict[str, tuple[str, ...]]]  # pos -> inflected form -> base forms

    @classmethod
    def load(cls, directory: str | os.PathLike[str]) -> WordNet:
        root = Path(directory)
        index: dict[str, dict[str, tuple[int, ...]]] = {}
        synsets: dict[str, dict[int, tuple[str, ...]]] = {}
        exceptions: dict[str, dict[str, tuple[str, ...]]] = {}
        for pos in PARTS_OF_SPEECH:
            idx: dict[str, tuple[int, ...]] = {}
            for line in _lines(root / f"index.{pos}"):
                # lemma pos synset_cnt p_cnt [ptr_symbol…] sense_cnt tagsense_cnt synset_offset…
                f = line.split()
                n_synsets, n_pointers = int(f[2]), int(f[3])
                idx[f[0]] = tuple(int(o) for o in f[6 + n_pointers:6 + n_pointers + n_synsets])
            data: dict[int, tuple[str, ...]] = {}
            for line in _lines(root / f"data.{pos}"):
                # synset_offset lex_filenum ss_type w_cnt(hex) word lex_id [word lex_id…] …
                f = line.split()
                n_words = int(f[3], 16)
                data[int(f[0])] = tuple(_lemma(f[4 + 2 * i]) for i in range(n_words))
            exc: dict[str, tuple[str, ...]] = {}
            path = root / f"{pos}.exc"
            if path.is_file():
                for line in _lines(path):
                    form, *bases = line.split()
                    exc[form] = tuple(bases)
            index[pos], synsets[pos], exceptions[pos] = idx, data, exc
        return cls(index, synsets, exceptions)

    def base_forms(self, word: str, pos: str) -> list[str]:
        """WordNet's morphy: the forms of ``word`` (lower case) that ``pos``'s index lists."""
        idx = self.index[pos]
        forms = [word] if word in idx else []
        forms += [b for b in self.exceptions[pos].get(word, ()) if b in idx]
        for suffix, repl in MORPHY_RULES[pos]:
            if word.endswith(suffix) and len(word) > len(suffix):
                forms.append(word[: len(word) - len(suffix)] + repl)
        return [f for f in dict.fromkeys(forms) if f in idx]

    def synonyms(self, word: str) -> list[str]:
        """Synonyms of ``word`` over all its senses and parts of speech, most frequent sense first."""
        w = word.lower()
        out: dict[str, None] = {}
        for pos in PARTS_OF_SPEECH:
            for base in self.base_forms(w, pos):
                for offset in self.index[pos][base]:
                    for lemma in self.synsets[pos].get(offset, ()):
                        if lemma.lower() not in (w, base.replace("_", " ")):
                            out.setdefault(lemma, None)
        return list(out)


def _lines(path: Path) -> list[str]:
    if not path.is_file():
        raise InputError(f"WordNet file {path} is missing: the directory needs index.*, data.* and *.exc for "
                         f"{', '.join(PARTS_OF_SPEECH)}")
    return [ln for ln in path.read_text(encoding="utf-8", errors="replace").splitlines()
            if ln and not ln.startswith("  ")]  # the licence header lines start with two spaces


def load_wordnet(directory: str | os.PathLike[str] | None = None) -> WordNet:
    """WordNet from ``directory`` (default: :func:`find_wordnet_dir`), loaded once per process (~2 s)."""
    return _load_cached(str(Path(directory or find_wordnet_dir()).resolve()))


@functools.lru_cache(maxsize=4)
def _load_cached(directory: str) -> WordNet:
    return WordNet.load(directory)


def synonym_replacement(text: str, ratio: float | None, rng: random.Random, wordnet: WordNet) -> str:
    """Replace ``max(1, r(ratio·n))`` distinct non-stop words that have synonyms (one word when ``ratio`` is
    None) by a random synonym each."""
    words = text.split()
    candidates: list[tuple[int, re.Match[str], list[str]]] = []
    for i, token in enumerate(words):
        m = _WORD.match(token)
        if m is None or m.group(2).lower() in STOP_WORDS:
            continue
        options = wordnet.synonyms(m.group(2))
        if options:
            candidates.append((i, m, options))
    if not candidates:
        return " ".join(words)
    k = 1 if ratio is None else min(len(candidates), max(1, stochastic_round(ratio * len(words), rng)))
    for i, m, options in rng.sample(candidates, k):
        lead, core, trail = m.groups()
        new = rng.choice(options)
        if core[0].isupper() and not new[0].isupper():
            new = new[0].upper() + new[1:]
        words[i] = f"{lead}{new}{trail}"
    return " ".join(words)


def _synonym_factory(arg: str | None) -> ViewFn:
    ratio = parse_ratio(arg, "synonym") if arg is not None else None
    wordnet = load_wordnet()  # fails here, before training, if WordNet is absent
    name = "synonym" if ratio is None else f"synonym:{ratio:g}"
    return AugmentedViews(name, lambda text, rng: synonym_replacement(text, ratio, rng, wordnet))


register_positive("synonym", _synonym_factory)

