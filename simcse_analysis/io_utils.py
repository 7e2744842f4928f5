"""Atomic file writes: readers see either the old file or the complete new one, never a torn write."""

from __future__ import annotations

import contextlib
import math
import os
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
        raise InputError(f"cannot write {target}: {e.strerror or e}; choose a writable output path") from e
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
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
    return Path(path)


def atomic_write_text(path: str | os.PathLike[str], text: str, encoding: str = "utf-8") -> Path:
    """Write ``text`` to ``path`` atomically; returns the path."""
    return atomic_write_bytes(path, text.encode(encoding))


def check_writable(path: str | os.PathLike[str]) -> Path:
    """Fail early (before any encoding) if ``path`` cannot be written; creates missing parent directories.

    Probes with a temporary file beside ``path`` and leaves an existing ``path`` untouched.
    """
    p = Path(path)
    if p.is_dir():
        raise InputError(f"{p} is a directory: give a file name such as {p / 'report.html'}")
    parent = p.parent if str(p.parent) else Path(".")
    try:
        parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{p.name}.", suffix=".probe", dir=parent)
    except OSError as e:
        raise InputError(f"cannot write {p}: {e.strerror or e}; choose a writable output path") from e
    os.close(fd)
    os.unlink(tmp)
    return p


def write_output_text(path: str | os.PathLike[str], text: str) -> Path:
    """Atomic write (parents created); any failure is an :class:`InputError` naming the path."""
    p = Path(path)
    if p.is_dir():
        raise InputError(f"{p} is a directory: give a file name such as {p / 'report.html'}")
    try:
        atomic_write_text(p, text)
    except InputError:
        raise
    except OSError as e:
        raise InputError(f"cannot write {p}: {e.strerror or e}; choose a writable output path") from e
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
