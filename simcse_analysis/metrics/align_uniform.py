"""Alignment and uniformity of embeddings (Wang & Isola, ICML 2020).

On L2-normalised embeddings ``f``:

    alignment   ℓ_align   = E_{(x, x⁺) ~ p_pos} ‖f(x) − f(x⁺)‖₂^α                      (α = 2)
    uniformity  ℓ_uniform = log E_{x, y ~ p_data, x ≠ y} exp(−t ‖f(x) − f(y)‖₂²)        (t = 2)

The expectation in ``ℓ_uniform`` runs over the N(N−1)/2 distinct (unordered) pairs of the given points,
which is exactly what the reference ``torch.pdist(x, p=2).pow(2).mul(-t).exp().mean().log()``
computes. Both are dimensionless; ``ℓ_align ∈ [0, 2^α]`` and ``ℓ_uniform ∈ [−4t, 0]`` on the unit
sphere (lower is better for both).

:func:`uniformity` is exact and runs in tiles of the upper triangle of the Gram matrix, so memory is
O(N·d + B²) instead of the O(N²) of ``pdist``; each tile's kernel sum is accumulated in float64 and
tiles are combined by log-sum-exp. :func:`uniformity_sampled` is a Monte-Carlo estimate with a
standard error for inputs too large even for that.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any, Literal

import numpy as np

from ..errors import InputError
from ._checks import (
    ROW_BLOCK,
    as_pairs,
    as_points,
    check_positive,
    normalized,
    random_distinct_pairs,
    row_norms,
)
from .device import is_lazy

Precision = Literal["float32", "float64"]

#: Rows per tile side of the exact uniformity (a tile is B×B values: 64 MiB in float32).
UNIFORMITY_BLOCK = 4096
# Shift a tile by its maximum before exp() only when that maximum is this low: above it, exp() of
# the tile's largest terms cannot underflow, and terms ≥ 37 nats below the maximum change the sum by
# less than 1e-16 relative in float64 (and are representable in float32 down to exp(-87)).
_SHIFT_BELOW = -50.0


def alignment(x: np.ndarray, y: np.ndarray, alpha: float = 2.0, *, normalize: bool = True) -> float:
    """Alignment ``ℓ_align = (1/N) Σ_i ‖x_i − y_i‖₂^α`` of row-aligned positive pairs.

    Args:
        x, y: ``(N, d)`` embeddings; ``(x[i], y[i])`` is a positive pair.
        alpha: exponent α > 0 (Wang & Isola use 2, where ``‖u − v‖² = 2 − 2 cos(u, v)``).
        normalize: L2-normalise every row first (the metric is defined on the unit sphere; turning
            this off reproduces the "align = 184.98" mistake of feeding raw vectors).

    Returns: the mean, accumulated in float64.
    """
    a, b = as_pairs(x, y, ("x", "y"))
    alpha = check_positive(alpha, "alpha")
    if normalize:
        a, b = normalized(a, "x"), normalized(b, "y")
    total = 0.0
    for start in range(0, a.shape[0], ROW_BLOCK):
        diff = a[start:start + ROW_BLOCK].astype(np.float64) - b[start:start + ROW_BLOCK]
        dist = np.sqrt(np.einsum("ij,ij->i", diff, diff))
        total += float(np.sum(dist ** alpha))
    return total / a.shape[0]


def _augmented(x: np.ndarray, t: float, normalize: bool, dtype: type) -> np.ndarray:
    """``Y = [u, 1, −t‖u‖²]`` with ``u`` the (normalised) rows of ``x``.

    With ``L_i = [2t·u_i, −t‖u_i‖², 1]`` (built per row block), ``L_i·Y_j = 2t u_i·u_j − t‖u_i‖² − t‖u_j‖²
    = −t‖u_i − u_j‖²``: one matrix product yields the exponents, with no per-tile copy of ``Y``.
    """
    n, d = x.shape
    y = np.empty((n, d + 2), dtype=dtype)
    if normalize:
        norms = row_norms(x)
        zero = np.flatnonzero(norms == 0.0)
        if zero.size:
            raise InputError(f"x: row {int(zero[0])} is the zero vector and cannot be L2-normalised")
        for start in range(0, n, ROW_BLOCK):
            sl = slice(start, start + ROW_BLOCK)
            y[sl, :d] = x[sl].astype(np.float64) / norms[sl, None]
        y[:, d + 1] = -t
    else:
        y[:, :d] = x
        y[:, d + 1] = -t * row_norms(x) ** 2
    y[:, d] = 1.0
    return y


def uniformity(x: np.ndarray, t: float = 2.0, *, normalize: bool = True, precision: Precision = "float32",
               block_size: int = UNIFORMITY_BLOCK, device: Any = None) -> float:
    """Exact uniformity ``ℓ_uniform = log[(2 / (N(N−1))) Σ_{i<j} exp(−t ‖x_i − x_j‖₂²)]``.

    Computed tile by tile over the upper triangle (``i < j``) of the pair matrix without ever holding
    an N×N array: each B×B tile of exponents ``−t‖x_i − x_j‖²`` comes out of one matrix product of
    augmented rows (see ``_augmented``), is exponentiated in place and summed per row; row sums are
    added in float64 and tiles combined by log-sum-exp. On normalised rows every exponent lies in
    ``[−4t, 0]``, so no shift is needed while ``4t ≤ 50``; otherwise a tile is shifted by its maximum
    whenever that maximum is low enough for ``exp`` to underflow.

    Accuracy of ``precision="float32"`` (the default, ~2× faster products than float64): each
    exponent carries an absolute rounding error of a few float32 ulps of ``4t`` (≲ 1e-6 for t = 2),
    i.e. each kernel term a relative error ≲ 1e-6 of random sign; the float64 sum of row sums keeps
    the mean's relative error at that level or below, so ``ℓ_uniform`` agrees with a float64
    reference to ~1e-6 relative or better (checked in the tests and the benchmark).
    ``precision="float64"`` is exact to ~1e-14.

    Args:
        x: ``(N, d)`` embeddings, N ≥ 2.
        t: temperature t > 0 (Wang & Isola use 2).
        normalize: L2-normalise rows first (as the metric's definition requires).
        precision: dtype of the matrix products and of ``exp``.
        block_size: tile side B (rows); memory is about ``N·(d+2)`` values plus ``B²``.
        device: run the tiles in torch on this device (``"cpu"``, ``"cuda"``, …; see
            :mod:`.device`); also taken for a tensor (its own device) or a store (streamed rows).

    Returns: ``ℓ_uniform`` (nats; in ``[−4t, 0]`` for normalised inputs).
    """
    if device is not None or is_lazy(x):
        from .device import uniformity as on_device

        return on_device(x, t, normalize=normalize, precision=precision, block_size=block_size, device=device)
    return _uniformity_pass(x, t, normalize=normalize, precision=precision, block_size=block_size,
                            with_rows=False).value


@dataclass(frozen=True)
class UniformityRows:
    """Exact ``ℓ_uniform = log U`` with what its standard error needs (:func:`uniformity_with_rows`).

    ``row_means[i] = (1/(N−1)) Σ_{j≠i} exp(−t‖x_i − x_j‖²)`` (the Hoeffding projection estimates),
    ``kernel_var`` = variance of the kernel over the distinct pairs, ``stderr`` = se of ``log U`` by the
    Hoeffding decomposition and the delta method (:func:`simcse_analysis.metrics.stats.u_statistic_log_se`).
    """

    value: float
    stderr: float
    row_means: np.ndarray | None
    kernel_var: float | None


def uniformity_with_rows(x: np.ndarray, t: float = 2.0, *, normalize: bool = True,
                         precision: Precision = "float32", block_size: int = UNIFORMITY_BLOCK) -> UniformityRows:
    """:func:`uniformity` plus its standard error, from per-sentence row means accumulated in the same
    tiled pass (each tile's exponentiated values summed along both axes) and the kernel's second moment."""
    from .stats import u_statistic_log_se

    out = _uniformity_pass(x, t, normalize=normalize, precision=precision, block_size=block_size, with_rows=True)
    u = math.exp(out.value)
    se = u_statistic_log_se(out.row_means, u, out.kernel_var)
    return UniformityRows(out.value, se, out.row_means, out.kernel_var)


def _uniformity_pass(x: np.ndarray, t: float, *, normalize: bool, precision: Precision, block_size: int,
                     with_rows: bool) -> UniformityRows:
    """The tiled exact pass of :func:`uniformity`; ``with_rows`` also accumulates row means and Σh²."""
    import torch  # elementwise exp/sum in place on all threads; numpy's float32 exp is much slower

    x = as_points(x, "x", min_rows=2)
    t = check_positive(t, "t")
    if precision not in ("float32", "float64"):
        raise InputError(f"precision must be 'float32' or 'float64', got {precision!r}")
    if block_size < 1:
        raise InputError(f"block_size must be >= 1, got {block_size}")
    dtype = np.float32 if precision == "float32" else np.float64
    n, d = x.shape
    y = _augmented(x, t, normalize, dtype)
    bounded = normalize and 4.0 * t <= -_SHIFT_BELOW  # exponents ≥ −4t: exp() cannot underflow
    b = min(block_size, n)
    buf = np.empty(b * b, dtype=dtype)
    lower = torch.ones(b, b, dtype=torch.bool).tril()  # i ≥ j inside a diagonal tile
    log_terms: list[float] = []  # log of each tile's kernel sum
    row_log = np.full(n, -np.inf)  # with_rows: log Σ_{j≠i} h_ij, accumulated tile by tile
    sq_terms: list[float] = []  # with_rows: log of each tile's Σ h²
    for r0 in range(0, n, b):
        rows = y[r0:r0 + b]
        left = np.empty_like(rows)
        left[:, :d] = rows[:, :d] * dtype(2.0 * t)
        left[:, d] = rows[:, d + 1]
        left[:, d + 1] = 1.0
        for c0 in range(r0, n, b):
            right = y[c0:c0 + b]
            if c0 == r0 and len(right) == 1:  # a 1×1 diagonal tile holds no pair
                continue
            tile = buf[: len(left) * len(right)].reshape(len(left), len(right))
            np.matmul(left, right.T, out=tile)  # tile[i, j] = −t‖x_i − x_j‖²
            g = torch.from_numpy(tile)
            if c0 == r0:
                g.masked_fill_(lower[: g.shape[0], : g.shape[1]], -math.inf)
            shift = 0.0
            if not bounded:
                top = float(g.max())
                shift = top if top < _SHIFT_BELOW else 0.0
                if shift:
                    g.sub_(shift)
            g.exp_()
            by_row = g.sum(dim=1).to(torch.float64)
            s = float(by_row.sum())
            log_terms.append(shift + math.log(s) if s > 0 else -math.inf)
            if with_rows:  # the tile holds pairs (i, j) for its rows i and its columns j alike
                with np.errstate(divide="ignore"):
                    sl_r, sl_c = slice(r0, r0 + g.shape[0]), slice(c0, c0 + g.shape[1])
                    row_log[sl_r] = np.logaddexp(row_log[sl_r], shift + np.log(by_row.numpy()))
                    cols = g.sum(dim=0).to(torch.float64).numpy()
                    row_log[sl_c] = np.logaddexp(row_log[sl_c], shift + np.log(cols))
                sq = float(g.to(torch.float64).square().sum())
                sq_terms.append(2 * shift + math.log(sq) if sq > 0 else -math.inf)
    n_pairs = n * (n - 1) / 2
    m = max(log_terms)
    value = m + math.log(math.fsum(math.exp(v - m) for v in log_terms)) - math.log(n_pairs)
    if not with_rows:
        return UniformityRows(value, math.nan, None, None)
    row_means = np.exp(row_log - math.log(n - 1))
    m2 = max(sq_terms)
    second = math.exp(m2 + math.log(math.fsum(math.exp(v - m2) for v in sq_terms)) - math.log(n_pairs))
    return UniformityRows(value, math.nan, row_means, max(second - math.exp(2 * value), 0.0))


@dataclass(frozen=True)
class UniformityEstimate:
    """Monte-Carlo estimate of ``ℓ_uniform`` from ``n_pairs`` pairs drawn uniformly among distinct pairs.

    ``value = log k̂`` where ``k̂`` is the sample mean of ``exp(−t‖x − y‖²)`` (an unbiased estimate of
    the distinct-pair mean), and ``stderr = se(k̂) / k̂`` is its delta-method standard error.
    """

    value: float
    stderr: float
    n_pairs: int
    seed: int
    t: float

    def to_dict(self) -> dict:
        return asdict(self)


def uniformity_sampled(x: np.ndarray, t: float = 2.0, *, n_pairs: int = 1_000_000, seed: int = 0,
                       normalize: bool = True, device: Any = None) -> UniformityEstimate:
    """Sampled uniformity with a standard error, for N too large for :func:`uniformity`.

    Draws ``n_pairs`` index pairs ``(i, j)`` independently and uniformly among the N(N−1) ordered
    pairs with ``i ≠ j`` (``i ~ U{0..N−1}``, ``j ~ U{0..N−2}``, ``j += j ≥ i``), so the mean kernel
    ``k̂ = (1/n) Σ exp(−t‖x_i − x_j‖²)`` is an unbiased estimate of the distinct-pair mean in
    ``ℓ_uniform``. Returns ``log k̂`` (a consistent estimate; its bias ``≈ −Var(k)/(2n k̄²)`` is far below
    the standard error) with ``stderr = sd(k) / (√n · k̂)``. Computed in float64, with the exponents
    shifted by their maximum before ``exp``. With ``device`` (or a tensor / store) the same pairs are
    evaluated in torch, reading only the sampled rows.
    """
    if device is not None or is_lazy(x):
        from .device import uniformity_sampled as on_device

        value, se = on_device(x, t, n_pairs=n_pairs, seed=seed, normalize=normalize, device=device)
        return UniformityEstimate(value=value, stderr=se, n_pairs=int(n_pairs), seed=int(seed), t=float(t))
    x = as_points(x, "x", min_rows=2)
    t = check_positive(t, "t")
    if n_pairs < 2:
        raise InputError(f"n_pairs must be >= 2, got {n_pairs}")
    u = normalized(x, "x") if normalize else x
    i, j = random_distinct_pairs(u.shape[0], n_pairs, seed)
    expo = np.empty(n_pairs, dtype=np.float64)
    for start in range(0, n_pairs, ROW_BLOCK):
        sl = slice(start, start + ROW_BLOCK)
        diff = u[i[sl]].astype(np.float64) - u[j[sl]]
        expo[sl] = -t * np.einsum("ij,ij->i", diff, diff)
    shift = float(expo.max())
    k = np.exp(expo - shift)
    mean = float(k.mean())
    se = float(k.std(ddof=1)) / math.sqrt(n_pairs)
    return UniformityEstimate(value=shift + math.log(mean), stderr=se / mean, n_pairs=int(n_pairs),
                              seed=int(seed), t=t)
