"""Singular-value spectrum of an embedding matrix and its one-number summaries.

For ``X ∈ R^{N×d}`` (rows = points) with singular values ``σ_1 ≥ … ≥ σ_r ≥ 0`` (``r = min(N, d)``;
centred: of ``X − 1μᵀ``, where ``μ`` is the row mean):

- normalised spectrum ``σ_k / σ_1`` (as plotted in SimCSE's Fig. F.1);
- effective rank (Roy & Vetterli, EUSIPCO 2007): ``erank = exp(H(p))`` with ``p_k = σ_k / Σ_j σ_j`` and
  ``H(p) = −Σ_k p_k ln p_k`` (``0 ln 0 = 0``); ``1 ≤ erank ≤ r``;
- stable rank ``‖X‖_F² / ‖X‖_2² = Σ_k σ_k² / σ_1²``;
- explained variance of the top-k directions ``Σ_{j≤k} σ_j² / Σ_j σ_j²`` (for the centred matrix these
  are the principal components and this is PCA's cumulative explained-variance ratio);
- condition number ``σ_1 / σ_r`` — reported as ``inf`` when ``σ_r`` is below the resolution of the
  method, ``σ_1·sqrt(d·ε₆₄)``; ``numerical_rank`` counts the singular values above that threshold.

Method: the d×d Gram matrix ``XᵀX`` is accumulated in float64 over row blocks (BLAS ``dsyrk``, half the
flops of a general product), then diagonalised (``eigh``): ``σ_k = sqrt(λ_k(XᵀX))``. This costs
``N·d²`` flops and O(d²) extra memory instead of an ``N×d`` SVD. Singular values below about
``σ_1·sqrt(ε₆₄) ≈ 1.5e-8·σ_1`` are not resolved this way, far below what float32 embeddings carry.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from ..errors import InputError
from ._checks import as_points, column_mean
from .device import is_lazy

#: Rows per block for the Gram accumulation (float64 block of 4096 × 768 = 24 MiB).
GRAM_BLOCK = 4096
DEFAULT_TOP_K: tuple[int, ...] = (1, 2, 5, 10, 20, 50, 100)


def gram(x: np.ndarray, *, center: bool = False, block_size: int = GRAM_BLOCK, device: Any = None) -> np.ndarray:
    """``XᵀX`` (or ``(X − 1μᵀ)ᵀ(X − 1μᵀ)`` when ``center``) in float64, ``(d, d)``, symmetric.

    Rows are converted to float64 (and centred) block by block, so memory is O(d² + block·d).
    ``device`` (or a tensor / store input): accumulated in torch on that device (:mod:`.device`).
    """
    if device is not None or is_lazy(x):
        from . import device as dev

        rows = dev.Rows(x, device, min_rows=1)
        rows.norms()  # finiteness
        return dev.gram(None, center=center, block_size=block_size, rows=rows)
    return _gram(as_points(x, "x", min_rows=1), center, block_size)


def _gram(x: np.ndarray, center: bool = False, block_size: int = GRAM_BLOCK) -> np.ndarray:
    from scipy.linalg.blas import dsyrk

    mu = column_mean(x) if center else None
    d = x.shape[1]
    g = np.zeros((d, d), dtype=np.float64, order="F")
    for start in range(0, x.shape[0], block_size):
        block = x[start:start + block_size].astype(np.float64)
        if mu is not None:
            block -= mu
        # C := 1·AᵀA + 1·C on the upper triangle (trans=1: A is rows × d)
        g = dsyrk(1.0, block, beta=1.0, c=g, trans=1, lower=0, overwrite_c=1)
    g = np.triu(g)
    return g + np.triu(g, 1).T


def singular_values(x: np.ndarray, *, center: bool = False, device: Any = None) -> np.ndarray:
    """Singular values of ``X`` (centred rows if ``center``), descending, ``min(N, d)`` of them, float64.

    ``σ_k = sqrt(max(λ_k, 0))`` with ``λ_k`` the eigenvalues of the float64 Gram matrix (see module doc).
    """
    if device is not None or is_lazy(x):
        return sigma_from_gram(gram(x, center=center, device=device), *x.shape)
    return _singular_values(as_points(x, "x", min_rows=1), center)


def eigh_small(a: np.ndarray, *, vectors: bool = False):
    """Eigen-decomposition of a small symmetric float64 matrix (ascending), on one BLAS thread.

    LAPACK's tridiagonal eigensolvers gain nothing from threads at d ≲ 2000, and multi-threaded
    OpenBLAS can be 20–50× slower on a busy machine (spinning threads), so the pool is pinned to 1.
    """
    from scipy.linalg import eigh
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1, user_api="blas"):
        return eigh(a, eigvals_only=not vectors, driver="evd", check_finite=False)


def _singular_values(x: np.ndarray, center: bool) -> np.ndarray:
    return sigma_from_gram(_gram(x, center), *x.shape)


def sigma_from_gram(g: np.ndarray, n: int, d: int) -> np.ndarray:
    """The ``min(n, d)`` singular values (descending) of an ``n×d`` matrix whose Gram matrix is ``g``."""
    lam = eigh_small(g)[::-1]
    return np.sqrt(np.clip(lam[:min(n, d)], 0.0, None))


def effective_rank(sigma: np.ndarray) -> float:
    """Roy & Vetterli (2007) effective rank ``exp(−Σ p_k ln p_k)``, ``p_k = σ_k / Σ σ_j`` (L1-normalised)."""
    s = np.asarray(sigma, dtype=np.float64)
    total = s.sum()
    if total <= 0:
        raise InputError("effective rank is undefined for an all-zero matrix")
    p = s[s > 0] / total
    return float(math.exp(-np.sum(p * np.log(p))))


def stable_rank(sigma: np.ndarray) -> float:
    """Stable rank ``Σ σ_k² / σ_1²`` (= ‖X‖_F² / ‖X‖_2²), in ``[1, rank]``."""
    s = np.asarray(sigma, dtype=np.float64)
    top = s.max()
    if top <= 0:
        raise InputError("stable rank is undefined for an all-zero matrix")
    return float(np.sum((s / top) ** 2))


def explained_variance(sigma: np.ndarray) -> np.ndarray:
    """Cumulative share ``Σ_{j≤k} σ_j² / Σ_j σ_j²`` for k = 1..r (float64, ends at 1)."""
    s2 = np.asarray(sigma, dtype=np.float64) ** 2
    total = s2.sum()
    if total <= 0:
        raise InputError("explained variance is undefined for an all-zero matrix")
    return np.cumsum(s2) / total


@dataclass
class Spectrum:
    """Spectrum of one embedding matrix and its summaries (JSON-ready via :meth:`to_dict`).

    ``singular_values`` are normalised so the largest is 1; ``sigma_max`` is the scale removed.
    ``explained_variance_top_k`` maps k (as a string, for JSON; only k ≤ r) to the cumulative share of
    the top k.
    ``condition_number`` is ``None`` (JSON ``null``) when infinite, i.e. ``numerical_rank < r``.
    """

    centered: bool
    n_points: int
    dim: int
    sigma_max: float
    singular_values: list[float]
    effective_rank: float
    stable_rank: float
    condition_number: float | None
    numerical_rank: int
    explained_variance_top_k: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> Spectrum:
        return cls(**d)


def spectrum(x: np.ndarray, *, center: bool = False, top_k: tuple[int, ...] = DEFAULT_TOP_K,
             device: Any = None) -> Spectrum:
    """Singular-value spectrum of ``x`` (``(N, d)``, N ≥ 2) with every summary in the module docstring.

    ``device`` (or a tensor / store input): the Gram matrix is accumulated in torch there (:mod:`.device`).
    """
    if device is not None or is_lazy(x):
        from .device import Rows

        Rows(x, device, min_rows=2)  # shape checks before the pass over the rows
        sigma = singular_values(x, center=center, device=device)
    else:
        x = as_points(x, "x", min_rows=2)
        sigma = _singular_values(x, center)
    top = float(sigma[0])
    if top <= 0:
        raise InputError("x: every embedding is zero" if not center else
                         "x: all embeddings are identical, so the centred matrix is zero")
    tol = top * math.sqrt(x.shape[1] * np.finfo(np.float64).eps)
    rank = int(np.sum(sigma > tol))
    cond = top / float(sigma[-1]) if rank == len(sigma) else None
    cum = explained_variance(sigma)
    ks = sorted({int(k) for k in top_k if 1 <= k <= len(sigma)})
    return Spectrum(
        centered=center, n_points=int(x.shape[0]), dim=int(x.shape[1]), sigma_max=top,
        singular_values=(sigma / top).tolist(), effective_rank=effective_rank(sigma),
        stable_rank=stable_rank(sigma), condition_number=cond, numerical_rank=rank,
        explained_variance_top_k={str(k): min(float(cum[k - 1]), 1.0) for k in ks},
    )
