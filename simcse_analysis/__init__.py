"""simcse-analysis: train SimCSE checkpoints and analyse sentence-embedding spaces.

The public API is imported lazily so that ``import simcse_analysis`` (and the CLI's ``--help``)
does not pull in torch or transformers.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

# name -> module that defines it
_LAZY = {
    "load_encoder": "simcse_analysis.encoder",
    "Encoder": "simcse_analysis.encoder",
    "InputError": "simcse_analysis.errors",
    "POOLERS": "simcse_analysis.pooling",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'simcse_analysis' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)


__all__ = sorted(_LAZY) + ["__version__"]
