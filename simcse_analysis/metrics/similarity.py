"""Representational similarity of two embeddings of the same sentences: linear CKA and kNN overlap.

Rows are the same N sentences in both matrices ``X (N, d₁)`` and ``Y (N, d₂)``; the widths may differ.

* **Linear CKA** (Kornblith et al., ICML 2019), with column-centred ``X̄, Ȳ``::

      CKA(X, Y) = ‖Ȳᵀ X̄‖²_F / (‖X̄ᵀ X̄‖_F ‖Ȳᵀ Ȳ‖_F)   ∈ [0, 1]

  — the feature-space form of ``HSIC(K, L) / sqrt(HSIC(K, K) HSIC(L, L))`` with linear kernels
  ``K = XXᵀ``, ``L = YYᵀ`` and ``HSIC(K, L) = tr(KHLH)/(N−1)²``. Invariant to orthogonal transforms and
  isotropic scaling of either side (not to arbitrary invertible linear maps).
* **Debiased CKA**: the same ratio with the unbiased HSIC estimator of Song et al. (JMLR 2012), which
  removes the positive bias of the plain estimator at small N (relative to the width)::

      HSIC₁(K, L) = [tr(K̃L̃) + (1ᵀK̃1)(1ᵀL̃1)/((N−1)(N−2)) − 2/(N−2) · 1ᵀK̃L̃1] / (N(N−3))

  with ``K̃`` = K with its diagonal set to 0. For linear kernels every term is computed in feature
  space (``tr(K̃L̃) = ‖YᵀX‖²_F − Σ_i ‖x_i‖²‖y_i‖²`` …), so memory stays O(N·d), never O(N²).
* **Mutual kNN overlap** (Jaccard@k): for each sentence i, the sets ``N_X(i)``, ``N_Y(i)`` of its k
  nearest other sentences by cosine similarity in each space;
  ``J = (1/N) Σ_i |N_X(i) ∩ N_Y(i)| / |N_X(i) ∪ N_Y(i)|`` ∈ [0, 1].
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ..errors import InputError
from ._checks import ROW_BLOCK, as_points, normalized


def _centred(x: np.ndarray) -> np.ndarray:
    """Columns centred in float64; all zeros when the rows are one repeated vector (to rounding: the
    centred energy ≤ 1e-20 of the raw), e.g. layer 0 of the [CLS] position, which is the same for every input."""
    x = x.astype(np.float64, copy=True)
    raw = float(np.sum(x * x))
    x -= x.mean(axis=0, keepdims=True)
    if float(np.sum(x * x)) <= 1e-20 * raw:
        x[:] = 0.0
    return x


def _same_rows(x: object, y: object, names: tuple[str, str] = ("x", "y"), min_rows: int = 2
               ) -> tuple[np.ndarray, np.ndarray]:
    a = as_points(x, names[0], min_rows=min_rows)
    b = as_points(y, names[1], min_rows=min_rows)
    _check_same_n(a.shape[0], b.shape[0], names)
    return a, b


def _check_same_n(na: int, nb: int, names: tuple[str, str] = ("x", "y")) -> None:
    if na != nb:
        raise InputError(f"{names[0]} has {na} rows and {names[1]} {nb}: CKA and kNN overlap need "
                         "the same sentences (rows) in both")


def _hsic_unbiased_terms(x: np.ndarray, y: np.ndarray, cross: np.ndarray) -> float:
    """Unbiased HSIC₁ of linear kernels from features (``cross = yᵀx``)."""
    n = x.shape[0]
    kd = np.einsum("ij,ij->i", x, x)  # diag K
    ld = np.einsum("ij,ij->i", y, y)
    tr = float(np.sum(cross * cross)) - float(kd @ ld)  # tr(K̃L̃)
    k1 = x @ x.sum(axis=0) - kd  # K̃1
    l1 = y @ y.sum(axis=0) - ld
    sk, sl = float(k1.sum()), float(l1.sum())
    return (tr + sk * sl / ((n - 1) * (n - 2)) - 2.0 / (n - 2) * float(k1 @ l1)) / (n * (n - 3))


def linear_cka(x: np.ndarray, y: np.ndarray, *, debiased: bool = False) -> float:
    """Linear CKA of ``X (N, d₁)`` and ``Y (N, d₂)`` (same sentences by row); ``debiased`` uses HSIC₁.

    Computed in float64 in feature space (O(N·d₁·d₂)). NaN (undefined) when either side is constant.
    """
    a, b = _same_rows(x, y, min_rows=4 if debiased else 2)
    a, b = _centred(a), _centred(b)
    if debiased:
        num = _hsic_unbiased_terms(a, b, b.T @ a)
        den = _hsic_unbiased_terms(a, a, a.T @ a) * _hsic_unbiased_terms(b, b, b.T @ b)
    else:
        num = float(np.sum((b.T @ a) ** 2))
        den = float(np.sum((a.T @ a) ** 2)) * float(np.sum((b.T @ b) ** 2))
    return math.nan if den <= 0 else num / float(np.sqrt(den))


def cka_matrix(xs: Sequence[np.ndarray], ys: Sequence[np.ndarray], *, debiased: bool = False) -> np.ndarray:
    """``M[i, j] = CKA(xs[i], ys[j])`` (e.g. every layer of model A against every layer of model B).

    Each side is centred once and its self-similarity ``‖X̄ᵀX̄‖_F`` computed once, so the cost is one
    ``d₁ × d₂`` cross product per cell.
    """
    return _cka_cells(xs, ys, debiased=debiased)[0]


@dataclass(frozen=True)
class CKASide:
    """One side of a layer-by-layer CKA, prepared once: the column-centred float64 layers ``X̄``, their Grams
    ``X̄ᵀX̄`` and both self-similarities (plain ``‖X̄ᵀX̄‖²_F`` and unbiased HSIC₁). :func:`cka_side` builds it;
    :func:`layer_cka` takes it in place of the raw layers (compare's baseline, against every other model)."""

    centred: list[np.ndarray]
    grams: list[np.ndarray]
    plain: list[float]
    unbiased: list[float]


def cka_side(xs: Sequence[np.ndarray], *, rows: int = 4) -> CKASide:
    """:class:`CKASide` of the layers ``xs`` (each ``(N, dᵢ)``, the same N; at least ``rows`` rows)."""
    if not xs:
        raise InputError("cka_matrix needs at least one representation on each side")
    centred = [_centred(_same_rows(x, xs[0], ("x", "x"), rows)[0]) for x in xs]
    grams = [c.T @ c for c in centred]
    n = centred[0].shape[0]  # HSIC₁ divides by N(N − 3): undefined below 4 rows
    unbiased = [_hsic_unbiased_terms(c, c, g) if n >= 4 else math.nan for c, g in zip(centred, grams)]
    return CKASide(centred, grams, [float(np.sum(g * g)) for g in grams], unbiased)


def layer_cka(xs: Sequence[np.ndarray] | CKASide, ys: Sequence[np.ndarray] | CKASide
              ) -> tuple[np.ndarray, list[float]]:
    """``(cka_matrix(xs, ys), [linear_cka(x, y, debiased=True) for x, y in zip(xs, ys)])`` — the layer-by-layer
    CKA and the debiased CKA of matching layers — sharing the centring and cross products (the diagonal
    cells' ``ȲᵀX̄`` and each side's ``X̄ᵀX̄`` serve both estimators). Either side may be a :func:`cka_side`."""
    return _cka_cells(xs, ys, debiased=False, debiased_diagonal=True)


def _cka_cells(xs: Sequence[np.ndarray] | CKASide, ys: Sequence[np.ndarray] | CKASide, *, debiased: bool,
               debiased_diagonal: bool = False) -> tuple[np.ndarray, list[float]]:
    rows = 4 if debiased or debiased_diagonal else 2
    a_side = xs if isinstance(xs, CKASide) else cka_side(xs, rows=rows)
    b_side = ys if isinstance(ys, CKASide) else cka_side(ys, rows=rows)
    ca, cb = a_side.centred, b_side.centred
    _check_same_n(ca[0].shape[0], cb[0].shape[0])
    sa, sb = (a_side.unbiased, b_side.unbiased) if debiased else (a_side.plain, b_side.plain)
    ua, ub = a_side.unbiased, b_side.unbiased
    out = np.full((len(ca), len(cb)), math.nan)  # NaN where a side is constant (CKA undefined)
    diagonal = [math.nan] * min(len(ca), len(cb)) if debiased_diagonal else []
    for i, a in enumerate(ca):
        for j, b in enumerate(cb):
            need_cell = sa[i] * sb[j] > 0
            need_diag = debiased_diagonal and i == j and ua[i] * ub[j] > 0
            if not (need_cell or need_diag):
                continue
            cross = b.T @ a
            if need_cell:
                num = _hsic_unbiased_terms(a, b, cross) if debiased else float(np.sum(cross * cross))
                out[i, j] = num / float(np.sqrt(sa[i] * sb[j]))
            if need_diag:
                diagonal[i] = _hsic_unbiased_terms(a, b, cross) / float(np.sqrt(ua[i] * ub[j]))
    return out, diagonal


def knn_indices(x: np.ndarray, k: int = 10) -> np.ndarray:
    """``(N, k)`` indices of each row's k nearest *other* rows by cosine similarity (blocked, O(N·k) memory
    plus one ``ROW_BLOCK × N`` float32 block). The order within a row is unspecified; among exactly tied
    similarities at the k-th place, which index is kept is unspecified too."""
    import torch

    u = normalized(as_points(x, "x", min_rows=2), "x", dtype=np.float32)
    n = u.shape[0]
    k = check_k(k, n)
    t = torch.from_numpy(np.ascontiguousarray(u))
    out = np.empty((n, k), dtype=np.int64)
    block = max(1, min(ROW_BLOCK, (1 << 26) // max(n, 1)))
    with torch.no_grad():
        for start in range(0, n, block):
            sim = t[start:start + block] @ t.T
            rows = torch.arange(sim.shape[0])
            sim[rows, start + rows] = -math.inf  # never one's own neighbour
            # torch's topk runs on every thread, NumPy's argpartition on one: 15,437 × 384 took 3.3 s here
            # against 5.7 s with argpartition (2 cores); a 4,347-row block's topk alone takes 0.05 s
            out[start:start + block] = torch.topk(sim, k, dim=1, sorted=False).indices.numpy()
    return out


def check_k(k: int, n: int) -> int:
    """``k`` as int, or InputError unless ``1 ≤ k < N`` (each point has N − 1 others)."""
    k = int(k)
    if not 1 <= k < n:
        raise InputError(f"--k must be between 1 and N - 1 = {n - 1} for {n} sentences (got {k}): "
                         "each sentence has only N - 1 neighbours")
    return k


def knn_jaccard(x: np.ndarray, y: np.ndarray, k: int = 10) -> float:
    """Mean Jaccard overlap of the k-nearest-neighbour sets of each sentence in ``X`` and in ``Y``."""
    a, b = _same_rows(x, y)
    k = check_k(k, a.shape[0])
    return knn_sets_jaccard(knn_indices(a, k), knn_indices(b, k))


def knn_sets_jaccard(na: np.ndarray, nb: np.ndarray) -> float:
    """``(1/N) Σ_i |A_i ∩ B_i| / |A_i ∪ B_i|`` for two ``(N, k)`` index arrays of :func:`knn_indices` (each
    row's k indices distinct), so that one space's neighbours can be reused against several others."""
    if na.shape != nb.shape or na.ndim != 2:
        raise InputError(f"neighbour sets must have the same (N, k) shape, got {na.shape} and {nb.shape}")
    k = na.shape[1]
    both = np.sort(np.concatenate([na, nb], axis=1), axis=1)
    inter = (both[:, 1:] == both[:, :-1]).sum(axis=1)  # a shared index appears twice (each set has distinct ids)
    return float(np.mean(inter / (2 * k - inter)))
