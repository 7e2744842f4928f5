"""Rogue dimensions (Timkey & van Schijndel, EMNLP 2021, "All Bark and No Bite"): a handful of
dimensions that dominate the cosine similarity of random pairs.

For unit vectors ``u = x / ‖x‖`` the cosine is a sum over dimensions, ``cos(x, y) = Σ_k u_k v_k``, so
the expected cosine of random pairs splits into per-dimension contributions

    ``CC_k = E[u_k v_k]``,  ``Σ_k CC_k = E[cos(x, y)]``.

Over the ``N(N−1)`` ordered distinct pairs of ``N`` points this is exact and needs only column sums:

    ``CC_k = ((Σ_i u_ik)² − Σ_i u_ik²) / (N(N−1))``    (:func:`cosine_contributions`).

The same formula with "points" replaced by context means (``ū_s``, the mean unit vector of the tokens of
sentence ``s``) gives the contributions to the cosine of *a random token from each of two different
random sentences* (Ethayarajh's baseline; :mod:`simcse_analysis.metrics.tokens`).

Summaries (:func:`rogue_summary`): the contributions sorted in decreasing order; ``dims_50`` / ``dims_90``
= the fewest dimensions whose largest contributions add up to at least 50% / 90% of ``E[cos]`` (``None``
when ``E[cos] ≤ 0``: nothing to share); the share of each dimension in the variance
``Var_k / Σ_j Var_j`` of the raw vectors, with the same counts. An isotropic cloud spreads both evenly
(``dims_50 ≈ d/2``); a rogue dimension carries most of it alone.

Standardisation (Timkey & van Schijndel §6): ``z_k = (x_k − μ_k) / σ_k`` with the mean and standard
deviation of each dimension fitted on a corpus (:func:`fit_standardization`, :func:`standardize`); a
dimension that is dead on the corpus (``σ_k ≤ 10⁻⁴ max_j σ_j``) is centred but not scaled
(:func:`standardization_scale`).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np

from ..errors import InputError
from ._checks import ROW_BLOCK, as_points, normalized

#: A dimension whose standard deviation is at most this share of the largest is left unscaled by standardisation.
DEAD_DIMENSION_FLOOR = 1e-4

#: Shares for which the number of dimensions needed is reported.
DEFAULT_SHARES: tuple[float, ...] = (0.5, 0.9)


def cosine_contributions(x: np.ndarray) -> np.ndarray:
    """``CC_k = ((Σ_i u_ik)² − Σ_i u_ik²) / (N(N−1))`` for the rows of ``x`` (normalised here), ``(d,)``.

    ``Σ_k CC_k`` is the exact mean cosine over all ordered pairs of distinct rows.
    """
    u = normalized(as_points(x, "x", min_rows=2), "x")
    return contributions_from_sums(u.sum(axis=0), (u * u).sum(axis=0), u.shape[0])


def contributions_from_sums(s: np.ndarray, q: np.ndarray, n: int) -> np.ndarray:
    """``(s² − q) / (n(n−1))`` from the column sums ``s = Σ_i u_i`` and ``q = Σ_i u_i²`` of ``n`` unit rows."""
    if n < 2:
        raise InputError(f"contributions to the random-pair cosine need at least 2 points, got {n}")
    s = np.asarray(s, dtype=np.float64)
    return (s * s - np.asarray(q, dtype=np.float64)) / (n * (n - 1.0))


def dims_for_share(values: np.ndarray, share: float) -> int | None:
    """The fewest entries of ``values`` (largest first) whose sum reaches ``share`` × their total.

    ``None`` if the total is not positive (e.g. the contributions of an isotropic cloud, whose expected
    cosine is ~0 and may be negative).
    """
    v = np.sort(np.asarray(values, dtype=np.float64))[::-1]
    total = float(v.sum())
    if not total > 0:
        return None
    csum = np.cumsum(v)
    return int(min(np.searchsorted(csum, share * total * (1 - 1e-12)) + 1, v.size))


def variance_shares(x: np.ndarray) -> np.ndarray:
    """``Var_k / Σ_j Var_j`` per dimension of the raw rows of ``x`` (population variance, float64)."""
    x = as_points(x, "x", min_rows=2)
    s = np.zeros(x.shape[1])
    q = np.zeros(x.shape[1])
    for start in range(0, x.shape[0], ROW_BLOCK):
        b = x[start:start + ROW_BLOCK].astype(np.float64)
        s += b.sum(axis=0)
        q += (b * b).sum(axis=0)
    return shares_from_moments(s, q, x.shape[0])


def shares_from_moments(s: np.ndarray, q: np.ndarray, n: int) -> np.ndarray:
    """Variance shares from column sums ``s = Σ x_i`` and ``q = Σ x_i²`` of ``n`` rows."""
    mean = np.asarray(s, dtype=np.float64) / n
    var = np.clip(np.asarray(q, dtype=np.float64) / n - mean * mean, 0.0, None)
    total = float(var.sum())
    if total <= 0:
        raise InputError("x: all vectors are identical, so there is no variance to share")
    return var / total


@dataclass
class RogueDimensions:
    """Per-dimension contributions to the expected cosine of random pairs, and their summaries.

    ``top``: the ``len(top)`` largest, as ``{"dim", "contribution", "share"}`` (share of ``expected_cosine``);
    ``contributions``: every dimension's ``CC_k`` in dimension order; ``variance_shares``: ``Var_k / ΣVar``.
    """

    expected_cosine: float
    dims_50: int | None
    dims_90: int | None
    variance_dims_50: int | None
    variance_dims_90: int | None
    top: list[dict] = field(default_factory=list)
    contributions: list[float] = field(default_factory=list)
    variance_shares: list[float] = field(default_factory=list)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> RogueDimensions:
        return cls(**d)


def rogue_summary(contributions: np.ndarray, var_shares: np.ndarray | None = None, *, top: int = 10
                  ) -> RogueDimensions:
    """Summaries of the module docstring for per-dimension ``contributions`` (and variance shares)."""
    c = np.asarray(contributions, dtype=np.float64)
    total = float(c.sum())
    order = np.argsort(-c, kind="stable")[:top]
    tops = [{"dim": int(k), "contribution": float(c[k]), "share": float(c[k] / total) if total > 0 else None}
            for k in order]
    vs = None if var_shares is None else np.asarray(var_shares, dtype=np.float64)
    return RogueDimensions(
        expected_cosine=total, dims_50=dims_for_share(c, 0.5), dims_90=dims_for_share(c, 0.9),
        variance_dims_50=None if vs is None else dims_for_share(vs, 0.5),
        variance_dims_90=None if vs is None else dims_for_share(vs, 0.9),
        top=tops, contributions=c.tolist(), variance_shares=[] if vs is None else vs.tolist())


def rogue_dimensions(x: np.ndarray, *, top: int = 10) -> RogueDimensions:
    """:func:`rogue_summary` of the rows of ``x``: contributions over all distinct pairs, variance shares."""
    return rogue_summary(cosine_contributions(x), variance_shares(x), top=top)


# ------------------------------------------------------------------------------------ standardisation
def fit_standardization(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Column mean ``μ`` and population standard deviation ``σ`` of ``x`` (float64, ``(d,)`` each; two passes,
    so ``σ`` does not suffer the cancellation of ``E[x²] − μ²``)."""
    x = as_points(x, "x", min_rows=2)
    n = x.shape[0]
    s = np.zeros(x.shape[1])
    for start in range(0, n, ROW_BLOCK):
        s += x[start:start + ROW_BLOCK].sum(axis=0, dtype=np.float64)
    mean = s / n
    q = np.zeros(x.shape[1])
    for start in range(0, n, ROW_BLOCK):
        b = x[start:start + ROW_BLOCK].astype(np.float64) - mean
        q += (b * b).sum(axis=0)
    return mean, np.sqrt(q / n)


def standardization_scale(std: np.ndarray, floor: float = DEAD_DIMENSION_FLOOR) -> np.ndarray:
    """The divisor of each dimension: ``σ_k``, or 1 where ``σ_k ≤ floor · max_j σ_j`` (default 1e-4).

    Such a dimension is dead on the corpus (it holds under 1e-8 of the largest variance): e.g.
    all-MiniLM-L6-v2's last LayerNorm has weight ≈ 1e-33 on dimensions 127, 223 and 319, so they always
    equal the bias, and after 48 SimCSE steps the weight is ≈ 1e-6 there — a leak of the rogue dimension
    223 of the layer below that z-scoring would blow up to unit variance. It is centred (to ≈ 0) but not
    scaled. Raises :class:`InputError` if every dimension is constant.
    """
    sd = np.asarray(std, dtype=np.float64)
    top = float(sd.max()) if sd.size else 0.0
    if not top > 0:
        raise InputError("every dimension is constant on the corpus, so nothing can be standardised: use a more "
                         "varied corpus")
    return np.where(sd > floor * top, sd, 1.0)


def standardize(x: np.ndarray, mean: np.ndarray, std: np.ndarray) -> np.ndarray:
    """``(x − μ) / s`` per dimension with ``s`` = :func:`standardization_scale` of ``std``, float64."""
    x = as_points(x, "x", min_rows=1)
    return (x.astype(np.float64) - np.asarray(mean, dtype=np.float64)) / standardization_scale(std)
