"""2-D UMAP maps of sentence embeddings (umap-learn), deterministic for a given seed.

Method, per checkpoint (maps of different checkpoints are separate fits; their coordinates are not
comparable, so checkpoints of different dimensions are fine):

1. the same seeded subsample of at most ``n_sentences`` sentences for every checkpoint
   (:func:`subsample`: ``default_rng(seed).choice`` without replacement, sorted);
2. exact k-nearest neighbours by cosine distance ``1 − cos(x_i, x_j)`` (:func:`cosine_knn`, blocked
   matrix products; each point is its own first neighbour at distance 0, as UMAP expects). Exact search
   on ≤ a few thousand points costs well under a second and replaces pynndescent's approximate search;
3. ``umap.UMAP(n_neighbors, min_dist, metric="cosine", random_state=seed, precomputed_knn=…)``. A fixed
   ``random_state`` makes umap-learn run single-threaded and reproducible.

umap-learn compiles its numba kernels on first use in every process (~10–30 s); :func:`_cache_numba_kernels`
turns on numba's on-disk cache for the kernels a fit uses, so only the first fit on a machine pays that.
"""

from __future__ import annotations

import contextlib
import warnings
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from simcse_analysis.errors import InputError

#: Smallest number of sentences a map is drawn for.
MIN_SENTENCES = 5


@dataclass
class UMAPSettings:
    """What determines a map besides the embeddings (recorded in the report JSON)."""

    n_sentences: int = 3000
    n_neighbors: int = 15
    min_dist: float = 0.1
    n_epochs: int = 200
    seed: int = 0
    colour: str = "bin"  # "bin": gold-rating bin of STS-B sentences; "corpus": STS task of the sentence

    def __post_init__(self) -> None:
        if self.n_sentences < MIN_SENTENCES:
            raise InputError(f"--umap-sentences must be at least {MIN_SENTENCES}, got {self.n_sentences}")
        if self.n_neighbors < 2:
            raise InputError(f"UMAP n_neighbors must be at least 2, got {self.n_neighbors}")
        if self.colour not in ("bin", "corpus"):
            raise InputError(f"--umap-colour {self.colour!r}: choose bin (gold rating) or corpus (STS task)")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> UMAPSettings:
        return cls(**{k: d[k] for k in cls.__dataclass_fields__ if k in d})


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


def umap_embed(x: np.ndarray, settings: UMAPSettings) -> np.ndarray:
    """2-D UMAP coordinates ``(N, 2)`` float64 of the rows of ``x`` (cosine metric, seeded)."""
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
                        init="spectral" if n > k + 2 else "random", verbose=False)
    with warnings.catch_warnings():
        # "n_jobs overridden by random_state" / "precomputed knn cannot transform new data": expected here
        warnings.simplefilter("ignore", UserWarning)
        coords = reducer.fit_transform(x)
    return np.asarray(coords, dtype=np.float64)


#: Packages whose versions change a fitted map (part of the cache key of :func:`umap_embed_cached`).
UMAP_PACKAGES = ("umap-learn", "numba", "numpy", "scipy", "pynndescent")


def umap_cache_key(x: np.ndarray, settings: UMAPSettings) -> dict[str, Any]:
    """Everything a map depends on: the input vectors (digest of their float32 bytes), the settings that reach
    the fit (not the colouring), the versions of :data:`UMAP_PACKAGES` and the code of this module."""
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
    return {"x": array_digest(np.asarray(x, dtype=np.float32)), "shape": list(np.shape(x)), "settings": fit,
            "versions": versions, "code": code_digest(sys.modules[__name__])}


def umap_embed_cached(x: np.ndarray, settings: UMAPSettings, cache: Any | None = None,
                      checkpoint: dict[str, Any] | None = None) -> np.ndarray:
    """:func:`umap_embed` through ``cache`` (a :class:`~simcse_analysis.cache.ResultCache`, kind ``umap``, key
    :func:`umap_cache_key`): the same vectors and settings under the same package versions give the same
    coordinates (the fit is seeded), so a rerun reads them instead of fitting again. ``checkpoint`` labels the
    entry for ``simcse-analyze cache``. ``cache=None``: no caching."""
    if cache is None:
        return umap_embed(x, settings)
    key = umap_cache_key(x, settings)
    hit = cache.get("umap", key)
    if hit is not None:
        coords = np.asarray(hit, dtype=np.float64)
        if coords.shape == (np.shape(x)[0], 2):
            return coords
    coords = umap_embed(x, settings)
    cache.put("umap", key, coords.tolist(), checkpoint=checkpoint)
    return coords


def umap_panel(x: np.ndarray, settings: UMAPSettings, decimals: int = 4, cache: Any | None = None,
               checkpoint: dict[str, Any] | None = None) -> dict[str, list[float]]:
    """``{"x": [...], "y": [...]}`` of :func:`umap_embed` (through ``cache``: :func:`umap_embed_cached`),
    rounded for compact JSON."""
    coords = np.round(umap_embed_cached(x, settings, cache, checkpoint), decimals)
    return {"x": coords[:, 0].tolist(), "y": coords[:, 1].tolist()}
