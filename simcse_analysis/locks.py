"""Exclusive locks on directories a command writes over a long time: a training run, an embedding store.

``with DirectoryLock(path, option="--out"):`` holds an exclusive lock (the ``filelock`` package:
``flock`` on Linux and macOS) on the lock file ``.NAME.lock`` beside the directory ``NAME``, in its
parent after resolving symlinks, so every path to one directory meets the same lock. Beside rather than
inside: the directory's listing stays what the writer puts there, and a command that fails before its
first write leaves no directory behind. While the lock is held, ``.NAME.lock.pid`` beside it names the
holder (pid, host, command line, start time), so a refused process can say who holds it.

The kernel releases the lock when its holder exits, however it exits (an error, Ctrl-C, ``kill -9``): a
lock is never stale. The lock file itself stays after release (deleting it would let a waiter that opened
the old file and a newcomer that creates a new one both "hold" the lock); ``.NAME.lock.pid`` is removed.

Acquisition never waits: a directory another process holds is refused at once with
:class:`DirectoryInUseError` (an :class:`~simcse_analysis.errors.InputError`: one ``error:`` line, exit 2).
"""

from __future__ import annotations

import json
import os
import shlex
import socket
import sys
import time
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

from .errors import InputError
from .io_utils import atomic_write_text

if TYPE_CHECKING:
    from typing_extensions import Self

LOCK_SUFFIX = ".lock"
HOLDER_SUFFIX = ".lock.pid"


def lock_file(path: str | os.PathLike[str]) -> Path:
    """The lock file of directory ``path``: ``.NAME.lock`` beside its resolved location."""
    real = Path(os.path.realpath(os.path.expanduser(os.fspath(path))))
    return real.parent / f".{real.name}{LOCK_SUFFIX}"


def holder_file(path: str | os.PathLike[str]) -> Path:
    """``.NAME.lock.pid``: who holds the lock of directory ``path`` (JSON: pid, host, command, since)."""
    lock = lock_file(path)
    return lock.with_name(lock.name[: -len(LOCK_SUFFIX)] + HOLDER_SUFFIX)


class DirectoryInUseError(InputError):
    """Another process holds the lock of a directory; ``holder`` is what it wrote about itself (or ``None``)."""

    def __init__(self, option: str, path: str | os.PathLike[str], holder: dict[str, Any] | None) -> None:
        self.path, self.holder = Path(path), holder
        if holder:
            since = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(float(holder.get("since", 0))))
            who = (f"pid {holder.get('pid', '?')} on {holder.get('host', '?')}, since {since}: "
                   f"{holder.get('command', '?')}")
        else:
            who = "pid unknown"
        super().__init__(f"{option} {path} is in use by another process ({who}); wait for it to finish or stop "
                         f"it, or choose another {option}")


def _read_holder(path: Path, lock_path: Path, patience: float = 5.0) -> dict[str, Any] | None:
    """The holder's record. The holder writes it just after locking, so a refused process retries while the lock
    is still held (up to ``patience`` seconds on a loaded machine); once the lock is free the holder has finished
    and there is nobody left to name."""
    deadline = time.monotonic() + patience
    while True:
        try:
            rec = json.loads(path.read_text(encoding="utf-8"))
            if isinstance(rec, dict) and _alive(rec):
                return rec
        except (OSError, ValueError):
            pass
        if time.monotonic() > deadline or not _is_held(lock_path):
            return None
        time.sleep(0.05)


def _is_held(lock_path: Path) -> bool:
    """Whether some process holds ``lock_path`` now (a non-waiting probe: take and release at once)."""
    from filelock import FileLock, Timeout

    probe = FileLock(str(lock_path), timeout=0)
    try:
        probe.acquire()
    except Timeout:
        return True
    except OSError:
        return False
    probe.release()
    return False


def _alive(rec: dict[str, Any]) -> bool:
    """Whether a holder record may be current: another host's, or a live process of this one (a record left by
    a killed holder names a dead pid)."""
    if rec.get("host") != socket.gethostname():
        return True
    try:
        pid = int(rec.get("pid", 0))
        if pid <= 0:  # 0 and negative pids would address process groups
            return False
        os.kill(pid, 0)  # signal 0: only asks whether the process exists
    except PermissionError:
        return True  # alive, another user's
    except (OSError, ValueError, OverflowError):
        return False
    return True


class DirectoryLock:
    """An exclusive, non-waiting lock on directory ``path`` (see the module docstring).

    ``option`` names the path in messages (``--out``). Use as a context manager, or :meth:`acquire` /
    :meth:`release`; the directory itself need not exist (the parent is created if missing).
    """

    def __init__(self, path: str | os.PathLike[str], *, option: str = "--out") -> None:
        self.path, self.option = Path(path), option
        self.lock_path, self.holder_path = lock_file(path), holder_file(path)
        self._lock: Any = None

    @property
    def held(self) -> bool:
        return self._lock is not None

    def acquire(self) -> Self:
        """Take the lock or raise :class:`DirectoryInUseError` (held elsewhere) / :class:`InputError` (cannot
        create the lock file)."""
        from filelock import FileLock, Timeout

        if self._lock is not None:
            return self
        try:
            self.lock_path.parent.mkdir(parents=True, exist_ok=True)
            lock = FileLock(str(self.lock_path), timeout=0)
            lock.acquire()
        except Timeout:
            raise DirectoryInUseError(self.option, self.path, _read_holder(self.holder_path, self.lock_path)) from None
        except OSError as e:
            raise InputError(f"cannot lock {self.option} {self.path} ({self.lock_path}): {e.strerror or e}; choose "
                             "a writable output directory") from e
        self._lock = lock
        try:
            atomic_write_text(self.holder_path, json.dumps({
                "pid": os.getpid(), "host": socket.gethostname(), "since": time.time(),
                "command": shlex.join(sys.argv) if sys.argv else "?"}) + "\n")
        except (OSError, InputError):
            pass  # the lock holds without it; a refused process then says "pid unknown"
        return self

    def release(self) -> None:
        """Release the lock (a no-op when not held) and remove the holder record."""
        if self._lock is None:
            return
        try:
            rec = json.loads(self.holder_path.read_text(encoding="utf-8"))
            if isinstance(rec, dict) and rec.get("pid") == os.getpid():
                self.holder_path.unlink()
        except (OSError, ValueError):
            pass
        lock, self._lock = self._lock, None
        lock.release()

    def __enter__(self) -> Self:
        return self.acquire()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.release()


def check_not_in_use(path: str | os.PathLike[str], *, option: str = "--out") -> None:
    """Raise :class:`DirectoryInUseError` if another process holds the lock of ``path`` now; creates nothing
    (no lock file, no holder record). For failing early, before a slow start-up; the writer still takes the
    lock itself before its first write."""
    if not lock_file(path).is_file():
        return  # nobody ever locked it (a holder creates the file first)
    probe = DirectoryLock(path, option=option)
    try:
        from filelock import FileLock, Timeout

        lock = FileLock(str(probe.lock_path), timeout=0)
        lock.acquire()
    except Timeout:
        raise DirectoryInUseError(option, Path(path), _read_holder(probe.holder_path, probe.lock_path)) from None
    except OSError:
        return  # unreadable lock file: the real acquisition reports it
    lock.release()
