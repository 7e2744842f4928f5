"""What a sweep's runs ran with, read back from each run's ``run.json``: the resolved configuration (paper
defaults filled in, what the defaults resolved to), the settings all runs share and those that differ, the
command that trains a run again, and the training files with the checksums the runs recorded."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from .config import TrainConfig
from .rundir import RunResult
from .sweep_plan import resume_command

#: Fields of a run's configuration that say where it was written, not what it trained.
_NOT_SETTINGS = ("output_dir", "extra")


def run_settings(result: RunResult) -> dict[str, Any]:
    """The settings ``result`` ran with, read from its ``run.json``: the resolved configuration (paper
    defaults filled in), where a setting left to a default (``None``) takes the value the run resolved it
    to (``run.json``'s ``resolved``: the checkpoint's own dropout rate, the data directory, the device;
    for runs written before that record existed the dropout comes from the checkpoint's metadata), plus
    the starting checkpoint's weight fingerprint. ``max_steps`` stays ``None`` when not set (the epochs
    decide)."""
    settings = {k: v for k, v in result.config.items() if k not in _NOT_SETTINGS}
    resolved = dict(result.resolved)
    if "dropout" not in resolved:
        resolved["dropout"] = _checkpoint_dropout(result)
    for key, value in resolved.items():
        if settings.get(key) is None and value is not None:
            settings[key] = value
    if result.base_model.get("fingerprint"):
        settings["model_fingerprint"] = result.base_model["fingerprint"]
    return settings


def _checkpoint_dropout(result: RunResult) -> float | None:
    from simcse_analysis.checkpoint import read_metadata

    for d in (result.last_dir, result.best_dir):
        if d:
            rate = read_metadata(d).get("dropout")
            if isinstance(rate, (int, float)):
                return float(rate)
    return None


def run_command(result: RunResult) -> str:
    """The command that reproduces ``result`` (:func:`resume_command` of its resolved configuration)."""
    return resume_command(TrainConfig.from_dict(result.config))


def split_settings(settings: Sequence[dict[str, Any]]) -> tuple[dict[str, Any], list[str]]:
    """``(common, varying)``: the settings with one value over all runs (name → value), and the names of
    those that differ between runs (in first-seen order)."""
    names = list(dict.fromkeys(k for s in settings for k in s))
    common: dict[str, Any] = {}
    varying: list[str] = []
    for name in names:
        if len({json.dumps(s.get(name), sort_keys=True) for s in settings}) == 1:
            common[name] = settings[0].get(name)
        else:
            varying.append(name)
    return common, varying


def _data_files(results: Sequence[RunResult]) -> list[dict[str, Any]]:
    """The training files of ``results`` (path, rows, SHA-256 as each run recorded them), each once."""
    seen: dict[tuple[str, str], dict[str, Any]] = {}
    for r in results:
        for f in r.data:
            seen.setdefault((str(f.get("path")), str(f.get("sha256"))), dict(f))
    return sorted(seen.values(), key=lambda f: str(f.get("path")))
