"""The output directory of a training run, and the record of a finished one.

Layout::

    OUT/run.json           settings (TrainConfig), data files + SHA-256, status running|finished, summary
    OUT/trajectory.jsonl   one JSON object per evaluation: step, epoch, loss (mean training loss since the
                           previous evaluation), learning_rate, stsb_spearman, alignment, uniformity
    OUT/best/              checkpoint with the highest STS-B dev Spearman (see trainers.checkpoint_io)
    OUT/last/              checkpoint at the last step
    OUT/state/checkpoint-N resumable trainer state (weights, optimiser, scheduler, RNG) at the latest
                           evaluation; removed when the run finishes unless ``keep_state``

The trajectory holds no wall-clock figures, so a resumed run's file is identical to an uninterrupted
one's. ``RunResult.load(OUT)`` reads a run back (e.g. to collect a sweep run elsewhere).
"""

from __future__ import annotations

import json
import math
import os
import shutil
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from simcse_analysis.documents import DocumentKind, Int, ListOf, MapOf, Num, Obj, Str, read_document
from simcse_analysis.errors import InputError
from simcse_analysis.io_utils import atomic_write_text
from simcse_analysis.locks import check_not_in_use
from simcse_analysis.path_safety import check_apart, data_inputs

from .checkpoint_io import recover_dir
from .config import TrainConfig

_N = Num(null=True)
#: ``run.json`` as the readers use it (the resolved configuration, status, data hashes, summary).
RUN_KIND = DocumentKind("training run record", Obj(
    {"config": MapOf()},
    optional={"status": Str(), "data": ListOf(Obj(optional={"path": Str(), "rows": Int(min=0), "sha256": Str()})),
              "base_model": MapOf(), "resolved": MapOf(), "diverged": MapOf(null=True),
              "summary": Obj(optional={"steps": Int(min=0), "epochs": _N, "train_time_s": _N, "rows": Int(min=0),
                                       "best_step": Int(null=True, min=0), "best_stsb_spearman": _N,
                                       "final": MapOf(null=True)})}),
    "rerun with --overwrite to start over (the run directory's run.json is damaged)")
RUN_FILE = "run.json"
TRAJECTORY_FILE = "trajectory.jsonl"
STATE_DIR = "state"
CHECKPOINT_PREFIX = "checkpoint-"


class RunDir:
    """Paths and atomic bookkeeping of one run's output directory."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root)
        self.run_file = self.root / RUN_FILE
        self.trajectory_file = self.root / TRAJECTORY_FILE
        self.best_dir = self.root / "best"
        self.last_dir = self.root / "last"
        self.state_dir = self.root / STATE_DIR

    # ------------------------------------------------------------------ run.json
    def read_run(self) -> dict[str, Any] | None:
        """``run.json`` validated (:data:`RUN_KIND`), or ``None`` when the directory has none."""
        if not self.run_file.is_file():
            return None
        return read_document(self.run_file, RUN_KIND)

    def write_run(self, data: dict[str, Any]) -> None:
        atomic_write_text(self.run_file, json.dumps(data, indent=2, sort_keys=True) + "\n")

    # ------------------------------------------------------------------ trajectory
    def trajectory(self) -> list[dict[str, Any]]:
        """Entries in file order; a torn last line (a kill mid-write) is ignored."""
        if not self.trajectory_file.is_file():
            return []
        out = []
        for line in self.trajectory_file.read_text(encoding="utf-8").splitlines():
            try:
                out.append(json.loads(line))
            except (json.JSONDecodeError, RecursionError):
                break
        return out

    def append_trajectory(self, entry: dict[str, Any]) -> None:
        with open(self.trajectory_file, "a", encoding="utf-8") as f:
            f.write(json.dumps(entry) + "\n")
            f.flush()
            os.fsync(f.fileno())

    def truncate_trajectory(self, max_step: int | None) -> list[dict[str, Any]]:
        """Keep the entries up to ``max_step`` (none if ``None``); returns them."""
        keep = [e for e in self.trajectory() if max_step is not None and e["step"] <= max_step]
        atomic_write_text(self.trajectory_file, "".join(json.dumps(e) + "\n" for e in keep))
        return keep

    # ------------------------------------------------------------------ resumable state
    def states(self) -> list[Path]:
        """Complete trainer states (``trainer_state.json`` parses), oldest first."""
        if not self.state_dir.is_dir():
            return []
        found = []
        for p in self.state_dir.glob(CHECKPOINT_PREFIX + "*"):
            try:
                step = int(p.name[len(CHECKPOINT_PREFIX):])
                json.loads((p / "trainer_state.json").read_text(encoding="utf-8"))
            except (ValueError, OSError, json.JSONDecodeError):
                continue
            found.append((step, p))
        return [p for _, p in sorted(found)]

    def latest_state(self) -> Path | None:
        states = self.states()
        return states[-1] if states else None

    def clean_incomplete_states(self) -> None:
        """Remove state directories a kill left half-written."""
        good = set(self.states())
        if self.state_dir.is_dir():
            for p in self.state_dir.iterdir():
                if p.is_dir() and p not in good:
                    shutil.rmtree(p, ignore_errors=True)

    def recover(self) -> None:
        """Repair what a kill can leave behind: interrupted checkpoint swaps, half-written states."""
        for d in (self.best_dir, self.last_dir):
            recover_dir(d)
        self.clean_incomplete_states()


def check_run_paths(config: TrainConfig) -> None:
    """:class:`InputError` if ``--out`` is, contains or lies inside what the run reads: the starting
    checkpoint (a training run given as ``--model`` counts whole), the training files, an ``mlm:K@MODEL``
    positive's model, the STS data of the dev evaluation (:func:`simcse_analysis.path_safety.check_apart`)."""
    mlm = config.positive.split("@", 1)[1] if config.positive.startswith("mlm:") and "@" in config.positive else None
    check_apart([("--out", config.output_dir)],
                [("--model", config.model), *(("--train-file", f) for f in config.train_files),
                 ("--positive", mlm), *data_inputs(config.data_dir)])


def prepare_output_dir(config: TrainConfig, data_files: list[dict[str, Any]], *, resume: bool,
                       overwrite: bool) -> tuple[RunDir, str]:
    """Decide what to do with ``config.output_dir`` without touching it (:func:`decide_output_action`), after
    refusing an ``--out`` that overlaps an input (:func:`check_run_paths`) or that another process holds now
    (:func:`simcse_analysis.locks.check_not_in_use`; the run still takes the lock before its first write)."""
    check_run_paths(config)
    check_not_in_use(config.output_dir)
    return RunDir(config.output_dir), decide_output_action(config, data_files, resume=resume, overwrite=overwrite)


def decide_output_action(config: TrainConfig, data_files: list[dict[str, Any]], *, resume: bool,
                         overwrite: bool) -> str:
    """What to do with ``config.output_dir``, read-only: ``"new"`` (empty or absent), ``"overwrite"`` (a previous
    run to delete), ``"resume"`` (the same run, unfinished) or ``"finished"`` (the same run, done).
    Raises :class:`InputError` for a directory holding other files or a different run."""
    rd = RunDir(config.output_dir)
    root = rd.root
    if root.exists() and not root.is_dir():
        raise InputError(f"--out {root} is a file: choose a directory")
    if not root.exists() or not any(root.iterdir()):
        return "new"
    previous = rd.read_run() if rd.run_file.is_file() else None
    if previous is None:
        raise InputError(f"--out {root} already holds files that are not a training run: choose a new or empty "
                         "directory")
    if overwrite:
        return "overwrite"
    if previous.get("status") == "diverged":  # its states would only diverge again
        where = previous.get("diverged") or {}
        raise InputError(f"--out {root} holds a run that diverged at step {where.get('step', '?')} "
                         f"({where.get('reason', 'NaN or inf')}); resuming would repeat it: start over with "
                         "--overwrite and a lower --lr")
    if not resume:
        raise InputError(f"--out {root} already holds a training run ({previous.get('status', '?')}): pass "
                         "--resume to continue it or --overwrite to replace it")
    old = TrainConfig.from_dict(previous["config"])
    mine, theirs = config.identity(), old.identity()
    diff = sorted(k for k in set(mine) | set(theirs) if mine.get(k) != theirs.get(k))
    if diff:
        shown = ", ".join(f"{k}: {theirs.get(k)!r} there vs {mine.get(k)!r} now" for k in diff[:4])
        raise InputError(f"--out {root} holds a different run ({shown}): use another --out, or --overwrite")
    old_hashes = [f.get("sha256") for f in previous.get("data", [])]
    if old_hashes and old_hashes != [f["sha256"] for f in data_files]:
        raise InputError(f"--out {root}: the training data changed since the run started (SHA-256 differs); "
                         "restore it, or start over with --overwrite")
    return "finished" if previous.get("status") == "finished" else "resume"


def wipe_run_dir(rd: RunDir) -> None:
    """Delete a previous run (only called on a directory whose ``run.json`` marks it as one)."""
    for p in rd.root.iterdir():
        if p.is_dir() and not p.is_symlink():
            shutil.rmtree(p)
        else:
            p.unlink()


#: Columns of :meth:`RunResult.summary_rows`.
SUMMARY_HEADERS: tuple[str, ...] = ("checkpoint", "step", "STS-B dev", "alignment", "uniformity")


@dataclass
class RunResult:
    """What a run produced (JSON-able): where, how far, and its STS-B dev trajectory."""

    output_dir: str
    status: str
    config: dict[str, Any]
    steps: int = 0
    train_time_s: float | None = None
    best_step: int | None = None
    best_stsb_spearman: float | None = None
    best_dir: str | None = None
    last_dir: str | None = None
    trajectory: list[dict[str, Any]] = field(default_factory=list)
    #: From ``run.json``: the training files (path, rows, sha256), the starting checkpoint (name, path,
    #: fingerprint) and what settings left to a default resolved to (dropout, data_dir, device).
    data: list[dict[str, Any]] = field(default_factory=list)
    base_model: dict[str, Any] = field(default_factory=dict)
    resolved: dict[str, Any] = field(default_factory=dict)

    @property
    def final(self) -> dict[str, Any] | None:
        """The last evaluation (at the last step)."""
        return self.trajectory[-1] if self.trajectory else None

    @property
    def initial(self) -> dict[str, Any] | None:
        """The evaluation before training (step 0), if one was made."""
        return self.trajectory[0] if self.trajectory and self.trajectory[0]["step"] == 0 else None

    def summary_rows(self) -> list[list[Any]]:
        """``[checkpoint, step, STS-B dev, ℓ_align, ℓ_uniform]`` before training, at the best step and at the end."""
        def f(x: Any, digits: int) -> str:
            return "n/a" if x is None or not math.isfinite(x) else f"{x:.{digits}f}"

        by_step = {e["step"]: e for e in self.trajectory}
        return [[label, e["step"], f(e["stsb_spearman"], 2), f(e["alignment"], 4), f(e["uniformity"], 4)]
                for label, e in (("start", self.initial), ("best", by_step.get(self.best_step)), ("last", self.final))
                if e is not None]

    def _repr_html_(self) -> str:
        """A notebook cell shows start / best / last evaluations and where the checkpoints are."""
        from simcse_analysis.tables import format_html_table

        return format_html_table(SUMMARY_HEADERS, self.summary_rows(),
                                 caption=f"{self.output_dir}: {self.status}, {self.steps} steps; best: {self.best_dir}")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def load(cls, output_dir: str | os.PathLike[str]) -> RunResult:
        """Read a run directory (finished or not); :class:`InputError` if it holds none."""
        rd = RunDir(output_dir)
        run = rd.read_run()
        if run is None:
            raise InputError(f"{output_dir} holds no training run (no {RUN_FILE})")
        s = run.get("summary", {})
        return cls(output_dir=str(rd.root), status=run.get("status", "?"), config=run["config"],
                   steps=s.get("steps", 0), train_time_s=s.get("train_time_s"), best_step=s.get("best_step"),
                   best_stsb_spearman=s.get("best_stsb_spearman"),
                   best_dir=str(rd.best_dir) if rd.best_dir.is_dir() else None,
                   last_dir=str(rd.last_dir) if rd.last_dir.is_dir() else None,
                   trajectory=rd.trajectory(), data=list(run.get("data") or []),
                   base_model=dict(run.get("base_model") or {}), resolved=dict(run.get("resolved") or {}))
