"""On-disk embedding cache.

An entry is ``<key>.npy`` plus ``<key>.sha256`` (the digest of the ``.npy`` bytes). The key hashes
everything the vectors depend on: the checkpoint's weights fingerprint, pooler, max_length, dtype, the
kind of output and the exact texts. Both files are written atomically, the digest last, so an entry
without a matching digest (torn write, bit rot, hand edits) is detected, removed and rebuilt.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .io_utils import atomic_write_bytes

ENV_VAR = "SIMCSE_CACHE"

#: Cache roots already reported unwritable in this process (the warning is printed once per root).
_UNWRITABLE_WARNED: set[str] = set()


def warn(message: str) -> None:
    """One line ``warning: …`` on standard error (the cache never fails a command, but says what it skips)."""
    print(f"warning: {message}", file=sys.stderr, flush=True)


def default_cache_dir() -> Path:
    """``$SIMCSE_CACHE`` if set, else ``~/.cache/simcse-analysis/embeddings``."""
    env = os.environ.get(ENV_VAR)
    return Path(env).expanduser() if env else Path.home() / ".cache" / "simcse-analysis" / "embeddings"


def texts_digest(texts: Sequence[str]) -> str:
    """SHA-256 of the texts in order (length-prefixed, so boundaries are unambiguous)."""
    h = hashlib.sha256()
    for t in texts:
        b = t.encode("utf-8")
        h.update(len(b).to_bytes(8, "little"))
        h.update(b)
    return h.hexdigest()


def cache_key(settings: dict[str, Any], texts: Sequence[str]) -> str:
    """Key of an entry: SHA-256 of the canonical JSON of ``settings`` and the texts' digest."""
    payload = json.dumps(settings, sort_keys=True, separators=(",", ":")) + texts_digest(texts)
    return hashlib.sha256(payload.encode()).hexdigest()


class EmbeddingCache:
    """Content-addressed store of float32 arrays under ``root``."""

    def __init__(self, root: str | os.PathLike[str] | None = None) -> None:
        self.root = Path(root) if root is not None else default_cache_dir()
        self.hits = 0
        self.misses = 0

    def _paths(self, key: str) -> tuple[Path, Path]:
        d = self.root / key[:2]
        return d / f"{key}.npy", d / f"{key}.sha256"

    def get(self, key: str) -> np.ndarray | None:
        """The stored array, or ``None`` on a miss or a corrupt entry (which is then deleted)."""
        arr_path, sum_path = self._paths(key)
        try:
            data = arr_path.read_bytes()
            expected = sum_path.read_text().strip()
        except OSError:
            self.misses += 1
            return None
        if hashlib.sha256(data).hexdigest() != expected:
            warn(f"embedding cache entry {arr_path} is corrupt (its SHA-256 does not match {sum_path.name}); "
                 "re-encoding")
            self._drop(key)
            self.misses += 1
            return None
        try:
            arr = np.load(io.BytesIO(data), allow_pickle=False)
        except ValueError:
            warn(f"embedding cache entry {arr_path} is not a readable array; re-encoding")
            self._drop(key)
            self.misses += 1
            return None
        self.hits += 1
        return arr

    def put(self, key: str, array: np.ndarray) -> None:
        """Store ``array`` under ``key`` (atomic; a failure to write only costs a future re-encode)."""
        buf = io.BytesIO()
        np.save(buf, np.ascontiguousarray(array), allow_pickle=False)
        data = buf.getvalue()
        arr_path, sum_path = self._paths(key)
        try:
            atomic_write_bytes(arr_path, data)
            atomic_write_bytes(sum_path, hashlib.sha256(data).hexdigest().encode())
        except Exception as e:  # read-only or full disk: caching is an optimisation, not a requirement
            self._drop(key)
            root = str(self.root)
            if root not in _UNWRITABLE_WARNED:
                _UNWRITABLE_WARNED.add(root)
                cause = e.__cause__ if isinstance(e.__cause__, OSError) else e
                reason = getattr(cause, "strerror", None) or str(cause)
                warn(f"cannot write the embedding cache {self.root} ({reason}); continuing without caching: pass "
                     "--cache-dir DIR (a writable directory) or --no-cache")

    def _drop(self, key: str) -> None:
        for p in self._paths(key):
            try:
                p.unlink()
            except OSError:
                pass
