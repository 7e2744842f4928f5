"""A streaming embedding store: sentence embeddings of a corpus on disk, in shards, memory-mapped to read.

``simcse-analyze encode MODEL --sentences F… --out STORE`` writes::

    STORE/manifest.json         what the vectors are (schema below)
    STORE/keys.bin              row i's sentence key (16 bytes: SHA-256 prefix of its UTF-8), n × 16 bytes
    STORE/shard-000000.npy      rows [0, S) as float32 or float16 (``precision``), S = ``shard_rows``
    STORE/shard-000000.sha256   SHA-256 of that .npy: written last, it marks the shard complete
    …

Row i is line i of the concatenated ``--sentences`` files (blank lines and duplicates included, so a row
number is a line number). Writing streams the input twice — once for the keys and the count, once shard
by shard — so memory holds one shard's sentences and vectors, never the matrix nor the corpus. Every file
is written atomically; after a kill, running the same command again checks the manifest, skips every
complete shard and encodes the rest. With ``torchrun --nproc-per-node K`` (or ``accelerate launch``),
rank r encodes shards r, r+K, r+2K, …; each shard's computation does not depend on who runs it, so the
store is the one a single process writes.

Manifest (``schema`` ``simcse-analysis/embedding-store``, ``version`` 2)::

    {"model", "fingerprint" (the encoder's: weights, config, tokenizer files and post-transform, see
     ``Encoder.fingerprint``), "pooler", "max_length", "dtype" (encoding dtype), "precision" ("float32" |
     "float16": how the shards store the vectors), "dim", "n", "shard_rows", "n_shards",
     "sentences_digest" (SHA-256 over the rows' sentences, see ``cache.texts_digest``), "keys": "keys.bin"
     (a file name inside the store), "sources": [file names], "post_transform": "affine" | "flow" | null}

Version 1 (before the fingerprint covered the tokenizer files) is read for analysis; an encode into it
is refused (its fingerprint cannot be compared).

Reading (:func:`open_store`) validates the manifest (:data:`MANIFEST_KIND`: types, ranges, a ``keys``
path that stays in the store), checks it against what the caller asks for (fingerprint, pooler), every
shard's presence and shape, and (unless ``verify=False``) every shard's bytes against its ``.sha256``;
:class:`EmbeddingStore` then serves row ranges and index arrays from memory maps, as float32, and refuses
to serve a row that is NaN/inf. Vectors are checked finite before they are written, too: the encoder
refuses NaN/inf, and a float16 store refuses a value beyond float16's range (it would become inf).
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import io
import json
import os
import shutil
import sys
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .cache import KEY_BYTES, sentence_keys
from .documents import DocumentKind, FileName, Int, ListOf, Obj, Str, read_document
from .errors import InputError, NonFiniteEmbeddingError
from .io_utils import atomic_path, atomic_write_bytes, atomic_write_text
from .locks import DirectoryLock, check_not_in_use
from .path_safety import check_apart
from .pooling import POOLERS
from .records import list_argument

SCHEMA = "simcse-analysis/embedding-store"
#: 2: ``fingerprint`` covers the tokenizer files (version 1's covered weights, config and post-transform).
SCHEMA_VERSION = 2
READABLE_VERSIONS: tuple[int, ...] = (1, 2)
MANIFEST = "manifest.json"
KEYS = "keys.bin"
DEFAULT_SHARD_ROWS = 16_384
PRECISIONS = {"float32": np.float32, "float16": np.float16}


def shard_name(k: int) -> str:
    return f"shard-{k:06d}.npy"


@dataclass
class StoreManifest:
    """The manifest of a store (see the module docstring)."""

    model: str
    fingerprint: str | None
    pooler: str
    max_length: int
    dtype: str
    precision: str
    dim: int
    n: int
    shard_rows: int
    sentences_digest: str
    sources: list[str] = field(default_factory=list)
    post_transform: str | None = None
    keys: str = KEYS
    version: int = SCHEMA_VERSION

    @property
    def n_shards(self) -> int:
        return -(-self.n // self.shard_rows)

    def shard_range(self, k: int) -> tuple[int, int]:
        return k * self.shard_rows, min(self.n, (k + 1) * self.shard_rows)

    def to_dict(self) -> dict[str, Any]:
        return {"schema": SCHEMA, **asdict(self), "n_shards": self.n_shards}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> StoreManifest:
        names = set(cls.__dataclass_fields__)
        return cls(**{k: v for k, v in d.items() if k in names})

    def identity(self) -> dict[str, Any]:
        """What must agree for a resumed run to continue this store (everything but the model's label and
        the manifest's version)."""
        d = asdict(self)
        d.pop("model")
        d.pop("version")
        return d


def _shards_rule(d: dict[str, Any]) -> tuple[tuple[str | int, ...], str] | None:
    expected = -(-d["n"] // d["shard_rows"])
    if "n_shards" in d and d["n_shards"] != expected:
        return ("n_shards",), f"is {d['n_shards']}, but n = {d['n']} rows in shards of {d['shard_rows']} make {expected}"
    return None


#: The manifest as :func:`read_manifest` accepts it (every field a reader uses, typed and in range).
MANIFEST_KIND = DocumentKind("embedding-store manifest", Obj(
    {"model": Str(), "fingerprint": Str(null=True), "pooler": Str(choices=tuple(POOLERS)),
     "max_length": Int(min=1), "dtype": Str(), "precision": Str(choices=tuple(PRECISIONS)), "dim": Int(min=1),
     "n": Int(min=1), "shard_rows": Int(min=1), "sentences_digest": Str()},
    optional={"sources": ListOf(Str()), "post_transform": Str(null=True), "keys": FileName(),
              "n_shards": Int(min=1)}, rules=(_shards_rule,)),
    "rerun the `simcse-analyze encode` that wrote the store into a new --out directory", SCHEMA, READABLE_VERSIONS)


# ----------------------------------------------------------------------------------------- input
def _line_stream(files: Sequence[Path]) -> Iterator[str]:
    """Lines of every file in order, as :func:`simcse_analysis.corpora.split_lines` splits them (on ``\\n``,
    a trailing ``\\r`` dropped, a UTF-8 BOM skipped), streamed; :class:`InputError` naming the file and line
    on bytes that are not UTF-8."""
    for f in files:
        with open(f, "rb") as fh:
            for number, raw in enumerate(fh, start=1):
                try:
                    line = raw.decode("utf-8")
                except UnicodeDecodeError as e:
                    raise InputError(f"--sentences {f}: line {number} is not UTF-8 text (byte "
                                     f"0x{raw[e.start]:02x} at column {e.start + 1}); convert the file to UTF-8, "
                                     "e.g. iconv -f latin1 -t utf-8") from None
                if number == 1:
                    line = line.removeprefix("\ufeff")
                yield line.removesuffix("\n").removesuffix("\r")


def _check_inputs(files: Sequence[str | os.PathLike[str]]) -> list[Path]:
    paths = [Path(f) for f in list_argument(files, "sentence_files", "sentence files")]
    if not paths:
        raise InputError("--sentences: give at least one UTF-8 text file, one sentence per line")
    for p in paths:
        if not p.is_file():
            raise InputError(f"--sentences {p}: no such file")
    return paths


def scan_sentences(files: Sequence[Path], keys: Any) -> tuple[int, str]:
    """One streaming pass: ``(number of lines, digest of the lines in order)``; each line's key is written
    to the binary file object ``keys``. Nothing is kept in memory."""
    h = hashlib.sha256()
    n = 0
    for line in _line_stream(files):
        b = line.encode("utf-8")
        h.update(len(b).to_bytes(8, "little"))
        h.update(b)
        keys.write(hashlib.sha256(b).digest()[:KEY_BYTES])
        n += 1
    if n == 0:
        raise InputError("--sentences: the files hold no lines")
    return n, h.hexdigest()


# ----------------------------------------------------------------------------------------- writing
@dataclass
class EncodeSummary:
    """What one process did for :func:`encode_to_store`."""

    store: str
    n: int
    n_shards: int
    encoded_shards: int
    skipped_shards: int
    rank: int
    world_size: int


def _shard_complete(root: Path, k: int) -> bool:
    """A shard is complete when its checksum file exists and matches the .npy bytes."""
    npy, sha = root / shard_name(k), root / shard_name(k).replace(".npy", ".sha256")
    try:
        return _sha256_file(npy) == sha.read_text().strip()
    except OSError:
        return False


def _stored(vec: np.ndarray, dtype: Any, lo: int, texts: Sequence[str]) -> np.ndarray:
    """``vec`` in the store's precision; :class:`InputError` naming the first line whose vector does not fit
    (float16 holds magnitudes up to 65504: beyond that a value would be written as inf)."""
    with np.errstate(over="ignore"):  # checked below
        out = np.ascontiguousarray(vec.astype(dtype, copy=False))
    bad = ~np.isfinite(out).all(axis=1)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        big = float(np.abs(vec[i]).max())
        raise InputError(f"the vector of line {lo + i + 1} of the --sentences files ({texts[i][:60]!r}) has a value "
                         f"of magnitude {big:.4g}, beyond float16's range (65504), so --fp16 would store inf "
                         f"({int(bad.sum())} such vector(s) in its shard): encode without --fp16 (float32)")
    return out


def _write_shard(root: Path, k: int, arr: np.ndarray) -> None:
    buf = io.BytesIO()
    np.save(buf, arr, allow_pickle=False)
    data = buf.getvalue()
    atomic_write_bytes(root / shard_name(k), data)
    atomic_write_bytes(root / shard_name(k).replace(".npy", ".sha256"), hashlib.sha256(data).hexdigest().encode())


def _check_same(root: Path, old: StoreManifest, new: StoreManifest) -> None:
    """InputError naming the first difference if a resumed run would not continue the same store."""
    fix = "choose another --out directory or delete it"
    if old.version != new.version:
        raise InputError(f"--out {root} holds a store of manifest version {old.version}, written by an older "
                         f"simcse-analysis whose fingerprint did not cover the tokenizer, so it cannot be resumed "
                         f"safely: {fix}")
    if old.fingerprint != new.fingerprint:
        raise InputError(f"--out {root} holds vectors of another checkpoint ({old.model}, fingerprint "
                         f"{str(old.fingerprint)[:12]}…), not of {new.model}: {fix}")
    if old.pooler != new.pooler:
        raise InputError(f"--out {root} holds pooler {old.pooler!r} vectors, not {new.pooler!r}: pass --pooler "
                         f"{old.pooler} to resume it, or {fix}")
    diff = [k for k, v in new.identity().items() if old.identity().get(k) != v]
    if diff:
        raise InputError(f"--out {root} holds a store of other sentences or settings (differs in "
                         f"{', '.join(diff)}): {fix}")


def dist_info() -> tuple[int, int]:
    """``(rank, world size)`` from the launcher's environment (torchrun / accelerate set RANK, WORLD_SIZE)."""
    try:
        return int(os.environ.get("RANK", "0")), int(os.environ.get("WORLD_SIZE", "1"))
    except ValueError:
        raise InputError("RANK and WORLD_SIZE must be integers (set by torchrun / accelerate launch)") from None


def check_store_out(out: str | os.PathLike[str], inputs: Sequence[tuple[str, Any]] = ()) -> Path:
    """``out`` as a Path, refused (:class:`InputError`) when it is, contains or lies inside an input (``inputs``:
    ``(option, path)`` pairs; :func:`simcse_analysis.path_safety.check_apart`), is a file, or is a non-empty
    directory that holds no store (encoding there would mix the shards with other files). Touches nothing."""
    check_apart([("--out", out)], inputs)
    root = Path(out)
    if root.exists() and not root.is_dir():
        raise InputError(f"--out {root} is a file: give a directory for the store")
    if root.is_dir() and not is_store(root) and any(not _leftover(p) for p in root.iterdir()):
        raise InputError(f"--out {root} holds files that are not an embedding store: choose a new or empty directory")
    return root


def _leftover(p: Path) -> bool:
    """A temporary file an atomic write of the store left behind when it was killed (``.keys.bin.XYZ.tmp``)."""
    return p.name.startswith(".") and p.name.endswith(".tmp") and p.is_file()


def _store_write_error(root: Path, e: OSError, done: int) -> InputError:
    """One line for a failed write into a store: the cause, and that the complete shards are kept."""
    reason = e.strerror or str(e)
    where = f" ({Path(e.filename).name})" if getattr(e, "filename", None) else ""
    fix = "free space" if e.errno in (errno.ENOSPC, errno.EDQUOT) else "fix the rights or choose another --out"
    kept = f": {done} complete shard(s) are kept and not encoded again" if done else ""
    return InputError(f"cannot write --out {root}{where}: {reason}; {fix}, then rerun the same command{kept}")


def encode_to_store(encoder: Any, sentence_files: Sequence[str | os.PathLike[str]], out: str | os.PathLike[str],
                    *, precision: str = "float32", shard_rows: int = DEFAULT_SHARD_ROWS, batch_size: int = 64,
                    rank: int = 0, world_size: int = 1, progress: bool = True,
                    on_shard: Any = None, lock: bool = True) -> EncodeSummary:
    """Encode every line of ``sentence_files`` with ``encoder`` into the store ``out`` (see module docstring).

    Resumes: shards already complete are skipped. ``rank``/``world_size`` split the shards round-robin
    (every rank writes the same manifest and keys, atomically, so no rank waits for another).
    ``on_shard(k, rows_done_by_this_process)`` is called after each shard this process writes.
    With ``lock`` (one process) the store's lock (:class:`simcse_analysis.locks.DirectoryLock`) is held from
    before the first write to the end: another process writing the same store is refused. Several ranks pass
    ``lock=False`` and let one process hold it for all (:func:`encode_corpus` does, after checking ``out`` with
    :func:`check_store_out` on every rank before any writes: ``lock=False`` skips that check here).
    Raises InputError if ``out`` overlaps an input, holds other files or a store of other sentences or other
    settings, if a file is not UTF-8 (nothing is left behind), or if a write fails (a full disk: the
    complete shards are kept, and the same call resumes).
    """
    if precision not in PRECISIONS:
        raise InputError(f"unknown store precision {precision!r}: use float32 or float16 (--fp16)")
    if shard_rows < 1:
        raise InputError(f"shard_rows must be at least 1, got {shard_rows}")
    if not 0 <= rank < world_size:
        raise InputError(f"rank {rank} is outside world size {world_size}")
    files = _check_inputs(sentence_files)
    # Without the lock another process (rank 0 of this torchrun group) holds the store for this one and checked
    # --out before any rank wrote: by now rank 0 may have written keys.bin but not yet the manifest.
    root = (check_store_out(out, [("--sentences", f) for f in files] + [("MODEL", getattr(encoder, "path", None))])
            if lock else Path(out))
    with DirectoryLock(root) if lock else contextlib.nullcontext():
        return _write_store(encoder, files, root, precision=precision, shard_rows=shard_rows, batch_size=batch_size,
                            rank=rank, world_size=world_size, progress=progress, on_shard=on_shard)


def _write_store(encoder: Any, files: list[Path], root: Path, *, precision: str, shard_rows: int, batch_size: int,
                 rank: int, world_size: int, progress: bool, on_shard: Any) -> EncodeSummary:
    created = not root.exists()
    try:
        with atomic_path(root / KEYS) as tmp:
            with open(tmp, "wb") as fh:
                n, digest = scan_sentences(files, fh)
            manifest = StoreManifest(model=encoder.name, fingerprint=encoder.fingerprint, pooler=encoder.pooler,
                                     max_length=encoder.max_length, dtype=encoder.dtype, precision=precision,
                                     dim=encoder.dim, n=n, shard_rows=int(shard_rows), sentences_digest=digest,
                                     sources=[p.name for p in files],
                                     post_transform="affine" if encoder.post_transform is not None else None)
            if (root / MANIFEST).is_file():
                old = read_manifest(root)
                _check_same(root, old, manifest)
        atomic_write_text(root / MANIFEST, json.dumps(manifest.to_dict(), indent=1) + "\n")
    except BaseException as e:
        if created:  # nothing of this store existed: leave nothing (the lock keeps other writers out)
            shutil.rmtree(root, ignore_errors=True)
        if isinstance(e, OSError):
            raise _store_write_error(root, e, 0) from e
        raise
    mine = [k for k in range(manifest.n_shards) if k % world_size == rank]
    todo = {k for k in mine if not _shard_complete(root, k)}
    bar = None
    if progress and todo:
        from tqdm.auto import tqdm

        bar = tqdm(total=len(todo) * shard_rows, desc=f"encoding into {root.name}" +
                   (f" (rank {rank}/{world_size})" if world_size > 1 else ""), unit="sent", file=sys.stderr)
    dtype = PRECISIONS[precision]
    done_rows = 0
    lines = _line_stream(files)
    pos = 0
    for written, k in enumerate(sorted(todo)):
        lo, hi = manifest.shard_range(k)
        while pos < lo:  # skip lines of shards this process does not encode
            next(lines)
            pos += 1
        texts = [next(lines) for _ in range(hi - lo)]
        pos = hi
        try:
            vec = encoder.encode(texts, batch_size=batch_size, show_progress_bar=False, use_cache=False)
            stored = _stored(vec, dtype, lo, texts)
        except NonFiniteEmbeddingError as e:  # say which line of the input it is
            if bar is not None:
                bar.close()
            raise e.at(f"line {lo + e.index + 1} of the --sentences files") from None
        except InputError:
            if bar is not None:
                bar.close()
            raise
        try:
            _write_shard(root, k, stored)
        except OSError as e:
            if bar is not None:
                bar.close()
            raise _store_write_error(root, e, len(mine) - len(todo) + written) from e
        done_rows += hi - lo
        del texts, vec
        if bar is not None:
            bar.update(hi - lo)
        if on_shard is not None:
            on_shard(k, done_rows)
    if bar is not None:
        bar.close()
    return EncodeSummary(store=str(root), n=n, n_shards=manifest.n_shards, encoded_shards=len(todo),
                         skipped_shards=len(mine) - len(todo), rank=rank, world_size=world_size)


# ----------------------------------------------------------------------------------------- reading
def is_store(path: str | os.PathLike[str]) -> bool:
    """True if ``path`` is a directory holding a store manifest."""
    return (Path(path) / MANIFEST).is_file()


def read_manifest(root: Path) -> StoreManifest:
    """The store's manifest, validated (:data:`MANIFEST_KIND`); one :class:`InputError` naming the file and
    the field otherwise. ``keys`` must name a file inside the store (no ``/``, no ``..``)."""
    d = read_document(root / MANIFEST, MANIFEST_KIND)
    return StoreManifest.from_dict(d)


class EmbeddingStore:
    """A complete store, read through memory maps: ``shape``, ``store[a:b]`` / ``store[idx]`` → float32.

    Supports what the metrics need of a matrix (``shape``, ``dtype``, ``len``, row slices and integer
    index arrays) without reading more than the rows asked for. Every row served is checked finite
    (:class:`InputError` naming the store, the row, its line and its sentence key otherwise).
    """

    def __init__(self, root: Path, manifest: StoreManifest, shards: list[np.ndarray]) -> None:
        self.root = root
        self.manifest = manifest
        self._shards = shards
        self.shape = (manifest.n, manifest.dim)
        self.ndim = 2
        self.dtype = np.dtype(np.float32)
        self._keys: np.ndarray | None = None

    def __len__(self) -> int:
        return self.shape[0]

    def __getitem__(self, item: Any) -> np.ndarray:
        n, s = self.shape[0], self.manifest.shard_rows
        if isinstance(item, slice):
            start, stop, step = item.indices(n)
            if step != 1:
                return self[np.arange(start, stop, step)]
            out = np.empty((max(stop - start, 0), self.shape[1]), dtype=np.float32)
            pos = start
            while pos < stop:
                k, r = divmod(pos, s)
                take = min(stop - pos, s - r)
                out[pos - start:pos - start + take] = self._shards[k][r:r + take]
                pos += take
            return self._finite(out, lambda i: start + i)
        if isinstance(item, (int, np.integer)):
            return self[int(item):int(item) + 1][0]
        idx = np.asarray(item, dtype=np.int64)
        if idx.ndim != 1:
            raise IndexError("a store takes a slice or a 1-D index array")
        if idx.size and (idx.min() < -n or idx.max() >= n):
            raise IndexError(f"row index out of range for {n} rows")
        idx = np.where(idx < 0, idx + n, idx)
        out = np.empty((idx.size, self.shape[1]), dtype=np.float32)
        shard_of = idx // s
        for k in np.unique(shard_of):
            sel = np.flatnonzero(shard_of == k)
            out[sel] = self._shards[int(k)][idx[sel] - k * s]
        return self._finite(out, lambda i: int(idx[i]))

    def _finite(self, out: np.ndarray, row_of: Any) -> np.ndarray:
        """``out`` if every value is finite, else :class:`InputError` naming the first NaN/inf row."""
        if np.isfinite(out).all():
            return out
        bad = np.flatnonzero(~np.isfinite(out).all(axis=1))
        row = row_of(int(bad[0]))
        key = bytes(self.keys[row]).hex()
        sources = ", ".join(self.manifest.sources) or "its --sentences files"
        raise InputError(f"store {self.root}: row {row} (line {row + 1} of {sources}; sentence key {key}) holds "
                         f"NaN/inf in {shard_name(row // self.manifest.shard_rows)} ({bad.size} bad row(s) among the "
                         "rows read): NaN in the --embeddings store, written by a release that did not check "
                         "vectors or edited since; encode the sentences again into a new store")

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        arr = self[:]
        return arr if dtype is None else arr.astype(dtype)

    def blocks(self, rows: int) -> Iterator[np.ndarray]:
        """Row blocks of at most ``rows`` rows, in order (float32)."""
        for start in range(0, self.shape[0], rows):
            yield self[start:start + rows]

    @property
    def keys(self) -> np.ndarray:
        """Row keys as a ``(n,)`` array of raw 16-byte values (``np.void``, memory-mapped): ``bytes(keys[i])``
        is row ``i``'s key with every byte, trailing NUL bytes included (a ``bytes_`` view would strip them)."""
        if self._keys is None:
            self._keys = np.memmap(self.root / self.manifest.keys, dtype=f"V{KEY_BYTES}", mode="r",
                                   shape=(self.manifest.n,))
        return self._keys

    def rows_of(self, sentences: Sequence[str]) -> np.ndarray:
        """Row of each sentence (its first occurrence); InputError naming the first one the store lacks.

        Keys are compared as whole 16-byte values; a vectorised pass over their first 8 bytes (as uint64)
        finds the candidate rows, so a 1M-row store is scanned in well under a second."""
        keys_of = sentence_keys(sentences)
        wanted = set(keys_of)
        prefixes = np.frombuffer(b"".join(sorted(wanted)), dtype="<u8")[::2].copy()  # first 8 bytes of each key
        first8 = self.keys.view("<u8").reshape(-1, 2)[:, 0] if self.manifest.n else np.empty(0, "<u8")
        found: dict[bytes, int] = {}
        block = 1 << 20
        for start in range(0, len(first8), block):
            for j in np.flatnonzero(np.isin(first8[start:start + block], prefixes)).tolist():
                k = bytes(self.keys[start + j])
                if k in wanted and k not in found:
                    found[k] = start + j
            if len(found) == len(wanted):
                break
        rows = np.fromiter((found.get(k, -1) for k in keys_of), dtype=np.int64, count=len(keys_of))
        if (rows < 0).any():
            first = sentences[int(np.flatnonzero(rows < 0)[0])]
            raise InputError(f"store {self.root} lacks {int((rows < 0).sum())} of the {len(sentences)} sentences "
                             f"the analysis needs (first: {first[:80]!r}); encode the list written by "
                             "--export-sentences into it")
        return rows


def _sha256_file(f: Path) -> str:
    h = hashlib.sha256()
    with open(f, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 22), b""):
            h.update(chunk)
    return h.hexdigest()


def _mismatched_shards(root: Path, n_shards: int, progress: bool = False) -> list[str]:
    """Names of the shards whose bytes do not match their ``.sha256`` (every shard read once; threads hash
    several shards at a time, hashlib releasing the GIL)."""
    from concurrent.futures import ThreadPoolExecutor

    def bad(k: int) -> bool:
        npy = root / shard_name(k)
        try:
            return _sha256_file(npy) != npy.with_suffix(".sha256").read_text().strip()
        except OSError:
            return True

    workers = max(1, min(4, os.cpu_count() or 1, n_shards))
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=n_shards, desc=f"verifying {root.name}", unit="shard", file=sys.stderr)
    out = []
    with ThreadPoolExecutor(workers) as pool:
        for k, is_bad in enumerate(pool.map(bad, range(n_shards))):
            if is_bad:
                out.append(shard_name(k))
            if bar is not None:
                bar.update(1)
    if bar is not None:
        bar.close()
    return out


#: Stores at least this large show a progress bar while their shards are verified.
VERIFY_PROGRESS_BYTES = 1 << 30


def open_store(path: str | os.PathLike[str], *, fingerprint: str | None = None, pooler: str | None = None,
               option: str = "--embeddings", verify: bool = True) -> EmbeddingStore:
    """Open a complete store for reading; InputError (naming the cause) if it is not complete, not the
    encoding asked for (``fingerprint`` / ``pooler``, when given, must match the manifest) or (``verify``)
    a shard's bytes no longer match its ``.sha256`` (one read of every shard: see
    ``benchmarks/bench_store.py --verify-only`` for its cost; ``--no-verify`` skips it)."""
    root = Path(path)
    if not root.is_dir() or not is_store(root):
        raise InputError(f"{option} {root}: not an embedding store (no {MANIFEST}); write one with "
                         "simcse-analyze encode MODEL --sentences F --out STORE")
    m = read_manifest(root)
    if fingerprint is not None and m.fingerprint != fingerprint:
        raise InputError(f"{option} {root} was encoded by another checkpoint (fingerprint {str(m.fingerprint)[:12]}…, "
                         f"asked for {fingerprint[:12]}…): encode a store with this checkpoint")
    if pooler is not None and m.pooler != pooler:
        raise InputError(f"{option} {root} holds pooler {m.pooler!r} vectors, not {pooler!r}: pass --pooler "
                         f"{m.pooler} or encode a store with --pooler {pooler}")
    keys = root / m.keys
    if keys.is_symlink() and keys.resolve().parent != root.resolve():
        raise InputError(f"{root / MANIFEST}: keys ({m.keys}) is a link to a file outside the store; "
                         f"{MANIFEST_KIND.fix}")
    if not keys.is_file() or keys.stat().st_size != m.n * KEY_BYTES:
        raise InputError(f"{option} {root}: {m.keys} is missing or truncated; rerun simcse-analyze encode "
                         f"with --out {root} to repair it")
    want = PRECISIONS[m.precision]
    fix = f"rerun simcse-analyze encode with --out {root} to finish it"
    shards = []
    for k in range(m.n_shards):
        lo, hi = m.shard_range(k)
        f = root / shard_name(k)
        if not f.is_file() or not f.with_suffix(".sha256").is_file():
            raise InputError(f"{option} {root}: shard {f.name} is missing or unfinished; {fix}")
        try:
            arr = np.load(f, mmap_mode="r", allow_pickle=False)
        except (ValueError, OSError) as e:
            raise InputError(f"{option} {root}: shard {f.name} is truncated or unreadable ({e}); {fix}") from e
        if arr.shape != (hi - lo, m.dim) or arr.dtype != want:
            raise InputError(f"{option} {root}: shard {f.name} has shape {arr.shape} {arr.dtype}, expected "
                             f"{(hi - lo, m.dim)} {m.precision}; {fix}")
        shards.append(arr)
    if verify:
        size = m.n * m.dim * np.dtype(want).itemsize
        bad = _mismatched_shards(root, m.n_shards, progress=size >= VERIFY_PROGRESS_BYTES)
        if bad:
            raise InputError(f"{option} {root}: shard {bad[0]} no longer matches its checksum "
                             f"{bad[0].replace('.npy', '.sha256')} ({len(bad)} of {m.n_shards} shards changed since "
                             f"they were written): rerun the same simcse-analyze encode with --out {root}, which "
                             "re-encodes changed shards")
    return EmbeddingStore(root, m, shards)


def encode_corpus(model: str, sentence_files: Sequence[str | os.PathLike[str]], out: str | os.PathLike[str], *,
                  precision: str = "float32", shard_rows: int = DEFAULT_SHARD_ROWS, batch_size: int = 64,
                  encoder_kwargs: dict[str, Any] | None = None, progress: bool = True) -> EncodeSummary:
    """Load ``model`` and encode the files into the store ``out``, in this process or, under ``torchrun`` /
    ``accelerate launch`` (``WORLD_SIZE`` > 1), as one rank of several: each rank encodes its shards
    (on ``cuda:LOCAL_RANK`` when GPUs are present and no device is given), then all ranks meet at a
    barrier (gloo) and the store is checked complete. The summary counts the shards of all ranks.

    ``out`` is checked against the inputs before the model loads (:func:`check_store_out`). The store's
    lock is held for the whole write by rank 0 alone, for all ranks: they share the store, and another
    encoder (or another torchrun group) writing it at the same time is refused, on every one of its ranks."""
    from .encoder import load_encoder

    rank, world = dist_info()
    root = check_store_out(out, [("MODEL", model), *(("--sentences", f) for f in sentence_files)])
    if rank == 0:
        check_not_in_use(root)  # fail before the model loads; the lock itself is taken below
    kwargs = dict(encoder_kwargs or {})
    group = False
    if world > 1:
        import torch
        import torch.distributed as dist

        if kwargs.get("device") is None and torch.cuda.is_available():
            kwargs["device"] = f"cuda:{int(os.environ.get('LOCAL_RANK', rank))}"
        if not dist.is_initialized():
            dist.init_process_group("gloo")
            group = True
    lock = DirectoryLock(root)
    try:
        encoder = load_encoder(model, **kwargs)
        refusal: InputError | None = None
        if rank == 0:
            try:
                lock.acquire()
            except InputError as e:
                refusal = e
        if world > 1:
            import torch.distributed as dist

            box = [str(refusal) if refusal is not None else None]
            dist.broadcast_object_list(box, src=0)  # every rank learns whether rank 0 holds the lock
            if box[0] is not None and refusal is None:
                refusal = InputError(box[0])
        if refusal is not None:
            raise refusal
        summary = encode_to_store(encoder, sentence_files, out, precision=precision, shard_rows=shard_rows,
                                  batch_size=batch_size, rank=rank, world_size=world, progress=progress,
                                  lock=False)
        if world > 1:
            import torch
            import torch.distributed as dist

            counts = torch.tensor([summary.encoded_shards, summary.skipped_shards], dtype=torch.int64)
            dist.all_reduce(counts)
            summary.encoded_shards, summary.skipped_shards = (int(c) for c in counts)
            dist.barrier()
    finally:
        lock.release()
        if group:
            import torch.distributed as dist

            dist.destroy_process_group()
    open_store(out, option="--out", verify=False)  # every shard present and of the right size (each was hashed
    # as it was written, or verified when a resumed run skipped it)
    return summary


def corpus_uniformity(path: str | os.PathLike[str], *, t: float = 2.0, budget_pairs: int = 10**10, seed: int = 0,
                      device: Any = None, verify: bool = True) -> dict[str, Any]:
    """Uniformity of EVERY row of a store (or an ``(N, d)`` ``.npy`` file, memory-mapped), streamed from
    disk: exact when all N(N−1)/2 pairs fit in ``budget_pairs`` kernel evaluations, else the sampled
    estimate with its standard error (:func:`simcse_analysis.metrics.device.uniformity_within_budget`)."""
    from .metrics._checks import first_nonfinite_row
    from .metrics.device import uniformity_within_budget

    p = Path(path)
    if is_store(p):
        x: Any = open_store(p, option="STORE", verify=verify)
        where = {"store": str(p), "model": x.manifest.model, "pooler": x.manifest.pooler,
                 "precision": x.manifest.precision}
    else:
        try:
            x = np.load(p, mmap_mode="r", allow_pickle=False)
        except FileNotFoundError:
            raise InputError(f"{p}: no such store directory or .npy file") from None
        except (OSError, ValueError) as e:
            raise InputError(f"{p}: neither an embedding store nor a readable .npy array ({e})") from e
        bad = first_nonfinite_row(x) if x.ndim == 2 and x.dtype.kind == "f" else None
        if bad is not None:
            raise InputError(f"{p}: row {bad} holds NaN or inf (NaN in the embeddings file): re-encode that sentence "
                             "or remove the row")
        where = {"embeddings": str(p)}
    result = uniformity_within_budget(x, t, budget_pairs=budget_pairs, seed=seed,
                                      device=device if device is not None else "cpu")
    return {**where, **result, "device": str(device or "cpu")}


def verify_store(store: EmbeddingStore) -> list[str]:
    """Names of the shards whose bytes do not match their checksum (reads every shard once)."""
    return _mismatched_shards(store.root, store.manifest.n_shards)


__all__ = ["EmbeddingStore", "EncodeSummary", "StoreManifest", "corpus_uniformity", "dist_info", "encode_corpus",
           "encode_to_store",
           "is_store", "open_store", "read_manifest", "scan_sentences", "verify_store"]
