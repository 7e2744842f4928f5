"""Uncertainty of the figures: bootstrap CIs of Spearman, paired tests, standard errors, Holm, t-intervals.

Pure functions, arrays in, numbers out. Conventions:

* A *task* is ``K`` sub-datasets (STS12–16) or one (STS-B, SICK-R), stored concatenated with
  ``bounds = [0, n_1, n_1 + n_2, …, n]``; its figure is Spearman's ρ under an aggregation: ``all`` (one
  ρ over the concatenation), ``mean`` (mean of the K ρ_k) or ``wmean`` (weighted by n_k).
* **Bootstrap over pairs** (Efron's nonparametric bootstrap). A resample draws n_k pairs with
  replacement *within* each sub-dataset k (stratified, so the composition of "all" is kept); it is
  represented by its multiplicities ``W[b, i]`` (how often pair i was drawn in resample b; rows sum
  to n_k per stratum). The Spearman ρ of a resample is the ``W``-weighted Pearson correlation of the
  resample's average ranks, which follow from the sorted order of the original values::

      group g of tied values, G_bg = Σ_{i∈g} W_bi,  C_bg = Σ_{g'≤g} G_bg',  rank_bg = C_bg − (G_bg − 1)/2

  so every resample is ranked at once with cumulative sums (O(B·n)), no per-resample sort and no
  Python loop of ``spearmanr``. Equal, to rounding, to ``spearmanr`` of the explicitly resampled arrays.
* **Paired bootstrap**: the same ``W`` for both models, so Δ_b = ρ_B,b − ρ_A,b; the CI is the
  percentile interval ``[q_{α/2}, q_{1−α/2}]`` of the Δ_b (optionally BCa, Efron 1987, with the
  acceleration from a delete-a-group jackknife).
* **Paired test of Δρ = ρ_B − ρ_A** (same pairs, same gold): Δ̂ is asymptotically normal with a standard
  error from the *influence function* of Spearman's ρ (Pearson correlation of the mid-distribution
  transforms ``u = F(x)``, ``v = G(y)``, ties included). With ``K_x(x') = 1{x' > x} + ½·1{x' = x}``::

      IF_C(x, y)  = u v + E[K_x(X) V] + E[K_y(Y) U]            (C  = Cov(U, V), up to a constant)
      IF_Vx(x)    = u² + 2 E[K_x(X) U],  IF_Vy(y) = v² + 2 E[K_y(Y) V]
      IF_ρ(x, y)  = IF_C / √(Vx Vy) − ρ/2 · (IF_Vx / Vx + IF_Vy / Vy)

  estimated with the sample mid-ranks ``/n`` (O(n log n), no resampling); ``φ_i = IF_ρB − IF_ρA`` per pair
  and, pairs being drawn within sub-datasets (as the bootstrap), ``se(Δ̂) = √(Σ_k n_k var_k(φ)) / n``. For
  ``mean``/``wmean`` each sub-dataset's ρ_k has its own influence, weighted. This is the standard error the
  paired bootstrap estimates (asymptotically equal; checked in ``tests/test_stats.py``), without its
  resampling noise or its resolution floor.
* **Simultaneous intervals** (Šidák): a family of ``m`` rows is tested at the per-row level
  ``α_m = 1 − (1 − α)^{1/m}``: interval ``Δ ± q_{1−α_m/2} se`` (q: normal quantile, or Student t for a mean
  over pairs), adjusted p-value ``p̃ = 1 − (1 − p)^m`` (the smallest family level at which the interval
  excludes 0). By Šidák's inequality the ``m`` intervals cover jointly with probability ≥ 1 − α whatever
  the correlation between rows (centred normal estimates), so the verdict "interval excludes 0"
  (⟺ ``p̃ < α``) keeps the family-wise error ≤ α.
* **Paired permutation test** (a check of the above; H0: the two models' predictions are exchangeable pair
  by pair): each model's predictions are first turned into normalised ranks ``r/n`` (Spearman only sees
  ranks; this makes models with different cosine ranges exchangeable), then for each permutation b and
  pair i the two models' values are swapped with probability ½; ``p = (1 + #{b: |Δ*_b| ≥ |Δ|}) / (1 + B)``
  (never below ``1/(1 + B)``).
* **Alignment**: a mean over positive pairs → ``se = s/√n`` and a t-interval; paired: the per-pair
  differences.
* **Uniformity** ``ℓ = log U``, ``U = (N choose 2)⁻¹ Σ_{i<j} h(x_i, x_j)``, ``h = exp(−t‖x_i − x_j‖²)``, is
  the log of a U-statistic of order 2. Hoeffding: ``Var U = [4(N−2) ζ₁ + 2 ζ₂] / (N(N−1))`` with
  ``ζ₁ = Var h₁(X)``, ``h₁(x) = E h(x, Y)`` estimated by the row means ``r_i = Σ_{j≠i} h_ij / (N−1)``,
  and ``ζ₂ = Var h(X, Y)``; delta method: ``se(log U) = se(U)/U``. Paired (same sentences, two
  models): the influence ``ψ_i = 2(r_B,i/U_B − r_A,i/U_A)`` gives ``se(ℓ_B − ℓ_A) ≈ sd(ψ)/√N``.
* **Holm** step-down adjustment of p-values; **t-interval** ``x̄ ± t_{n−1, 1−α/2} s/√n`` over seeds.
* p-values below ``1e-16`` print as ``< 1e-16`` (:func:`format_p`): a normal tail that small is beyond the
  accuracy of any asymptotic approximation, and one that underflows is not 0.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from itertools import pairwise
from typing import Any

import numpy as np

from ..errors import InputError

#: Fewest resamples / permutations accepted (below this the 2.5% tails hold < 3 values).
MIN_RESAMPLES = 100
#: Most accepted: the draws are kept, ``(checkpoints, resamples)`` float64 per task, and 100,000 resamples
#: of the seven tasks already take ~100× the default's time; beyond it a percentile moves by rounding only.
MAX_RESAMPLES = 100_000
DEFAULT_RESAMPLES = 1000
_BLOCK = 100  # resamples per vectorised block: memory ~ 6 arrays of B×n float64


def check_resamples(n: Any, name: str = "--resamples") -> int:
    """``n`` as int, or InputError unless it is a whole number with ``MIN_RESAMPLES ≤ n ≤ MAX_RESAMPLES``."""
    ok = isinstance(n, (int, np.integer)) and not isinstance(n, bool)
    if isinstance(n, (float, np.floating)) and math.isfinite(n) and float(n).is_integer():
        ok, n = True, int(n)
    if not ok:
        raise InputError(f"{name} must be a whole number of resamples between {MIN_RESAMPLES} and "
                         f"{MAX_RESAMPLES:,} (got {n!r})")
    n = int(n)
    if n < MIN_RESAMPLES:
        raise InputError(f"{name} must be at least {MIN_RESAMPLES} (got {n}): percentile intervals and "
                         "p-values need enough resamples")
    if n > MAX_RESAMPLES:
        raise InputError(f"{name} must be at most {MAX_RESAMPLES:,} (got {n:,}): more resamples only refine "
                         "the percentile intervals' rounding, at a cost in memory and time proportional to them")
    return n


def _check_alpha(alpha: float) -> float:
    if not 0 < alpha < 1:
        raise InputError(f"alpha must be in (0, 1), got {alpha}")
    return float(alpha)


@dataclass(frozen=True)
class Interval:
    """A point estimate with a ``1 − alpha`` confidence interval (and a standard error when one exists)."""

    value: float
    low: float
    high: float
    stderr: float | None = None
    alpha: float = 0.05
    method: str = "percentile bootstrap"

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class PairedTest:
    """Δ = other − baseline with its CI and a two-sided p-value.

    ``p_value`` is the row's own (unadjusted) p-value; ``low``/``high`` and ``p_adjusted`` are for a family
    of ``family_size`` rows tested together (:func:`normal_test`; ``family_size = 1``: an ordinary
    ``1 − alpha`` interval and ``p_adjusted = p_value``).
    """

    delta: float
    low: float
    high: float
    p_value: float
    alpha: float = 0.05
    method: str = ""
    stderr: float | None = None
    p_adjusted: float = math.nan
    family_size: int = 1

    def to_dict(self) -> dict:
        return asdict(self)


# ------------------------------------------------------------------------------------------- ranks
def _sorted_groups(a: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Sort order along the last axis, and for each *sorted* position the first and last sorted positions
    of its tie group (``start``, ``end``)."""
    n = a.shape[-1]
    order = np.argsort(a, axis=-1, kind="stable")
    s = np.take_along_axis(a, order, axis=-1)
    pos = np.broadcast_to(np.arange(n), s.shape)
    new = np.ones(s.shape, dtype=bool)
    new[..., 1:] = s[..., 1:] != s[..., :-1]
    start = np.maximum.accumulate(np.where(new, pos, 0), axis=-1)
    last = np.ones(s.shape, dtype=bool)
    last[..., :-1] = new[..., 1:]
    end = np.flip(np.minimum.accumulate(np.flip(np.where(last, pos, n), -1), axis=-1), -1)
    return order, start, end


def _unsort(order: np.ndarray, sorted_values: np.ndarray) -> np.ndarray:
    out = np.empty(sorted_values.shape)
    np.put_along_axis(out, order, sorted_values, axis=-1)
    return out


def average_ranks(a: np.ndarray, axis: int = -1) -> np.ndarray:
    """Average ranks (1-based; ties share the mean of their positions) along ``axis``, vectorised.

    Each row is sorted once; a tie group spanning sorted positions ``s..e`` gets ``(s + e)/2 + 1``.
    """
    a = np.moveaxis(np.asarray(a, dtype=np.float64), axis, -1)
    order, start, end = _sorted_groups(a)
    return np.moveaxis(_unsort(order, (start + end) / 2.0 + 1.0), -1, axis)


def _pearson_rows(x: np.ndarray, y: np.ndarray, w: np.ndarray | None = None) -> np.ndarray:
    """Row-wise (optionally ``w``-weighted) Pearson correlation of ``(B, n)`` arrays; NaN where constant."""
    if w is None:
        xm = x - x.mean(axis=-1, keepdims=True)
        ym = y - y.mean(axis=-1, keepdims=True)
        sxy, sxx, syy = (xm * ym).sum(-1), (xm * xm).sum(-1), (ym * ym).sum(-1)
        # a constant row: its mean may differ from its values by rounding, leaving sxx ≈ 1e-34 instead of 0
        sxx = np.where(np.ptp(x, axis=-1) == 0, 0.0, sxx)
        syy = np.where(np.ptp(y, axis=-1) == 0, 0.0, syy)
    else:
        tot = w.sum(axis=-1, keepdims=True)
        xm = x - (w * x).sum(-1, keepdims=True) / tot
        ym = y - (w * y).sum(-1, keepdims=True) / tot
        wx = w * xm
        sxy, sxx, syy = (wx * ym).sum(-1), (wx * xm).sum(-1), (w * ym * ym).sum(-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return sxy / np.sqrt(sxx * syy)


class _TieGroups:
    """Sorted tie groups of a vector, for ranking weighted resamples by cumulative sums."""

    def __init__(self, values: np.ndarray) -> None:
        _, inv = np.unique(values, return_inverse=True)
        self.inv = inv.ravel()
        self.order = np.argsort(self.inv, kind="stable")
        sg = self.inv[self.order]
        self.starts = np.r_[0, np.flatnonzero(np.diff(sg)) + 1]

    def ranks(self, w: np.ndarray) -> np.ndarray:
        """Average ranks of every element within the resamples of multiplicities ``w`` ``(B, n)``."""
        g = np.take(w, self.order, axis=1)
        if self.starts.size != self.inv.size:  # tied values: one total weight per group
            g = np.add.reduceat(g, self.starts, axis=1)
        c = np.cumsum(g, axis=1)
        c -= 0.5 * (g - 1.0)
        return np.take(c, self.inv, axis=1)


# ------------------------------------------------------------------------------------------- tasks
AGGREGATIONS = ("all", "mean", "wmean")


def _bounds(bounds: Sequence[int] | None, n: int) -> np.ndarray:
    b = np.asarray([0, n] if bounds is None else bounds, dtype=np.int64)
    if b[0] != 0 or b[-1] != n or np.any(np.diff(b) < 2):
        raise InputError(f"sub-dataset bounds {list(b)} must run from 0 to {n} with at least 2 pairs each")
    return b


def resample_weights(bounds: np.ndarray, n_resamples: int, rng: np.random.Generator) -> np.ndarray:
    """Multiplicities ``(B, n)`` of a bootstrap drawing ``n_k`` pairs with replacement within each stratum."""
    n = int(bounds[-1])
    idx = np.empty((n_resamples, n), dtype=np.int64)
    for lo, hi in pairwise(bounds):
        idx[:, lo:hi] = rng.integers(lo, hi, size=(n_resamples, hi - lo))
    idx += np.arange(n_resamples)[:, None] * n  # one bincount for every resample at once
    return np.bincount(idx.ravel(), minlength=n_resamples * n).reshape(n_resamples, n).astype(np.float64)


def _aggregate_rho(per: list[np.ndarray], sizes: np.ndarray, aggregation: str) -> np.ndarray:
    stack = np.stack(per)  # (K, B)
    if aggregation == "mean":
        return stack.mean(axis=0)
    return (stack * sizes[:, None]).sum(axis=0) / sizes.sum()


def task_spearman(pred: np.ndarray, gold: np.ndarray, bounds: Sequence[int] | None = None,
                  aggregation: str = "all") -> float:
    """Spearman ρ of a task's predictions against gold under ``aggregation`` (not ×100)."""
    pred, gold = np.asarray(pred, np.float64), np.asarray(gold, np.float64)
    b = _bounds(bounds, gold.size)
    if aggregation == "all":
        return float(_pearson_rows(average_ranks(pred)[None], average_ranks(gold)[None])[0])
    per = [_pearson_rows(average_ranks(pred[lo:hi])[None], average_ranks(gold[lo:hi])[None])
           for lo, hi in pairwise(b)]
    return float(_aggregate_rho(per, np.diff(b).astype(float), aggregation)[0])


def _weighted_rho(w: np.ndarray, preds: Sequence[_TieGroups], gold: _TieGroups, b: np.ndarray,
                  aggregation: str) -> list[np.ndarray]:
    """ρ of each prediction vector under the resamples ``w`` (one ``(B,)`` array per prediction)."""
    if aggregation == "all":
        rg = gold.ranks(w)
        return [_pearson_rows(p.ranks(w), rg, w) for p in preds]
    out: list[list[np.ndarray]] = [[] for _ in preds]
    for k, (lo, hi) in enumerate(pairwise(b)):
        wk = w[:, lo:hi]
        rg = gold[k].ranks(wk)  # type: ignore[index]
        for j, p in enumerate(preds):
            out[j].append(_pearson_rows(p[k].ranks(wk), rg, wk))  # type: ignore[index]
    sizes = np.diff(b).astype(float)
    return [_aggregate_rho(o, sizes, aggregation) for o in out]


def _groups(values: np.ndarray, b: np.ndarray, aggregation: str):
    if aggregation == "all":
        return _TieGroups(values)
    return [_TieGroups(values[lo:hi]) for lo, hi in pairwise(b)]


def _prepare(preds: Sequence[np.ndarray], gold: np.ndarray, bounds: Sequence[int] | None, aggregation: str):
    if aggregation not in AGGREGATIONS:
        raise InputError(f"unknown aggregation {aggregation!r}: choose all, mean or wmean")
    gold = np.asarray(gold, dtype=np.float64).ravel()
    b = _bounds(bounds, gold.size)
    preds = [np.asarray(p, dtype=np.float64).ravel() for p in preds]
    for p in preds:
        if p.size != gold.size:
            raise InputError(f"predictions hold {p.size} values but gold holds {gold.size}: pair them row by row")
    return [_groups(p, b, aggregation) for p in preds], _groups(gold, b, aggregation), b


def bootstrap_spearman(preds: Sequence[np.ndarray], gold: np.ndarray, bounds: Sequence[int] | None = None,
                       aggregation: str = "all", n_resamples: int = DEFAULT_RESAMPLES, seed: int = 0
                       ) -> np.ndarray:
    """Bootstrap distribution ``(M, B)`` of the Spearman ρ of each of ``M`` prediction vectors.

    All predictions share the same resamples (rows of ``W``), so differences between rows are paired.
    Resamples are stratified by ``bounds`` (see the module docstring).
    """
    n_resamples = check_resamples(n_resamples)
    pg, gg, b = _prepare(preds, gold, bounds, aggregation)
    rng = np.random.default_rng(seed)
    out = np.empty((len(pg), n_resamples))
    for s in range(0, n_resamples, _BLOCK):
        w = resample_weights(b, min(_BLOCK, n_resamples - s), rng)
        for j, r in enumerate(_weighted_rho(w, pg, gg, b, aggregation)):
            out[j, s:s + len(r)] = r
    return out


#: Groups of the delete-a-group jackknife that estimates the BCa acceleration (all pairs when fewer).
JACKKNIFE_GROUPS = 200


def jackknife_spearman(preds: Sequence[np.ndarray], gold: np.ndarray, bounds: Sequence[int] | None = None,
                       aggregation: str = "all", groups: int = JACKKNIFE_GROUPS, seed: int = 0) -> np.ndarray:
    """Delete-a-group jackknife ``(M, G)``: ρ of each prediction with one of ``G`` groups of pairs left out.

    Pairs are dealt to ``G = min(groups, n_k)`` groups at random within each stratum (``G = n``: the
    ordinary delete-one jackknife). Used for the acceleration of the BCa interval.
    """
    pg, gg, b = _prepare(preds, gold, bounds, aggregation)
    rng = np.random.default_rng(seed)
    n = int(b[-1])
    g = int(min(groups, np.diff(b).min()))
    label = np.empty(n, dtype=np.int64)
    for lo, hi in pairwise(b):
        label[lo:hi] = rng.permutation(np.arange(hi - lo) % g)
    out = np.empty((len(pg), g))
    for s in range(0, g, _BLOCK):
        ids = np.arange(s, min(g, s + _BLOCK))
        w = (label[None, :] != ids[:, None]).astype(np.float64)
        for j, r in enumerate(_weighted_rho(w, pg, gg, b, aggregation)):
            out[j, s:s + len(r)] = r
    return out


def percentile_interval(value: float, dist: np.ndarray, alpha: float = 0.05,
                        jackknife: np.ndarray | None = None) -> Interval:
    """Bootstrap ``1 − alpha`` interval of ``value`` from its bootstrap distribution ``dist`` (NaNs dropped).

    Without ``jackknife``: the percentile interval ``[q_{α/2}, q_{1−α/2}]``. With jackknife values: the
    BCa interval (Efron 1987): ``z₀ = Φ⁻¹(#{θ*_b < θ̂}/B)``, ``a = Σ u³ / (6 (Σ u²)^{3/2})`` with
    ``u = θ̄_(·) − θ_(g)``, and the quantiles ``Φ(z₀ + (z₀ + z_q)/(1 − a(z₀ + z_q)))`` for
    ``q = α/2, 1 − α/2``. ``stderr`` is the bootstrap sd.
    """
    from scipy.stats import norm

    alpha = _check_alpha(alpha)
    d = np.asarray(dist, dtype=np.float64)
    d = d[np.isfinite(d)]
    if d.size < 2 or not math.isfinite(value):
        return Interval(value, math.nan, math.nan, None, alpha, "bootstrap")
    qs = np.array([alpha / 2, 1 - alpha / 2])
    method = "percentile bootstrap"
    if jackknife is not None:
        u = np.mean(jackknife) - np.asarray(jackknife, dtype=np.float64)
        den = 6.0 * float(np.sum(u * u)) ** 1.5
        a = float(np.sum(u ** 3)) / den if den > 0 else 0.0
        frac = (np.sum(d < value) + 0.5 * np.sum(d == value)) / d.size
        if 0 < frac < 1:
            z0 = float(norm.ppf(frac))
            zq = norm.ppf(qs)
            qs = norm.cdf(z0 + (z0 + zq) / (1 - a * (z0 + zq)))
            method = "BCa bootstrap"
    lo, hi = np.quantile(d, qs)
    return Interval(float(value), float(lo), float(hi), float(d.std(ddof=1)), alpha, method)


def spearman_ci(pred: np.ndarray, gold: np.ndarray, bounds: Sequence[int] | None = None, aggregation: str = "all",
                n_resamples: int = DEFAULT_RESAMPLES, seed: int = 0, alpha: float = 0.05, bca: bool = False
                ) -> Interval:
    """Spearman ρ with a stratified percentile-bootstrap ``1 − alpha`` CI (``bca=True``: BCa).

    The percentile interval is the default: in the simulations of ``tests/test_stats.py`` BCa did not
    cover better for Spearman's ρ at n = 300–500, and it costs a jackknife.
    """
    dist = bootstrap_spearman([pred], gold, bounds, aggregation, n_resamples, seed)[0]
    jack = jackknife_spearman([pred], gold, bounds, aggregation, seed=seed)[0] if bca else None
    return percentile_interval(task_spearman(pred, gold, bounds, aggregation), dist, alpha, jack)


def task_intervals(preds: Sequence[dict[str, np.ndarray]], gold: dict[str, np.ndarray],
                   bounds: dict[str, Sequence[int]], aggregation: str = "all",
                   n_resamples: int = DEFAULT_RESAMPLES, seed: int = 0, alpha: float = 0.05
                   ) -> tuple[list[dict[str, Interval]], dict[str, np.ndarray]]:
    """Spearman ρ with a percentile-bootstrap CI per task and for ``avg`` (the mean over tasks), per model.

    ``preds[m][task]`` are model m's predictions on the task's pairs. Every model shares the resamples of a
    task (so differences are paired); tasks are resampled independently (seed ``seed + 1000·i`` for the
    i-th task), and ``avg_b`` is the mean of the tasks' ``ρ_b``. Returns the intervals
    (``out[m][task]``, ``out[m]["avg"]``) and the bootstrap draws ``{task: (M, B)}``.
    """
    out: list[dict[str, Interval]] = [{} for _ in preds]
    draws: dict[str, np.ndarray] = {}
    for i, task in enumerate(gold):
        draws[task] = bootstrap_spearman([p[task] for p in preds], gold[task], bounds[task], aggregation,
                                         n_resamples, seed + 1000 * i)
        for m, p in enumerate(preds):
            value = task_spearman(p[task], gold[task], bounds[task], aggregation)
            out[m][task] = percentile_interval(value, draws[task][m], alpha)
    if draws:
        avg_draws = np.mean(list(draws.values()), axis=0)
        for m in range(len(preds)):
            value = float(np.mean([out[m][t].value for t in draws]))
            out[m]["avg"] = percentile_interval(value, avg_draws[m], alpha)
    return out, draws


# ------------------------------------------------------------------------------------------- paired
def permutation_spearman(pred_a: np.ndarray, pred_b: np.ndarray, gold: np.ndarray,
                         bounds: Sequence[int] | None = None, aggregation: str = "all",
                         n_permutations: int = DEFAULT_RESAMPLES, seed: int = 0) -> tuple[float, np.ndarray]:
    """Observed ``Δ = ρ_B − ρ_A`` and its permutation null distribution ``(B,)`` (per-pair swaps of ranks)."""
    n_permutations = check_resamples(n_permutations, "the number of permutations")
    gold = np.asarray(gold, dtype=np.float64).ravel()
    b = _bounds(bounds, gold.size)
    ra = average_ranks(np.asarray(pred_a, np.float64).ravel()) / gold.size
    rb = average_ranks(np.asarray(pred_b, np.float64).ravel()) / gold.size
    if ra.size != gold.size or rb.size != gold.size:
        raise InputError("both models' predictions must hold one value per gold pair")
    observed = task_spearman(rb, gold, b, aggregation) - task_spearman(ra, gold, b, aggregation)
    rng = np.random.default_rng(seed)
    null = np.empty(n_permutations)
    if aggregation == "all":
        gr = average_ranks(gold)[None]
    for s in range(0, n_permutations, _BLOCK):
        m = min(_BLOCK, n_permutations - s)
        swap = rng.random((m, gold.size)) < 0.5
        pa, pb = np.where(swap, rb, ra), np.where(swap, ra, rb)
        if aggregation == "all":
            d = _pearson_rows(average_ranks(pb), gr) - _pearson_rows(average_ranks(pa), gr)
        else:
            per = []
            for lo, hi in pairwise(b):
                g = average_ranks(gold[lo:hi])[None]
                per.append(_pearson_rows(average_ranks(pb[:, lo:hi]), g)
                           - _pearson_rows(average_ranks(pa[:, lo:hi]), g))
            d = _aggregate_rho(per, np.diff(b).astype(float), aggregation)
        null[s:s + m] = d
    return observed, null


def permutation_p_value(observed: float, null: np.ndarray) -> float:
    """Two-sided ``(1 + #{|null| ≥ |observed|}) / (1 + B)`` (never 0; a tolerance absorbs rounding)."""
    null = np.asarray(null, dtype=np.float64)
    hits = int(np.sum(np.abs(null) >= abs(observed) - 1e-12))
    return (1 + hits) / (1 + null.size)


def _upper_sums(groups: tuple[np.ndarray, np.ndarray, np.ndarray], w: np.ndarray) -> np.ndarray:
    """``(1/n) Σ_j (1{x_j > x_i} + ½·1{x_j = x_i}) w_j`` for every i, from x's :func:`_sorted_groups`.

    With ``cs`` the cumulative sum of ``w`` in x's sorted order and i's tie group at sorted positions
    ``s..e``: ``total − ½ (cs_e + cs_{s−1})`` (O(n) after the sort).
    """
    order, start, end = groups
    ws = np.take_along_axis(np.broadcast_to(w, order.shape), order, axis=-1)
    cs = np.cumsum(ws, axis=-1)
    before = np.take_along_axis(cs, start, axis=-1) - np.take_along_axis(ws, start, axis=-1)
    value = cs[..., -1:] - 0.5 * (np.take_along_axis(cs, end, axis=-1) + before)
    return _unsort(order, value) / w.shape[-1]


def _spearman_influence_1(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Spearman's ρ(x, y) ``(...)`` and its influence values ``ψ`` ``(..., n)`` along the last axis (formula in
    the module docstring): ``ρ̂ − ρ ≈ mean(ψ)``, ``ψ`` centred. NaN where x or y is constant."""
    n = x.shape[-1]
    gx, gy = _sorted_groups(x), _sorted_groups(y)
    u = _unsort(gx[0], (gx[1] + gx[2]) / 2.0 + 1.0) / n  # mid-distribution transform F(x) (mid-ranks / n)
    v = _unsort(gy[0], (gy[1] + gy[2]) / 2.0 + 1.0) / n
    shape = np.broadcast_shapes(u.shape, v.shape)
    gx = tuple(np.broadcast_to(a, shape) for a in gx)
    gy = tuple(np.broadcast_to(a, shape) for a in gy)
    u, v = np.broadcast_to(u, shape), np.broadcast_to(v, shape)
    uc, vc = u - u.mean(-1, keepdims=True), v - v.mean(-1, keepdims=True)
    vx, vy = (uc * uc).mean(-1, keepdims=True), (vc * vc).mean(-1, keepdims=True)
    vx = np.where(gx[1][..., -1:] == 0, 0.0, vx)  # one tie group: constant (rounding would leave ≈ 1e-34)
    vy = np.where(gy[1][..., -1:] == 0, 0.0, vy)
    with np.errstate(invalid="ignore", divide="ignore"):
        rho = np.where(vx * vy > 0, (uc * vc).mean(-1, keepdims=True) / np.sqrt(vx * vy), np.nan)
        if_c = u * v + _upper_sums(gx, v) + _upper_sums(gy, u)
        if_x = u * u + 2.0 * _upper_sums(gx, u)
        if_y = v * v + 2.0 * _upper_sums(gy, v)
        psi = if_c / np.sqrt(vx * vy) - 0.5 * rho * (if_x / vx + if_y / vy)
    return rho[..., 0], psi - psi.mean(-1, keepdims=True)


def spearman_influence(preds: np.ndarray | Sequence[np.ndarray], gold: np.ndarray,
                       bounds: Sequence[int] | None = None, aggregation: str = "all"
                       ) -> tuple[np.ndarray, np.ndarray]:
    """The task Spearman ρ ``(...)`` of each prediction vector (last axis) and its per-pair influence ``φ``
    ``(..., n)``.

    ``ρ̂ ≈ ρ + (1/n) Σ_i φ_i``: for ``all`` the influence of one ρ over the concatenation; for ``mean`` /
    ``wmean`` (``ρ = Σ_k w_k ρ_k``) pair i of sub-dataset k has ``φ_i = w_k (n/n_k) ψ_i^{(k)}``. ``preds`` may
    hold a leading axis (models, simulations); ``gold`` broadcasts against it. ρ equals
    :func:`task_spearman` (to rounding); differences of rows of ``φ`` are the influence of a paired
    difference (:func:`influence_se`).
    """
    if aggregation not in AGGREGATIONS:
        raise InputError(f"unknown aggregation {aggregation!r}: choose all, mean or wmean")
    x = np.asarray(preds, dtype=np.float64)
    y = np.asarray(gold, dtype=np.float64)
    n = x.shape[-1]
    if y.shape[-1] != n:
        raise InputError(f"predictions hold {n} values but gold holds {y.shape[-1]}: pair them row by row")
    b = _bounds(bounds, n)
    if aggregation == "all":
        return _spearman_influence_1(x, y)
    sizes = np.diff(b).astype(float)
    weights = np.full(sizes.size, 1.0 / sizes.size) if aggregation == "mean" else sizes / sizes.sum()
    parts = [_spearman_influence_1(x[..., lo:hi], y[..., lo:hi]) for lo, hi in pairwise(b)]
    rho = sum(w * r for w, (r, _) in zip(weights, parts))
    phi = np.concatenate([w * (n / nk) * psi for w, nk, (_, psi) in zip(weights, sizes, parts)], axis=-1)
    return rho, phi


def influence_se(phi: np.ndarray, bounds: Sequence[int] | None = None) -> np.ndarray:
    """Standard error of ``(1/n) Σ φ_i`` when the pairs are drawn within sub-datasets (stratified):
    ``√(Σ_k n_k var_k(φ)) / n`` with the within-stratum sample variance (last axis)."""
    phi = np.asarray(phi, dtype=np.float64)
    b = _bounds(bounds, phi.shape[-1])
    total = sum((hi - lo) * phi[..., lo:hi].var(axis=-1, ddof=1) for lo, hi in pairwise(b))
    return np.sqrt(total) / phi.shape[-1]


def sidak_level(alpha: float, family_size: int) -> float:
    """Per-row level ``1 − (1 − α)^{1/m}`` of a family of ``m`` rows with family-wise error ≤ α."""
    return float(-math.expm1(math.log1p(-_check_alpha(alpha)) / max(int(family_size), 1)))


def sidak_adjust(p: float, family_size: int) -> float:
    """Šidák-adjusted p-value ``1 − (1 − p)^m`` (NaN kept; ``≈ m·p`` when p is small, never above 1)."""
    if not math.isfinite(p):
        return math.nan
    p = min(max(p, 0.0), 1.0)
    return 1.0 if p == 1.0 else float(-math.expm1(max(int(family_size), 1) * math.log1p(-p)))


def normal_test(delta: float, stderr: float, alpha: float = 0.05, family_size: int = 1, df: float | None = None,
                method: str = "") -> PairedTest:
    """Wald test and interval of ``Δ`` with standard error ``se`` in a family of ``m`` rows (Šidák).

    Interval ``Δ ± q se`` with ``q = Q(1 − α_m/2)``, ``α_m`` = :func:`sidak_level`; two-sided
    ``p = 2·(1 − Q(|Δ|/se))`` and ``p̃`` = :func:`sidak_adjust`. ``Q`` is the standard normal, or Student
    t with ``df`` degrees of freedom. The interval excludes 0 exactly when ``p̃ < α``. ``se = 0``: the
    interval is the point, ``p = 1`` if Δ = 0 else 0. Non-finite Δ or se: NaN everywhere.
    """
    from scipy import special

    alpha = _check_alpha(alpha)
    m = max(int(family_size), 1)
    if not (math.isfinite(delta) and math.isfinite(stderr) and stderr >= 0):
        return PairedTest(delta, math.nan, math.nan, math.nan, alpha, method, None, math.nan, m)
    half = sidak_level(alpha, m) / 2  # upper-tail quantile by symmetry: q = −Q⁻¹(α_m/2)
    q = float(-special.ndtri(half) if df is None else -special.stdtrit(df, half))
    if stderr == 0:
        p = 1.0 if delta == 0 else 0.0
    else:
        z = -abs(delta) / stderr
        p = float(min(1.0, 2.0 * (special.ndtr(z) if df is None else special.stdtr(df, z))))
    return PairedTest(float(delta), float(delta - q * stderr), float(delta + q * stderr), p, alpha, method,
                      float(stderr), sidak_adjust(p, m), m)


def paired_spearman_se(pred_a: np.ndarray, pred_b: np.ndarray, gold: np.ndarray,
                       bounds: Sequence[int] | None = None, aggregation: str = "all") -> float:
    """Standard error of ``Δρ = ρ_B − ρ_A`` on the same pairs (influence function; module docstring)."""
    _, phi = spearman_influence(np.stack([np.ravel(pred_a), np.ravel(pred_b)]), np.ravel(gold), bounds, aggregation)
    return float(influence_se(phi[1] - phi[0], bounds))


def paired_spearman_test(pred_a: np.ndarray, pred_b: np.ndarray, gold: np.ndarray,
                         bounds: Sequence[int] | None = None, aggregation: str = "all", alpha: float = 0.05,
                         family_size: int = 1) -> PairedTest:
    """Δρ = ρ_B − ρ_A on the same pairs: normal interval and two-sided p-value with the influence-function
    standard error (:func:`paired_spearman_se`), simultaneous over ``family_size`` rows (:func:`normal_test`).

    The permutation test (:func:`permutation_spearman`) is its check: the two p-values agree where the
    permutations can resolve them (``tests/test_stats.py``).
    """
    delta = task_spearman(pred_b, gold, bounds, aggregation) - task_spearman(pred_a, gold, bounds, aggregation)
    se = paired_spearman_se(pred_a, pred_b, gold, bounds, aggregation)
    return normal_test(delta, se, alpha, family_size, method="influence-function se (normal)")


def format_p(p: float | None, floor: float | None = None) -> str:
    """A p-value for display: ``n/a`` (NaN or None), ``< 1e-16`` below 1e-16 (0 included: an underflowed tail
    or an exact zero-variance difference is never printed as 0), ``≤ floor`` at a resolution floor (e.g. a
    permutation test's ``1/(1 + B)``), else 3 significant digits."""
    if p is None or not math.isfinite(p):
        return "n/a"
    if p < 1e-16:
        return "< 1e-16"
    if floor is not None and p <= floor:
        return f"≤ {floor:.3g}"
    return f"{p:.3g}"


# ------------------------------------------------------------------------------------------- means
def t_interval(values: Sequence[float] | np.ndarray, alpha: float = 0.05) -> Interval:
    """``x̄ ± t_{n−1, 1−α/2} · s/√n`` (Student t; NaN bounds when fewer than two finite values)."""
    from scipy.stats import t as student_t

    alpha = _check_alpha(alpha)
    x = np.asarray(values, dtype=np.float64).ravel()
    x = x[np.isfinite(x)]
    if x.size == 0:
        return Interval(math.nan, math.nan, math.nan, None, alpha, "t-interval")
    mean = float(x.mean())
    if x.size < 2:
        return Interval(mean, math.nan, math.nan, None, alpha, "t-interval")
    se = float(x.std(ddof=1) / math.sqrt(x.size))
    half = float(student_t.ppf(1 - alpha / 2, x.size - 1)) * se
    return Interval(mean, mean - half, mean + half, se, alpha, "t-interval")


def paired_mean_test(a: np.ndarray, b: np.ndarray, alpha: float = 0.05, family_size: int = 1) -> PairedTest:
    """Paired Δ = mean(b − a): t-interval (``n − 1`` df) and two-sided paired t-test p-value, simultaneous over
    ``family_size`` rows (:func:`normal_test`). Any non-finite term, or fewer than 2 pairs: NaN (no test)."""
    d = np.asarray(b, dtype=np.float64).ravel() - np.asarray(a, dtype=np.float64).ravel()
    if d.size < 2 or not np.all(np.isfinite(d)):
        return normal_test(math.nan, math.nan, alpha, family_size, method="paired t")
    se = float(d.std(ddof=1) / math.sqrt(d.size))
    return normal_test(float(d.mean()), se, alpha, family_size, df=d.size - 1, method="paired t")


def alignment_terms(x: np.ndarray, y: np.ndarray, alpha: float = 2.0) -> np.ndarray:
    """Per-pair ``‖x̂_i − ŷ_i‖₂^α`` on L2-normalised rows (their mean is ``ℓ_align``)."""
    from ._checks import as_pairs, normalized

    a, b = as_pairs(x, y, ("x", "y"))
    d = normalized(a, "x") - normalized(b, "y")
    return np.sqrt(np.einsum("ij,ij->i", d, d)) ** alpha


def mean_interval(values: np.ndarray, alpha: float = 0.05) -> Interval:
    """Mean with ``se = s/√n`` and a t-interval (e.g. alignment over its positive pairs)."""
    return t_interval(values, alpha)


# ------------------------------------------------------------------------------------------- uniformity
def _z_crit(alpha: float) -> float:
    from scipy.stats import norm

    return float(norm.ppf(1 - _check_alpha(alpha) / 2))


def u_statistic_log_se(row_means: np.ndarray, mean: float, kernel_var: float | None = None) -> float:
    """se of ``log U`` for an order-2 U-statistic ``U`` from its row means (Hoeffding + delta method).

    ``Var U = [4(N−2) ζ₁ + 2 ζ₂] / (N(N−1))``, ``ζ₁ = var(r_i)``, ``ζ₂ = kernel_var`` (omitted if None:
    the term is O(1/N²)); returns ``sqrt(Var U) / U``.
    """
    r = np.asarray(row_means, dtype=np.float64)
    n = r.size
    if n < 3 or not mean > 0:
        return math.nan
    z1 = float(r.var(ddof=1))
    z2 = 0.0 if kernel_var is None else float(kernel_var)
    return math.sqrt(max(4 * (n - 2) * z1 + 2 * z2, 0.0) / (n * (n - 1))) / mean


def uniformity_interval(value: float, stderr: float, alpha: float = 0.05) -> Interval:
    """Normal interval ``ℓ ± z_{1−α/2} se`` for the uniformity (asymptotically normal U-statistic)."""
    z = _z_crit(alpha)
    return Interval(value, value - z * stderr, value + z * stderr, stderr, alpha, "U-statistic se (delta method)")


def paired_uniformity_test(rows_a: np.ndarray, rows_b: np.ndarray, value_a: float, value_b: float,
                           alpha: float = 0.05, family_size: int = 1) -> PairedTest:
    """Δℓ = ℓ_B − ℓ_A on the same sentences: se from the influence ``ψ_i = 2(r_B,i/U_B − r_A,i/U_A)``.

    ``rows_*`` are the per-sentence row means of the kernel, ``value_*`` the uniformities ``log U``.
    Normal interval and two-sided z-test p-value, simultaneous over ``family_size`` rows (:func:`normal_test`;
    a p-value that underflows is 0.0 here and prints as ``< 1e-16`` through :func:`format_p`).
    """
    ra, rb = np.asarray(rows_a, np.float64), np.asarray(rows_b, np.float64)
    if ra.shape != rb.shape:
        raise InputError(f"uniformity row means of {ra.size} and {rb.size} sentences: compare on the same sentences")
    method = "U-statistic influence (delta method)"
    if ra.size < 2 or not (math.isfinite(value_a) and math.isfinite(value_b)):
        return normal_test(math.nan, math.nan, alpha, family_size, method=method)
    psi = 2.0 * (rb / math.exp(value_b) - ra / math.exp(value_a))
    se = float(psi.std(ddof=1) / math.sqrt(psi.size))
    return normal_test(value_b - value_a, se, alpha, family_size, method=method)


# ------------------------------------------------------------------------------------------- multiplicity
def holm(p_values: Sequence[float]) -> list[float]:
    """Holm's step-down adjusted p-values: ``p̃_(i) = max_{j≤i} min(1, (m − j + 1) p_(j))`` (NaNs kept)."""
    p = np.asarray(p_values, dtype=np.float64)
    ok = np.flatnonzero(np.isfinite(p))
    out = np.full(p.shape, np.nan)
    m = ok.size
    order = ok[np.argsort(p[ok], kind="stable")]
    running = 0.0
    for j, i in enumerate(order):
        running = max(running, min(1.0, (m - j) * p[i]))
        out[i] = running
    return [float(v) for v in out]


def interval_verdict(low: float, high: float, higher_is_better: bool | None = True) -> str:
    """What an interval of Δ = other − baseline says: ``no detectable difference`` when it holds 0; else, by
    its side of 0, ``better`` / ``worse`` (``higher_is_better`` True or False: a score with a direction) or
    ``higher`` / ``lower`` (None: a quantity that is not better either way, e.g. ℓ_align or ℓ_uniform alone);
    ``""`` when the interval is not finite (no verdict: the caller says why)."""
    if not (math.isfinite(low) and math.isfinite(high)):
        return ""
    if low <= 0 <= high:
        return "no detectable difference"
    up = low > 0
    if higher_is_better is None:
        return "higher" if up else "lower"
    return "better" if up == higher_is_better else "worse"
