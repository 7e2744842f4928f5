"""Anisotropy of an embedding space: how much the vectors crowd into a narrow cone.

Definitions (rows of ``x`` are the N embeddings, ``u_i = x_i / ‖x_i‖``):

- mean pairwise cosine over the N(N−1) ordered distinct pairs, exactly, in O(N·d):
  ``c̄ = (‖Σ_i u_i‖² − N) / (N(N−1))``;
- random-pair cosine (Ethayarajh, EMNLP 2019): the mean of ``cos(x_i, x_j)`` over ``n_pairs`` pairs
  drawn uniformly with ``i ≠ j`` from a seeded generator, with its standard deviation and standard
  error (an unbiased estimate of ``c̄``);
- cosine of STS pairs grouped by gold score: bins ``[0,1), [1,2), [2,3), [3,4), [4,5]`` (SimCSE Fig. G.1);
- partition-function isotropy (Mu & Viswanath, ICLR 2018): ``Z(c) = Σ_i exp(cᵀ x_i)`` and
  ``I(W) = min_c Z(c) / max_c Z(c)`` with ``c`` ranging over the unit eigenvectors of ``WᵀW``
  (``W = x``, raw vectors, uncentred). An eigenvector's sign is arbitrary, so both ``±c`` are used,
  which makes ``I(W)`` well defined (implementations that take one sign get a value ≥ this one: when
  the mean ``μ`` dominates, ``Z(±v_1) ≈ N·exp(±‖μ‖)`` and ``Z ≈ N`` across it, so both signs give
  ``I(W) ≈ exp(−2‖μ‖)``, about the *square* of the one-sign ``exp(−‖μ‖)``).
  ``I(W) ∈ (0, 1]``, 1 for isotropic clouds; computed with log-sum-exp so large norms cannot overflow.
  ``log I(W) = min_c log Z(c) − max_c log Z(c)`` is reported beside it: ``I(W)`` itself underflows to
  ``0.0`` in float64 once ``log I(W) < −745`` (a mean norm around 400), where the log still ranks spaces;
- mean L2 norm of the vectors, and the share of variance on the first principal direction
  ``λ_1 / Σ_k λ_k`` of the covariance.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from ..errors import InputError
from ._checks import ROW_BLOCK, as_pairs, as_points, normalized, random_distinct_pairs, row_norms
from .device import is_lazy
from .isoscore import _pc_variances, isoscore_from_variances
from .spectrum import _gram, eigh_small, sigma_from_gram

DEFAULT_SCORE_EDGES: tuple[float, ...] = (0.0, 1.0, 2.0, 3.0, 4.0, 5.0)

#: The I(W) convention in one sentence, for every table that shows the number.
PARTITION_ISOTROPY_CONVENTION = (
    "I(W) (Mu & Viswanath 2018) takes both signs ±c of each eigenvector of WᵀW (uncentred), so where the mean "
    "vector dominates its value is roughly the square of the one-sign variant's; log I(W) is shown beside it "
    "because I(W) underflows to 0 once log I(W) < −745 (a mean norm around 400).")


def mean_cosine(x: np.ndarray, *, device: Any = None) -> float:
    """Exact mean cosine over all ordered distinct pairs: ``(‖Σ u_i‖² − N) / (N(N−1))``."""
    if device is not None or is_lazy(x):
        from . import device as dev

        rows = dev.Rows(x, device)
        return dev.mean_cosine(rows, rows.nonzero_norms("its cosine is undefined"))
    x = as_points(x, "x", min_rows=2)
    return _mean_cosine(x, _nonzero_norms(x))


def _nonzero_norms(x: np.ndarray) -> np.ndarray:
    norms = row_norms(x)
    zero = np.flatnonzero(norms == 0.0)
    if zero.size:
        raise InputError(f"x: row {int(zero[0])} is the zero vector, whose cosine is undefined")
    return norms


def _mean_cosine(x: np.ndarray, norms: np.ndarray) -> float:
    n = x.shape[0]
    s = np.zeros(x.shape[1], dtype=np.float64)
    for start in range(0, n, ROW_BLOCK):  # Σ u_i in row blocks (no full normalised copy)
        sl = slice(start, start + ROW_BLOCK)
        s += (x[sl].astype(np.float64) / norms[sl, None]).sum(axis=0)
    return float((s @ s - n) / (n * (n - 1)))


@dataclass
class RandomPairCosine:
    """Cosine of random distinct pairs (Ethayarajh 2019): sample mean/std/stderr and the exact mean."""

    mean: float
    std: float
    stderr: float
    n_pairs: int
    seed: int
    exact_mean: float

    def to_dict(self) -> dict:
        return asdict(self)


def random_pair_cosine(x: np.ndarray, n_pairs: int = 10_000, seed: int = 0, *, device: Any = None
                       ) -> RandomPairCosine:
    """Mean cosine of ``n_pairs`` random pairs ``(i, j)``, ``i ≠ j`` uniform, from ``default_rng(seed)``.

    ``stderr = std / √n_pairs``; ``exact_mean`` is the all-pairs mean of :func:`mean_cosine`, which the
    sample mean estimates without bias. ``device`` (or a tensor / store): computed in torch there.
    """
    if n_pairs < 2:
        raise InputError(f"n_pairs must be >= 2, got {n_pairs}")
    if device is not None or is_lazy(x):
        from . import device as dev

        rows = dev.Rows(x, device)
        return _random_pair_cosine_rows(rows, rows.nonzero_norms("its cosine is undefined"), n_pairs, seed)
    x = as_points(x, "x", min_rows=2)
    return _random_pair_cosine(x, _nonzero_norms(x), n_pairs, seed)


def _random_pair_cosine_rows(rows: Any, norms: Any, n_pairs: int, seed: int) -> RandomPairCosine:
    from . import device as dev

    cos = dev.pair_cosines_random(rows, norms, n_pairs, seed)
    std = float(cos.std(ddof=1))
    return RandomPairCosine(mean=float(cos.mean()), std=std, stderr=std / math.sqrt(n_pairs),
                            n_pairs=int(n_pairs), seed=int(seed), exact_mean=dev.mean_cosine(rows, norms))


def _random_pair_cosine(x: np.ndarray, norms: np.ndarray, n_pairs: int, seed: int) -> RandomPairCosine:
    i, j = random_distinct_pairs(x.shape[0], n_pairs, seed)
    cos = np.empty(n_pairs, dtype=np.float64)
    for start in range(0, n_pairs, ROW_BLOCK):
        sl = slice(start, start + ROW_BLOCK)
        a, b = i[sl], j[sl]
        cos[sl] = np.einsum("ij,ij->i", x[a].astype(np.float64), x[b]) / (norms[a] * norms[b])
    std = float(cos.std(ddof=1))
    return RandomPairCosine(mean=float(cos.mean()), std=std, stderr=std / math.sqrt(n_pairs),
                            n_pairs=int(n_pairs), seed=int(seed), exact_mean=_mean_cosine(x, norms))


def pair_cosines(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """``cos(x_i, y_i)`` for row-aligned pairs, float64 ``(N,)``."""
    a, b = as_pairs(x, y, ("x", "y"))
    return np.einsum("ij,ij->i", normalized(a, "x"), normalized(b, "y"))


@dataclass
class CosineBin:
    """Cosines of the pairs whose gold score falls in ``[lo, hi)`` (``[lo, hi]`` for the last bin).

    ``quartiles`` is ``[min, q1, median, q3, max]``; it, ``mean`` and ``std`` are ``None`` for an empty bin.
    """

    label: str
    lo: float
    hi: float
    n: int
    mean: float | None
    std: float | None
    quartiles: list[float] | None
    cosines: list[float] = field(default_factory=list)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> CosineBin:
        return cls(**d)


def cosine_by_score_bin(x: np.ndarray, y: np.ndarray, scores: Sequence[float],
                        edges: Sequence[float] = DEFAULT_SCORE_EDGES) -> list[CosineBin]:
    """Cosine similarity of the pairs ``(x_i, y_i)`` grouped by gold ``scores`` into bins between ``edges``.

    Bin k holds ``edges[k] ≤ score < edges[k+1]``; the last bin also includes its upper edge. Scores
    outside ``[edges[0], edges[-1]]`` are ignored.
    """
    cos = pair_cosines(x, y)
    s = np.asarray(scores, dtype=np.float64)
    if s.shape != (cos.shape[0],):
        raise InputError(f"scores: expected {cos.shape[0]} values (one per pair), got shape {s.shape}")
    if not np.isfinite(s).all():
        raise InputError("scores: holds NaN or inf")
    e = [float(v) for v in edges]
    if len(e) < 2 or any(b <= a for a, b in itertools.pairwise(e)):
        raise InputError(f"edges must be at least two increasing numbers, got {list(edges)}")
    bins = []
    for k, (lo, hi) in enumerate(itertools.pairwise(e)):
        last = k == len(e) - 2
        mask = (s >= lo) & ((s <= hi) if last else (s < hi))
        c = cos[mask]
        label = f"{lo:g}-{hi:g}"
        if c.size == 0:
            bins.append(CosineBin(label, lo, hi, 0, None, None, None, []))
            continue
        q = np.quantile(c, [0.0, 0.25, 0.5, 0.75, 1.0])
        bins.append(CosineBin(label, lo, hi, int(c.size), float(c.mean()),
                              float(c.std(ddof=1)) if c.size > 1 else 0.0,
                              [float(v) for v in q], [float(v) for v in c]))
    return bins


def partition_isotropy(x: np.ndarray, *, device: Any = None) -> float:
    """Mu & Viswanath (2018) ``I(W) = min_c Z(c) / max_c Z(c)``, ``Z(c) = Σ_i exp(cᵀ w_i)``, ``c ∈ {±v_k}``.

    ``v_k`` are the unit eigenvectors of ``WᵀW`` (float64). ``log Z`` is accumulated over row blocks by
    log-sum-exp, and ``I = exp(min log Z − max log Z)`` (0.0 once that exponent is below about −745:
    see :func:`log_partition_isotropy`).
    """
    return math.exp(log_partition_isotropy(x, device=device))


def log_partition_isotropy(x: np.ndarray, *, device: Any = None) -> float:
    """``log I(W) = min_c log Z(c) − max_c log Z(c)`` (≤ 0), finite for any norms; see :func:`partition_isotropy`."""
    if device is not None or is_lazy(x):
        from . import device as dev

        rows = dev.Rows(x, device)
        rows.norms()
        _, vecs = eigh_small(dev.gram(None, rows=rows), vectors=True)
        log_z = dev.log_partition(rows, vecs)
        return float(log_z.min() - log_z.max())
    x = as_points(x, "x", min_rows=2)
    return _log_partition_isotropy(x, _gram(x, center=False))


def _log_partition_isotropy(x: np.ndarray, gram_uncentered: np.ndarray) -> float:
    from scipy.special import logsumexp

    _, vecs = eigh_small(gram_uncentered, vectors=True)
    d = vecs.shape[1]
    log_z = np.full(2 * d, -np.inf)
    for start in range(0, x.shape[0], ROW_BLOCK):
        p = x[start:start + ROW_BLOCK].astype(np.float64) @ vecs  # (B, d): c_kᵀ w_i
        block = np.concatenate([logsumexp(p, axis=0), logsumexp(-p, axis=0)])
        log_z = np.logaddexp(log_z, block)
    return float(log_z.min() - log_z.max())


def mean_norm(x: np.ndarray) -> float:
    """Mean Euclidean norm ``(1/N) Σ_i ‖x_i‖₂`` (float64)."""
    x = as_points(x, "x", min_rows=1)
    return float(row_norms(x).mean())


def first_pc_variance_share(x: np.ndarray) -> float:
    """Share of the total variance on the first principal direction, ``λ_1 / Σ_k λ_k`` (covariance)."""
    x = as_points(x, "x", min_rows=2)
    return _first_pc_share(_pc_variances(x))


def _first_pc_share(var: np.ndarray) -> float:
    total = float(var.sum())
    if total <= 0:
        raise InputError("x: all embeddings are identical, so there is no variance to share")
    return float(var[0] / total)


@dataclass
class AnisotropySummary:
    """One-number anisotropy summaries of one embedding matrix (JSON-ready via :meth:`to_dict`)."""

    n_points: int
    dim: int
    random_pair_cosine: float
    random_pair_cosine_std: float
    random_pair_cosine_stderr: float
    mean_cosine_all_pairs: float
    n_pairs: int
    seed: int
    isoscore: float | None  # None when the points have no spread (e.g. layer 0's [CLS] vector)
    partition_isotropy: float
    mean_norm: float
    norm_std: float
    first_pc_variance_share: float | None  # None when the points have no spread
    log_partition_isotropy: float | None = None  # log I(W); None only in records written before it existed

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> AnisotropySummary:
        return cls(**d)


def anisotropy_summary(x: np.ndarray, *, n_pairs: int = 10_000, seed: int = 0, device: Any = None
                       ) -> AnisotropySummary:
    """Every summary of the module docstring for ``x`` (``(N, d)``, N ≥ 2, d ≥ 2), sharing the work.

    IsoScore and the first-PC share come from the centred covariance's eigenvalues; the random pairs
    use ``default_rng(seed)``. Both are undefined (``None``) when the points have no spread — total
    variance below ``1e-12`` of the mean squared norm, as for the embedding layer's [CLS] vector, which
    is the same for every sentence. ``device`` (or a tensor / store input): the passes over the rows run
    in torch on that device (:mod:`.device`); eigenproblems stay on the CPU.
    """
    if device is not None or is_lazy(x):
        return _anisotropy_summary_rows(x, n_pairs, seed, device)
    x = as_points(x, "x", min_rows=2)
    if x.shape[1] < 2:
        raise InputError("x: anisotropy needs at least two dimensions")
    if n_pairs < 2:
        raise InputError(f"n_pairs must be >= 2, got {n_pairs}")
    norms = _nonzero_norms(x)
    rpc = _random_pair_cosine(x, norms, n_pairs, seed)
    var = _pc_variances(x)
    spread = float(var.sum()) > 1e-12 * float(np.mean(norms ** 2))
    log_iw = _log_partition_isotropy(x, _gram(x))
    return AnisotropySummary(
        n_points=int(x.shape[0]), dim=int(x.shape[1]),
        random_pair_cosine=rpc.mean, random_pair_cosine_std=rpc.std, random_pair_cosine_stderr=rpc.stderr,
        mean_cosine_all_pairs=rpc.exact_mean, n_pairs=rpc.n_pairs, seed=rpc.seed,
        isoscore=isoscore_from_variances(var) if spread else None,
        partition_isotropy=math.exp(log_iw),
        mean_norm=float(norms.mean()), norm_std=float(norms.std()),
        first_pc_variance_share=_first_pc_share(var) if spread else None,
        log_partition_isotropy=log_iw,
    )


def _anisotropy_summary_rows(x: Any, n_pairs: int, seed: int, device: Any) -> AnisotropySummary:
    """:func:`anisotropy_summary` through the torch passes of :mod:`.device`."""
    from . import device as dev

    rows = dev.Rows(x, device)
    if rows.d < 2:
        raise InputError("x: anisotropy needs at least two dimensions")
    if n_pairs < 2:
        raise InputError(f"n_pairs must be >= 2, got {n_pairs}")
    norms_t = rows.nonzero_norms("its cosine is undefined")
    rpc = _random_pair_cosine_rows(rows, norms_t, n_pairs, seed)
    norms = norms_t.cpu().numpy()
    sigma = sigma_from_gram(dev.gram(None, center=True, rows=rows), rows.n, rows.d)
    var = np.zeros(rows.d, dtype=np.float64)
    var[: sigma.size] = sigma ** 2 / (rows.n - 1)
    spread = float(var.sum()) > 1e-12 * float(np.mean(norms ** 2))
    _, vecs = eigh_small(dev.gram(None, rows=rows), vectors=True)
    log_z = dev.log_partition(rows, vecs)
    return AnisotropySummary(
        n_points=rows.n, dim=rows.d,
        random_pair_cosine=rpc.mean, random_pair_cosine_std=rpc.std, random_pair_cosine_stderr=rpc.stderr,
        mean_cosine_all_pairs=rpc.exact_mean, n_pairs=rpc.n_pairs, seed=rpc.seed,
        isoscore=isoscore_from_variances(var) if spread else None,
        partition_isotropy=float(math.exp(log_z.min() - log_z.max())),
        mean_norm=float(norms.mean()), norm_std=float(norms.std()),
        first_pc_variance_share=_first_pc_share(var) if spread else None,
        log_partition_isotropy=float(log_z.min() - log_z.max()),
    )
