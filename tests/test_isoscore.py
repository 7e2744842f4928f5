"""IsoScore (Rudman et al. 2022) against the reference algorithm and its analytic cases."""

from __future__ import annotations

import math

import numpy as np
import pytest

from simcse_analysis.errors import InputError
from simcse_analysis.metrics.isoscore import isoscore, isoscore_from_variances, pc_variances


def _reference_isoscore(points_dims_first: np.ndarray) -> float:
    """The published steps, on the reference's (dims, points) layout: sklearn PCA, np.cov diagonal,
    normalise to norm √n, isotropy defect, then the score."""
    from sklearn.decomposition import PCA

    n = points_dims_first.shape[0]
    rotated = PCA(n_components=n).fit_transform(points_dims_first.T).T
    cov_diag = np.diag(np.cov(rotated))
    normed = cov_diag * math.sqrt(n) / np.linalg.norm(cov_diag)
    defect = np.linalg.norm(normed - 1.0) / math.sqrt(2 * (n - math.sqrt(n)))
    return ((n - defect**2 * (n - math.sqrt(n))) ** 2 - n) / (n * (n - 1))


@pytest.mark.parametrize("seed", [0, 1])
def test_isoscore_matches_reference_on_anisotropic_clouds(seed):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((3000, 20)) * np.geomspace(5.0, 0.1, 20) @ np.linalg.qr(rng.standard_normal((20, 20)))[0]
    x += 3.0
    assert isoscore(x) == pytest.approx(_reference_isoscore(x.T), rel=1e-6)


def test_isotropic_gaussian_scores_near_one():
    x = np.random.default_rng(2).standard_normal((20000, 16))
    assert isoscore(x) > 0.99


def test_points_on_a_line_score_zero():
    rng = np.random.default_rng(3)
    line = np.outer(rng.standard_normal(500), rng.standard_normal(12)) + rng.standard_normal(12)
    assert isoscore(line) == pytest.approx(0.0, abs=1e-9)


@pytest.mark.parametrize(("n", "k"), [(10, 1), (10, 4), (10, 10), (768, 100)])
def test_uniform_use_of_k_dimensions_scores_k_minus_one_over_n_minus_one(n, k):
    # Variances (1,…,1,0,…,0) with k ones: Σ̂ has √(n/k) on k entries, so δ² = (n − √(nk)) / (n − √n)
    # and ι = (nk − n) / (n(n − 1)) = (k − 1) / (n − 1).
    var = np.r_[np.ones(k), np.zeros(n - k)]
    assert isoscore_from_variances(var) == pytest.approx((k - 1) / (n - 1), abs=1e-12)


def test_isoscore_ignores_scale_rotation_and_translation():
    rng = np.random.default_rng(4)
    x = rng.standard_normal((1000, 8)) * np.arange(1, 9)
    q = np.linalg.qr(rng.standard_normal((8, 8)))[0]
    assert isoscore(5.0 * x @ q + 7.0) == pytest.approx(isoscore(x), rel=1e-9)


def test_fewer_points_than_dimensions_leaves_zero_variances():
    x = np.random.default_rng(5).standard_normal((5, 20))
    var = pc_variances(x)
    assert var.shape == (20,) and np.all(var[4:] < 1e-9 * var[0])
    assert 0.0 <= isoscore(x) < 0.25  # at most 4 of 20 dimensions used


def test_bad_inputs_are_rejected():
    with pytest.raises(InputError, match="identical"):
        isoscore(np.ones((10, 4)))
    with pytest.raises(InputError, match="at least 2"):
        isoscore(np.ones((1, 4)))
    with pytest.raises(InputError, match="NaN or inf"):
        isoscore(np.array([[0.0, np.inf], [1.0, 1.0]]))
