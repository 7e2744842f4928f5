"""How help pages name the value an option or argument takes: the words command-line users know.

Typer >= 0.29 prints Python types (``--train-file <list[Path]>``, ``--batch-size <int range>``,
``Usage: … whiten [OPTIONS] {model}``). Here every command is a :class:`ReadableCommand`, which
names values the way click and GNU tools do:

* an option declared with ``metavar=`` keeps it: ``FILE``, ``DIR``, ``PATH`` (file or directory), ``MODEL``;
* any other option is named by its type: ``TEXT``, ``INTEGER``, ``FLOAT``, ``INTEGER RANGE`` /
  ``FLOAT RANGE`` (a ``min``/``max`` bound, printed after the help as ``[x>=1]``), ``PATH``;
* an argument shows its metavar alone (``MODEL``), optional ones in brackets, repeatable ones with
  ``...``: ``Usage: simcse-analyze report [OPTIONS] [MODEL]...``.

The class is a plain typer command otherwise, so the fast ``--help`` path of :func:`simcse_analysis.cli.main`
and typer's full parser print the same page. Older typer releases (before the type descriptors) already use
click's names; there the class changes nothing.
"""

from __future__ import annotations

from pathlib import PurePath
from typing import Any, get_args

import typer
from typer.core import TyperArgument, TyperCommand, TyperGroup

#: Every value name a help page may show besides choices (``[a|b|c]``; tests/test_cli_help.py checks each
#: option against it).
CONVENTIONAL_METAVARS = frozenset({"FILE", "DIR", "PATH", "MODEL", "TEXT", "INTEGER", "INTEGER RANGE", "FLOAT",
                                   "FLOAT RANGE"})

_TYPE_NAMES = {int: "INTEGER", float: "FLOAT", str: "TEXT"}


def conventional_metavar(param: Any) -> str | None:
    """The click-style name of ``param``'s value (``TEXT``, ``INTEGER RANGE``, ``PATH`` …), or ``None``
    where typer does not describe the type (older releases: click names it already)."""
    desc = getattr(param, "type_descriptor", None)
    if desc is None:
        return None
    if desc.is_choice and desc.choices is not None:
        return "[" + "|".join(str(getattr(c, "value", c)) for c in desc.choices) + "]"
    annotation = get_args(desc.annotation)[0] if desc.is_list else desc.annotation
    if desc.is_path or (isinstance(annotation, type) and issubclass(annotation, PurePath)):
        return "PATH"
    name = _TYPE_NAMES.get(annotation, "TEXT")
    return f"{name} RANGE" if desc.is_ranged else name


class ReadableArgument(TyperArgument):
    """A typer argument shown by its metavar alone: ``MODEL`` (required), ``[MODEL]`` (optional),
    ``MODEL...`` (repeatable); typer's own adds the Python type and braces (``{model}``, ``<str>``)."""

    def _name(self) -> str:
        return self.metavar or (self.name or "").upper()

    def _rich_display_name(self) -> str:
        return self._name() + ("..." if self.nargs != 1 else "")

    def display_type_rich(self, ctx: Any) -> str | None:
        return None  # the metavar names the value

    def _usage_display_name(self) -> str:
        name = self._name() if self.required else f"[{self._name()}]"
        return name + ("..." if self.nargs != 1 else "")


class ReadableCommand(TyperCommand):
    """A typer command whose help page names values as :data:`CONVENTIONAL_METAVARS` (module docstring)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        readable_arguments = hasattr(TyperArgument, "_usage_display_name")  # typer >= 0.29
        for param in self.params:
            if getattr(param, "is_flag", False):
                continue
            if type(param) is TyperArgument:  # named by its metavar, else its name: MODEL, [MODEL]...
                if readable_arguments:
                    param.__class__ = ReadableArgument
            elif param.metavar is None:
                param.metavar = conventional_metavar(param)


def examples(*lines: str) -> str:
    """A command's epilog: ``Examples:`` and one command line each, printed as written (click's ``\\b``
    marker keeps the lines from being re-wrapped)."""
    return "\b\nExamples:\n" + "\n".join(f"  {line}" for line in lines)


#: The sections of the top-level help, in order: a command's ``rich_help_panel=`` → the section's heading.
SECTIONS: dict[str, str] = {"Analysis": "Analysis commands", "Training": "Training commands",
                            "Baselines": "Baselines (post-processing written as a checkpoint)",
                            "Data": "Data and embedding stores"}


class GroupedHelp(TyperGroup):
    """The top-level group: ``--help`` lists the commands by section (:data:`SECTIONS`; a command's section is
    its ``rich_help_panel``), each with its ``short_help``."""

    def format_commands(self, ctx: Any, formatter: Any) -> None:
        commands = [(name, cmd) for name in self.list_commands(ctx)
                    if (cmd := self.get_command(ctx, name)) is not None and not cmd.hidden]
        if not commands:
            return
        limit = formatter.width - 6 - max(len(name) for name, _ in commands)
        panels = [getattr(cmd, "rich_help_panel", None) or "Other" for _, cmd in commands]
        order = [*SECTIONS, *dict.fromkeys(p for p in panels if p not in SECTIONS)]
        for section in order:
            rows = [(name, cmd.get_short_help_str(limit)) for (name, cmd), p in zip(commands, panels) if p == section]
            if rows:
                with formatter.section(SECTIONS.get(section, f"{section} commands")):
                    formatter.write_dl(rows)


def use_readable_help(app: typer.Typer) -> None:
    """Make every command registered on ``app`` (and its sub-apps) a :class:`ReadableCommand`, unless it
    asked for another class."""
    for info in app.registered_commands:
        if info.cls in (None, TyperCommand):
            info.cls = ReadableCommand
    for group in app.registered_groups:
        if group.typer_instance is not None:
            use_readable_help(group.typer_instance)
