"""Uncertainty of the figures, validated by simulation against known truths (seeded, seconds)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.stats import rankdata, spearmanr

from simcse_analysis.errors import InputError
from simcse_analysis.metrics.align_uniform import uniformity, uniformity_with_rows
from simcse_analysis.metrics.stats import (
    _bounds,
    _groups,
    _weighted_rho,
    average_ranks,
    bootstrap_spearman,
    check_resamples,
    format_p,
    holm,
    influence_se,
    interval_verdict,
    normal_test,
    paired_mean_test,
    paired_spearman_se,
    paired_spearman_test,
    paired_uniformity_test,
    permutation_p_value,
    permutation_spearman,
    resample_weights,
    sidak_adjust,
    sidak_level,
    spearman_ci,
    spearman_influence,
    t_interval,
    task_spearman,
)


# ------------------------------------------------------------------------------- exactness
def test_average_ranks_equal_scipy_rankdata_with_ties():
    a = np.random.default_rng(0).integers(0, 6, size=(5, 40)).astype(float)
    assert np.allclose(average_ranks(a), rankdata(a, axis=1))
    assert np.allclose(average_ranks(a.T, axis=0), rankdata(a.T, axis=0))


@pytest.mark.parametrize("aggregation", ["all", "mean", "wmean"])
def test_weighted_resample_spearman_equals_spearmanr_of_the_explicit_resample(aggregation):
    rng = np.random.default_rng(1)
    x = rng.normal(size=60)
    g = np.round(x + rng.normal(size=60), 1)  # ties in gold, as in STS
    b = _bounds([0, 25, 60], 60)
    w = resample_weights(b, 6, np.random.default_rng(2))
    assert np.all(w[:, :25].sum(axis=1) == 25) and np.all(w[:, 25:].sum(axis=1) == 35)  # stratified
    got = _weighted_rho(w, [_groups(x, b, aggregation)], _groups(g, b, aggregation), b, aggregation)[0]
    for i in range(6):
        idx = np.repeat(np.arange(60), w[i].astype(int))
        if aggregation == "all":
            want = spearmanr(x[idx], g[idx])[0]
        else:
            lo, hi = idx[idx < 25], idx[idx >= 25]
            r = [spearmanr(x[lo], g[lo])[0], spearmanr(x[hi], g[hi])[0]]
            want = np.mean(r) if aggregation == "mean" else (25 * r[0] + 35 * r[1]) / 60
        assert got[i] == pytest.approx(want, abs=1e-12)


def test_task_spearman_all_is_spearman_of_the_concatenation():
    rng = np.random.default_rng(3)
    x, g = rng.normal(size=30), rng.normal(size=30)
    assert task_spearman(x, g, [0, 10, 30]) == pytest.approx(spearmanr(x, g)[0])
    want = (spearmanr(x[:10], g[:10])[0] + spearmanr(x[10:], g[10:])[0]) / 2
    assert task_spearman(x, g, [0, 10, 30], "mean") == pytest.approx(want)


def test_holm_step_down_by_hand():
    # sorted p: 0.01·4 = 0.04; 0.03·3 = 0.09; 0.04·2 = 0.08 → max(0.09, 0.08) = 0.09; 0.5·1
    assert holm([0.01, 0.04, 0.03, 0.5]) == pytest.approx([0.04, 0.09, 0.09, 0.5])
    assert holm([0.2, 0.9]) == pytest.approx([0.4, 0.9])
    assert math.isnan(holm([0.01, math.nan])[1]) and holm([0.01, math.nan])[0] == pytest.approx(0.01)


def test_interval_verdict_reads_the_side_of_zero():
    assert interval_verdict(0.1, 2.0) == "better" and interval_verdict(-2.0, -0.1) == "worse"
    assert interval_verdict(-2.0, -0.1, higher_is_better=False) == "better"
    assert interval_verdict(-2.0, -0.1, higher_is_better=None) == "lower"  # ℓ_align / ℓ_uniform: no direction
    assert interval_verdict(0.1, 2.0, higher_is_better=None) == "higher"
    assert interval_verdict(-0.1, 2.0) == "no detectable difference" and interval_verdict(0.0, 2.0) == (
        "no detectable difference")
    assert interval_verdict(math.nan, 1.0) == ""  # no verdict: the caller says why


def test_sidak_level_and_adjustment_by_hand():
    assert sidak_level(0.05, 1) == pytest.approx(0.05)
    assert sidak_level(0.05, 10) == pytest.approx(1 - 0.95 ** 0.1)
    assert sidak_adjust(0.01, 10) == pytest.approx(1 - 0.99 ** 10)
    assert sidak_adjust(1e-300, 70) == pytest.approx(70e-300)  # no cancellation for tiny p
    assert sidak_adjust(1.0, 3) == 1.0 and math.isnan(sidak_adjust(math.nan, 3))


@pytest.mark.parametrize("family_size", [1, 3, 10, 70])
@pytest.mark.parametrize("df", [None, 40])
def test_simultaneous_interval_excludes_zero_exactly_when_the_adjusted_p_is_below_alpha(family_size, df):
    """The design's coherence: on 2,000 random (Δ, se), the interval, p-value and verdict never disagree, and
    the interval is Δ ± q·se with q the Šidák quantile."""
    from scipy.stats import norm
    from scipy.stats import t as student_t

    rng = np.random.default_rng(family_size)
    z = rng.uniform(0, 6, size=2000) * rng.choice([-1, 1], size=2000)
    q = (norm if df is None else student_t(df)).isf(sidak_level(0.05, family_size) / 2)
    for zi in z:
        t = normal_test(zi * 0.7, 0.7, 0.05, family_size, df)
        excludes = t.low > 0 or t.high < 0
        assert excludes == (t.p_adjusted < 0.05)
        assert t.high - t.low == pytest.approx(2 * q * 0.7)
        assert t.p_adjusted == pytest.approx(sidak_adjust(t.p_value, family_size))
    same = normal_test(1.0, 0.0)
    assert (same.low, same.high, same.p_value) == (1.0, 1.0, 0.0)
    assert math.isnan(normal_test(math.nan, 0.3).low)


def test_t_interval_is_student_t():
    from scipy.stats import t

    x = np.array([1.0, 2.0, 4.0, 7.0])
    ci = t_interval(x)
    half = t.ppf(0.975, 3) * x.std(ddof=1) / 2
    assert (ci.low, ci.high) == pytest.approx((x.mean() - half, x.mean() + half))
    assert math.isnan(t_interval([1.0]).low)


def test_fewer_than_100_resamples_is_an_input_error():
    with pytest.raises(InputError, match="at least 100"):
        check_resamples(99)
    with pytest.raises(InputError, match="at least 100"):
        spearman_ci(np.arange(10.0), np.arange(10.0), n_resamples=50)


@pytest.mark.parametrize("bad, match", [(10**12, "at most 100,000"), (1e12, "at most 100,000"),
                                        ("many", "whole number"), (1.5, "whole number"), (True, "whole number"),
                                        (None, "whole number")])
def test_resamples_beyond_the_bound_or_not_a_number_is_an_input_error(bad, match):
    """1e12 resamples was a MemoryError after the models were encoded; 'many' a raw ValueError."""
    with pytest.raises(InputError, match=match) as e:
        check_resamples(bad)
    assert "--resamples" in str(e.value)
    assert check_resamples(1000.0) == 1000 and check_resamples(np.int64(200)) == 200


def test_uniformity_row_means_equal_brute_force_and_do_not_change_the_value():
    rng = np.random.default_rng(4)
    x = rng.normal(size=(301, 8))
    u = x / np.linalg.norm(x, axis=1, keepdims=True)
    k = np.exp(-2 * ((u[:, None] - u[None]) ** 2).sum(-1))
    np.fill_diagonal(k, 0)
    for block in (64, 4096):  # several tiles (incl. a 1-row diagonal tile) and one tile
        r = uniformity_with_rows(x, block_size=block, precision="float64")
        assert r.value == pytest.approx(uniformity(x, precision="float64"), abs=1e-12)
        assert np.allclose(r.row_means, k.sum(1) / 300, rtol=1e-10)
        assert r.kernel_var == pytest.approx(k[np.triu_indices(301, 1)].var(), rel=1e-8)


# ------------------------------------------------------------------------------- simulations
def _null_rejection_rate(n_sims: int, n: int, noise_b: float, seed: int) -> float:
    rng = np.random.default_rng(seed)
    rejections = 0
    for s in range(n_sims):
        gold = rng.normal(size=n)
        a = gold + rng.normal(size=n)
        b = gold + noise_b * rng.normal(size=n)
        obs, null = permutation_spearman(a, b, gold, n_permutations=200, seed=s)
        rejections += permutation_p_value(obs, null) < 0.05
    return rejections / n_sims


def test_paired_permutation_test_holds_its_level_under_the_null():
    """Both models equally good (same noise level): the 5% test rejects in 3–7% of 500 simulations."""
    rate = _null_rejection_rate(500, 60, 1.0, seed=10)
    print(f"null rejection rate {rate:.3f} (500 sims, n = 60, 200 permutations)")
    assert 0.03 <= rate <= 0.07


def test_paired_permutation_test_has_power_under_a_real_difference():
    """B's noise sd 0.6 vs A's 1.0 (ρ_s ≈ 0.80 vs 0.68 at n = 60): measured power ≈ 0.6."""
    power = _null_rejection_rate(200, 60, 0.6, seed=11)
    print(f"power {power:.3f} (200 sims, n = 60, sd 0.6 vs 1.0)")
    assert power >= 0.4


def test_bootstrap_ci_covers_the_population_spearman_of_a_bivariate_normal():
    """ρ = 0.6 → ρ_s = (6/π)·asin(ρ/2); the 95% percentile CI (n = 600, 300 resamples) covers it in
    93–97% of 400 simulations."""
    rho = 0.6
    truth = 6 / math.pi * math.asin(rho / 2)
    rng = np.random.default_rng(12)
    cov = [[1, rho], [rho, 1]]
    hits = 0
    for s in range(400):
        xy = rng.multivariate_normal([0, 0], cov, size=600)
        ci = spearman_ci(xy[:, 0], xy[:, 1], n_resamples=300, seed=s)
        hits += ci.low <= truth <= ci.high
    print(f"coverage {hits / 400:.3f}")
    assert 0.93 <= hits / 400 <= 0.97


def test_bca_interval_agrees_with_scipy_bootstrap_bca():
    from scipy.stats import bootstrap, spearmanr

    rng = np.random.default_rng(22)
    xy = rng.multivariate_normal([0, 0], [[1, 0.5], [0.5, 1]], size=150)
    ours = spearman_ci(xy[:, 0], xy[:, 1], n_resamples=3000, bca=True)
    ref = bootstrap((xy[:, 0], xy[:, 1]), lambda x, y: spearmanr(x, y)[0], paired=True, vectorized=False,
                    n_resamples=3000, method="BCa", random_state=1).confidence_interval
    assert ours.method == "BCa bootstrap"
    assert ours.low == pytest.approx(ref.low, abs=0.015) and ours.high == pytest.approx(ref.high, abs=0.015)


def test_bootstrap_sd_matches_the_sampling_sd_of_spearman():
    rng = np.random.default_rng(13)
    cov = [[1, 0.5], [0.5, 1]]
    draws = [rng.multivariate_normal([0, 0], cov, size=200) for _ in range(300)]
    spread = np.std([spearmanr(d[:, 0], d[:, 1])[0] for d in draws], ddof=1)
    se = np.mean([spearman_ci(d[:, 0], d[:, 1], n_resamples=200, seed=i).stderr for i, d in enumerate(draws[:40])])
    assert se == pytest.approx(spread, rel=0.15)


def test_paired_bootstrap_shares_resamples():
    rng = np.random.default_rng(14)
    g = rng.normal(size=80)
    a = g + rng.normal(size=80)
    dist = bootstrap_spearman([a, a], g, n_resamples=100)
    assert np.array_equal(dist[0], dist[1])  # same resamples → identical; Δ_b = 0 exactly
    t = paired_spearman_test(a, a, g)
    assert t.delta == 0 and t.low == 0 and t.high == 0 and t.p_value == 1.0


# ------------------------------------------------------------------------------- influence-function se
def _sts_like(rng: np.random.Generator, n: int, noise_b: float = 0.5) -> tuple[np.ndarray, ...]:
    """Gold on STS's 0.2 grid (many ties) and two correlated predictions (a shared error, as two checkpoints)."""
    z = rng.normal(size=n)
    gold = np.round(np.clip(2.5 + 1.2 * z, 0, 5) * 5) / 5
    e = rng.normal(size=(3, n))
    return gold, z + 0.5 * e[2] + 0.5 * e[0], z + 0.5 * e[2] + noise_b * e[1]


@pytest.mark.parametrize("aggregation", ["all", "mean", "wmean"])
def test_influence_se_of_the_paired_difference_equals_the_paired_bootstrap_sd(aggregation):
    """Ties in gold, two sub-datasets: ρ from the influence pass is task_spearman's, and the analytic se of
    ρ_A and of Δρ is the sd of 3,000 stratified paired-bootstrap resamples (within 7%)."""
    rng = np.random.default_rng(21)
    gold, a, b = _sts_like(rng, 700)
    bounds = [0, 300, 700]
    rho, phi = spearman_influence(np.stack([a, b]), gold, bounds, aggregation)
    assert rho == pytest.approx([task_spearman(a, gold, bounds, aggregation),
                                 task_spearman(b, gold, bounds, aggregation)], abs=1e-12)
    dist = bootstrap_spearman([a, b], gold, bounds, aggregation, n_resamples=3000, seed=5)
    assert influence_se(phi[0], bounds) == pytest.approx(dist[0].std(ddof=1), rel=0.07)
    assert paired_spearman_se(a, b, gold, bounds, aggregation) == pytest.approx((dist[1] - dist[0]).std(ddof=1),
                                                                                 rel=0.07)


def test_influence_se_matches_the_sampling_sd_of_the_difference():
    """400 independent STS-B-sized datasets (1,379 pairs, vectorised on a leading axis): the mean analytic se
    of Δρ is the sd of Δρ over the datasets (within 8%)."""
    rng = np.random.default_rng(23)
    data = [_sts_like(rng, 1379, 0.4) for _ in range(400)]
    gold = np.stack([d[0] for d in data])[:, None]
    preds = np.stack([np.stack(d[1:]) for d in data])
    rho, phi = spearman_influence(preds, gold)
    se = influence_se(phi[:, 1] - phi[:, 0])
    spread = float(np.std(rho[:, 1] - rho[:, 0], ddof=1))
    print(f"sd of Δρ over 400 datasets {spread:.5f}, mean influence se {se.mean():.5f}")
    assert float(se.mean()) == pytest.approx(spread, rel=0.08)


def test_permutation_test_checks_the_analytic_p_value():
    """Where 1,000 permutations resolve it, the paired permutation p-value agrees with the analytic one
    (within 3 Monte Carlo sd + 0.02) on 8 datasets from no difference to a clear one."""
    rng = np.random.default_rng(24)
    for i in range(8):
        gold, a, b = _sts_like(rng, 300, 0.5 - 0.05 * i)
        p = paired_spearman_test(a, b, gold).p_value
        obs, null = permutation_spearman(a, b, gold, n_permutations=1000, seed=i)
        q = permutation_p_value(obs, null)
        assert abs(p - q) <= 3 * math.sqrt(q * (1 - q) / 1000) + 0.02, (i, p, q)


def test_p_values_that_underflow_print_below_1e_16_never_0():
    """Issue 24 item 14: paired_uniformity_test's p underflows to 0.0 for a large difference; printed, it is
    '< 1e-16'."""
    rng = np.random.default_rng(25)
    rows_a = np.exp(-2.0) * (1 + 0.01 * rng.normal(size=5000))
    rows_b = np.exp(-3.0) * (1 + 0.01 * rng.normal(size=5000))
    t = paired_uniformity_test(rows_a, rows_b, -2.0, -3.0)
    assert t.p_value < 1e-300 and format_p(t.p_value) == "< 1e-16" and format_p(0.0) == "< 1e-16"
    assert format_p(0.0123) == "0.0123" and format_p(math.nan) == "n/a" and format_p(None) == "n/a"
    assert format_p(1 / 1001, floor=1 / 1001) == "≤ 0.000999"


def _anisotropic_sample(rng: np.random.Generator, n: int) -> np.ndarray:
    x = rng.normal(size=(n, 6)) * np.array([3.0, 1.5, 1, 1, 0.5, 0.5]) + np.array([1.0, 0, 0, 0, 0, 0])
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def test_uniformity_standard_error_matches_the_spread_over_independent_samples():
    """Hoeffding + delta-method se of the exact uniformity vs the sd of 300 independent N = 200 samples."""
    rng = np.random.default_rng(15)
    values, ses = [], []
    for _ in range(300):
        r = uniformity_with_rows(_anisotropic_sample(rng, 200), precision="float64")
        values.append(r.value)
        ses.append(r.stderr)
    spread, se = float(np.std(values, ddof=1)), float(np.mean(ses))
    print(f"uniformity: empirical sd {spread:.5f}, mean se {se:.5f}")
    assert se == pytest.approx(spread, rel=0.12)


def test_paired_uniformity_se_matches_the_spread_of_the_difference():
    """Two fixed maps of the same sentences; sd of ℓ_B − ℓ_A over 300 samples vs the paired se."""
    rng = np.random.default_rng(16)
    m = np.eye(6) + 0.5 * rng.normal(size=(6, 6))
    deltas, ses = [], []
    for _ in range(300):
        a = _anisotropic_sample(rng, 200)
        b = a @ m
        ra = uniformity_with_rows(a, precision="float64")
        rb = uniformity_with_rows(b, precision="float64")
        t = paired_uniformity_test(ra.row_means, rb.row_means, ra.value, rb.value)
        deltas.append(t.delta)
        ses.append((t.high - t.low) / (2 * 1.959963984540054))
    assert float(np.mean(ses)) == pytest.approx(float(np.std(deltas, ddof=1)), rel=0.15)


def test_paired_mean_t_interval_covers_the_true_difference():
    """Alignment-style paired means: the 95% t-interval covers the true Δ in 93–97% of 1000 sims."""
    rng = np.random.default_rng(17)
    hits = 0
    for _ in range(1000):
        a = rng.exponential(1.0, size=40)
        b = a + 0.1 + 0.3 * rng.normal(size=40)
        t = paired_mean_test(a, b)
        hits += t.low <= 0.1 <= t.high
    assert 0.93 <= hits / 1000 <= 0.97
