"""What the cache holds, and removing parts of it (``simcse-analyze cache``).

A cache root (:mod:`simcse_analysis.cache`) holds *units*, each removed as a whole:

* an embedding namespace ``v2/<namespace>/`` — kind ``embeddings`` (pooled vectors) or ``layers``
  (per-layer stacks) of one checkpoint's weights, pooler, max length and dtype;
* a derived result ``results/<kind>/<entry>.entry`` — kind ``tokens`` (a token analysis) or ``umap`` (a map).

A unit's *last use* is the modification time of its ``namespace.json`` / entry file, which the cache sets
whenever a unit is read or written. Only paths of this layout are ever deleted, so a cache root pointed at
a directory that also holds other files loses nothing else.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import time
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from .cache import LABEL_FILE, LAYOUT, RESULTS, remove_old_layout
from .errors import InputError

_NAMESPACE = re.compile(r"^[0-9a-f]{32}$")
_ENTRY = re.compile(r"^[0-9a-f]{32}\.entry$")
#: Display name of each kind of unit, in the order ``cache`` lists them.
KINDS = ("embeddings", "layers", "tokens", "umap")


@dataclass
class CacheUnit:
    """One removable part of the cache (module docstring)."""

    kind: str
    path: str
    bytes: int
    last_used: float  # seconds since the epoch
    model: str | None = None  # the checkpoint's name or path as the command that wrote it was given
    checkpoint_path: str | None = None
    fingerprint: str | None = None  # weights fingerprint (embedding namespaces, token analyses)
    pooler: str | None = None
    items: int = 0  # sentences (embeddings, layers) or 1 (a result)
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def label(self) -> str:
        """How the listing names the checkpoint: its name, else its directory, else its fingerprint."""
        if self.model:
            return self.model
        if self.checkpoint_path:
            return self.checkpoint_path
        return f"weights {self.fingerprint[:12]}" if self.fingerprint else "(unknown checkpoint)"

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "label": self.label}


def _tree_size(path: Path) -> int:
    total = 0
    for dirpath, _, files in os.walk(path):
        for f in files:
            try:
                total += os.lstat(os.path.join(dirpath, f)).st_size
            except OSError:
                pass
    return total


def _read_json(path: Path) -> dict[str, Any]:
    try:
        d = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return d if isinstance(d, dict) else {}


def _namespace_unit(d: Path) -> CacheUnit:
    settings = _read_json(d / "namespace.json")
    label = _read_json(d / LABEL_FILE)
    try:
        last = (d / "namespace.json").stat().st_mtime
    except OSError:
        last = d.stat().st_mtime
    sentences = 0
    for f in d.glob("*.keys"):
        if f.with_suffix(".sha256").exists():
            try:
                sentences += f.stat().st_size // 16
            except OSError:
                pass
    kind = "layers" if settings.get("kind") == "layers" else "embeddings"
    return CacheUnit(kind=kind, path=str(d), bytes=_tree_size(d), last_used=last, model=label.get("model"),
                     checkpoint_path=label.get("path"), fingerprint=settings.get("fingerprint"),
                     pooler=settings.get("pooler"), items=sentences,
                     details={k: settings[k] for k in ("max_length", "dtype") if k in settings})


def _entry_unit(f: Path, kind: str) -> CacheUnit:
    st = f.stat()
    try:
        with open(f, "rb") as fh:
            header = json.loads(fh.readline())
    except (OSError, ValueError):
        header = {}
    if not isinstance(header, dict):
        header = {}
    ck = header.get("checkpoint") if isinstance(header.get("checkpoint"), dict) else {}
    key = header.get("key") if isinstance(header.get("key"), dict) else {}
    encoding = key.get("encoding") if isinstance(key.get("encoding"), dict) else {}
    pooler = encoding.get("pooler")
    return CacheUnit(kind=kind, path=str(f), bytes=st.st_size, last_used=st.st_mtime, model=ck.get("model"),
                     checkpoint_path=ck.get("path"), fingerprint=ck.get("fingerprint"), pooler=pooler, items=1)


def inventory(root: str | os.PathLike[str]) -> list[CacheUnit]:
    """Every unit under the cache root (old-layout leftovers are removed first, as opening the cache does),
    sorted by kind, checkpoint and pooler."""
    root = Path(root)
    remove_old_layout(root)
    units: list[CacheUnit] = []
    try:
        spaces = [d for d in (root / LAYOUT).iterdir() if d.is_dir() and _NAMESPACE.match(d.name)]
    except OSError:
        spaces = []
    units += [_namespace_unit(d) for d in spaces]
    try:
        kinds = [d for d in (root / RESULTS).iterdir() if d.is_dir()]
    except OSError:
        kinds = []
    for kd in kinds:
        for f in kd.iterdir():
            if _ENTRY.match(f.name) and f.is_file():
                try:
                    units.append(_entry_unit(f, kd.name))
                except OSError:
                    continue
    order = {k: i for i, k in enumerate(KINDS)}
    units.sort(key=lambda u: (order.get(u.kind, len(order)), u.label, u.pooler or "", u.path))
    return units


def remove(units: Iterable[CacheUnit]) -> int:
    """Delete ``units`` (a namespace directory: its checksums first, so a concurrent reader sees shards vanish,
    never a torn one); returns the bytes freed. A unit already gone counts as removed."""
    freed = 0
    for u in units:
        p = Path(u.path)
        if u.kind in ("embeddings", "layers"):
            if not (_NAMESPACE.match(p.name) and p.parent.name == LAYOUT):
                raise ValueError(f"{p} is not an embedding namespace")
            for f in p.glob("*.sha256"):
                f.unlink(missing_ok=True)
            shutil.rmtree(p, ignore_errors=True)
        else:
            if not (_ENTRY.match(p.name) and p.parent.parent.name == RESULTS):
                raise ValueError(f"{p} is not a result entry")
            p.unlink(missing_ok=True)
        freed += u.bytes
    return freed


# ------------------------------------------------------------------------------------------ selection
_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmgt]?i?b?)?\s*$", re.IGNORECASE)
_AGE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*$", re.IGNORECASE)
_SIZE_UNITS = {"": 1, "b": 1, "k": 1e3, "kb": 1e3, "kib": 2 ** 10, "m": 1e6, "mb": 1e6, "mib": 2 ** 20,
               "g": 1e9, "gb": 1e9, "gib": 2 ** 30, "t": 1e12, "tb": 1e12, "tib": 2 ** 40}
_AGE_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def parse_size(text: str, option: str = "--max-size") -> int:
    """``"500MB"``, ``"2G"``, ``"1.5GiB"``, ``"0"`` → bytes (decimal units; ``…iB`` binary)."""
    m = _SIZE.match(str(text))
    unit = (m.group(2) or "").lower() if m else None
    if m is None or unit not in _SIZE_UNITS:
        raise InputError(f"{option} {text!r}: give a size such as 500MB, 2GB or 1.5GiB")
    return int(float(m.group(1)) * _SIZE_UNITS[unit])


def parse_age(text: str, option: str = "--older-than") -> float:
    """``"30d"``, ``"12h"``, ``"2w"``, ``"90m"``, ``"45s"`` → seconds."""
    m = _AGE.match(str(text))
    if m is None:
        raise InputError(f"{option} {text!r}: give an age such as 30d, 12h, 2w or 90m")
    return float(m.group(1)) * _AGE_UNITS[m.group(2).lower()]


def format_size(n: float) -> str:
    for unit in ("B", "kB", "MB", "GB"):
        if abs(n) < 1000 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n:.1f} GB"


def checkpoint_matcher(checkpoint: str) -> Any:
    """A predicate on units: those of ``checkpoint`` — the same weights (fingerprint) when it resolves to a
    checkpoint, else the name or directory the cache recorded for them."""
    fingerprint = None
    try:
        from .checkpoint import resolve_checkpoint, weights_fingerprint

        fingerprint = weights_fingerprint(resolve_checkpoint(checkpoint))
    except (InputError, OSError):
        pass
    wanted = {checkpoint, str(Path(checkpoint).expanduser().resolve()) if checkpoint else checkpoint}

    def match(u: CacheUnit) -> bool:
        if fingerprint is not None and u.fingerprint == fingerprint:
            return True
        names = {u.model, u.checkpoint_path}
        if u.checkpoint_path:
            names.add(str(Path(u.checkpoint_path).expanduser().resolve()))
        return bool(names & wanted)

    return match


def select(units: Sequence[CacheUnit], *, older_than: float | None = None, max_size: int | None = None,
           checkpoints: Sequence[str] = (), kinds: Sequence[str] = (), now: float | None = None
           ) -> list[CacheUnit]:
    """The units ``cache prune`` removes: those of ``kinds`` (all if empty) and ``checkpoints`` (all if empty)
    that were last used more than ``older_than`` seconds ago; then, while the cache (everything, after those)
    is larger than ``max_size`` bytes, the least recently used of the remaining eligible units."""
    now = time.time() if now is None else now
    for k in kinds:
        if k not in KINDS:
            raise InputError(f"--kind {k!r}: choose one of {', '.join(KINDS)}")
    matchers = [checkpoint_matcher(c) for c in checkpoints]
    eligible = [u for u in units if (not kinds or u.kind in kinds) and (not matchers or any(m(u) for m in matchers))]
    chosen = [u for u in eligible if older_than is not None and now - u.last_used > older_than]
    if older_than is None and max_size is None:
        chosen = list(eligible)
    if max_size is not None:
        ids = {id(u) for u in chosen}
        total = sum(u.bytes for u in units) - sum(u.bytes for u in chosen)
        for u in sorted((u for u in eligible if id(u) not in ids), key=lambda u: u.last_used):
            if total <= max_size:
                break
            chosen.append(u)
            total -= u.bytes
    return chosen


def summary_rows(units: Sequence[CacheUnit], now: float | None = None) -> list[list[str]]:
    """Table rows (kind, checkpoint, pooler, items, size, last used) grouping units of one kind, checkpoint and
    pooler."""
    now = time.time() if now is None else now
    groups: dict[tuple[str, str, str], list[CacheUnit]] = {}
    for u in units:
        groups.setdefault((u.kind, u.label, u.pooler or "-"), []).append(u)
    rows = []
    for (kind, label, pooler), us in groups.items():
        items = sum(u.items for u in us)
        what = f"{items:,} sentences" if kind in ("embeddings", "layers") else f"{items} result{'s' * (items != 1)}"
        rows.append([kind, label, pooler, what, format_size(sum(u.bytes for u in us)),
                     _ago(now - max(u.last_used for u in us))])
    return rows


def _ago(seconds: float) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            return f"{seconds / size:.0f} {unit} ago"
    return "just now"
