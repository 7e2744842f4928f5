"""Alignment and uniformity (Wang & Isola 2020) against straightforward references and analytic cases."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from simcse_analysis.errors import InputError
from simcse_analysis.metrics.align_uniform import alignment, uniformity, uniformity_sampled


def _reference_uniformity(x: np.ndarray, t: float = 2.0, normalize: bool = True) -> float:
    """The reference one-liner of SsnL/align_uniform, in float64."""
    v = torch.from_numpy(np.asarray(x, dtype=np.float64))
    if normalize:
        v = torch.nn.functional.normalize(v, dim=1)
    return torch.pdist(v, p=2).pow(2).mul(-t).exp().mean().log().item()


def _reference_alignment(x: np.ndarray, y: np.ndarray, alpha: float = 2.0) -> float:
    a = torch.nn.functional.normalize(torch.from_numpy(np.asarray(x, dtype=np.float64)), dim=1)
    b = torch.nn.functional.normalize(torch.from_numpy(np.asarray(y, dtype=np.float64)), dim=1)
    return (a - b).norm(p=2, dim=1).pow(alpha).mean().item()


def _anisotropic_cloud(n: int, d: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, d)) * np.linspace(0.2, 2.0, d)
    x[:, 0] += 1.5  # a common direction, as in real embeddings
    return x


@pytest.mark.parametrize("precision", ["float32", "float64"])
@pytest.mark.parametrize(("n", "d", "block"), [(600, 24, 4096), (600, 24, 128), (517, 10, 100)])
def test_uniformity_matches_pdist_reference(precision, n, d, block):
    x = _anisotropic_cloud(n, d)
    ref = _reference_uniformity(x)
    got = uniformity(x, precision=precision, block_size=block)
    assert got == pytest.approx(ref, rel=1e-6)


def test_uniformity_float32_input_matches_float64_reference():
    x = _anisotropic_cloud(800, 64, seed=3).astype(np.float32)
    assert uniformity(x) == pytest.approx(_reference_uniformity(x), rel=1e-6)


@pytest.mark.parametrize("t", [0.5, 2.0, 7.0])
def test_uniformity_other_temperatures_match_reference(t):
    x = _anisotropic_cloud(300, 16, seed=1)
    assert uniformity(x, t=t, block_size=64) == pytest.approx(_reference_uniformity(x, t=t), rel=1e-6)


def test_uniformity_without_normalisation_matches_reference_on_raw_vectors():
    x = 0.3 * _anisotropic_cloud(300, 16, seed=2)
    ref = _reference_uniformity(x, t=5.0, normalize=False)
    assert uniformity(x, t=5.0, normalize=False, precision="float64", block_size=70) == pytest.approx(ref, rel=1e-9)
    assert uniformity(x, t=5.0, normalize=False, block_size=70) == pytest.approx(ref, rel=1e-6)


def test_uniformity_survives_exponents_that_underflow_exp():
    # Far-apart raw points with a large t: every kernel term underflows exp() in float64,
    # so the plain one-liner returns -inf while the log-sum-exp result stays finite.
    x = 30.0 * np.random.default_rng(4).standard_normal((200, 8))
    sq = torch.pdist(torch.from_numpy(x)).pow(2)
    assert math.isinf(_reference_uniformity(x, t=50.0, normalize=False))
    expected = (torch.logsumexp(sq.mul(-50.0), 0) - math.log(sq.numel())).item()
    got = uniformity(x, t=50.0, normalize=False, precision="float64", block_size=64)
    assert got == pytest.approx(expected, rel=1e-12)


def test_uniformity_of_identical_embeddings_is_zero():
    x = np.tile(np.random.default_rng(0).standard_normal(32), (50, 1))
    assert uniformity(x, precision="float64") == pytest.approx(0.0, abs=1e-12)
    assert uniformity(x) == pytest.approx(0.0, abs=1e-6)


def test_uniformity_of_two_points_is_minus_t_times_squared_distance():
    u = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])  # ‖u1 − u2‖² = 2
    assert uniformity(u, t=2.0, precision="float64") == pytest.approx(-4.0, rel=1e-12)
    assert uniformity(3 * u, t=2.0, precision="float64") == pytest.approx(-4.0, rel=1e-12)  # normalised first


def test_uniformity_of_antipodal_pair_reaches_lower_bound():
    u = np.array([[0.0, 2.0], [0.0, -1.0]])  # ‖u1 − u2‖² = 4 on the circle
    assert uniformity(u, precision="float64") == pytest.approx(-8.0, rel=1e-12)


def test_uniformity_is_invariant_to_point_order_and_tiling():
    x = _anisotropic_cloud(400, 12, seed=5)
    perm = np.random.default_rng(1).permutation(len(x))
    a = uniformity(x, precision="float64", block_size=33)
    b = uniformity(x[perm], precision="float64", block_size=400)
    assert a == pytest.approx(b, rel=1e-12)


def _sphere_log_mgf(d: int, kappa: float) -> float:
    """log E exp(κ s), s = x·y for x, y independent uniform on S^{d−1}: the von Mises–Fisher constant
    ``Γ(d/2) (2/κ)^{d/2−1} I_{d/2−1}(κ)`` (Bessel form, evaluated with the scaled ``ive``)."""
    from scipy.special import gammaln, ive

    nu = d / 2 - 1
    return gammaln(nu + 1) + nu * math.log(2 / kappa) + math.log(ive(nu, kappa)) + kappa


def _sphere_log_mgf_integral(d: int, kappa: float) -> float:
    """The same expectation by quadrature over the density of s, ∝ (1 − s²)^{(d−3)/2} on [−1, 1]."""
    from scipy.integrate import quad

    w = lambda s: (1 - s * s) ** ((d - 3) / 2)
    num, _ = quad(lambda s: math.exp(kappa * (s - 1)) * w(s), -1, 1, epsabs=0, epsrel=1e-13, limit=200)
    den, _ = quad(w, -1, 1, epsabs=0, epsrel=1e-13, limit=200)
    return kappa + math.log(num / den)


def test_sphere_uniformity_limit_has_consistent_closed_forms():
    # For S², s = x·y is uniform on [−1, 1] (Archimedes): E exp(κ s) = sinh(κ)/κ.
    assert _sphere_log_mgf(3, 4.0) == pytest.approx(math.log(math.sinh(4.0) / 4.0), rel=1e-12)
    for d in (3, 16, 384):
        assert _sphere_log_mgf(d, 4.0) == pytest.approx(_sphere_log_mgf_integral(d, 4.0), rel=1e-9)
    # Large d: s ≈ N(0, 1/d), so log E exp(4s) ≈ 8/d and the limit tends to −4 + 8/d.
    assert -4.0 + _sphere_log_mgf(384, 4.0) == pytest.approx(-4.0 + 8 / 384, rel=1e-3)


@pytest.mark.parametrize("d", [3, 16])
def test_uniformity_of_uniform_points_on_sphere_approaches_its_limit(d):
    t, n = 2.0, 2000
    # ℓ_uniform → log E exp(−t‖x−y‖²) = −2t + log E exp(2t x·y) for x, y uniform on S^{d−1}.
    limit = -2 * t + _sphere_log_mgf(d, 2 * t)
    # The U-statistic is degenerate here (E_y k(x, y) is the same for every x by symmetry), so its
    # standard error is sqrt(2 Var k / (N(N−1))) / E k, with E k² from the same formula at 2t.
    var_ratio = math.exp(-4 * t + _sphere_log_mgf(d, 4 * t) - 2 * limit) - 1
    se = math.sqrt(2 * var_ratio / (n * (n - 1)))
    x = np.random.default_rng(d).standard_normal((n, d))
    assert abs(uniformity(x) - limit) < 5 * se


def test_sampled_uniformity_is_within_its_standard_error_of_the_exact_value():
    x = _anisotropic_cloud(1500, 16, seed=6)
    exact = uniformity(x, precision="float64")
    est = uniformity_sampled(x, n_pairs=200_000, seed=3)
    assert est.stderr > 0
    assert abs(est.value - exact) < 5 * est.stderr
    assert uniformity_sampled(x, n_pairs=1000, seed=3) == uniformity_sampled(x, n_pairs=1000, seed=3)


def test_sampled_uniformity_never_pairs_a_point_with_itself():
    # Two distinct points: every valid pair has ‖x−y‖² = 2, so any self-pair would show up.
    est = uniformity_sampled(np.eye(2), n_pairs=5000, seed=0)
    assert est.value == pytest.approx(-4.0, rel=1e-12)
    assert est.stderr == pytest.approx(0.0, abs=1e-12)


def test_alignment_matches_reference():
    x = _anisotropic_cloud(500, 20, seed=7)
    y = x + 0.3 * np.random.default_rng(8).standard_normal(x.shape)
    for alpha in (1.0, 2.0, 3.0):
        assert alignment(x, y, alpha=alpha) == pytest.approx(_reference_alignment(x, y, alpha), rel=1e-12)


def test_alignment_of_identical_pairs_is_zero():
    x = _anisotropic_cloud(50, 8)
    assert alignment(x, x.copy()) == 0.0
    assert alignment(x, 5 * x) == pytest.approx(0.0, abs=1e-12)  # same direction, other norm


def test_alignment_squared_equals_two_minus_two_mean_cosine():
    x, y = _anisotropic_cloud(200, 8, seed=9), _anisotropic_cloud(200, 8, seed=10)
    u = x / np.linalg.norm(x, axis=1, keepdims=True)
    v = y / np.linalg.norm(y, axis=1, keepdims=True)
    assert alignment(x, y) == pytest.approx(2 - 2 * np.mean(np.sum(u * v, axis=1)), rel=1e-12)
    assert alignment(u, -u) == pytest.approx(4.0, rel=1e-12)  # antipodal pairs: the maximum 2^α


@pytest.mark.parametrize("bad", [np.array([[1.0, np.nan], [0.0, 1.0]]), np.array([[1.0, np.inf], [0.0, 1.0]])])
def test_non_finite_embeddings_are_rejected(bad):
    with pytest.raises(InputError, match="NaN or inf"):
        uniformity(bad)
    with pytest.raises(InputError, match="NaN or inf"):
        alignment(bad, np.ones_like(bad))


def test_fewer_than_two_points_or_bad_shapes_are_rejected():
    with pytest.raises(InputError, match="at least 2"):
        uniformity(np.ones((1, 4)))
    with pytest.raises(InputError, match="2-D"):
        uniformity(np.ones(4))
    with pytest.raises(InputError, match="same shape"):
        alignment(np.ones((3, 4)), np.ones((3, 5)))
    with pytest.raises(InputError, match="zero vector"):
        uniformity(np.array([[1.0, 0.0], [0.0, 0.0]]))
    with pytest.raises(InputError, match="positive"):
        uniformity(np.eye(3), t=0)
