"""Writing files: atomic writes (readers see either the old file or the complete new one, never a torn
write) and the one way the commands write the outputs a user names (``--json``/``--out``), including
``-`` for standard output and devices or pipes, which are written through, never replaced."""

from __future__ import annotations

import contextlib
import errno
import math
import os
import stat
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from .errors import InputError


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str], *, make_parents: bool = True) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success it replaces ``path`` atomically.

    On an exception the temporary file is removed and ``path`` is left untouched.
    """
    target = Path(path)
    parent = target.parent if str(target.parent) else Path(".")
    try:
        if make_parents:
            parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=parent)
    except OSError as e:
        raise write_error(target, e) from e
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        # mkstemp creates 0600; give the result the permissions an ordinary open() would
        os.chmod(tmp_path, 0o666 & ~_umask())
        os.replace(tmp_path, target)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp_path.unlink()
        raise


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically; returns the path."""
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    return Path(path)


def atomic_write_text(path: str | os.PathLike[str], text: str, encoding: str = "utf-8") -> Path:
    """Write ``text`` to ``path`` atomically; returns the path."""
    return atomic_write_bytes(path, text.encode(encoding))


#: The output path that means standard output (``--json -``).
STDOUT = "-"


def is_stdout(path: str | os.PathLike[str] | None) -> bool:
    """Whether ``path`` is :data:`STDOUT` (``-``): the output goes to standard output."""
    return path is not None and str(path) == STDOUT


def _non_regular(p: Path) -> bool:
    """``p`` exists (after following symlinks) and is not a regular file or directory: a character device
    (``/dev/null``, ``/dev/full``, a terminal), a FIFO, a socket — something to write *through*, never replace."""
    try:
        mode = os.stat(p).st_mode
    except OSError:
        return False
    return not (stat.S_ISREG(mode) or stat.S_ISDIR(mode))


def write_error(path: str | os.PathLike[str], e: OSError) -> InputError:
    """The one-line error for a failed write of ``path``: the fix depends on the cause (full disk vs. rights)."""
    reason = e.strerror or str(e)
    if e.errno in (errno.ENOSPC, errno.EDQUOT):
        return InputError(f"cannot write {path}: {reason}; free space or choose another path")
    return InputError(f"cannot write {path}: {reason}; choose a writable output path")


def check_writable(path: str | os.PathLike[str]) -> Path:
    """Fail early (before any encoding) if ``path`` cannot be written; creates missing parent directories.

    ``-`` (standard output) and an existing non-regular target (device, FIFO) are accepted as they are;
    otherwise probes with a temporary file beside ``path`` and leaves an existing ``path`` untouched.
    """
    p = Path(path)
    if is_stdout(path):
        return p
    if p.is_dir():
        raise InputError(f"{p} is a directory: give a file name such as {p / 'report.html'}")
    if _non_regular(p):
        if not os.access(p, os.W_OK):
            raise InputError(f"cannot write {p}: permission denied; choose a writable output path")
        return p
    parent = Path(os.path.realpath(p)).parent  # a symlink's target is what gets written
    try:
        parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{p.name}.", suffix=".probe", dir=parent)
    except OSError as e:
        raise write_error(p, e) from e
    os.close(fd)
    os.unlink(tmp)
    return p


def _write_through(p: Path, data: bytes) -> None:
    """Write ``data`` into an existing non-regular file (device, FIFO) without replacing it.

    A FIFO is opened without blocking: with no reader it is refused instead of hanging.
    """
    try:
        fd = os.open(p, os.O_WRONLY | os.O_NONBLOCK)
    except OSError as e:
        if e.errno == errno.ENXIO:
            raise InputError(f"cannot write {p}: it is a pipe (FIFO) with no reader; start the reader first "
                             "or choose a regular file") from e
        raise write_error(p, e) from e
    try:
        os.set_blocking(fd, True)  # a slow reader must not cut the output short
        view = memoryview(data)
        while view:
            n = os.write(fd, view)
            view = view[n:]
    except OSError as e:
        raise write_error(p, e) from e
    finally:
        os.close(fd)


def write_output_bytes(path: str | os.PathLike[str], data: bytes) -> Path:
    """Write an output file the user named (``--json``, ``--out``); every failure is an :class:`InputError`.

    * ``-`` writes to standard output;
    * an existing device or FIFO (``/dev/null``, ``/dev/full``, ``/dev/stdout``, a pipe) is written through,
      never replaced by a regular file; a symlink is followed, so its target is written and the link kept;
    * anything else is written atomically beside the target (parents created): a reader sees the old file
      or the complete new one, and a failure (a full disk: ``ENOSPC``) leaves no partial file behind.
    """
    p = Path(path)
    if is_stdout(path):
        try:
            sys.stdout.flush()
            out = sys.stdout.buffer if hasattr(sys.stdout, "buffer") else None
            if out is not None:
                out.write(data)
                out.flush()
            else:  # a text-only stream (e.g. captured in tests)
                sys.stdout.write(data.decode("utf-8"))
                sys.stdout.flush()
        except OSError as e:
            raise write_error("standard output", e) from e
        return p
    if p.is_dir():
        raise InputError(f"{p} is a directory: give a file name such as {p / 'report.html'}")
    if _non_regular(p):
        _write_through(p, data)
        return p
    target = Path(os.path.realpath(p)) if p.is_symlink() else p
    try:
        atomic_write_bytes(target, data)
    except InputError:
        raise
    except OSError as e:
        raise write_error(p, e) from e
    return p


def write_output_text(path: str | os.PathLike[str], text: str) -> Path:
    """:func:`write_output_bytes` of ``text`` in UTF-8."""
    return write_output_bytes(path, text.encode("utf-8"))


def check_writable_dir(path: str | os.PathLike[str], option: str = "--out") -> Path:
    """Fail early if directory ``path`` (existing or to be created) cannot be written, touching nothing.

    Probes with a temporary directory inside ``path`` if it exists, else inside its nearest existing
    ancestor (removed at once). Raises :class:`InputError` naming ``option`` and the cause.
    """
    p = Path(path)
    probe_in = p
    while not probe_in.exists() and probe_in != probe_in.parent:
        probe_in = probe_in.parent
    if not probe_in.is_dir():
        raise InputError(f"{option} {p}: {probe_in} is a file, not a directory; choose another output directory")
    try:
        os.rmdir(tempfile.mkdtemp(prefix=".probe-", dir=probe_in))
    except OSError as e:
        raise InputError(f"cannot write {option} {p}: {e.strerror or e}; choose a writable output directory") from e
    return p


def finite_json(obj: Any) -> Any:
    """``obj`` with every non-finite float (NaN, ±inf) replaced by ``None``, recursively, so that it
    serialises as standard JSON; numpy scalars become Python numbers."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: finite_json(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [finite_json(v) for v in obj]
    if type(obj).__module__ == "numpy" and getattr(obj, "ndim", None) == 0:
        return finite_json(obj.item())
    return obj
