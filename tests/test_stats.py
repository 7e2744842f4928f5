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
    holm,
    paired_mean_test,
    paired_spearman_test,
    paired_uniformity_test,
    permutation_p_value,
    permutation_spearman,
    resample_weights,
    spearman_ci,
    t_interval,
    task_spearman,
    verdict,
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


def test_verdict_reads_sign_and_adjusted_p():
    assert verdict(0.02, 0.01) == "better"
    assert verdict(-0.02, 0.01) == "worse"
    assert verdict(-0.02, 0.01, higher_is_better=False) == "better"
    assert verdict(0.02, 0.2) == "no detectable difference"


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
    t = paired_spearman_test(a, a, g, n_resamples=100)
    assert t.delta == 0 and t.low == 0 and t.high == 0 and t.p_value == 1.0


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
