"""Which modules contribute sub-commands (each exposes ``register(app)``)."""

from __future__ import annotations

import importlib

import typer

# One module per command group; each module only imports typer at import time.
COMMAND_MODULES: list[str] = [
    "simcse_analysis.cli.data",
    "simcse_analysis.cli.sts",
    "simcse_analysis.cli.train",
    "simcse_analysis.cli.sbert",
    "simcse_analysis.cli.analyze",
    "simcse_analysis.cli.whiten",
    "simcse_analysis.cli.baselines",
    "simcse_analysis.cli.ablate",
    "simcse_analysis.cli.report",
    "simcse_analysis.cli.compare",
    "simcse_analysis.cli.tokens",
    "simcse_analysis.cli.standardize",
    "simcse_analysis.cli.store",
    "simcse_analysis.cli.cache",
]


def register_all(app: typer.Typer) -> None:
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(app)
    from .help_format import use_readable_help

    use_readable_help(app)  # FILE, INTEGER RANGE, MODEL … instead of <list[Path]>, <int range>, {model}
