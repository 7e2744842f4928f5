"""Rogue dimensions (metrics.rogue): per-dimension contributions, their summaries, standardisation."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from simcse_analysis.errors import InputError
from simcse_analysis.metrics.anisotropy import mean_cosine
from simcse_analysis.metrics.rogue import (
    cosine_contributions,
    dims_for_share,
    fit_standardization,
    rogue_dimensions,
    standardize,
    variance_shares,
)


def test_contributions_are_the_mean_per_dimension_product_over_distinct_pairs_and_sum_to_the_mean_cosine():
    x = np.random.default_rng(0).normal(size=(9, 4)) + 0.5
    u = x / np.linalg.norm(x, axis=1, keepdims=True)
    ref = np.mean([u[i] * u[j] for i, j in itertools.permutations(range(9), 2)], axis=0)
    c = cosine_contributions(x)
    np.testing.assert_allclose(c, ref, atol=1e-12)
    assert c.sum() == pytest.approx(mean_cosine(x), abs=1e-12)


def test_a_common_offset_spread_over_every_dimension_is_shared_evenly():
    """Isotropic noise around a mean with equal coordinates: every dimension contributes alike, so half the
    expected cosine needs about half the dimensions, and so does half the variance."""
    d = 40
    x = np.random.default_rng(1).normal(size=(4000, d)) + 1.0
    r = rogue_dimensions(x)
    assert r.expected_cosine > 0.4
    assert 0.4 * d <= r.dims_50 <= 0.6 * d
    assert 0.8 * d <= r.dims_90 <= d
    assert 0.4 * d <= r.variance_dims_50 <= 0.6 * d
    assert max(r.variance_shares) < 2.0 / d


def test_isotropic_gaussian_has_no_positive_expected_cosine_to_share_but_even_variance():
    x = np.random.default_rng(2).normal(size=(5000, 32))
    r = rogue_dimensions(x)
    assert abs(r.expected_cosine) < 0.01
    assert 0.4 * 32 <= r.variance_dims_50 <= 0.6 * 32
    if r.expected_cosine <= 0:
        assert r.dims_50 is None and r.dims_90 is None


def test_one_rogue_dimension_carries_the_expected_cosine_alone():
    rng = np.random.default_rng(3)
    x = rng.normal(size=(2000, 30))
    x[:, 7] += 20.0
    r = rogue_dimensions(x, top=3)
    assert r.dims_50 == 1 and r.dims_90 == 1
    assert r.top[0]["dim"] == 7 and r.top[0]["share"] > 0.9
    assert len(r.top) == 3 and len(r.contributions) == 30


def test_dims_for_share_counts_the_largest_values_first():
    v = np.array([0.1, 0.5, 0.2, 0.2])
    assert dims_for_share(v, 0.5) == 1
    assert dims_for_share(v, 0.7) == 2
    assert dims_for_share(v, 0.9) == 3
    assert dims_for_share(v, 1.0) == 4
    assert dims_for_share(np.array([0.1, -0.2]), 0.5) is None


def test_variance_shares_are_each_dimensions_share_of_the_total_variance():
    x = np.random.default_rng(4).normal(size=(100, 3)) * np.array([1.0, 2.0, 3.0])
    v = x.var(axis=0)
    np.testing.assert_allclose(variance_shares(x), v / v.sum(), atol=1e-12)


def test_standardization_gives_zero_mean_unit_variance_dimensions():
    x = np.random.default_rng(5).normal(size=(500, 6)) * np.arange(1, 7) + np.arange(6) * 10
    mean, std = fit_standardization(x)
    z = standardize(x, mean, std)
    np.testing.assert_allclose(z.mean(0), 0, atol=1e-10)
    np.testing.assert_allclose(z.std(0), 1, atol=1e-10)
    x[:, 2] = 3.0  # constant: centred, not scaled
    mean, std = fit_standardization(x)
    z = standardize(x, mean, std)
    np.testing.assert_allclose(z[:, 2], 0.0, atol=1e-12)
    np.testing.assert_allclose(np.delete(z, 2, axis=1).std(0), 1, atol=1e-10)
    x[:, 2] = 3.0 + 1e-6 * np.random.default_rng(6).normal(size=500)  # alive, but 1e-6 of the others: dead
    mean, std = fit_standardization(x)
    np.testing.assert_allclose(standardize(x, mean, std)[:, 2], 0.0, atol=1e-5)
    with pytest.raises(InputError, match="every dimension is constant"):
        standardize(x, mean, np.zeros(6))
