"""On-disk embedding cache that answers per sentence.

Layout (``root`` = ``--cache-dir``, else ``$SIMCSE_CACHE``, else ``~/.cache/simcse-analysis/embeddings``)::

    root/v2/<namespace>/namespace.json        the settings the namespace stands for (its mtime: last use)
    root/v2/<namespace>/checkpoint.json       the checkpoint that first wrote it ({"model", "path"}, for display)
    root/v2/<namespace>/<shard>.npy           float32 vectors, one row per sentence: (n, d) or (n, L+1, d)
    root/v2/<namespace>/<shard>.keys          the n sentences' keys, 16 bytes each (SHA-256 prefix of UTF-8)
    root/v2/<namespace>/<shard>.sha256        SHA-256 of the .npy bytes followed by the .keys bytes
    root/results/<kind>/<entry>.entry         one derived result (:class:`ResultCache`: token analyses, UMAP maps)

A namespace is everything the vectors depend on besides the sentence: the checkpoint's weights
fingerprint, the kind of output (pooled vector or per-layer stack), pooler, max length and dtype
(``namespace = SHA-256(canonical JSON of those settings)``). A lookup reads the ``.keys`` of every
complete shard in the namespace once per process (16 bytes per cached sentence), so any command reuses
any sentence another command encoded, whatever list it came in. New sentences go to a new shard.

Atomicity and concurrency: the three files of a shard are each written atomically (temporary file +
rename), the checksum last, and a shard name is the hash of its content, so concurrent writers never
collide and a reader only ever considers shards whose ``.sha256`` exists (a shard being written is
invisible, not "corrupt"). A shard whose bytes do not match its checksum (bit rot, hand edits, a torn
copy) is removed the first time it is read, and its sentences are encoded again.

Why shards rather than one file per sentence: ``benchmarks/bench_cache.py`` times both layouts.

Derived results (:class:`ResultCache`) are cached beside the vectors, one file per result: a header line
(JSON: kind, key, checkpoint, SHA-256 of the payload) and the payload (JSON). The key is everything the
result depends on — for a token analysis the embedding namespace's settings, the analysis settings, the
sentences' digest and the digest of the code that computes it; for a UMAP map the digest of the input
vectors, the map's settings, the versions of umap-learn, numba, NumPy and SciPy and the code's digest —
so a change to any of them is a miss, never a stale hit. A payload that does not match its checksum
is removed with a warning and recomputed. ``simcse-analyze cache`` shows, prunes and clears both kinds
(:mod:`simcse_analysis.cache_inventory`).

Entries of the previous layout (one ``<2 hex>/<64 hex>.npy`` + ``.sha256`` per whole sentence list,
keyed by a hash of the list, which cannot be turned back into sentences) are removed the first time a
cache is opened: a clean invalidation, costing one re-encode.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import re
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .errors import InputError, warn
from .io_utils import atomic_write_bytes

ENV_VAR = "SIMCSE_CACHE"
LAYOUT = "v2"
#: Directory of :class:`ResultCache` entries under the cache root.
RESULTS = "results"
#: Per-namespace file naming the checkpoint that first wrote it (display only; not part of the key).
LABEL_FILE = "checkpoint.json"
#: Bytes of a sentence key (SHA-256 prefix): collisions among 10⁹ sentences have probability ~1e-21.
KEY_BYTES = 16
#: Most sentences per shard written at once (a larger put is split), so a shard stays a few MB–hundreds of MB.
SHARD_ROWS = 65_536
_OLD_DIR = re.compile(r"^[0-9a-f]{2}$")
_OLD_FILE = re.compile(r"^[0-9a-f]{64}\.(npy|sha256)$")
#: Cache roots already reported unwritable in this process (the warning is printed once per root).
_UNWRITABLE_WARNED: set[str] = set()


def default_cache_dir() -> Path:
    """``$SIMCSE_CACHE`` if set, else ``~/.cache/simcse-analysis/embeddings``."""
    env = os.environ.get(ENV_VAR)
    return Path(env).expanduser() if env else Path.home() / ".cache" / "simcse-analysis" / "embeddings"


def sentence_key(text: str) -> bytes:
    """Key of one sentence: the first :data:`KEY_BYTES` bytes of SHA-256 of its UTF-8 encoding."""
    return hashlib.sha256(text.encode("utf-8")).digest()[:KEY_BYTES]


def sentence_keys(texts: Sequence[str]) -> list[bytes]:
    """:func:`sentence_key` of each text, in order."""
    return [hashlib.sha256(t.encode("utf-8")).digest()[:KEY_BYTES] for t in texts]


def texts_digest(texts: Sequence[str]) -> str:
    """SHA-256 of the texts in order (length-prefixed, so boundaries are unambiguous)."""
    h = hashlib.sha256()
    for t in texts:
        b = t.encode("utf-8")
        h.update(len(b).to_bytes(8, "little"))
        h.update(b)
    return h.hexdigest()


def namespace_id(settings: dict[str, Any]) -> str:
    """Directory name of a namespace: SHA-256 (32 hex digits) of the canonical JSON of ``settings``."""
    payload = json.dumps(settings, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(payload.encode()).hexdigest()[:32]


@dataclass(frozen=True)
class _Shard:
    name: str
    size: int  # bytes of the .npy, to notice a shard replaced under the same name


def _warn_unwritable(root: Path, e: BaseException, what: str = "embedding cache") -> None:
    """Say once per root and process that the cache cannot be written (caching is an optimisation)."""
    key = str(root)
    if key in _UNWRITABLE_WARNED:
        return
    _UNWRITABLE_WARNED.add(key)
    cause = e.__cause__ if isinstance(e.__cause__, OSError) else e
    reason = getattr(cause, "strerror", None) or str(cause)
    warn(f"cannot write the {what} {root} ({reason}); continuing without caching: pass "
         "--cache-dir DIR (a writable directory) or --no-cache")


class CacheNamespace:
    """The cached vectors of one (fingerprint, kind, pooler, max length, dtype) combination.

    ``label`` (``{"model": name, "path": directory}``) names the checkpoint for ``simcse-analyze cache``; it is
    written once beside the vectors and is not part of the key (an alias and a path of the same weights
    share the namespace).
    """

    def __init__(self, root: Path, settings: dict[str, Any], label: dict[str, Any] | None = None) -> None:
        self.settings = dict(settings)
        self.root = Path(root)
        self.dir = self.root / LAYOUT / namespace_id(settings)
        self.label = label
        self._index: dict[bytes, tuple[str, int]] = {}  # sentence key → (shard, row)
        self._seen: set[str] = set()
        self._arrays: dict[str, np.ndarray] = {}  # verified shards read in this process
        self._lock = threading.Lock()
        self._used = False

    def _mark_used(self) -> None:
        """Once per process: set namespace.json's mtime to now (the last use ``cache prune --older-than``
        reads) and write the checkpoint label if the namespace has none yet. Failures are ignored."""
        if self._used:
            return
        self._used = True
        with contextlib.suppress(OSError):
            os.utime(self.dir / "namespace.json")
        if self.label and not (self.dir / LABEL_FILE).exists() and (self.dir / "namespace.json").exists():
            with contextlib.suppress(OSError, InputError):
                atomic_write_bytes(self.dir / LABEL_FILE, json.dumps(self.label, sort_keys=True).encode())

    # ------------------------------------------------------------------ reading
    def _refresh(self) -> None:
        """Index the keys of complete shards not yet seen (a shard is complete once its .sha256 exists)."""
        try:
            names = [p[:-7] for p in os.listdir(self.dir) if p.endswith(".sha256")]
        except OSError:
            return
        for name in names:
            if name in self._seen:
                continue
            try:
                keys = (self.dir / f"{name}.keys").read_bytes()
            except OSError:
                continue
            if len(keys) % KEY_BYTES:
                self._drop(name)
                continue
            self._seen.add(name)
            for row in range(len(keys) // KEY_BYTES):
                self._index.setdefault(keys[row * KEY_BYTES:(row + 1) * KEY_BYTES], (name, row))

    def _load(self, name: str) -> np.ndarray | None:
        """The shard's array after checking it against its checksum; ``None`` (and the shard removed) if bad."""
        if name in self._arrays:
            return self._arrays[name]
        try:
            data = (self.dir / f"{name}.npy").read_bytes()
            keys = (self.dir / f"{name}.keys").read_bytes()
            expected = (self.dir / f"{name}.sha256").read_text().strip()
        except OSError:
            self._forget(name)
            return None
        h = hashlib.sha256(data)
        h.update(keys)
        try:
            if h.hexdigest() != expected:
                raise ValueError(f"its SHA-256 does not match {name}.sha256")
            arr = np.load(io.BytesIO(data), allow_pickle=False)
            if arr.shape[0] * KEY_BYTES != len(keys):
                raise ValueError("its row count differs from its key count")
        except ValueError as e:
            warn(f"embedding cache shard {self.dir / (name + '.npy')} is corrupt ({e}); re-encoding its sentences")
            self._drop(name)
            return None
        self._arrays[name] = arr
        return arr

    def fetch(self, keys: Sequence[bytes]) -> tuple[np.ndarray | None, np.ndarray]:
        """Cached rows for ``keys`` → ``(array with a row per key or None if none found, found mask)``.

        Rows of keys not found are left uninitialised in the array. A corrupt shard met on the way is
        removed and its keys count as not found.
        """
        with self._lock:
            self._refresh()
            found = np.zeros(len(keys), dtype=bool)
            out: np.ndarray | None = None
            by_shard: dict[str, list[tuple[int, int]]] = {}
            for i, k in enumerate(keys):
                hit = self._index.get(k)
                if hit is not None:
                    by_shard.setdefault(hit[0], []).append((i, hit[1]))
            for name, items in by_shard.items():
                arr = self._load(name)
                if arr is None:
                    continue
                if out is None:
                    out = np.empty((len(keys), *arr.shape[1:]), dtype=arr.dtype)
                elif out.shape[1:] != arr.shape[1:]:
                    self._drop(name)
                    continue
                idx = np.fromiter((i for i, _ in items), dtype=np.int64, count=len(items))
                rows = np.fromiter((r for _, r in items), dtype=np.int64, count=len(items))
                out[idx] = arr[rows]
                found[idx] = True
            if found.any():
                self._mark_used()
            return out, found

    def contains(self, keys: Sequence[bytes]) -> np.ndarray:
        """Mask of the ``keys`` the namespace holds, from the index alone (no shard is read or verified)."""
        with self._lock:
            self._refresh()
            return np.fromiter((k in self._index for k in keys), dtype=bool, count=len(keys))

    # ------------------------------------------------------------------ writing
    def put(self, keys: Sequence[bytes], array: np.ndarray) -> None:
        """Store row ``i`` of ``array`` under ``keys[i]`` (new shards; a write failure only costs a re-encode)."""
        array = np.ascontiguousarray(array, dtype=np.float32)
        if array.shape[0] != len(keys):
            raise ValueError(f"{len(keys)} keys for {array.shape[0]} rows")
        with self._lock:
            for s in range(0, len(keys), SHARD_ROWS):
                self._put_shard(list(keys[s:s + SHARD_ROWS]), array[s:s + SHARD_ROWS])

    def _put_shard(self, keys: list[bytes], array: np.ndarray) -> None:
        if not keys:
            return
        buf = io.BytesIO()
        np.save(buf, array, allow_pickle=False)
        data, key_bytes = buf.getvalue(), b"".join(keys)
        h = hashlib.sha256(data)
        h.update(key_bytes)
        digest = h.hexdigest()
        name = digest[:32]
        try:
            meta = self.dir / "namespace.json"
            if not meta.exists():
                atomic_write_bytes(meta, json.dumps(self.settings, sort_keys=True, indent=1).encode())
            atomic_write_bytes(self.dir / f"{name}.npy", data)
            atomic_write_bytes(self.dir / f"{name}.keys", key_bytes)
            atomic_write_bytes(self.dir / f"{name}.sha256", digest.encode())
        except (OSError, InputError) as e:  # read-only or full disk: caching is an optimisation, not a requirement
            self._drop(name)
            _warn_unwritable(self.root, e)
            return
        self._mark_used()
        self._arrays[name] = array
        self._seen.add(name)
        for row, k in enumerate(keys):
            self._index.setdefault(k, (name, row))

    # ------------------------------------------------------------------ removal
    def _forget(self, name: str) -> None:
        self._arrays.pop(name, None)
        self._seen.discard(name)
        for k in [k for k, (s, _) in self._index.items() if s == name]:
            del self._index[k]

    def _drop(self, name: str) -> None:
        self._forget(name)
        for suffix in (".sha256", ".keys", ".npy"):  # checksum first: the shard stops being visible
            try:
                (self.dir / f"{name}{suffix}").unlink()
            except OSError:
                pass

    def stats(self) -> dict[str, int]:
        """Shards and distinct sentences currently in the namespace."""
        with self._lock:
            self._refresh()
            return {"shards": len(self._seen), "sentences": len(self._index)}


class EmbeddingCache:
    """Per-sentence cache of float32 vectors under ``root`` (see the module docstring for the layout).

    Counters: ``hits`` / ``misses`` count lookups (one per ``encode`` call) answered entirely from the
    cache / needing the model; ``reused`` / ``encoded`` count sentences.
    """

    def __init__(self, root: str | os.PathLike[str] | None = None) -> None:
        self.root = Path(root) if root is not None else default_cache_dir()
        self.hits = 0
        self.misses = 0
        self.reused = 0
        self.encoded = 0
        self._namespaces: dict[str, CacheNamespace] = {}
        self._results: ResultCache | None = None
        remove_old_layout(self.root)

    def namespace(self, settings: dict[str, Any], label: dict[str, Any] | None = None) -> CacheNamespace:
        """The namespace for ``settings`` (one object per namespace per cache, so its index is shared);
        ``label`` names the checkpoint for display (:class:`CacheNamespace`)."""
        nid = namespace_id(settings)
        if nid not in self._namespaces:
            self._namespaces[nid] = CacheNamespace(self.root, settings, label)
        elif label and not self._namespaces[nid].label:
            self._namespaces[nid].label = label
        return self._namespaces[nid]

    @property
    def results(self) -> ResultCache:
        """The derived-results cache under the same root (token analyses, UMAP maps)."""
        if self._results is None:
            self._results = ResultCache(self.root)
        return self._results

    def record(self, n_found: int, n_total: int) -> None:
        """Count one lookup of ``n_total`` distinct sentences of which ``n_found`` were cached."""
        if n_found == n_total:
            self.hits += 1
        else:
            self.misses += 1
        self.reused += n_found
        self.encoded += n_total - n_found


class ResultCache:
    """Derived results (JSON-able values) cached under ``root/results/<kind>/``, one file per ``(kind, key)``.

    ``key`` is a JSON-able dict of everything the result depends on; the entry's name is a hash of it.
    ``get`` verifies the payload against its SHA-256 (a corrupt entry is removed with a warning and counts
    as a miss) and marks the entry used (its mtime); ``put`` writes atomically and, like the embedding
    cache, only warns (once) when the directory cannot be written. ``hits``/``misses`` count lookups.
    """

    SUFFIX = ".entry"

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root)
        self.hits = 0
        self.misses = 0

    def path(self, kind: str, key: dict[str, Any]) -> Path:
        if not re.fullmatch(r"[a-z][a-z0-9_-]*", kind):
            raise ValueError(f"result kind {kind!r}: lower-case letters, digits, '-' and '_' only")
        return self.root / RESULTS / kind / f"{namespace_id({'kind': kind, 'key': key})}{self.SUFFIX}"

    def get(self, kind: str, key: dict[str, Any]) -> Any | None:
        """The cached value of ``(kind, key)``, or ``None`` (not cached, unreadable or corrupt)."""
        f = self.path(kind, key)
        try:
            data = f.read_bytes()
        except OSError:
            self.misses += 1
            return None
        try:
            header, payload = read_entry(data)
            if header.get("key") != json.loads(json.dumps(key)):
                raise ValueError("its key differs from the one asked for")
            value = json.loads(payload)
        except (ValueError, UnicodeDecodeError) as e:
            warn(f"cache entry {f} is corrupt ({e}); computing it again")
            with contextlib.suppress(OSError):
                f.unlink()
            self.misses += 1
            return None
        with contextlib.suppress(OSError):
            os.utime(f)
        self.hits += 1
        return value

    def put(self, kind: str, key: dict[str, Any], value: Any, checkpoint: dict[str, Any] | None = None) -> None:
        """Store ``value`` (JSON-able) under ``(kind, key)``; ``checkpoint`` labels it for ``simcse-analyze cache``
        (``{"model", "path", "fingerprint"}``)."""
        payload = json.dumps(value, separators=(",", ":")).encode()
        header = {"kind": kind, "key": key, "checkpoint": checkpoint or {},
                  "sha256": hashlib.sha256(payload).hexdigest(), "bytes": len(payload)}
        try:
            atomic_write_bytes(self.path(kind, key), json.dumps(header, sort_keys=True).encode() + b"\n" + payload)
        except (OSError, InputError) as e:
            _warn_unwritable(self.root, e, "result cache")


def read_entry(data: bytes) -> tuple[dict[str, Any], bytes]:
    """``(header, payload)`` of a :class:`ResultCache` entry's bytes; :class:`ValueError` if torn or corrupt."""
    head, sep, payload = data.partition(b"\n")
    if not sep:
        raise ValueError("no header line")
    header = json.loads(head)
    if not isinstance(header, dict) or hashlib.sha256(payload).hexdigest() != header.get("sha256"):
        raise ValueError("its payload does not match its SHA-256")
    return header, payload


def array_digest(x: np.ndarray) -> str:
    """SHA-256 of an array's dtype, shape and bytes (C order): the identity of an input to a cached result."""
    a = np.ascontiguousarray(x)
    h = hashlib.sha256(f"{a.dtype.str}{a.shape}".encode())
    h.update(a.data)
    return h.hexdigest()


def code_digest(*modules: Any) -> str:
    """SHA-256 of the source of ``modules`` (the code a cached result was computed by), so editing any of
    them invalidates the results; the package version where a source cannot be read."""
    import inspect

    from .version import __version__

    h = hashlib.sha256()
    for m in modules:
        try:
            h.update(inspect.getsource(m).encode())
        except (OSError, TypeError):
            h.update(f"{m.__name__}@{__version__}".encode())
    return h.hexdigest()[:32]


def remove_old_layout(root: Path) -> int:
    """Delete entries of the whole-list layout (``root/<2 hex>/<64 hex>.npy|.sha256``); returns files removed.

    Only files matching that pattern are touched, and a directory is removed only if that leaves it empty.
    """
    removed = 0
    try:
        entries = list(os.scandir(root))
    except OSError:
        return 0
    for d in entries:
        if not (d.is_dir(follow_symlinks=False) and _OLD_DIR.match(d.name)):
            continue
        try:
            files = list(os.scandir(d.path))
        except OSError:
            continue
        for f in files:
            if _OLD_FILE.match(f.name):
                try:
                    os.unlink(f.path)
                    removed += 1
                except OSError:
                    pass
        try:
            os.rmdir(d.path)
        except OSError:
            pass
    return removed
