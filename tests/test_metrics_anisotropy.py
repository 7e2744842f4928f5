"""Anisotropy metrics against brute-force references and analytic cases."""

from __future__ import annotations

import math

import numpy as np
import pytest

from simcse_analysis.errors import InputError
from simcse_analysis.metrics.anisotropy import (
    AnisotropySummary,
    CosineBin,
    anisotropy_summary,
    cosine_by_score_bin,
    first_pc_variance_share,
    log_partition_isotropy,
    mean_cosine,
    mean_norm,
    partition_isotropy,
    random_pair_cosine,
)


def _cone(n: int, d: int, seed: int = 0, shift: float = 2.0) -> np.ndarray:
    x = np.random.default_rng(seed).standard_normal((n, d))
    x[:, 0] += shift
    return x


def test_mean_cosine_equals_brute_force_mean_over_distinct_pairs():
    x = _cone(300, 10)
    u = x / np.linalg.norm(x, axis=1, keepdims=True)
    c = u @ u.T
    brute = (c.sum() - np.trace(c)) / (len(x) * (len(x) - 1))
    assert mean_cosine(x) == pytest.approx(brute, rel=1e-10)


def test_random_pair_cosine_is_seeded_and_estimates_the_exact_mean():
    x = _cone(2000, 16, seed=1, shift=1.0)
    a = random_pair_cosine(x, n_pairs=20_000, seed=7)
    assert a == random_pair_cosine(x, n_pairs=20_000, seed=7)
    assert a != random_pair_cosine(x, n_pairs=20_000, seed=8)
    assert a.exact_mean == pytest.approx(mean_cosine(x), rel=1e-12)
    assert abs(a.mean - a.exact_mean) < 5 * a.stderr
    assert a.stderr == pytest.approx(a.std / math.sqrt(20_000), rel=1e-12)


def test_cosine_of_points_sharing_one_direction_is_one():
    x = np.outer(np.random.default_rng(2).uniform(0.5, 3.0, 40), np.ones(5))
    assert mean_cosine(x) == pytest.approx(1.0, rel=1e-12)
    assert random_pair_cosine(x, n_pairs=100).mean == pytest.approx(1.0, rel=1e-12)


def test_cosine_bins_follow_gold_score_edges():
    rng = np.random.default_rng(3)
    a = rng.standard_normal((9, 4))
    b = rng.standard_normal((9, 4))
    scores = [0.0, 0.99, 1.0, 2.5, 3.99, 4.0, 4.5, 5.0, 5.2]  # 5.2 lies outside [0, 5]
    bins = cosine_by_score_bin(a, b, scores)
    assert [x.label for x in bins] == ["0-1", "1-2", "2-3", "3-4", "4-5"]
    assert [x.n for x in bins] == [2, 1, 1, 1, 3]
    cos = np.sum(a * b, axis=1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))
    assert bins[4].cosines == pytest.approx(cos[[5, 6, 7]].tolist(), rel=1e-12)
    assert bins[4].mean == pytest.approx(cos[[5, 6, 7]].mean(), rel=1e-12)
    assert bins[4].quartiles[2] == pytest.approx(np.median(cos[[5, 6, 7]]), rel=1e-12)
    empty = cosine_by_score_bin(a, b, scores, edges=(10, 11))[0]
    assert empty.n == 0 and empty.mean is None
    assert CosineBin.from_dict(bins[0].to_dict()) == bins[0]


def test_cosine_bins_reject_misaligned_scores():
    a = np.ones((3, 2))
    with pytest.raises(InputError, match="one per pair"):
        cosine_by_score_bin(a, a, [1.0, 2.0])
    with pytest.raises(InputError, match="increasing"):
        cosine_by_score_bin(a, a, [1.0, 2.0, 3.0], edges=(2, 1))


def _reference_partition_isotropy(w: np.ndarray) -> float:
    """A direct loop: Z(c) = Σ exp(cᵀw) for c = ±each eigenvector of WᵀW."""
    _, vecs = np.linalg.eigh(w.T @ w)
    z = [np.sum(np.exp(w @ (sign * vecs[:, k]))) for k in range(vecs.shape[1]) for sign in (1, -1)]
    return min(z) / max(z)


def test_partition_isotropy_matches_direct_loop():
    x = 0.5 * _cone(500, 12, seed=4, shift=0.7)
    assert partition_isotropy(x) == pytest.approx(_reference_partition_isotropy(x), rel=1e-9)


def test_partition_isotropy_is_one_for_the_signed_basis_and_small_for_a_cone():
    # W = {±e_k}: WᵀW = 2I and Z(±e_j) = 2cosh(1) + 2(d − 1) for every j, so I(W) = 1.
    eye = np.eye(6)
    assert partition_isotropy(np.vstack([eye, -eye])) == pytest.approx(1.0, rel=1e-12)
    assert partition_isotropy(_cone(500, 6, seed=5, shift=5.0)) < 1e-3


def test_partition_isotropy_does_not_overflow_for_large_norms():
    x = 1000.0 * _cone(200, 4, seed=6)
    value = partition_isotropy(x)
    assert 0.0 <= value < 1e-6 and math.isfinite(value)


def test_log_partition_isotropy_is_finite_where_the_value_underflows():
    # mean norm 400 along e_1 plus unit noise: log I(W) ≈ −2·400 = −800 < −745, so I(W) itself is 0.0 in float64
    rng = np.random.default_rng(11)
    x = rng.normal(size=(300, 5))
    x[:, 0] += 400.0
    log_iw = log_partition_isotropy(x)
    assert partition_isotropy(x) == 0.0
    assert math.isfinite(log_iw) and log_iw == pytest.approx(-2 * np.linalg.norm(x.mean(axis=0)), rel=0.02)
    # where the value does not underflow, exp(log I) is I, matching the direct loop
    y = 0.5 * _cone(500, 12, seed=4, shift=0.7)
    assert math.exp(log_partition_isotropy(y)) == pytest.approx(_reference_partition_isotropy(y), rel=1e-9)


def test_both_signs_square_the_one_sign_value_when_the_mean_dominates():
    """Z(±v_1) ≈ N·exp(±‖μ‖) and Z ≈ N across μ: both signs give exp(−2‖μ‖), one sign exp(−‖μ‖)."""
    rng = np.random.default_rng(12)
    x = 0.05 * rng.normal(size=(2000, 6))
    x[:, 2] += 8.0
    _, vecs = np.linalg.eigh(x.T @ x)
    log_z_one_sign = [np.log(np.sum(np.exp(x @ vecs[:, k]))) for k in range(6)]  # eigh's arbitrary signs
    log_one = min(log_z_one_sign) - max(log_z_one_sign)
    assert log_partition_isotropy(x) == pytest.approx(2 * log_one, rel=0.01)
    assert partition_isotropy(x) == pytest.approx(math.exp(log_one) ** 2, rel=0.1)


def test_mean_norm_and_first_pc_share_match_direct_computations():
    from sklearn.decomposition import PCA

    x = _cone(1000, 8, seed=7) * np.arange(1, 9)
    assert mean_norm(x) == pytest.approx(np.linalg.norm(x, axis=1).mean(), rel=1e-12)
    assert first_pc_variance_share(x) == pytest.approx(PCA().fit(x).explained_variance_ratio_[0], rel=1e-9)


def test_summary_agrees_with_the_individual_metrics_and_round_trips():
    from simcse_analysis.metrics.isoscore import isoscore

    x = _cone(800, 10, seed=8)
    s = anisotropy_summary(x, n_pairs=5000, seed=3)
    rpc = random_pair_cosine(x, n_pairs=5000, seed=3)
    assert s.random_pair_cosine == rpc.mean and s.mean_cosine_all_pairs == pytest.approx(mean_cosine(x))
    assert s.isoscore == pytest.approx(isoscore(x), rel=1e-12)
    assert s.partition_isotropy == pytest.approx(partition_isotropy(x), rel=1e-12)
    assert s.log_partition_isotropy == pytest.approx(log_partition_isotropy(x), rel=1e-12)
    assert s.first_pc_variance_share == pytest.approx(first_pc_variance_share(x), rel=1e-12)
    assert AnisotropySummary.from_dict(s.to_dict()) == s


def test_anisotropy_rejects_bad_inputs():
    with pytest.raises(InputError, match="NaN or inf"):
        anisotropy_summary(np.array([[np.nan, 1.0], [1.0, 1.0]]))
    with pytest.raises(InputError, match="at least 2"):
        mean_cosine(np.ones((1, 3)))
    with pytest.raises(InputError, match="zero vector"):
        mean_cosine(np.array([[0.0, 0.0], [1.0, 1.0]]))


def test_summary_of_points_without_spread_leaves_isoscore_undefined():
    """Layer 0's [CLS] vector is identical for every sentence: no variance, so IsoScore and the
    first-PC share are undefined (None), while the cosine and norm summaries still hold."""
    from simcse_analysis.metrics import anisotropy_summary

    row = np.random.default_rng(0).normal(size=16)
    s = anisotropy_summary(np.tile(row, (50, 1)), n_pairs=100)
    assert s.isoscore is None and s.first_pc_variance_share is None
    assert s.random_pair_cosine == pytest.approx(1.0)
    assert s.mean_norm == pytest.approx(float(np.linalg.norm(row)))
