"""Sweeps of training runs: the dropout ablation (SimCSE Table 3 / Fig. 2) and generic grids.

A sweep is a list of *points* (one value per swept setting, e.g. ``dropout=0.1``) × seeds. Each
(point, seed) is one ordinary training run (:func:`trainers.loop.train`) in its own directory::

    OUT/sweep.json                     the plan: kind, swept keys, values, seeds, base settings, commands
    OUT/<key=value[__key=value]>/seed-<s>/   a run directory (run.json, trajectory.jsonl, best/, last/)

Running a sweep again reuses finished runs and resumes interrupted ones (``train(…, resume=True)``).
The plan prints as one ``simcse-analyze train unsup …`` command per run (``--dry-run``), so runs can be
spread over a cluster's scheduler; :func:`collect_runs` reads the finished run directories back, wherever
they were produced, and :func:`summarize` reduces them to a table (mean ± std over seeds per point).

Each job has its own module; this one re-exports their public names (``from trainers.sweeps import …``):

- :mod:`trainers.sweep_grid`: swept settings (:data:`GRID_KEYS`) and parsing ``--grid`` / ``--rates`` / ``--seeds``
- :mod:`trainers.sweep_plan`: points × seeds → planned runs; the ``sweep.json`` manifest
- :mod:`trainers.sweep_run`: running the plan (reuse finished runs, resume interrupted ones)
- :mod:`trainers.sweep_collect`: finished run directories back, and the point each belongs to
- :mod:`trainers.sweep_settings`: the runs' resolved settings (common / varying) and re-run commands
- :mod:`trainers.sweep_stats`: per-run figures, mean ± std over seeds, the summary table
"""

from __future__ import annotations

from .sweep_collect import collect_runs, find_run_dirs, point_of, varying_keys
from .sweep_grid import (
    GRID_ALIASES,
    GRID_KEYS,
    PAPER_RATES,
    GridKey,
    grid_key,
    parse_grid,
    parse_rates,
    parse_seeds,
)
from .sweep_plan import (
    SWEEP_FILE,
    PlannedRun,
    Sweep,
    SweepPoint,
    load_manifest,
    plan_dropout_sweep,
    plan_grid_sweep,
    plan_sweep,
    resume_command,
    write_manifest,
)
from .sweep_run import check_run_dirs, run_sweep
from .sweep_settings import run_command, run_settings, split_settings
from .sweep_stats import (
    DIFF_FIELDS,
    STAT_FIELDS,
    SUMMARY_FILE,
    PointSummary,
    Stat,
    SweepSummary,
    format_summary,
    mean_trajectory,
    paired_differences,
    run_figures,
    summarize,
    write_summary,
)

REPORT_FILE = "report.html"

__all__ = [
    "DIFF_FIELDS",
    "GRID_ALIASES",
    "GRID_KEYS",
    "PAPER_RATES",
    "REPORT_FILE",
    "STAT_FIELDS",
    "SUMMARY_FILE",
    "SWEEP_FILE",
    "GridKey",
    "PlannedRun",
    "PointSummary",
    "Stat",
    "Sweep",
    "SweepPoint",
    "SweepSummary",
    "check_run_dirs",
    "collect_runs",
    "find_run_dirs",
    "format_summary",
    "grid_key",
    "load_manifest",
    "mean_trajectory",
    "paired_differences",
    "parse_grid",
    "parse_rates",
    "parse_seeds",
    "plan_dropout_sweep",
    "plan_grid_sweep",
    "plan_sweep",
    "point_of",
    "resume_command",
    "run_command",
    "run_figures",
    "run_settings",
    "run_sweep",
    "split_settings",
    "summarize",
    "varying_keys",
    "write_manifest",
    "write_summary",
]
