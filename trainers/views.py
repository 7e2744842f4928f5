"""How unsupervised SimCSE builds the positive of each sentence: a registry of *view* functions.

A view function maps a batch of sentences to the texts of its two views,
``views(sentences, rng) -> (first, second)``, drawing any randomness from ``rng`` (a
:class:`random.Random` seeded per batch, so runs and resumed runs see the same views). The default,
``dropout``, returns the sentences unchanged for both views: the only difference between the views
is then the encoder's dropout noise, which is SimCSE. Discrete augmentations (cropping, word
deletion, …, the paper's Table 1) register here under their own names and are chosen with
``--positive NAME[:ARG]``.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence

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


#: Modules that register further views when imported (looked up on the first unknown name).
PLUGIN_MODULES: list[str] = ["trainers.augment"]


def _load_plugins() -> None:
    import importlib

    while PLUGIN_MODULES:
        name = PLUGIN_MODULES.pop(0)
        try:
            importlib.import_module(name)
        except ImportError:
            pass


def parse_positive(spec: str) -> ViewFn:
    """The view function named by ``spec`` (``NAME`` or ``NAME:ARG``)."""
    name, _, arg = str(spec).partition(":")
    if name.strip() not in POSITIVE_VIEWS:
        _load_plugins()
    factory = POSITIVE_VIEWS.get(name.strip())
    if factory is None:
        raise InputError(f"unknown positive view {spec!r}: choose one of {', '.join(sorted(POSITIVE_VIEWS))}")
    return factory(arg.strip() or None)
