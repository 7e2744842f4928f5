"""Running a sweep: every planned run in order, reusing finished runs and resuming interrupted ones."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from .rundir import RunResult
from .sweep_plan import Sweep, write_manifest

_ACTION_WORDS = {"new": "training", "resume": "resuming", "finished": "finished, reused"}


def check_run_dirs(sweep: Sweep) -> list[str]:
    """What running the sweep does to each run directory (``new`` / ``resume`` / ``finished``), checked
    before any run starts: a directory holding a different run or other files raises :class:`InputError`."""
    from .data import load_training_data
    from .rundir import prepare_output_dir

    files: dict[tuple[str, ...], list[dict[str, Any]]] = {}
    actions = []
    for run in sweep.runs:
        c = run.config.resolved()
        key = (c.objective, c.positive, *c.train_files)
        if key not in files:
            files[key] = load_training_data(c.train_files, c.objective, c.positive).files
        _, action = prepare_output_dir(c, files[key], resume=True, overwrite=False)
        actions.append(action)
    return actions


def run_sweep(sweep: Sweep, *, progress: bool = True, log: Callable[[str], None] | None = None,
              callbacks: Sequence[Any] = (), train_fn: Callable[..., RunResult] | None = None) -> list[RunResult]:
    """Run every planned run in order: finished runs are reused, interrupted ones resumed (``--resume``
    semantics of :func:`trainers.loop.train`). Returns the runs' results in plan order."""
    from . import augment  # noqa: F401  (registers the discrete augmentations as positive views)

    if train_fn is None:
        from .loop import train as train_fn
    say = log or (lambda msg: None)
    actions = check_run_dirs(sweep)
    sweep.out.mkdir(parents=True, exist_ok=True)
    write_manifest(sweep)
    results = []
    for i, run in enumerate(sweep.runs, start=1):
        say(f"[{i}/{len(sweep.runs)}] {run.point.label} seed {run.seed}: {_ACTION_WORDS[actions[i - 1]]} "
            f"-> {run.output_dir}")
        results.append(train_fn(run.config, resume=True, progress=progress, callbacks=list(callbacks), log=say))
    return results
