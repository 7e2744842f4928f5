"""2-D UMAP maps of sentence embeddings (umap-learn), deterministic for a given seed.

Method (:func:`umap_maps`: the maps of all checkpoints, fitted jointly so their panels compare):

1. the same seeded subsample of at most ``n_sentences`` sentences for every checkpoint
   (:func:`subsample`: ``default_rng(seed).choice`` without replacement, sorted);
2. exact k-nearest neighbours by cosine distance ``1 − cos(x_i, x_j)`` (:func:`cosine_knn`, blocked
   matrix products; each point is its own first neighbour at distance 0, as UMAP expects). Exact search
   on ≤ a few thousand points costs well under a second and replaces pynndescent's approximate search;
3. ``umap.UMAP(n_neighbors, min_dist, metric="cosine", random_state=seed, precomputed_knn=…)``. A fixed
   ``random_state`` makes umap-learn run single-threaded and reproducible;
4. aligned fit: the first checkpoint's map is fitted as above; every other checkpoint's map starts from
   that layout (``init=`` the first map, umap-learn's public initialisation) and is then rotated,
   reflected, scaled and shifted onto it by orthogonal Procrustes over the shared sentences
   (:func:`procrustes`). A sentence therefore lands in comparable places in every panel where the spaces
   agree, and the panels can share their axes. The fit of each checkpoint is still its own neighbour graph
   (its own space; checkpoints of different dimensions are fine); only the starting layout and the final
   rigid alignment are shared.

A sentence is coloured by something true of it: the STS task it comes from (``colour="corpus"``, the
default: a sample of the distinct sentences of the 7 STS test sets) or the STS-B split it comes from
(``colour="split"``: the sentences of the analysis protocol). Earlier releases coloured a sentence by the
gold rating of its pairs (``"bin"``), a property of the pair, not of the sentence; that choice is gone.

umap-learn compiles its numba kernels on first use in every process (~10–30 s); :func:`_cache_numba_kernels`
turns on numba's on-disk cache for the kernels a fit uses, so only the first fit on a machine pays that.
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from simcse_analysis.errors import InputError

#: Smallest number of sentences a map is drawn for.
MIN_SENTENCES = 5
#: What a sentence can be coloured by: the STS task it comes from, or the STS-B split.
UMAP_COLOURS = ("corpus", "split")


@dataclass
class UMAPSettings:
    """What determines a map besides the embeddings (recorded in the report JSON)."""

    n_sentences: int = 3000
    n_neighbors: int = 15
    min_dist: float = 0.1
    n_epochs: int = 200
    seed: int = 0
    colour: str = "corpus"  # "corpus": STS task of the sentence; "split": STS-B split of the sentence

    def __post_init__(self) -> None:
        if self.n_sentences < MIN_SENTENCES:
            raise InputError(f"--umap-sentences must be at least {MIN_SENTENCES}, got {self.n_sentences}")
        if self.n_neighbors < 2:
            raise InputError(f"UMAP n_neighbors must be at least 2, got {self.n_neighbors}")
        if self.colour == "bin":
            raise InputError("--umap-colour bin is gone: a gold rating belongs to a sentence pair, not to a "
                             "sentence; choose corpus (STS task) or split (STS-B split)")
        if self.colour not in UMAP_COLOURS:
            raise InputError(f"--umap-colour {self.colour!r}: choose {' or '.join(UMAP_COLOURS)}")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> UMAPSettings:
        """The settings of a record (a record of an older release that coloured by ``bin`` reads as ``corpus``)."""
        return cls(**{k: d[k] for k in cls.__dataclass_fields__ if k in d and not (k == "colour" and d[k] == "bin")})


def subsample(n_total: int, n: int, seed: int) -> np.ndarray:
    """Sorted indices of ``min(n, n_total)`` distinct items drawn by ``default_rng(seed)`` (all if fewer)."""
    if n >= n_total:
        return np.arange(n_total)
    return np.sort(np.random.default_rng(seed).choice(n_total, size=n, replace=False))


def cosine_knn(x: np.ndarray, k: int, block: int = 1024) -> tuple[np.ndarray, np.ndarray]:
    """Exact ``k`` nearest neighbours by cosine distance ``1 − cos`` (float32), self first at distance 0.

    Returns ``(indices (N, k) int64, distances (N, k) float32)``, each row ascending by distance. Zero
    vectors have cosine 0 to everything.
    """
    x = np.asarray(x, dtype=np.float32)
    n = x.shape[0]
    if not 1 <= k <= n:
        raise ValueError(f"k must be in [1, {n}], got {k}")
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    u = x / np.maximum(norms, 1e-12)
    idx = np.empty((n, k), dtype=np.int64)
    dist = np.empty((n, k), dtype=np.float32)
    for start in range(0, n, block):
        stop = min(start + block, n)
        sim = u[start:stop] @ u.T  # (B, N)
        rows = np.arange(stop - start)
        sim[rows, start + rows] = np.inf  # self always ranks first
        part = np.argpartition(-sim, k - 1, axis=1)[:, :k]
        s = np.take_along_axis(sim, part, axis=1)
        order = np.argsort(-s, axis=1, kind="stable")
        idx[start:stop] = np.take_along_axis(part, order, axis=1)
        d = 1.0 - np.take_along_axis(s, order, axis=1)
        d[:, 0] = 0.0
        dist[start:stop] = np.clip(d, 0.0, 2.0)
    return idx, dist


_NUMBA_KERNELS = (("umap.umap_", "smooth_knn_dist"), ("umap.umap_", "compute_membership_strengths"),
                  ("umap.layouts", "_nb_optimize_layout_euclidean_single_epoch"))


def _cache_numba_kernels() -> None:
    """Enable numba's on-disk cache for umap-learn's fit kernels (best effort; harmless if it fails)."""
    import importlib

    for module, name in _NUMBA_KERNELS:
        fn = getattr(importlib.import_module(module), name, None)
        if fn is None or type(getattr(fn, "_cache", None)).__name__ != "NullCache":
            continue  # another umap-learn version, or already cached
        # no writable cache location (RuntimeError) or an unexpected dispatcher: numba just compiles
        with contextlib.suppress(RuntimeError, OSError, AttributeError):
            fn.enable_caching()


def import_umap() -> Any:
    """``umap`` (umap-learn) with cached kernels; a clear :class:`InputError` if it is not installed."""
    try:
        import umap
    except ImportError as e:
        raise InputError(f"UMAP maps need umap-learn ({e}): pip install umap-learn, or pass --no-umap") from e
    _cache_numba_kernels()
    return umap


def umap_embed(x: np.ndarray, settings: UMAPSettings, init: np.ndarray | None = None) -> np.ndarray:
    """2-D UMAP coordinates ``(N, 2)`` float64 of the rows of ``x`` (cosine metric, seeded); ``init``: a
    starting layout ``(N, 2)`` (default: spectral)."""
    x = np.asarray(x, dtype=np.float32)
    n = x.shape[0]
    if n < MIN_SENTENCES:
        raise InputError(f"a UMAP map needs at least {MIN_SENTENCES} sentences, got {n}: pass --no-umap")
    if not np.isfinite(x).all():
        raise InputError("embeddings hold NaN or inf values, so no UMAP map can be drawn: pass --no-umap")
    umap = import_umap()
    k = min(settings.n_neighbors, n - 1)
    knn_idx, knn_dist = cosine_knn(x, k)
    reducer = umap.UMAP(n_neighbors=k, n_components=2, min_dist=settings.min_dist, metric="cosine",
                        n_epochs=settings.n_epochs, random_state=settings.seed,
                        precomputed_knn=(knn_idx, knn_dist, None),
                        init=(np.asarray(init, dtype=np.float32) if init is not None
                              else "spectral" if n > k + 2 else "random"), verbose=False)
    with warnings.catch_warnings():
        # "n_jobs overridden by random_state" / "precomputed knn cannot transform new data": expected here
        warnings.simplefilter("ignore", UserWarning)
        coords = reducer.fit_transform(x)
    return np.asarray(coords, dtype=np.float64)


def procrustes(moving: np.ndarray, target: np.ndarray) -> np.ndarray:
    """``moving`` (N, 2) rotated/reflected, scaled and shifted onto ``target`` (N, 2) by orthogonal Procrustes:
    ``argmin_{R orthogonal, s, t} ||s (moving − m̄) R + t − target||_F`` (SVD of ``(moving − m̄)ᵀ (target − t̄)``)."""
    a, b = np.asarray(moving, dtype=np.float64), np.asarray(target, dtype=np.float64)
    ma, mb = a.mean(axis=0), b.mean(axis=0)
    a0, b0 = a - ma, b - mb
    u, sv, vt = np.linalg.svd(a0.T @ b0)
    rot = u @ vt
    norm = float((a0 ** 2).sum())
    scale = float(sv.sum()) / norm if norm > 0 else 1.0
    return a0 @ rot * scale + mb


def umap_maps(xs: Sequence[np.ndarray], settings: UMAPSettings) -> list[np.ndarray]:
    """Jointly fitted 2-D maps ``(N, 2)`` of the same ``N`` sentences under each checkpoint (``xs[k]``: its
    ``(N, d_k)`` embeddings): the first fitted alone, each other one started from it and aligned onto it
    (module docstring, step 4). One function, so a cache wraps the whole fit (:func:`umap_maps_cached`)."""
    if not xs:
        return []
    n = {np.asarray(x).shape[0] for x in xs}
    if len(n) != 1:
        raise ValueError(f"every checkpoint's map needs the same sentences, got {sorted(n)} rows")
    first = umap_embed(xs[0], settings)
    return [first] + [procrustes(umap_embed(x, settings, init=first), first) for x in xs[1:]]


def panel(coords: np.ndarray, decimals: int = 4) -> dict[str, list[float]]:
    """``{"x": [...], "y": [...]}`` of a map, rounded for compact JSON."""
    c = np.round(np.asarray(coords, dtype=np.float64), decimals)
    return {"x": c[:, 0].tolist(), "y": c[:, 1].tolist()}


def umap_panel(x: np.ndarray, settings: UMAPSettings, decimals: int = 4) -> dict[str, list[float]]:
    """``{"x": [...], "y": [...]}`` of :func:`umap_embed` (one checkpoint alone), rounded for compact JSON."""
    return panel(umap_embed(x, settings), decimals)


#: Packages whose versions change a fitted map (part of the cache key of :func:`umap_maps_cached`).
UMAP_PACKAGES = ("umap-learn", "numba", "numpy", "scipy", "pynndescent")


def umap_cache_key(xs: Sequence[np.ndarray], settings: UMAPSettings) -> dict[str, Any]:
    """Everything the jointly fitted maps depend on: every checkpoint's input vectors, in order (digests of
    their float32 bytes), the settings that reach the fit (not the colouring), the versions of
    :data:`UMAP_PACKAGES` and the code of this module."""
    import sys
    from importlib import metadata

    from simcse_analysis.cache import array_digest, code_digest

    versions = {}
    for pkg in UMAP_PACKAGES:
        try:
            versions[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            versions[pkg] = None
    fit = {k: v for k, v in settings.to_dict().items() if k != "colour"}
    return {"x": [array_digest(np.asarray(x, dtype=np.float32)) for x in xs],
            "shape": [list(np.shape(x)) for x in xs], "settings": fit, "versions": versions,
            "code": code_digest(sys.modules[__name__])}


def umap_maps_cached(xs: Sequence[np.ndarray], settings: UMAPSettings, cache: Any | None = None,
                     checkpoint: dict[str, Any] | None = None) -> list[np.ndarray]:
    """:func:`umap_maps` through ``cache`` (a :class:`~simcse_analysis.cache.ResultCache`, kind ``umap``, key
    :func:`umap_cache_key`): the same vectors and settings under the same package versions give the same
    coordinates (the fits are seeded), so a rerun reads them instead of fitting again. ``checkpoint`` labels the
    entry for ``simcse-analyze cache``. ``cache=None``: no caching."""
    if cache is None or not xs:
        return umap_maps(xs, settings)
    key = umap_cache_key(xs, settings)
    hit = cache.get("umap", key)
    if isinstance(hit, list) and len(hit) == len(xs):
        maps = [np.asarray(h, dtype=np.float64) for h in hit]
        if all(m.shape == (np.shape(x)[0], 2) for m, x in zip(maps, xs)):
            return maps
    maps = umap_maps(xs, settings)
    cache.put("umap", key, [m.tolist() for m in maps], checkpoint=checkpoint)
    return maps
