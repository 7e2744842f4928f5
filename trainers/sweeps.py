"""Sweeps of training runs: the dropout ablation (SimCSE Table 3 / Fig. 2) and generic grids.

A sweep is a list of *points* (one value per swept setting, e.g. ``dropout=0.1``) × seeds. Each
(point, seed) is one ordinary training run (:func:`trainers.loop.train`) in its own directory::

    OUT/sweep.json                     the plan: kind, swept keys, values, seeds, base settings, commands
    OUT/<key=value[__key=value]>/seed-<s>/   a run directory (run.json, trajectory.jsonl, best/, last/)

Running a sweep again reuses finished runs and resumes interrupted ones (``train(…, resume=True)``).
The plan prints as one ``simcse-analyze train unsup …`` command per run (``--dry-run``), so runs can be
spread over a cluster's scheduler; :func:`collect_runs` reads the finished run directories back, wherever
they were produced, and :func:`summarize` reduces them to a table:

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
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from simcse_analysis.errors import InputError
from simcse_analysis.io_utils import atomic_write_text

from .config import TrainConfig, format_dropout, parse_dropout
from .rundir import RUN_FILE, RunResult

SWEEP_FILE = "sweep.json"
SUMMARY_FILE = "summary.json"
REPORT_FILE = "report.html"

#: The dropout rates of the paper's Table 3 (``fixed`` = both views share one 0.1 mask).
PAPER_RATES = "0,0.01,0.05,0.1,0.15,0.2,0.5,fixed"


# ---------------------------------------------------------------------------------- swept settings
@dataclass(frozen=True)
class GridKey:
    """A setting a sweep can vary: how to read a value from the command line (to a canonical token),
    write it into a :class:`TrainConfig`, and read it back from a run's stored settings."""

    name: str
    parse: Callable[[str], str]
    apply: Callable[[TrainConfig, str], TrainConfig]
    from_config: Callable[[dict[str, Any]], str]
    help: str


def _positive_number(kind: type, name: str) -> Callable[[str], str]:
    def parse(token: str) -> str:
        try:
            v = kind(token)
        except ValueError:
            raise InputError(f"{name} value {token!r} is not a{'n integer' if kind is int else ' number'}") from None
        if not v > 0:
            raise InputError(f"{name} value {token!r} must be > 0")
        return f"{v:g}" if kind is float else str(v)

    return parse


def _parse_rate(token: str) -> str:
    rate, fixed = parse_dropout(token)
    return format_dropout(rate, fixed)


def _apply_rate(c: TrainConfig, token: str) -> TrainConfig:
    rate, fixed = parse_dropout(token)
    return replace(c, dropout=rate, fixed_dropout_mask=fixed)


def _rate_of(cfg: dict[str, Any]) -> str:
    return format_dropout(cfg.get("dropout"), bool(cfg.get("fixed_dropout_mask"))) or "default"


def _parse_pooler(token: str) -> str:
    from simcse_analysis.pooling import check_pooler

    return check_pooler(token)


def _parse_positive(token: str) -> str:
    from .views import parse_positive, positive_name

    return positive_name(parse_positive(token)) or token.strip()  # canonical: crop:10% -> crop:0.1


def _parse_bool(token: str) -> str:
    text = token.strip().lower()
    if text in ("true", "yes", "1", "on"):
        return "true"
    if text in ("false", "no", "0", "off"):
        return "false"
    raise InputError(f"two_encoders value {token!r}: give true or false")


def _setter(field_name: str, kind: type) -> Callable[[TrainConfig, str], TrainConfig]:
    return lambda c, token: replace(c, **{field_name: kind(token)})


def _getter(field_name: str) -> Callable[[dict[str, Any]], str]:
    def get(cfg: dict[str, Any]) -> str:
        v = cfg.get(field_name)
        return "default" if v is None else (f"{v:g}" if isinstance(v, float) else str(v))

    return get


GRID_KEYS: dict[str, GridKey] = {k.name: k for k in (
    GridKey("dropout", _parse_rate, _apply_rate, _rate_of, "a rate, 'fixed' or 'fixed:RATE'"),
    GridKey("temperature", _positive_number(float, "temperature"), _setter("temperature", float),
            _getter("temperature"), "softmax temperature, e.g. 0.05"),
    GridKey("pooler", _parse_pooler, _setter("pooler", str), _getter("pooler"), "cls, cls_before_pooler, avg, …"),
    GridKey("batch_size", _positive_number(int, "batch_size"), _setter("batch_size", int), _getter("batch_size"),
            "rows per step, e.g. 64"),
    GridKey("learning_rate", _positive_number(float, "learning_rate"), _setter("learning_rate", float),
            _getter("learning_rate"), "peak learning rate, e.g. 3e-5"),
    GridKey("max_length", _positive_number(int, "max_length"), _setter("max_length", int), _getter("max_length"),
            "training truncation, e.g. 32"),
    GridKey("positive", _parse_positive, _setter("positive", str), _getter("positive"),
            "dropout, crop:0.1, word_deletion:0.2, delete_one_word, next, next:3"),
    GridKey("two_encoders", _parse_bool, lambda c, token: replace(c, two_encoders=token == "true"),
            lambda cfg: "true" if cfg.get("two_encoders") else "false",
            "false (one encoder, SimCSE) or true (Table 2's two encoders)"),
)}
#: Other spellings accepted in ``--grid`` (command-line option names).
GRID_ALIASES = {"lr": "learning_rate", "batch-size": "batch_size", "max-length": "max_length"}


def grid_key(name: str) -> GridKey:
    key = GRID_ALIASES.get(name.strip(), name.strip().replace("-", "_"))
    if key not in GRID_KEYS:
        raise InputError(f"--grid {name!r}: unknown setting; choose one of {', '.join(GRID_KEYS)}")
    return GRID_KEYS[key]


# ---------------------------------------------------------------------------------- parsing
def _split_list(spec: str) -> list[str]:
    return [t.strip() for t in str(spec).split(",") if t.strip()]


def parse_rates(spec: str) -> list[str]:
    """``"0,0.1,fixed"`` → canonical dropout tokens ``["0", "0.1", "fixed:0.1"]`` (order kept).

    Raises :class:`InputError` for an unknown token, a duplicate, or an empty list.
    """
    tokens = []
    for t in _split_list(spec):
        try:
            tokens.append(_parse_rate(t))
        except InputError:
            raise InputError(f"--rates: unknown rate {t!r}; give rates in [0, 1) and/or 'fixed' / 'fixed:RATE', "
                             f"e.g. --rates {PAPER_RATES}") from None
    return _unique(tokens, "--rates")


def _unique(tokens: list[str], option: str) -> list[str]:
    seen = set()
    for t in tokens:
        if t in seen:
            raise InputError(f"{option}: value {t!r} is listed twice")
        seen.add(t)
    if not tokens:
        raise InputError(f"{option} lists no values")
    return tokens


def parse_grid(specs: Sequence[str]) -> dict[str, list[str]]:
    """``["temperature=0.05,0.1", "pooler=cls,avg"]`` → ``{"temperature": [...], "pooler": [...]}`` with
    canonical tokens. Raises :class:`InputError` for an unknown key, a bad value, a key given twice, or a
    grid that expands to zero runs (no ``--grid``, or a key without values)."""
    grid: dict[str, list[str]] = {}
    for spec in specs:
        name, sep, values = str(spec).partition("=")
        if not sep:
            raise InputError(f"--grid {spec!r}: write KEY=V1,V2,… (e.g. --grid temperature=0.05,0.1)")
        key = grid_key(name)
        if key.name in grid:
            raise InputError(f"--grid {key.name} is given twice: list all its values in one --grid")
        tokens = _split_list(values)
        if not tokens:
            raise InputError(f"--grid {spec!r} lists no values, so the grid expands to zero runs: give "
                             f"{key.name}=V1,V2,… ({key.help})")
        grid[key.name] = _unique([key.parse(t) for t in tokens], f"--grid {key.name}")
    if not grid:
        raise InputError("the grid expands to zero runs: give at least one --grid KEY=V1,V2,… (keys: "
                         f"{', '.join(GRID_KEYS)})")
    return grid


def parse_seeds(spec: str) -> list[int]:
    """``"1,2,3"`` → ``[1, 2, 3]``; :class:`InputError` for non-integers, duplicates or an empty list."""
    out = []
    for t in _split_list(spec):
        try:
            out.append(int(t))
        except ValueError:
            raise InputError(f"--seeds: {t!r} is not an integer (e.g. --seeds 1,2,3)") from None
    if len(set(out)) != len(out):
        raise InputError(f"--seeds {spec!r} lists a seed twice")
    if not out:
        raise InputError("--seeds lists no seeds (e.g. --seeds 1,2,3)")
    return out


# ---------------------------------------------------------------------------------- plan
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
        return self.config.command_line() + " --resume"


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


# ---------------------------------------------------------------------------------- run
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


def write_manifest(sweep: Sweep) -> Path:
    return atomic_write_text(sweep.out / SWEEP_FILE, json.dumps(sweep.manifest(), indent=2) + "\n")


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


# ---------------------------------------------------------------------------------- collect
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


# ---------------------------------------------------------------------------------- summary
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
    """The reduced sweep: one :class:`PointSummary` per point, in sweep order (JSON-able)."""

    kind: str
    keys: list[str]
    points: list[PointSummary]
    base_config: dict[str, Any]
    skipped: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)

    @property
    def differences(self) -> list[dict[str, Any]]:
        """Paired differences of every point to the first (:func:`paired_differences`)."""
        return paired_differences(self.points)

    def to_dict(self) -> dict[str, Any]:
        diffs = [{k: (asdict(v) if isinstance(v, Stat) else v) for k, v in d.items()} for d in self.differences]
        return {"kind": self.kind, "keys": self.keys, "points": [p.to_dict() for p in self.points],
                "base_config": self.base_config, "skipped": self.skipped, "missing": self.missing,
                "differences": diffs}


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
              base_config: dict[str, Any] | None = None, skipped: Sequence[str] = ()) -> SweepSummary:
    """Group finished runs by sweep point and reduce each group to mean ± std over seeds.

    Points are defined by ``keys`` plus any other setting in which the runs differ (runs differing in
    anything but the seed are never averaged). ``values`` (``{key: [tokens]}``) and ``seeds`` select runs
    and order the points; with both, the (point, seed) combinations without a finished run are listed in
    ``missing``.
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
                                                            "uniformity")} for e in r.trajectory]}
                for r, f in zip(rs, figs)]
        stats = {k: Stat.of(f.get(k) for f in figs) for k in STAT_FIELDS}
        points.append(PointSummary(p.label, p.as_dict(), [x["seed"] for x in runs], stats, runs,
                                   mean_trajectory([r.trajectory for r in rs])))
    base = base_config if base_config is not None else (results[0].config if results else {})
    return SweepSummary(kind, list(keys), points, base, list(skipped), missing)


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


def load_manifest(out: str | os.PathLike[str]) -> dict[str, Any] | None:
    f = Path(out) / SWEEP_FILE
    if not f.is_file():
        return None
    try:
        return json.loads(f.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as e:
        raise InputError(f"{f} is unreadable ({e}); delete it, it is rewritten by the next sweep run") from e
