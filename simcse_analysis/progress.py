"""Staged progress of long jobs, on standard error: an outer bar over the whole job and a line per stage.

A command (or a library entry point called on its own) opens one :func:`job`; the library's long loops
report to it without being handed anything:

- :func:`plan` adds work to the job's total (sentences to encode, training steps);
- :func:`section` names what the following stages belong to (``[2/3 all-MiniLM-L6-v2@cls_before_pooler]``);
- :func:`stage` names what runs now (``STS14 (5,999 sentences)``);
- :func:`batches` wraps the encoder's batch loop: the stage's own bar advances per batch, the job's by
  the sentences the batch held.

What the reader sees: on a terminal two ``tqdm`` bars, the job (``compare: 38%|███▊  | 5,123/13,480
sentences [12:03<19:40]``: elapsed and ETA) and the stage (``[2/3 m@cls_before_pooler] STS14 (5,999
sentences): 44/94 batches``). Elsewhere (a log file, a notebook) one line per stage with the job's
share done, elapsed time and ETA, and a status line at most every :attr:`Job.heartbeat` seconds. Nothing
is shown for a job shorter than :attr:`Job.delay` seconds. Standard output is never written.

Planned work is an upper bound: a stage plans the sentences it may encode, and when it ends the
sentences it did not encode (found in the embedding cache) leave the total, so the ETA tightens as the
job goes (``ETA = remaining × elapsed / done``, over the work actually done).

A job opened inside another is the same job, so the command's ``--no-progress`` silences every loop
below it. Without any job, :func:`plan`, :func:`section` and :func:`stage` do nothing and
:func:`batches` shows the plain encoder bar above :data:`STANDALONE_THRESHOLD` sentences, as before.
"""

from __future__ import annotations

import contextlib
import math
import sys
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any, TextIO, TypeVar

T = TypeVar("T")

#: A standalone ``encode`` call (no job open) of at least this many sentences shows its own bar.
STANDALONE_THRESHOLD = 2000

_current: Job | None = None


def _fmt_time(seconds: float | None) -> str:
    """``MM:SS`` or ``H:MM:SS`` (``?`` when unknown), as tqdm writes durations."""
    if seconds is None or not math.isfinite(seconds):
        return "?"
    s = round(seconds)
    h, rem = divmod(s, 3600)
    m, s = divmod(rem, 60)
    return f"{h:d}:{m:02d}:{s:02d}" if h else f"{m:02d}:{s:02d}"


class Job:
    """One long job: its planned and done work (in :attr:`unit`), the current section and stage, and how
    they are drawn (see the module docstring). Build one with :func:`job`."""

    #: Seconds a job runs before anything is shown (no flicker for quick, cached runs).
    default_delay: float = 1.0
    #: Where no bar is drawn: a status line at least this often (seconds) within a long stage.
    default_heartbeat: float = 60.0

    def __init__(self, title: str, *, enabled: bool = True, unit: str | None = None, file: TextIO | None = None,
                 delay: float | None = None, heartbeat: float | None = None, tty: bool | None = None) -> None:
        self.title = title
        self.enabled = enabled
        self.unit = unit
        self.file = file
        self.delay = self.default_delay if delay is None else delay
        self.heartbeat = self.default_heartbeat if heartbeat is None else heartbeat
        self._tty = tty
        self.total = 0
        self.done = 0
        self.sections: list[str] = []
        self.stages: list[str] = []
        self._covered = 0
        self.started = time.monotonic()
        self._last_line = -math.inf
        self._shown = False
        self._outer: Any = None
        self._inner: Any = None
        self._stage_reported = False

    # ------------------------------------------------------------------ state
    @property
    def stream(self) -> TextIO:
        return self.file if self.file is not None else sys.stderr

    @property
    def tty(self) -> bool:
        if self._tty is None:
            isatty = getattr(self.stream, "isatty", None)
            self._tty = bool(isatty()) if callable(isatty) else False
        return self._tty

    @property
    def elapsed(self) -> float:
        return time.monotonic() - self.started

    def eta(self) -> float | None:
        """Seconds left at the rate of the work done so far (``None`` before any)."""
        if self.done <= 0 or self.total <= 0:
            return None
        return max(self.total - self.done, 0) * self.elapsed / self.done

    @property
    def stage_label(self) -> str | None:
        """The stage running now, nested stages joined by ``›`` (``STS test › STS14 (5,999 sentences)``)."""
        return " › ".join(self.stages) if self.stages else None

    def label(self) -> str:
        """The current section(s) and stage: ``[2/3 m@avg] STS test › STS14 (5,999 sentences)``."""
        return " ".join(p for p in [*self.sections, self.stage_label or ""] if p)

    def status(self) -> str:
        """``38% of 13,480 sentences, 12:03 elapsed, ETA 19:40`` (the share only once work is planned)."""
        parts = []
        if self.total > 0:
            parts.append(f"{100 * min(self.done / self.total, 1.0):.0f}% of {self.total:,} {self.unit or 'items'}")
        parts.append(f"{_fmt_time(self.elapsed)} elapsed")
        if self.total > 0:
            parts.append(f"ETA {_fmt_time(self.eta())}")
        return ", ".join(parts)

    # ------------------------------------------------------------------ work
    def plan(self, n: int, unit: str | None = None) -> None:
        """Add ``n`` units of work to the total (the first unit named is the job's)."""
        if self.unit is None and unit is not None:
            self.unit = unit
        if self._covered or (unit is not None and unit != self.unit):
            return  # work in another unit (e.g. the sentences of an evaluation inside a training job)
        self.total += max(int(n), 0)
        if self._outer is not None:
            self._outer.total = self.total
            self._outer.refresh()

    def advance(self, n: int, unit: str | None = None) -> None:
        """``n`` units of work done (ignored when ``unit`` is not the job's)."""
        if unit is not None and self.unit is not None and unit != self.unit:
            self._tick()
            return
        n = int(n)
        self.done += n
        self.total = max(self.total, self.done)
        if self._outer is not None:
            if self._outer.total != self.total:
                self._outer.total = self.total
            self._outer.update(n)
        self._tick()

    @contextlib.contextmanager
    def section(self, prefix: str) -> Iterator[None]:
        self.sections.append(prefix)
        try:
            yield
        finally:
            self.sections.pop()

    @contextlib.contextmanager
    def covered(self) -> Iterator[None]:
        """Work inside is already in the plan: nested :meth:`plan` calls add nothing and nested stages
        leave the total alone (the enclosing stage settles it)."""
        self._covered += 1
        try:
            yield
        finally:
            self._covered -= 1

    @contextlib.contextmanager
    def stage(self, label: str, planned: int | None = None, unit: str | None = None) -> Iterator[None]:
        """Run a stage named ``label``; ``planned`` units were added to the total by the caller's plan, and
        what of them the stage does not do (cached sentences) leaves the total when it ends."""
        outer_reported = self._stage_reported
        self.stages.append(label)
        self._stage_reported = False
        settle = planned is not None and not self._covered and (unit is None or unit == self.unit)
        done_before = self.done
        self._show_stage()
        try:
            yield
        finally:
            if settle:
                unused = planned - (self.done - done_before)
                if unused > 0:
                    self.total = max(self.total - unused, self.done)
                    if self._outer is not None:
                        self._outer.total = self.total
                        self._outer.refresh()
            self.stages.pop()
            self._stage_reported = outer_reported
            self._inner_label()

    def batches(self, starts: Iterable[int], n: int, batch_size: int, unit: str = "sentences") -> Iterator[int]:
        """Yield ``starts`` (batch offsets into ``n`` items); each batch done advances the stage bar by one
        and the job by the items it held."""
        starts = list(starts)
        if self.unit is None:
            self.unit = unit
        if unit == self.unit and self.total < self.done + n:  # unplanned work (or more than planned): count it
            self.total = self.done + n
        bar = self._stage_bar(len(starts), n) if self.enabled else None
        for s in starts:
            yield s
            if bar is not None:
                bar.update(1)
            self.advance(min(batch_size, n - s), unit)

    def write(self, message: str) -> None:
        """One line on standard error that does not tear the bars."""
        if self._outer is not None or self._inner is not None:
            from tqdm import tqdm

            tqdm.write(message, file=self.stream)
        else:
            print(message, file=self.stream, flush=True)

    def close(self, finished: bool = True) -> None:
        """Close the bars; where lines were shown instead, one last line when the job ``finished``: the work
        done and the time it took."""
        for bar in (self._inner, self._outer):
            if bar is not None:
                bar.close()
        self._inner = self._outer = None
        if finished and self._shown and self.enabled and not self.tty and self._last_line > -math.inf:
            self._line(f"{self.title}: done" + (f", {self.done:,} {self.unit or 'items'}" if self.done else "")
                       + f" in {_fmt_time(self.elapsed)}")

    # ------------------------------------------------------------------ drawing
    def _visible(self) -> bool:
        if not self.enabled:
            return False
        if not self._shown and self.elapsed >= self.delay:
            self._shown = True
        return self._shown

    def _bars(self) -> None:
        """Create the terminal bars (once the job has run for :attr:`delay` seconds)."""
        if self._outer is not None or not self.tty or not self._visible():
            return
        from tqdm import tqdm

        self._outer = tqdm(total=self.total, initial=self.done, desc=self.title, unit=f" {self.unit or 'items'}",
                           file=self.stream, position=0, dynamic_ncols=True, unit_scale=False,
                           bar_format="{desc}: {percentage:3.0f}%|{bar}| {n_fmt}/{total_fmt}{unit} "
                                      "[{elapsed}<{remaining}]")
        self._inner = tqdm(total=None, desc=self.label(), file=self.stream, position=1, leave=False,
                           dynamic_ncols=True, unit=" batches", bar_format="{desc}: {n_fmt}{unit}")

    def _show_stage(self) -> None:
        if not self._visible():
            return
        if self.tty:
            self._bars()
            self._inner_label()
            return
        self._stage_reported = True
        self._line(f"{self.label()}  [{self.status()}]")

    def _inner_label(self) -> None:
        """The stage line shows the current label alone (until the stage's next batch loop)."""
        if self._inner is not None:
            self._inner.reset(total=None)
            self._inner.bar_format = "{desc}"
            self._inner.set_description_str(self.label(), refresh=True)

    def _stage_bar(self, n_batches: int, n: int) -> Any:
        if not self._visible() or not self.tty:
            return None
        self._bars()
        bar = self._inner
        if bar is not None:
            bar.reset(total=n_batches)
            bar.bar_format = "{desc}: {percentage:3.0f}%|{bar}| {n_fmt}/{total_fmt}{unit}"
            bar.set_description_str(self.label() or f"encoding {n:,} {self.unit or 'items'}", refresh=True)
        return bar

    def _tick(self) -> None:
        """A status line now and then where no bar is drawn (log files, notebooks)."""
        if self.tty or not self._visible():
            if self.tty:
                self._bars()
            return
        if not self._stage_reported and self.stage_label is not None:
            self._stage_reported = True
            self._line(f"{self.label()}  [{self.status()}]")
        elif time.monotonic() - self._last_line >= self.heartbeat:
            self._line(f"{self.label() or self.title}  [{self.status()}]")

    def _line(self, text: str) -> None:
        self._last_line = time.monotonic()
        print(text, file=self.stream, flush=True)


# ---------------------------------------------------------------------------------------------- API
def current() -> Job | None:
    """The job open now, or ``None``."""
    return _current


@contextlib.contextmanager
def job(title: str, *, enabled: bool | None = None, unit: str | None = None, **options: Any) -> Iterator[Job]:
    """Open a job (see the module docstring), or join the one already open (its settings stay)."""
    global _current
    if _current is not None:
        yield _current
        return
    j = Job(title, enabled=True if enabled is None else enabled, unit=unit, **options)
    _current = j
    finished = False
    try:
        yield j
        finished = True
    finally:
        _current = None
        j.close(finished)


def plan(n: int, unit: str = "sentences") -> None:
    """Add ``n`` units of work to the open job's total (nothing without a job)."""
    if _current is not None:
        _current.plan(n, unit)


def advance(n: int, unit: str = "sentences") -> None:
    """``n`` units of the open job's work done (e.g. a training step)."""
    if _current is not None:
        _current.advance(n, unit)


def section(prefix: str) -> contextlib.AbstractContextManager[None]:
    """Name what the following stages belong to, e.g. ``[2/3 all-MiniLM-L6-v2@avg]``."""
    return _current.section(prefix) if _current is not None else contextlib.nullcontext()


def stage(label: str, planned: int | None = None, unit: str = "sentences") -> contextlib.AbstractContextManager[None]:
    """Name the stage that runs now; ``planned``: the units the caller's :func:`plan` counted for it."""
    return _current.stage(label, planned, unit) if _current is not None else contextlib.nullcontext()


def covered() -> contextlib.AbstractContextManager[None]:
    """The work inside was planned by the caller (:meth:`Job.covered`)."""
    return _current.covered() if _current is not None else contextlib.nullcontext()


def each(items: Sequence[T], name: Callable[[T], str]) -> Iterator[T]:
    """Yield ``items``, each inside the section ``[i/n name(item)]`` (a loop over checkpoints:
    ``for spec in each(specs, lambda s: s.name): …``)."""
    n = len(items)
    for i, item in enumerate(items, start=1):
        with section(f"[{i}/{n} {name(item)}]"):
            yield item


def sentences_label(what: str, n: int, noun: str = "sentences") -> str:
    """``STS14 (5,999 sentences)``: the stage label of an encoding of ``n`` sentences."""
    return f"{what} ({n:,} {noun})"


def new_counts(lists: Iterable[Iterable[str]]) -> list[int]:
    """For each text list in order, how many of its distinct texts no earlier list holds: what an
    encoding of each costs on a cold cache when the earlier ones were cached first (the plan of a job
    that encodes overlapping lists, e.g. the STS-B test sentences and then all STS-B sentences)."""
    seen: set[str] = set()
    out = []
    for texts in lists:
        new = set(texts) - seen
        out.append(len(new))
        seen |= new
    return out


def batches(starts: Iterable[int], n: int, batch_size: int, *, show: bool | None = None,
            desc: str = "") -> Iterable[int]:
    """The encoder's batch loop (``starts``: batch offsets into ``n`` sentences), reported to the open
    job; without one, a plain bar when ``show`` (``None``: ``n >=`` :data:`STANDALONE_THRESHOLD`).
    ``show=False`` reports nothing, also inside a job."""
    if show is False:
        return starts
    if _current is not None:
        return _current.batches(starts, n, batch_size)
    if show is None:
        show = n >= STANDALONE_THRESHOLD
    if not show:
        return starts
    from tqdm.auto import tqdm

    return tqdm(starts, desc=desc or f"encoding {n} sentences", unit="batch", file=sys.stderr)


def note(message: str) -> None:
    """A line of progress news (e.g. a training evaluation's scores), drawn above the bars; nothing when no
    job is open or the job's progress is off (``--no-progress``)."""
    if _current is not None and _current.enabled:
        _current.write(message)


def say(message: str) -> None:
    """One line on standard error, drawn above the open job's bars (plain ``print`` without a job)."""
    if _current is not None:
        _current.write(message)
    else:
        print(message, file=sys.stderr, flush=True)
