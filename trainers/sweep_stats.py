"""Reducing a sweep's finished runs to a table: per-run figures and mean ± std over seeds per point.

* per run: the best STS-B dev Spearman over its trajectory, the step where it occurred, ℓ_align and
  ℓ_uniform there, and the change of ℓ_align / ℓ_uniform from the first to the last evaluation;
* per point: mean ± sample standard deviation (ddof = 1) of those over seeds with a 95% Student-t
  interval of the mean (``x̄ ± t_{n−1, .975} s/√n``), and the per-step mean trajectory (what Fig. 2 plots
  in the align–uniform plane);
* per point after the first: the paired difference to the first point over the seeds both ran
  (``d_s = x_point,s − x_first,s``; mean with its 95% t-interval), for the best STS-B dev and ℓ_align /
  ℓ_uniform at the best step — seeds share data order and initialisation, so pairing removes their
  variation from the comparison.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from simcse_analysis.io_utils import atomic_write_text

from .rundir import RunResult
from .sweep_collect import point_of, varying_keys
from .sweep_plan import SweepPoint
from .sweep_settings import _data_files, run_command, run_settings, split_settings

SUMMARY_FILE = "summary.json"

@dataclass
class Stat:
    """Mean, sample standard deviation (ddof = 1; ``None`` for a single value) and the 95% Student-t interval
    of the mean (``ci_low``, ``ci_high``; ``None`` for fewer than two values) of ``values``."""

    mean: float | None
    std: float | None
    values: list[float]
    ci_low: float | None = None
    ci_high: float | None = None

    @classmethod
    def of(cls, values: Iterable[float | None]) -> Stat:
        from simcse_analysis.metrics.stats import t_interval

        vals = [float(v) for v in values if v is not None and math.isfinite(float(v))]
        if not vals:
            return cls(None, None, [])
        mean = sum(vals) / len(vals)
        std = math.sqrt(sum((v - mean) ** 2 for v in vals) / (len(vals) - 1)) if len(vals) > 1 else None
        if len(vals) < 2:
            return cls(mean, std, vals)
        ci = t_interval(vals)
        return cls(mean, std, vals, ci.low, ci.high)

    def format(self, digits: int = 2) -> str:
        if self.mean is None:
            return "n/a"
        return f"{self.mean:.{digits}f}" + ("" if self.std is None else f" ± {self.std:.{digits}f}")

    def format_ci(self, digits: int = 2) -> str:
        """``[low, high]`` of the 95% t-interval, or ``-`` without one."""
        if self.ci_low is None or self.ci_high is None:
            return "-"
        return f"[{self.ci_low:.{digits}f}, {self.ci_high:.{digits}f}]"


#: Figures whose paired differences between points the summary reports.
DIFF_FIELDS = ("best_stsb_spearman", "alignment_at_best", "uniformity_at_best")


def paired_differences(points: Sequence[PointSummary], fields: Sequence[str] = DIFF_FIELDS) -> list[dict[str, Any]]:
    """Each point after the first against the first, paired by seed: ``{label, baseline, seeds, field: Stat}``."""
    if len(points) < 2:
        return []
    base = points[0]
    out = []
    for p in points[1:]:
        by_seed = {r["seed"]: r for r in base.runs}
        common = [r for r in p.runs if r["seed"] in by_seed]
        diffs: dict[str, Any] = {"label": p.label, "baseline": base.label, "seeds": [r["seed"] for r in common]}
        for f in fields:
            diffs[f] = Stat.of(None if r.get(f) is None or by_seed[r["seed"]].get(f) is None
                               else r[f] - by_seed[r["seed"]][f] for r in common)
        out.append(diffs)
    return out


def run_figures(result: RunResult) -> dict[str, Any]:
    """Per-run figures: best STS-B dev (×100) and its step, ℓ_align/ℓ_uniform there, their first→last change."""
    traj = [e for e in result.trajectory if e.get("stsb_spearman") is not None
            and math.isfinite(e["stsb_spearman"])]
    if not traj:
        return {"best_stsb_spearman": None, "best_step": None, "alignment_at_best": None,
                "uniformity_at_best": None, "alignment_change": None, "uniformity_change": None}
    best = max(traj, key=lambda e: e["stsb_spearman"])  # first of equal maxima, as the trainer keeps it
    first, last = result.trajectory[0], result.trajectory[-1]
    return {"best_stsb_spearman": best["stsb_spearman"], "best_step": best["step"],
            "alignment_at_best": best["alignment"], "uniformity_at_best": best["uniformity"],
            "alignment_change": last["alignment"] - first["alignment"],
            "uniformity_change": last["uniformity"] - first["uniformity"],
            "start": {k: first[k] for k in ("step", "stsb_spearman", "alignment", "uniformity")},
            "last": {k: last[k] for k in ("step", "stsb_spearman", "alignment", "uniformity")}}


STAT_FIELDS = ("best_stsb_spearman", "best_step", "alignment_at_best", "uniformity_at_best", "alignment_change",
               "uniformity_change")


def mean_trajectory(trajectories: Sequence[Sequence[dict[str, Any]]]) -> list[dict[str, Any]]:
    """Per step: mean and std over runs of STS-B dev, ℓ_align and ℓ_uniform (runs lacking the step skipped)."""
    steps = sorted({e["step"] for t in trajectories for e in t})
    out = []
    for s in steps:
        at = [e for t in trajectories for e in t if e["step"] == s]
        row: dict[str, Any] = {"step": s, "n": len(at)}
        for k in ("stsb_spearman", "alignment", "uniformity"):
            st = Stat.of(e.get(k) for e in at)
            row[k], row[f"{k}_std"] = st.mean, st.std
        out.append(row)
    return out


@dataclass
class PointSummary:
    label: str
    settings: dict[str, str]
    seeds: list[int]
    stats: dict[str, Stat]
    runs: list[dict[str, Any]]
    mean_trajectory: list[dict[str, Any]]

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["stats"] = {k: asdict(v) for k, v in self.stats.items()}
        return d


@dataclass
class SweepSummary:
    """The reduced sweep: one :class:`PointSummary` per point, in sweep order (JSON-able).

    ``common_settings``: the settings every summarised run resolved to the same value (from the runs'
    ``run.json``, see :func:`run_settings`); ``varying_settings``: the names of those that differ (seed,
    the swept keys), given per run in ``points[i].runs[j].settings`` with the run's ``command``;
    ``data_files``: the training files with the checksums the runs recorded; ``provenance``: who built
    the summary (filled by the caller, e.g. ``[reports.collect.provenance_entry()]``).
    """

    kind: str
    keys: list[str]
    points: list[PointSummary]
    common_settings: dict[str, Any] = field(default_factory=dict)
    varying_settings: list[str] = field(default_factory=list)
    data_files: list[dict[str, Any]] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    provenance: list[dict[str, Any]] = field(default_factory=list)

    @property
    def differences(self) -> list[dict[str, Any]]:
        """Paired differences of every point to the first (:func:`paired_differences`)."""
        return paired_differences(self.points)

    def to_dict(self) -> dict[str, Any]:
        diffs = [{k: (asdict(v) if isinstance(v, Stat) else v) for k, v in d.items()} for d in self.differences]
        return {"kind": self.kind, "keys": self.keys, "points": [p.to_dict() for p in self.points],
                "differences": diffs,
                "common_settings": self.common_settings, "varying_settings": self.varying_settings,
                "data_files": self.data_files, "skipped": self.skipped, "missing": self.missing,
                "provenance": self.provenance}


def _order_key(point: SweepPoint, values: dict[str, list[str]]) -> tuple:
    """Swept values in the order given; other values numerically, then alphabetically."""
    parts = []
    for k, v in point.settings:
        if k in values and v in values[k]:
            parts.append((0, float(values[k].index(v)), ""))
            continue
        try:
            parts.append((1, float(v), ""))
        except ValueError:
            parts.append((2, 0.0, v))
    return tuple(parts)


def summarize(results: Sequence[RunResult], *, kind: str = "grid", keys: Sequence[str] = (),
              values: dict[str, list[str]] | None = None, seeds: Sequence[int] | None = None,
              skipped: Sequence[str] = ()) -> SweepSummary:
    """Group finished runs by sweep point and reduce each group to mean ± std over seeds.

    Points are defined by ``keys`` plus any other setting in which the runs differ (runs differing in
    anything but the seed are never averaged). ``values`` (``{key: [tokens]}``) and ``seeds`` select runs
    and order the points; with both, the (point, seed) combinations without a finished run are listed in
    ``missing``. The settings tables come from the summarised runs' resolved configurations alone.
    """
    values = values or {}
    keys = varying_keys(results, [*values, *(k for k in keys if k not in values)])
    groups: dict[SweepPoint, list[RunResult]] = {}
    for r in results:
        p = point_of(r, keys)
        if any(p.as_dict()[k] not in v for k, v in values.items()):
            continue
        if seeds is not None and int(r.config.get("seed", 0)) not in seeds:
            continue
        groups.setdefault(p, []).append(r)
    missing = []
    if values and seeds is not None:
        import itertools

        have = {(tuple((k, p.as_dict()[k]) for k in values), int(r.config["seed"]))
                for p, rs in groups.items() for r in rs}
        for combo in itertools.product(*values.values()):
            settings = tuple(zip(values, combo))
            for seed in seeds:
                if (settings, int(seed)) not in have:
                    missing.append(f"{SweepPoint(settings).label} seed {seed}")
    points = []
    for p in sorted(groups, key=lambda q: _order_key(q, values)):
        rs = sorted(groups[p], key=lambda r: int(r.config.get("seed", 0)))
        figs = [run_figures(r) for r in rs]
        runs = [{"seed": int(r.config.get("seed", 0)), "output_dir": r.output_dir, "steps": r.steps,
                 **f, "trajectory": [{k: e.get(k) for k in ("step", "loss", "stsb_spearman", "alignment",
                                                            "uniformity")} for e in r.trajectory],
                 "settings": run_settings(r), "command": run_command(r)}
                for r, f in zip(rs, figs)]
        stats = {k: Stat.of(f.get(k) for f in figs) for k in STAT_FIELDS}
        points.append(PointSummary(p.label, p.as_dict(), [x["seed"] for x in runs], stats, runs,
                                   mean_trajectory([r.trajectory for r in rs])))
    kept = [r for p in groups.values() for r in p]
    common, varying = split_settings([run["settings"] for p in points for run in p.runs])
    return SweepSummary(kind, list(keys), points, common_settings=common, varying_settings=varying,
                        data_files=_data_files(kept), skipped=list(skipped), missing=missing)


def format_summary(summary: SweepSummary) -> str:
    """Plain-text table: one row per point (mean ± std over seeds)."""
    from simcse_analysis.tables import format_table

    headers = [*summary.keys, "seeds", "STS-B dev (best)", "95% CI", "best step", "ℓ_align @best",
               "ℓ_uniform @best", "Δℓ_align", "Δℓ_uniform"]
    rows = []
    for p in summary.points:
        s = p.stats
        rows.append([*(p.settings[k] for k in summary.keys), len(p.seeds), s["best_stsb_spearman"].format(2),
                     s["best_stsb_spearman"].format_ci(2), s["best_step"].format(0), s["alignment_at_best"].format(4),
                     s["uniformity_at_best"].format(4), s["alignment_change"].format(4),
                     s["uniformity_change"].format(4)])
    table = format_table(headers, rows, right=[False] * len(summary.keys) + [True] * 8)
    diffs = summary.differences
    if diffs:
        drows = [[d["label"], len(d["seeds"]), *(f"{_signed(d[f].mean, n)} {d[f].format_ci(n)}"
                                                 for f, n in zip(DIFF_FIELDS, (2, 4, 4)))] for d in diffs]
        table += (f"\n\npaired differences to {diffs[0]['baseline']} over common seeds (mean, 95% t-interval):\n"
                  + format_table(["point", "seeds", "Δ STS-B dev", "Δ ℓ_align @best", "Δ ℓ_uniform @best"], drows,
                                 right=[False, True, True, True, True]))
    notes = ["", ("mean ± sample std over seeds, 95% CI = Student-t interval of the mean; best = highest STS-B dev "
                  "Spearman ×100 over the evaluations; Δ = last − first evaluation (ℓ_align rising = positives "
                  "drifting apart)")]
    if summary.missing:
        notes.append(f"{len(summary.missing)} planned run(s) not finished: " + "; ".join(summary.missing[:5])
                     + (" …" if len(summary.missing) > 5 else ""))
    return table + "\n".join(notes)


def _signed(x: float | None, digits: int) -> str:
    return "n/a" if x is None else f"{x:+.{digits}f}"


def write_summary(summary: SweepSummary, path: str | os.PathLike[str]) -> Path:
    return atomic_write_text(path, json.dumps(summary.to_dict(), indent=2) + "\n")
