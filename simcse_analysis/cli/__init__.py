"""The ``simcse-analyze`` command line: a thin Typer layer over the library.

Each sub-module registers its commands on :data:`app`. Heavy libraries (torch, transformers,
umap, plotly) are imported inside the command bodies so that ``--help`` answers instantly.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Sequence

import typer

from ..errors import InputError

app = typer.Typer(
    name="simcse-analyze",
    help="Train SimCSE checkpoints and analyse sentence-embedding spaces.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)

from . import commands as _commands  # noqa: E402  (registers every sub-command on `app`)

_commands.register_all(app)


def _click_exceptions(name: str) -> tuple[type[BaseException], ...]:
    """``name`` from the copy of click that newer typer releases vendor, else from click itself."""
    for module in ("typer._click.exceptions", "click.exceptions"):
        try:
            return (getattr(importlib.import_module(module), name),)
        except (ImportError, AttributeError):
            continue
    return ()


_EXIT, _ABORT, _USAGE = (_click_exceptions(n) for n in ("Exit", "Abort", "ClickException"))


def main(argv: Sequence[str] | None = None) -> None:
    """Entry point of the console script; bad input ends with one line on stderr and exit code 2."""
    try:
        rv = app(args=list(argv) if argv is not None else None, prog_name="simcse-analyze",
                 standalone_mode=False)
    except _EXIT as e:
        sys.exit(e.exit_code)
    except _ABORT:
        print("aborted", file=sys.stderr)
        sys.exit(130)
    except _USAGE as e:  # usage errors: unknown option, bad choice, missing argument
        e.show()
        sys.exit(e.exit_code)
    except InputError as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(InputError.exit_code)
    sys.exit(rv if isinstance(rv, int) else 0)
