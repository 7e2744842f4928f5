"""How unsupervised SimCSE builds the positive of each sentence: a registry of *view* functions.

A view function maps a batch of sentences to the texts of its two views,
``views(sentences, rng) -> (first, second)``, drawing any randomness from ``rng`` (a
:class:`random.Random` seeded per batch, so runs and resumed runs see the same views). The default,
``dropout``, returns the sentences unchanged for both views: the only difference between the views
is then the encoder's dropout noise, which is SimCSE. Discrete augmentations (cropping, word
deletion, …, the paper's Table 1) register here under their own names and are chosen with
``--positive NAME[:ARG]``.

One positive needs more than the sentence: ``next[:K]`` (the paper's Table 2 "next sentence" and,
with ``K = 3``, "next 3 sentences") pairs a sentence with the following one — or one of the following
``K``, drawn per batch — in the same training file. It is a :class:`NeighbourPositive`; the data
loader (:func:`trainers.data.load_training_data`) builds its pairs from the corpus order.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from simcse_analysis.errors import InputError

ViewFn = Callable[[Sequence[str], random.Random], tuple[list[str], list[str]]]
#: name -> factory(argument string or None) -> view function
ViewFactory = Callable[[str | None], ViewFn]

POSITIVE_VIEWS: dict[str, ViewFactory] = {}


def register_positive(name: str, factory: ViewFactory) -> None:
    """Make ``--positive NAME[:ARG]`` build its views with ``factory(ARG)``."""
    POSITIVE_VIEWS[name] = factory


def dropout_views(sentences: Sequence[str], rng: random.Random) -> tuple[list[str], list[str]]:
    """Both views are the sentence itself; dropout supplies the noise (unsupervised SimCSE)."""
    texts = list(sentences)
    return texts, list(texts)


def _dropout_factory(arg: str | None) -> ViewFn:
    if arg:
        raise InputError(f"--positive dropout takes no argument (got {arg!r}); set the rate with --dropout")
    return dropout_views


register_positive("dropout", _dropout_factory)


@dataclass(frozen=True)
class NeighbourPositive:
    """Positive = a sentence that follows the anchor in its file: one of the next ``window`` lines.

    Not a view of the sentence itself, so it cannot be computed from a batch of texts; the data loader
    stores each row's candidates and the collator draws one per row from the batch's seeded RNG.
    """

    window: int = 1

    @property
    def name(self) -> str:
        return "next" if self.window == 1 else f"next:{self.window}"

    def __call__(self, sentences: Sequence[str], rng: random.Random) -> tuple[list[str], list[str]]:
        raise InputError(f"--positive {self.name} pairs corpus neighbours: load the data with "
                         f"load_training_data(..., positive={self.name!r})")


def _next_factory(arg: str | None) -> NeighbourPositive:
    if arg is None:
        return NeighbourPositive(1)
    try:
        window = int(arg)
    except ValueError:
        window = 0
    if window < 1:
        raise InputError(f"--positive next:{arg}: give how many following sentences to draw from, e.g. next:3")
    return NeighbourPositive(window)


register_positive("next", _next_factory)


def positive_name(view: ViewFn) -> str | None:
    """The canonical ``--positive`` spelling of a view function, where it has one."""
    if view is dropout_views:
        return "dropout"
    return getattr(view, "name", None)


#: Modules that register further views when imported (looked up on the first unknown name).
PLUGIN_MODULES: list[str] = ["trainers.augment", "trainers.synonyms", "trainers.mlm_augment"]


def _load_plugins() -> None:
    import importlib

    while PLUGIN_MODULES:
        name = PLUGIN_MODULES.pop(0)
        try:
            importlib.import_module(name)
        except ImportError:
            pass


def _split_spec(spec: str) -> tuple[str, str | None]:
    """``"NAME:ARG"`` → ``("NAME", "ARG")``; ``"NAME"`` → ``("NAME", None)``."""
    name, _, arg = str(spec).partition(":")
    return name.strip(), arg.strip() or None


def parse_positive(spec: str) -> ViewFn:
    """The view function named by ``spec`` (``NAME`` or ``NAME:ARG``)."""
    name, arg = _split_spec(spec)
    if name not in POSITIVE_VIEWS:
        _load_plugins()
    factory = POSITIVE_VIEWS.get(name)
    if factory is None:
        raise InputError(f"unknown positive view {spec!r}: choose one of {', '.join(sorted(POSITIVE_VIEWS))}")
    return factory(arg)


def neighbour_window(spec: str) -> int:
    """``K`` of a ``next[:K]`` spec, 0 for every other positive (whose view is not built: building one may
    load WordNet or a masked LM)."""
    name, arg = _split_spec(spec)
    return _next_factory(arg).window if name == "next" else 0
