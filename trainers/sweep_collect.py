"""Collecting finished runs back from their directories (wherever they were produced) and assigning
each to its sweep point."""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Sequence
from pathlib import Path

from simcse_analysis.errors import InputError

from .config import TrainConfig
from .rundir import RUN_FILE, RunResult
from .sweep_grid import GRID_KEYS
from .sweep_plan import SweepPoint


def find_run_dirs(root: str | os.PathLike[str], max_depth: int = 3) -> list[Path]:
    """Directories under ``root`` (``root`` included, at most ``max_depth`` levels down) holding a
    ``run.json``, sorted."""
    root = Path(root)
    found = []
    base_depth = len(root.parts)
    for dirpath, dirnames, filenames in os.walk(root):
        p = Path(dirpath)
        if RUN_FILE in filenames:
            found.append(p)
            dirnames[:] = []  # a run's own sub-directories (best/, last/, state/) hold no runs
            continue
        if len(p.parts) - base_depth >= max_depth:
            dirnames[:] = []
        dirnames[:] = [d for d in dirnames if not d.startswith(".")]
    return sorted(found)


def collect_runs(roots: Iterable[str | os.PathLike[str]]) -> tuple[list[RunResult], list[str]]:
    """Finished runs under ``roots`` (each a sweep directory or a run directory) and a note for each run
    directory that is not finished. :class:`InputError` if there is no finished run at all."""
    finished, skipped = [], []
    roots = [Path(r) for r in roots]
    for root in roots:
        if not root.is_dir():
            raise InputError(f"--collect: {root} is not a directory holding sweep runs")
    for d in sorted({p for root in roots for p in find_run_dirs(root)}):
        try:
            r = RunResult.load(d)
        except InputError as e:
            skipped.append(f"{d}: {e}")
            continue
        if r.status == "finished":
            finished.append(r)
        else:
            skipped.append(f"{d}: {r.status} ({len(r.trajectory)} evaluations so far)")
    if not finished:
        where = ", ".join(str(r) for r in roots)
        raise InputError(f"--collect: no finished training run under {where} (expected run directories with a "
                         f"finished {RUN_FILE}); run the sweep first, or point at the directory that holds its runs")
    return finished, skipped


def varying_keys(results: Sequence[RunResult], keys: Sequence[str] = ()) -> list[str]:
    """``keys`` plus every other setting that differs between ``results`` (seed and paths excluded):
    runs that differ in anything but the seed are never averaged together."""
    keys = list(keys)
    if not results:
        return keys
    ignore = {"seed", "output_dir", "keep_state", "device", "data_dir", "eval_batch_size", "trust_remote_code",
              "extra"}
    covered = {"dropout": {"dropout", "fixed_dropout_mask"}}
    done = set().union(*(covered.get(k, {k}) for k in keys)) if keys else set()
    ids = []
    for r in results:
        ident = TrainConfig.from_dict(r.config).identity()
        # runs collected from other machines name the same data by other paths: compare file names
        ident["train_files"] = [Path(f).name for f in ident.get("train_files", [])]
        ids.append(ident)
    extra = []
    for name in ids[0]:
        if name in ignore or name in done:
            continue
        if any(json.dumps(i.get(name), sort_keys=True) != json.dumps(ids[0].get(name), sort_keys=True) for i in ids):
            extra.append("dropout" if name in ("dropout", "fixed_dropout_mask") else name)
    for k in extra:
        if k not in keys:
            keys.append(k)
    return keys


def point_of(result: RunResult, keys: Sequence[str]) -> SweepPoint:
    """The sweep point a run belongs to, read from its stored settings."""
    cfg = result.config
    vals = []
    for k in keys:
        if k in GRID_KEYS:
            vals.append((k, GRID_KEYS[k].from_config(cfg)))
        else:
            v = cfg.get(k)
            vals.append((k, json.dumps(v) if isinstance(v, (list, dict)) else str(v)))
    return SweepPoint(tuple(vals))
