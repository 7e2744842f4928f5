"""Discrete augmentations as the positive view of unsupervised SimCSE (the paper's Table 1 and 2).

SimCSE's positive is the sentence itself under a second dropout mask. The paper compares it with
discrete augmentations ``x⁺ = g(x)`` of the text (Table 1: "crop k%: keep 100−k% of the length; word
deletion k%: delete k% words", and "delete one word", also a Table 2 objective), each still trained with dropout on. Here:

* ``crop:K`` — keep one random contiguous span of ``n − r(K·n)`` of the sentence's ``n`` words;
* ``word_deletion:K`` — delete ``r(K·n)`` words chosen uniformly at random, keep the rest in order;
* ``delete_one_word`` — delete one word chosen uniformly at random.

Words are whitespace-separated and re-joined with single spaces. ``r`` is *stochastic rounding*,
``r(v) = ⌊v⌋ + Bernoulli(v − ⌊v⌋)``, so the expected share of removed words is exactly ``K`` even for
short sentences (plain rounding would never touch a 4-word sentence at 10 %). At least one word is
always kept; a one-word sentence is returned unchanged.

Each function is pure: text and a :class:`random.Random` in, text out. As a view (``--positive
NAME[:K]``) the anchor is the sentence as written and the positive is its augmentation, as in the
paper's ``(x, g(x))`` pairs; the trainer seeds ``rng`` per batch, so runs are reproducible. Combine with
``--dropout 0`` for Table 1's "w/o dropout" row. ``K`` is a fraction in (0, 1) (``0.1``) or a
percentage (``10%``).

Synonym replacement (``synonym[:K]``) lives in :mod:`trainers.synonyms` (it needs WordNet) and "MLM k%"
(``mlm:K@MODEL``) in :mod:`trainers.mlm_augment` (it needs a masked LM). Table 2's "next sentence" objectives are ``--positive next[:K]``
(:class:`trainers.views.NeighbourPositive`) and its two-encoder column is ``--two-encoders`` (a model
setting, :class:`trainers.model.SimCSEModel`).
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from simcse_analysis.errors import InputError

from .views import ViewFn, register_positive

#: An augmentation: ``(text, rng) -> text``.
Augmentation = Callable[[str, random.Random], str]


def stochastic_round(value: float, rng: random.Random) -> int:
    """``⌊v⌋ + Bernoulli(v − ⌊v⌋)``: an integer whose expectation is ``value`` (``value ≥ 0``)."""
    base = math.floor(value)
    frac = value - base
    return int(base) + (1 if frac > 0 and rng.random() < frac else 0)


def _check_ratio(ratio: float, name: str) -> float:
    ratio = float(ratio)
    if not 0.0 < ratio < 1.0:
        raise InputError(f"--positive {name}:{ratio:g}: the share must be in (0, 1), e.g. {name}:0.1 or {name}:10%")
    return ratio


def crop(text: str, ratio: float, rng: random.Random) -> str:
    """Keep a random contiguous span of ``max(1, n − r(ratio·n))`` of the ``n`` words ("crop k%")."""
    ratio = _check_ratio(ratio, "crop")
    words = text.split()
    n = len(words)
    if n <= 1:
        return text
    keep = max(1, n - stochastic_round(ratio * n, rng))
    start = rng.randrange(n - keep + 1)
    return " ".join(words[start:start + keep])


def word_deletion(text: str, ratio: float, rng: random.Random) -> str:
    """Delete ``min(n − 1, r(ratio·n))`` words at uniformly random positions ("word deletion k%")."""
    ratio = _check_ratio(ratio, "word_deletion")
    words = text.split()
    n = len(words)
    if n <= 1:
        return text
    k = min(n - 1, stochastic_round(ratio * n, rng))
    gone = set(rng.sample(range(n), k))
    return " ".join(w for i, w in enumerate(words) if i not in gone)


def delete_one_word(text: str, rng: random.Random) -> str:
    """Delete one word at a uniformly random position ("delete one word")."""
    words = text.split()
    n = len(words)
    if n <= 1:
        return text
    i = rng.randrange(n)
    return " ".join(words[:i] + words[i + 1:])


@dataclass(frozen=True)
class AugmentedViews:
    """View function: first view = the sentence, second view = ``augment(sentence, rng)``."""

    name: str
    augment: Augmentation

    def __call__(self, sentences: Sequence[str], rng: random.Random) -> tuple[list[str], list[str]]:
        first = list(sentences)
        return first, [self.augment(s, rng) for s in first]


def parse_ratio(arg: str | None, name: str) -> float:
    """``"0.1"`` or ``"10%"`` → 0.1; :class:`InputError` naming ``--positive NAME:…`` otherwise."""
    if arg is None or not arg.strip():
        raise InputError(f"--positive {name} needs the share of words to remove: {name}:0.1 (or {name}:10%)")
    text = arg.strip()
    try:
        value = float(text[:-1]) / 100.0 if text.endswith("%") else float(text)
    except ValueError:
        raise InputError(f"--positive {name}:{arg}: give the share as a number in (0, 1) or a percentage, "
                         f"e.g. {name}:0.1 or {name}:10%") from None
    return _check_ratio(value, name)


def _ratio_factory(name: str, fn: Callable[[str, float, random.Random], str]) -> Callable[[str | None], ViewFn]:
    def factory(arg: str | None) -> ViewFn:
        ratio = parse_ratio(arg, name)
        return AugmentedViews(f"{name}:{ratio:g}", lambda text, rng: fn(text, ratio, rng))

    return factory


def _delete_one_factory(arg: str | None) -> ViewFn:
    if arg:
        raise InputError(f"--positive delete_one_word takes no argument (got {arg!r})")
    return AugmentedViews("delete_one_word", delete_one_word)


#: Augmentations registered as positive views, with the paper's settings for each.
AUGMENTATIONS: dict[str, tuple[Callable[[str | None], ViewFn], tuple[str, ...]]] = {
    "crop": (_ratio_factory("crop", crop), ("crop:0.1", "crop:0.2", "crop:0.3")),
    "word_deletion": (_ratio_factory("word_deletion", word_deletion),
                      ("word_deletion:0.1", "word_deletion:0.2", "word_deletion:0.3")),
    "delete_one_word": (_delete_one_factory, ("delete_one_word",)),
}

#: The paper's Table 1 positives (plus the dropout default), ready for ``ablate grid --grid positive=…``.
PAPER_POSITIVES: tuple[str, ...] = ("dropout", *(s for _, specs in AUGMENTATIONS.values() for s in specs))

for _name, (_factory, _) in AUGMENTATIONS.items():
    register_positive(_name, _factory)
