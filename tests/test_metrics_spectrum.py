"""Singular-value spectrum via the float64 Gram matrix, against a full SVD and analytic cases."""

from __future__ import annotations

import math

import numpy as np
import pytest

from simcse_analysis.errors import InputError
from simcse_analysis.metrics.spectrum import (
    Spectrum,
    effective_rank,
    gram,
    singular_values,
    spectrum,
    stable_rank,
)


def _cloud(n: int, d: int, seed: int = 0, offset: float = 2.0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n, d)) * np.geomspace(3.0, 0.05, d) + offset


@pytest.mark.parametrize("center", [False, True])
@pytest.mark.parametrize(("n", "d"), [(3000, 48), (40, 64)])
def test_singular_values_match_full_svd(center, n, d):
    x = _cloud(n, d)
    ref = np.linalg.svd(x - x.mean(axis=0) if center else x, compute_uv=False)
    got = singular_values(x, center=center)
    assert got.shape == (min(n, d),)
    keep = ref > 1e-6 * ref[0]  # below ~sqrt(eps)·σ1 the Gram route cannot resolve (documented)
    np.testing.assert_allclose(got[keep], ref[keep], rtol=1e-6)


def test_float32_input_gives_the_spectrum_of_its_float64_values():
    x = _cloud(2000, 32).astype(np.float32)
    ref = np.linalg.svd(x.astype(np.float64), compute_uv=False)
    np.testing.assert_allclose(singular_values(x), ref, rtol=1e-6)


def test_gram_accumulated_in_blocks_equals_direct_product():
    x = _cloud(1000, 16, seed=1)
    np.testing.assert_allclose(gram(x, block_size=97), x.T @ x, rtol=1e-12)
    xc = x - x.mean(axis=0)
    np.testing.assert_allclose(gram(x, center=True, block_size=97), xc.T @ xc, rtol=1e-9, atol=1e-9)


def test_summaries_match_their_definitions_on_svd_values():
    x = _cloud(1500, 40, seed=2)
    s = np.linalg.svd(x, compute_uv=False)
    sp = spectrum(x, top_k=(1, 3, 10, 500))
    p = s / s.sum()
    assert sp.effective_rank == pytest.approx(math.exp(-np.sum(p * np.log(p))), rel=1e-6)
    assert sp.stable_rank == pytest.approx(np.sum(s**2) / s[0] ** 2, rel=1e-6)
    assert sp.condition_number == pytest.approx(s[0] / s[-1], rel=1e-6)
    assert sp.sigma_max == pytest.approx(s[0], rel=1e-9)
    np.testing.assert_allclose(sp.singular_values, s / s[0], rtol=1e-6)
    assert sp.singular_values[0] == 1.0
    for k in (1, 3, 10):
        assert sp.explained_variance_top_k[str(k)] == pytest.approx(np.sum(s[:k] ** 2) / np.sum(s**2), rel=1e-9)
    assert "500" not in sp.explained_variance_top_k  # only k ≤ min(N, d)


def test_centered_explained_variance_equals_pca():
    from sklearn.decomposition import PCA

    x = _cloud(1200, 30, seed=3)
    ratio = np.cumsum(PCA().fit(x).explained_variance_ratio_)
    sp = spectrum(x, center=True, top_k=(1, 5, 30))
    for k in (1, 5, 30):
        assert sp.explained_variance_top_k[str(k)] == pytest.approx(ratio[k - 1], rel=1e-8)


def test_equal_singular_values_give_full_effective_and_stable_rank():
    q, _ = np.linalg.qr(np.random.default_rng(4).standard_normal((200, 12)))  # orthonormal columns
    sp = spectrum(7.0 * q)
    assert sp.effective_rank == pytest.approx(12.0, rel=1e-9)
    assert sp.stable_rank == pytest.approx(12.0, rel=1e-9)
    assert sp.condition_number == pytest.approx(1.0, rel=1e-9)
    assert sp.numerical_rank == 12


def test_rank_one_matrix_has_unit_ranks_and_infinite_condition_number():
    rng = np.random.default_rng(5)
    x = np.outer(rng.standard_normal(300), rng.standard_normal(10))
    sp = spectrum(x)
    assert sp.effective_rank == pytest.approx(1.0, abs=1e-6)
    assert sp.stable_rank == pytest.approx(1.0, rel=1e-9)
    assert sp.numerical_rank == 1
    assert sp.condition_number is None  # infinite: serialised as JSON null
    assert sp.explained_variance_top_k["1"] == pytest.approx(1.0, rel=1e-12)


def test_effective_rank_of_two_unequal_values():
    # p = (2/3, 1/3): erank = exp(H) = 3 / 2^(2/3)
    assert effective_rank(np.array([2.0, 1.0])) == pytest.approx(3 / 2 ** (2 / 3), rel=1e-12)
    assert stable_rank(np.array([2.0, 1.0])) == pytest.approx(1.25, rel=1e-12)


def test_centring_removes_the_common_offset():
    x = _cloud(800, 8, seed=6, offset=0.0)
    shifted = x + 100.0
    assert spectrum(shifted, center=True).singular_values == pytest.approx(
        spectrum(x, center=True).singular_values, rel=1e-6)
    assert spectrum(shifted).stable_rank == pytest.approx(1.0, abs=0.01)  # the offset dominates


def test_spectrum_round_trips_through_dict():
    sp = spectrum(_cloud(100, 6, seed=7), center=True)
    assert Spectrum.from_dict(sp.to_dict()) == sp


def test_bad_inputs_are_rejected():
    with pytest.raises(InputError, match="NaN or inf"):
        spectrum(np.array([[1.0, np.nan], [1.0, 2.0]]))
    with pytest.raises(InputError, match="at least 2"):
        spectrum(np.ones((1, 3)))
    with pytest.raises(InputError, match="identical"):
        spectrum(np.ones((5, 3)), center=True)
