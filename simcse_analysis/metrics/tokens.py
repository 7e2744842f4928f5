"""Token-level geometry: contextual anisotropy (Ethayarajh, EMNLP 2019) and the degeneration of the static
token-embedding matrix (Gao et al., ICLR 2019; Li et al., EMNLP 2020).

Contextual measures, on the representations ``f_l(s, i)`` of token ``i`` of sentence ``s`` at layer ``l``
(``u = f / ‖f‖``):

- **baseline anisotropy** ``A_l``: expected cosine of a random token from each of two *different* random
  sentences (Ethayarajh's sampling: a sentence uniformly, then one of its tokens uniformly). Exactly,
  with ``ū_s`` the mean unit vector of sentence ``s``'s tokens and ``S`` sentences,
  ``A_l = (‖Σ_s ū_s‖² − Σ_s ‖ū_s‖²) / (S(S−1))``  (:func:`baseline_anisotropy`);
- **self-similarity** of a word type ``w`` with occurrences ``x_1 … x_n``: the mean cosine over the
  ``n(n−1)`` ordered pairs of distinct occurrences, ``SelfSim(w) = (‖Σ_i u_i‖² − n) / (n(n−1))``;
  1 when every occurrence is the same vector (a static embedding); adjusted: ``SelfSim − A_l``;
- **intra-sentence similarity** of sentence ``s`` with tokens ``x_1 … x_n`` and mean ``s̄ = Σ_i x_i / n``:
  ``IntraSim(s) = (1/n) Σ_i cos(x_i, s̄)``; adjusted: ``IntraSim − A_l``;
- **maximum explainable variance** of ``w``'s occurrence matrix ``X`` (n × d, rows = occurrences) with
  singular values ``σ_1 ≥ σ_2 ≥ …``: ``MEV(w) = σ_1² / Σ_k σ_k²`` (the paper's Eq. 3, uncentred); the
  reference code fits a PCA instead, i.e. the same ratio for the centred ``X − 1x̄ᵀ`` (``center=True``).

Static embedding matrix ``E`` (V × d, one row per vocabulary entry):

- **mean-vector share** ``‖μ‖² / ((1/V) Σ_v ‖e_v‖²)`` with ``μ = (1/V) Σ_v e_v``: the part of the mean
  squared norm that the common mean vector explains (1 = all rows equal, 0 = centred);
- **frequency vs norm**: Spearman's ρ between each token's corpus frequency and ``‖e_v‖`` (Li et al. 2020:
  frequent tokens lie nearer the origin, so ρ < 0);
- **nearest-neighbour distance** ``(1/k) Σ_{j ∈ kNN(v)} ‖e_v − e_j‖₂`` (k = 3, neighbours among all other
  rows of ``E``), averaged per frequency-rank bucket (Li et al.: rare tokens are sparsely scattered, so
  their neighbours are farther).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field

import numpy as np

from ..errors import InputError
from ._checks import as_points, normalized, row_norms

#: Frequency-rank bucket edges of Li et al. (2020), Table 2: ranks [0, 100), [100, 500), [500, 5000), [5000, ∞).
DEFAULT_RANK_EDGES: tuple[int, ...] = (100, 500, 5000)

#: Rows per block of the nearest-neighbour search (block × V float32 distances).
KNN_BLOCK = 256


# ------------------------------------------------------------------------------------ contextual
def self_similarity(occurrences: np.ndarray) -> float:
    """``(‖Σ_i u_i‖² − n) / (n(n−1))``: mean cosine over ordered pairs of distinct occurrences (n ≥ 2)."""
    u = normalized(as_points(occurrences, "occurrences", min_rows=2), "occurrences")
    s = u.sum(axis=0)
    n = u.shape[0]
    return float((s @ s - n) / (n * (n - 1)))


def self_similarity_from_sums(unit_sums: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """Self-similarity of many types at once from ``Σ_i u_i`` (``(T, d)``) and occurrence counts ``(T,)``."""
    s = np.asarray(unit_sums, dtype=np.float64)
    n = np.asarray(counts, dtype=np.float64)
    if np.any(n < 2):
        raise InputError("self-similarity needs at least 2 occurrences of every type")
    return (np.einsum("...d,...d->...", s, s) - n) / (n * (n - 1))


def intra_sentence_similarity(tokens: np.ndarray) -> float:
    """``(1/n) Σ_i cos(x_i, s̄)`` with ``s̄`` the mean of the rows of ``tokens`` (n ≥ 1)."""
    x = as_points(tokens, "tokens", min_rows=1).astype(np.float64)
    mean = x.mean(axis=0)
    mn = float(np.linalg.norm(mean))
    if mn == 0.0:
        raise InputError("tokens: the sentence mean is the zero vector, so its cosine is undefined")
    return float(np.mean(x @ mean / (row_norms(x) * mn)))


def baseline_anisotropy(tokens: np.ndarray, contexts: Sequence[int] | np.ndarray) -> float:
    """Expected cosine of one random token from each of two different random contexts (see module docstring).

    ``contexts[i]`` is the context (sentence) id of row ``i``; at least two distinct contexts.
    """
    x = as_points(tokens, "tokens", min_rows=2)
    ctx = np.asarray(contexts)
    if ctx.shape != (x.shape[0],):
        raise InputError(f"contexts: expected one id per token ({x.shape[0]}), got shape {ctx.shape}")
    means = context_mean_units(normalized(x, "tokens"), ctx)
    if means.shape[0] < 2:
        raise InputError("baseline anisotropy needs tokens from at least two different contexts")
    s = means.sum(axis=0)
    return float((s @ s - np.einsum("ij,ij->", means, means)) / (means.shape[0] * (means.shape[0] - 1)))


def context_mean_units(units: np.ndarray, contexts: np.ndarray) -> np.ndarray:
    """``ū_s``: the mean of the rows of ``units`` per context id, ``(S, d)`` in order of first appearance."""
    _, first, inverse = np.unique(contexts, return_index=True, return_inverse=True)
    order = np.argsort(first)  # contexts in order of appearance
    rank = np.empty_like(order)
    rank[order] = np.arange(order.size)
    idx = rank[inverse.reshape(-1)]
    sums = np.zeros((order.size, units.shape[1]))
    np.add.at(sums, idx, units)
    return sums / np.bincount(idx, minlength=order.size)[:, None]


def maximum_explainable_variance(occurrences: np.ndarray, *, center: bool = False) -> float:
    """``σ_1² / Σ_k σ_k²`` of the occurrence matrix (rows centred first if ``center``)."""
    x = as_points(occurrences, "occurrences", min_rows=1 if not center else 2).astype(np.float64)
    if center:
        x = x - x.mean(axis=0)
    return mev_of_rows(x)


def mev_of_rows(x: np.ndarray) -> float:
    """``λ_max / trace`` of the row Gram matrix ``X Xᵀ`` (= σ_1² / Σ σ_k²; NaN for a zero matrix)."""
    g = x @ x.T
    total = float(np.trace(g))
    if total <= 0:
        return float("nan")
    return float(np.linalg.eigvalsh(g)[-1] / total)


# ------------------------------------------------------------------------------------ static matrix
def mean_vector_share(matrix: np.ndarray) -> float:
    """``‖μ‖² / mean_v ‖e_v‖²`` for the rows ``e_v`` of ``matrix`` (see module docstring)."""
    e = as_points(matrix, "matrix", min_rows=1)
    mu = e.mean(axis=0, dtype=np.float64)
    ms = float(np.mean(row_norms(e) ** 2))
    if ms <= 0:
        raise InputError("matrix: every row is zero")
    return float(mu @ mu / ms)


def knn_distances(matrix: np.ndarray, rows: np.ndarray, k: int = 3, block: int = KNN_BLOCK) -> np.ndarray:
    """Mean Euclidean distance from each ``matrix[rows[i]]`` to its ``k`` nearest *other* rows, ``(len(rows),)``.

    Squared distances ``‖a‖² + ‖b‖² − 2 a·b`` in float32 blocks of ``block`` query rows (memory about
    ``2 · block × V`` floats with the partition's copy), the query row itself excluded; float64 for the final
    square roots.
    """
    e = as_points(matrix, "matrix", min_rows=2)
    rows = np.asarray(rows, dtype=np.int64)
    if k < 1 or k >= e.shape[0]:
        raise InputError(f"k must be between 1 and {e.shape[0] - 1}, got {k}")
    e32 = np.ascontiguousarray(e, dtype=np.float32)
    sq = np.einsum("ij,ij->i", e32, e32)
    out = np.empty(rows.size, dtype=np.float64)
    for start in range(0, rows.size, block):
        q = rows[start:start + block]
        d2 = e32[q] @ e32.T  # in place from here: one block-sized temporary
        d2 *= -2.0
        d2 += sq[None, :]
        d2 += sq[q, None]
        d2[np.arange(q.size), q] = np.inf
        part = np.partition(d2, k - 1, axis=1)[:, :k].astype(np.float64)
        out[start:start + block] = np.sqrt(np.clip(part, 0.0, None)).mean(axis=1)
    return out


def spearman(x: np.ndarray, y: np.ndarray) -> float:
    """Spearman's rank correlation (average ranks for ties); NaN if either side is constant."""
    from scipy.stats import spearmanr

    a, b = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    if a.shape != b.shape or a.ndim != 1:
        raise InputError(f"spearman: expected two equal-length vectors, got shapes {a.shape} and {b.shape}")
    if a.size < 3 or np.ptp(a) == 0 or np.ptp(b) == 0:
        return float("nan")
    return float(spearmanr(a, b).statistic)


@dataclass
class FrequencyBucket:
    """Tokens whose frequency rank (0 = most frequent) lies in ``[lo, hi)`` (``hi`` None = no upper end)."""

    label: str
    lo: int
    hi: int | None
    n: int
    mean_norm: float | None
    mean_knn_distance: float | None

    def to_dict(self) -> dict:
        return asdict(self)


def frequency_buckets(counts: np.ndarray, norms: np.ndarray, knn: np.ndarray,
                      edges: Sequence[int] = DEFAULT_RANK_EDGES) -> list[FrequencyBucket]:
    """Mean norm and mean kNN distance per frequency-rank bucket (ranks by decreasing count, ties by position)."""
    c = np.asarray(counts)
    rank = np.empty(c.size, dtype=np.int64)
    rank[np.argsort(-c, kind="stable")] = np.arange(c.size)
    bounds = [0, *[int(e) for e in edges], None]
    out = []
    for lo, hi in itertools.pairwise(bounds):
        mask = (rank >= lo) & (True if hi is None else rank < hi)
        n = int(mask.sum())
        label = f"{lo:,}–{hi:,}" if hi is not None else f"{lo:,}+"
        out.append(FrequencyBucket(label, lo, hi, n, float(np.mean(norms[mask])) if n else None,
                                   float(np.mean(knn[mask])) if n else None))
    return out


@dataclass
class EmbeddingMatrixSummary:
    """Degeneration measures of a static token-embedding matrix (see module docstring); JSON via :meth:`to_dict`.

    ``tokens`` / ``counts`` / ``norms`` / ``knn_distance``: the scatter sample (the most frequent observed
    tokens); ``spearman_frequency_norm`` and the buckets use every observed token.
    """

    vocab_size: int
    dim: int
    n_observed: int
    mean_norm: float
    mean_vector_share: float
    spearman_frequency_norm: float | None
    spearman_frequency_knn: float | None
    knn_k: int
    buckets: list[FrequencyBucket] = field(default_factory=list)
    tokens: list[str] = field(default_factory=list)
    counts: list[int] = field(default_factory=list)
    norms: list[float] = field(default_factory=list)
    knn_distance: list[float] = field(default_factory=list)

    def to_dict(self) -> dict:
        return asdict(self)


def embedding_matrix_summary(matrix: np.ndarray, counts: np.ndarray, token_names: Sequence[str], *,
                             exclude: Sequence[int] = (), k: int = 3, edges: Sequence[int] = DEFAULT_RANK_EDGES,
                             scatter: int = 5000) -> EmbeddingMatrixSummary:
    """Mean-vector share of all rows; Spearman(frequency, norm) and kNN distance by frequency bucket over the
    *observed* rows (``counts > 0``, ids in ``exclude`` — special tokens — left out).

    ``counts`` is the corpus frequency of every vocabulary row ``(V,)``; ``token_names[v]`` its string.
    """
    e = as_points(matrix, "token-embedding matrix", min_rows=2)
    c = np.asarray(counts, dtype=np.int64)
    if c.shape != (e.shape[0],):
        raise InputError(f"counts: expected one per vocabulary row ({e.shape[0]}), got shape {c.shape}")
    observed = c > 0
    observed[np.asarray(list(exclude), dtype=np.int64)] = False
    ids = np.flatnonzero(observed)
    if ids.size < 3:
        raise InputError(f"only {ids.size} vocabulary entries occur in the corpus: give a larger corpus")
    norms = row_norms(e)
    knn = knn_distances(e, ids, k=k)
    oc, on = c[ids], norms[ids]
    rho = spearman(oc, on)
    rho_knn = spearman(oc, knn)
    top = np.argsort(-oc, kind="stable")[:scatter]
    return EmbeddingMatrixSummary(
        vocab_size=int(e.shape[0]), dim=int(e.shape[1]), n_observed=int(ids.size), mean_norm=float(norms.mean()),
        mean_vector_share=mean_vector_share(e), spearman_frequency_norm=None if math.isnan(rho) else rho,
        spearman_frequency_knn=None if math.isnan(rho_knn) else rho_knn, knn_k=int(k),
        buckets=frequency_buckets(oc, on, knn, edges),
        tokens=[str(token_names[i]) for i in ids[top]], counts=[int(v) for v in oc[top]],
        norms=[float(v) for v in on[top]], knn_distance=[float(v) for v in knn[top]])
