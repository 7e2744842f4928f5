"""Outputs never touch inputs: the one path rule every command that writes applies before any work.

An output (``--out``, ``--json``, a store, a run directory, ``--save-scores``…) is refused when, after
resolving symlinks on both sides, it

* **is** an input (the same path, or the same file under another name: a hard link),
* **contains** an input (an output directory that is a parent of something the command reads: with
  ``--overwrite`` it would be replaced, input and all), or
* **lies inside** an input directory (writing there changes the input, e.g. a file in a checkpoint).

What counts as an input's place on disk:

* a file or directory argument: its resolved path;
* a ``MODEL``: the directory it names (``NAME@POOLER`` read as ``NAME``; an offline alias such as
  ``all-MiniLM-L6-v2`` is its package's model directory; a hub id has no local place);
* a training run — a run directory given as ``MODEL`` (which resolves to ``best/`` or ``last/``), or a
  checkpoint that is a run's ``best/``/``last/`` — stands for every entry the trainer owns in the run
  directory (:data:`RUN_ENTRIES`: ``run.json``, ``trajectory.jsonl``, ``best/``, ``last/``, ``state/``,
  ``tensorboard/``), so ``--out RUN`` contains the run, while ``RUN/report.html`` beside those entries is
  allowed.

Outputs are also checked against each other (two outputs at one place overwrite each other). Standard
output (``-``) and existing devices or pipes (``/dev/null``, a FIFO), which are written through and never
replaced, are exempt. Every refusal is an :class:`~simcse_analysis.errors.InputError` naming both options.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from .checkpoint import RUN_CHECKPOINTS, RUN_MARKERS
from .errors import InputError

PathArg = str | os.PathLike[str]
#: ``(option, path)``: how the user named a path (``"--out"``, ``"MODEL"``, ``"--corpus"``) and the path;
#: ``None`` paths (an option not given) are skipped.
Named = tuple[str, PathArg | None]

#: Entries of a training run directory that the trainer writes (``trainers.rundir``, ``trainers.loop``).
RUN_ENTRIES: tuple[str, ...] = (*RUN_CHECKPOINTS, *RUN_MARKERS, "state", "tensorboard")


@dataclass(frozen=True)
class _Place:
    """One resolved place of a named path: ``real`` (symlinks resolved) and how to name it in a message."""

    option: str
    value: str
    real: str
    note: str = ""

    def describe(self) -> str:
        return f"{self.option} {self.value}".strip() + (f" ({self.note})" if self.note else "")


def _real(p: PathArg) -> str:
    return os.path.realpath(os.path.expanduser(os.fspath(p)))


def _is_run_dir(real: str) -> bool:
    return (os.path.isdir(real) and not os.path.isfile(os.path.join(real, "config.json"))
            and any(os.path.isfile(os.path.join(real, m)) for m in RUN_MARKERS))


def _run_places(option: str, value: str, run: str) -> list[_Place]:
    """Every entry the trainer owns in run directory ``run`` (and the real place of a symlinked checkpoint)."""
    places = []
    for entry in RUN_ENTRIES:
        p = os.path.join(run, entry)
        places.append(_Place(option, value, p, f"{entry}{'' if '.' in entry else '/'} of the training run {run}"))
        real = os.path.realpath(p)
        if real != p:
            places.append(_Place(option, value, real, f"{entry} of the training run {run}, through a symlink"))
    return places


def _local_model_dir(name: str) -> str | None:
    """The local directory a MODEL argument that is not an existing path stands for (``NAME@POOLER`` → NAME,
    an offline alias → its package directory), else ``None`` (a hub id: no local place to protect)."""
    from .pooling import split_pooler

    head, pooler = split_pooler(name)
    if pooler is not None and os.path.exists(os.path.expanduser(head)):
        return head
    from .providers import find_provider

    provider = find_provider(head)
    found = provider.path() if provider is not None else None
    return str(found) if found is not None else None


def input_places(option: str, value: PathArg) -> list[_Place]:
    """The resolved places of one input (see the module docstring)."""
    shown = os.fspath(value)
    path = shown if os.path.lexists(os.path.expanduser(shown)) else _local_model_dir(shown)
    if path is None:
        return []
    real = _real(path)
    note = f"= {real}" if os.path.islink(os.path.expanduser(path)) else ""
    if _is_run_dir(real):
        return _run_places(option, shown, real)
    # a run's best/ or last/, also when that entry is itself a symlink to a directory outside the run
    for p in (real, os.path.abspath(os.path.expanduser(path))):
        parent = os.path.realpath(os.path.dirname(p))
        if os.path.basename(p) in RUN_CHECKPOINTS and _is_run_dir(parent):
            return _run_places(option, shown, parent)
    return [_Place(option, shown, real, note)]


def _exempt(p: PathArg) -> bool:
    """Standard output, or an existing device/FIFO/socket: written through, never replaced."""
    if os.fspath(p) == "-":
        return True
    try:
        mode = os.stat(p).st_mode
    except OSError:
        return False
    return not (stat.S_ISREG(mode) or stat.S_ISDIR(mode))


def _same_file(a: str, b: str) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


def _relation(out: str, place: str) -> str | None:
    """How output ``out`` relates to ``place`` (both real paths): ``is``, ``contains``, ``lies inside`` or None."""
    if out == place or _same_file(out, place):
        return "is"
    o, p = Path(out), Path(place)
    if p.is_relative_to(o):
        return "contains"
    if o.is_relative_to(p):
        return "lies inside"
    return None


def check_apart(outputs: Iterable[Named], inputs: Iterable[Named] = ()) -> None:
    """Raise :class:`InputError` if an output is, contains or lies inside an input, or overlaps another output.

    ``outputs`` and ``inputs`` are ``(option, path)`` pairs (``None`` paths skipped); inputs may be MODEL
    names (see the module docstring). Touches nothing; call it before any model loads.
    """
    outs = [(opt, os.fspath(p), _real(p)) for opt, p in outputs if p is not None and not _exempt(p)]
    places = [pl for opt, p in inputs if p is not None for pl in input_places(opt, p)]
    for i, (opt, out, real) in enumerate(outs):
        shown = f"{opt} {out}" + (f" (= {real})" if os.path.islink(os.path.expanduser(out)) else "")
        for pl in places:
            rel = _relation(real, pl.real)
            if rel is not None:
                raise InputError(f"{shown} {rel} {pl.describe()}: writing there would destroy or change that input; "
                                 f"choose {opt} outside it")
        for opt2, out2, real2 in outs[i + 1:]:
            rel = _relation(real, real2)
            if rel is not None:
                raise InputError(f"{shown} {rel} {opt2} {out2}: the two outputs would overwrite each other; choose "
                                 "separate places")


def data_inputs(data_dir: PathArg | None) -> list[Named]:
    """The STS data a command reads from ``--data-dir`` (its ``sts/`` folder) as an input (see :func:`check_apart`)."""
    from .datadir import resolve_data_dir

    return [("the STS data", resolve_data_dir(data_dir, must_exist=False) / "sts")]
