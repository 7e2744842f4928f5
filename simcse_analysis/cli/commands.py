"""Which modules contribute sub-commands (each exposes ``register(app)``)."""

from __future__ import annotations

import importlib

import typer

# One module per command group; each module only imports typer at import time.
COMMAND_MODULES: list[str] = [
    "simcse_analysis.cli.data",
    "simcse_analysis.cli.sts",
    "simcse_analysis.cli.train",
    "simcse_analysis.cli.analyze",
    "simcse_analysis.cli.whiten",
    "simcse_analysis.cli.ablate",
    "simcse_analysis.cli.report",
    "simcse_analysis.cli.store",
]


def register_all(app: typer.Typer) -> None:
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(app)
