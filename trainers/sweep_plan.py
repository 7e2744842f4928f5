"""The plan of a sweep: its points (one value per swept setting) × seeds, each an ordinary training run.

:func:`plan_sweep` expands a grid into :class:`PlannedRun` s (settings checked before anything runs);
:class:`Sweep` holds them and their manifest (``OUT/sweep.json``: kind, swept keys, values, seeds, base
settings, one ``simcse-analyze train …`` command per run), written by :func:`write_manifest` and read back
by :func:`load_manifest`.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from simcse_analysis.documents import DocumentKind, Int, ListOf, MapOf, Obj, Str, read_document
from simcse_analysis.errors import InputError
from simcse_analysis.io_utils import atomic_write_text
from simcse_analysis.path_safety import check_apart

from .config import TrainConfig
from .sweep_grid import GRID_KEYS, parse_grid, parse_rates

SWEEP_FILE = "sweep.json"
#: ``sweep.json`` (:meth:`Sweep.manifest`) as :func:`load_manifest` accepts it.
SWEEP_KIND = DocumentKind("sweep plan", Obj(optional={
    "kind": Str(), "keys": ListOf(Str()), "values": MapOf(ListOf(Str())), "seeds": ListOf(Int()),
    "base_config": MapOf(), "runs": ListOf(Obj(optional={"label": Str(), "settings": MapOf(), "seed": Int(),
                                                         "output_dir": Str(), "command": Str()}))}),
    "delete it: the next sweep run writes it again")

_UNSAFE = re.compile(r"[^A-Za-z0-9._=+-]+")


@dataclass(frozen=True)
class SweepPoint:
    """One combination of swept values, as ``((key, token), …)`` in sweep order."""

    settings: tuple[tuple[str, str], ...]

    @property
    def label(self) -> str:
        """``"dropout=0.1"``, ``"temperature=0.05 pooler=cls"``."""
        return " ".join(f"{k}={v}" for k, v in self.settings)

    @property
    def dirname(self) -> str:
        """File-system-safe directory name: ``dropout=fixed_0.1``, ``temperature=0.05__pooler=cls``."""
        return "__".join(_UNSAFE.sub("_", f"{k}={v}") for k, v in self.settings)

    def as_dict(self) -> dict[str, str]:
        return dict(self.settings)


@dataclass(frozen=True)
class PlannedRun:
    point: SweepPoint
    seed: int
    config: TrainConfig

    @property
    def output_dir(self) -> Path:
        return Path(self.config.output_dir)

    def command(self) -> str:
        """The shell command that runs (or, run again, resumes / reuses) this run."""
        return resume_command(self.config)


def resume_command(config: TrainConfig) -> str:
    """``simcse-analyze train … --resume``: trains ``config`` into its ``--out`` (reusing a finished run
    there, resuming an interrupted one); with another ``--out`` it trains the same run afresh."""
    return config.command_line() + " --resume"


@dataclass
class Sweep:
    """The planned runs of a sweep, in order (points in the given order, seeds innermost)."""

    kind: str
    keys: list[str]
    values: dict[str, list[str]]
    seeds: list[int]
    out: Path
    base: TrainConfig
    runs: list[PlannedRun] = field(default_factory=list)

    def commands(self) -> list[str]:
        return [r.command() for r in self.runs]

    def manifest(self) -> dict[str, Any]:
        return {"kind": self.kind, "keys": self.keys, "values": self.values, "seeds": self.seeds,
                "base_config": self.base.to_dict(),
                "runs": [{"label": r.point.label, "settings": r.point.as_dict(), "seed": r.seed,
                          "output_dir": os.path.relpath(r.output_dir, self.out), "command": r.command()}
                         for r in self.runs]}


def plan_sweep(kind: str, base: TrainConfig, values: dict[str, list[str]], seeds: Sequence[int],
               out: str | os.PathLike[str]) -> Sweep:
    """All (point, seed) runs of the grid ``values`` (cartesian product, first key outermost) on top of
    ``base``; every run's settings are checked here (:class:`InputError`) before anything runs."""
    import itertools

    if not values or any(not v for v in values.values()):
        raise InputError("the sweep expands to zero runs: give at least one value per swept setting")
    if not seeds:
        raise InputError("--seeds lists no seeds (e.g. --seeds 1,2,3)")
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise InputError(f"--out {out} is a file: choose a directory for the sweep")
    check_apart([("--out", out)], [("--model", base.model), *(("--train-file", f) for f in base.train_files)])
    keys = list(values)
    runs = []
    for combo in itertools.product(*(values[k] for k in keys)):
        point = SweepPoint(tuple(zip(keys, combo)))
        for seed in seeds:
            cfg = base
            for k, token in point.settings:
                cfg = GRID_KEYS[k].apply(cfg, token)
            cfg = replace(cfg, seed=int(seed), output_dir=str(out / point.dirname / f"seed-{seed}"))
            try:
                _check_config(cfg)
            except InputError as e:
                raise InputError(f"sweep run {point.label} seed {seed}: {e}") from None
            runs.append(PlannedRun(point, int(seed), cfg))
    return Sweep(kind, keys, {k: list(v) for k, v in values.items()}, [int(s) for s in seeds], out, base, runs)


def _check_config(cfg: TrainConfig) -> None:
    """What :func:`trainers.loop.train` would refuse about the settings alone, found before any run starts."""
    from . import augment  # noqa: F401  (registers the discrete augmentations as positive views)
    from .views import parse_positive

    c = cfg.resolved()
    parse_positive(c.positive)
    if c.fixed_dropout_mask and c.positive != "dropout":
        raise InputError("a fixed dropout mask needs --positive dropout (identical views)")


def plan_dropout_sweep(base: TrainConfig, rates: str | Sequence[str], seeds: Sequence[int],
                       out: str | os.PathLike[str]) -> Sweep:
    """One unsupervised run per dropout rate (and seed): the paper's Table 3."""
    if base.objective != "unsup":
        raise InputError("the dropout sweep trains unsupervised SimCSE (objective 'unsup')")
    tokens = parse_rates(rates) if isinstance(rates, str) else parse_rates(",".join(rates))
    return plan_sweep("dropout", base, {"dropout": tokens}, seeds, out)


def plan_grid_sweep(base: TrainConfig, grid: Sequence[str] | dict[str, list[str]], seeds: Sequence[int],
                    out: str | os.PathLike[str]) -> Sweep:
    """One run per grid point (and seed); ``grid`` as ``--grid`` strings or already parsed."""
    values = parse_grid(grid) if not isinstance(grid, dict) else grid
    return plan_sweep("grid", base, values, seeds, out)


def write_manifest(sweep: Sweep) -> Path:
    """Write the sweep's plan to ``OUT/sweep.json`` (atomically)."""
    return atomic_write_text(sweep.out / SWEEP_FILE, json.dumps(sweep.manifest(), indent=2) + "\n")


def load_manifest(out: str | os.PathLike[str]) -> dict[str, Any] | None:
    f = Path(out) / SWEEP_FILE
    if not f.is_file():
        return None
    return read_document(f, SWEEP_KIND)
