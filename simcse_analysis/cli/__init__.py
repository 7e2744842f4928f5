"""The ``simcse-analyze`` command line: a thin Typer layer over the library.

Each sub-module registers its commands on :data:`app`. Heavy libraries (torch, transformers,
umap, plotly) are imported inside the command bodies so that ``--help`` answers instantly.
"""

from __future__ import annotations

import importlib
import os
import sys
from collections.abc import Sequence
from typing import Annotated

import typer

from ..errors import InputError
from ..version import __version__
from .help_format import GroupedHelp, examples

app = typer.Typer(
    name="simcse-analyze",
    help="Train SimCSE checkpoints and analyse sentence-embedding spaces.",
    epilog=examples("simcse-analyze data --data-dir ../shared/data",
                    "simcse-analyze eval all-MiniLM-L6-v2 --data-dir ../shared/data",
                    "simcse-analyze report all-MiniLM-L6-v2 --out out/minilm.html",
                    "simcse-analyze COMMAND --help") + "\n\nData: --data-dir DIR, else $SIMCSE_DATA. Progress goes to "
                                                        "standard error (--no-progress: none).",
    cls=GroupedHelp,
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)


def _print_version(value: bool) -> None:
    if value:
        print(f"simcse-analyze {__version__}")
        raise typer.Exit(0)


@app.callback()
def _top(version: Annotated[bool, typer.Option(
        "--version", is_eager=True, callback=_print_version, help="Print the version and exit.")] = False) -> None:
    """Train SimCSE checkpoints and analyse sentence-embedding spaces."""

from . import commands as _commands

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


def _help_text(args: list[str]) -> str | None:
    """The help page when ``args`` is a command path followed by ``--help``, else None.

    Typer >= 0.29 validates even the ``--help`` flag through a pydantic adapter, and importing pydantic
    alone takes ~150 ms. Rendering the page straight from the click command skips parameter processing,
    which keeps every ``--help`` well under 0.5 s. The text is the one typer itself would print.
    """
    if not args or args[-1] != "--help" or any(a.startswith("-") for a in args[:-1]):
        return None
    import typer.main

    saved = app.registered_commands, app.registered_groups
    if len(args) > 1:  # convert only the command asked about, not all of them (about 15 ms of start-up)
        app.registered_commands = [c for c in saved[0] if _command_name(c) == args[0]]
        app.registered_groups = [g for g in saved[1] if g.name == args[0]]
    try:
        cmd = typer.main.get_group(app)
    finally:
        app.registered_commands, app.registered_groups = saved
    ctx = cmd.context_class(cmd, info_name="simcse-analyze")
    for name in args[:-1]:
        sub = getattr(cmd, "commands", {}).get(name)
        if sub is None:
            return None  # unknown command: let click produce its usual error
        cmd = sub
        ctx = cmd.context_class(cmd, info_name=name, parent=ctx)
    return cmd.get_help(ctx)


def _command_name(info: typer.models.CommandInfo) -> str:
    return info.name or info.callback.__name__.replace("_", "-")


_invocation: list[str] | None = None


def invocation() -> str | None:
    """The command line :func:`main` is running, as a shell command (``None`` outside :func:`main`), for
    the provenance of what a command writes (``sys.argv`` is the host's when called in-process)."""
    import shlex

    return None if _invocation is None else shlex.join(["simcse-analyze", *_invocation])


def main(argv: Sequence[str] | None = None) -> None:
    """Entry point of the console script; bad input ends with one line on stderr and exit code 2."""
    global _invocation
    args = list(argv) if argv is not None else sys.argv[1:]
    _invocation = [str(a) for a in args]
    if args == ["--version"]:  # without building the commands
        print(f"simcse-analyze {__version__}")
        sys.exit(0)
    page = _help_text(args)
    if page is not None:
        try:
            print(page)
            sys.stdout.flush()
        except BrokenPipeError:  # `simcse-analyze … --help | head`
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        sys.exit(0)
    try:
        rv = app(args=args, prog_name="simcse-analyze",
                 standalone_mode=False)
    except _EXIT as e:
        sys.exit(e.exit_code)
    except (_ABORT + (KeyboardInterrupt,)):
        _aborted()
    except _USAGE as e:  # usage errors: unknown option, out-of-range value, bad choice, missing argument
        if type(e).__name__ == "NoArgsIsHelpError":  # a command group called bare: its help page
            e.show()
            sys.exit(e.exit_code)
        print(f"error: {usage_line(e)}", file=sys.stderr)
        sys.exit(InputError.exit_code)
    except InputError as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(InputError.exit_code)
    if rv == ABORTED_EXIT_CODE:  # typer turns Ctrl-C (KeyboardInterrupt) into this exit code, silently
        _aborted()
    sys.exit(rv if isinstance(rv, int) else 0)


#: Exit status after Ctrl-C (SIGINT): 128 + the signal number, as shells report it.
ABORTED_EXIT_CODE = 130


def _aborted() -> None:
    print("aborted", file=sys.stderr)
    sys.exit(ABORTED_EXIT_CODE)


def usage_line(e: BaseException) -> str:
    """A click usage error as one line: its message and where to read the command's options."""
    message = " ".join(str(getattr(e, "format_message", lambda: str(e))()).split())
    ctx = getattr(e, "ctx", None)
    where = ctx.command_path if ctx is not None else "simcse-analyze"
    return f"{message} (see `{where} --help`)"
