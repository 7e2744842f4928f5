"""Linear CKA (plain and debiased) and mutual kNN overlap against reference formulas and invariances."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import ortho_group

from simcse_analysis.errors import InputError
from simcse_analysis.metrics.similarity import cka_matrix, knn_indices, knn_jaccard, layer_cka, linear_cka


def _hsic_gram(k: np.ndarray, l: np.ndarray) -> float:
    """Biased HSIC ``tr(KHLH)/(n−1)²`` with the centring matrix ``H = I − 11ᵀ/n`` (Kornblith et al. eq. 3)."""
    n = k.shape[0]
    h = np.eye(n) - np.ones((n, n)) / n
    return float(np.trace(k @ h @ l @ h)) / (n - 1) ** 2


def _hsic_unbiased_gram(k: np.ndarray, l: np.ndarray) -> float:
    """Song et al. (2012) unbiased HSIC written with explicit Gram matrices."""
    n = k.shape[0]
    kt, lt = k.copy(), l.copy()
    np.fill_diagonal(kt, 0)
    np.fill_diagonal(lt, 0)
    one = np.ones(n)
    return float(np.trace(kt @ lt) + (one @ kt @ one) * (one @ lt @ one) / ((n - 1) * (n - 2))
                 - 2 / (n - 2) * one @ kt @ lt @ one) / (n * (n - 3))


def _cka_reference(x: np.ndarray, y: np.ndarray, hsic) -> float:
    k, l = x @ x.T, y @ y.T
    return hsic(k, l) / np.sqrt(hsic(k, k) * hsic(l, l))


@pytest.fixture()
def xy():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(60, 12)) + 0.3
    y = x[:, :8] @ rng.normal(size=(8, 20)) + 0.5 * rng.normal(size=(60, 20))
    return x, y


def test_linear_cka_equals_the_gram_matrix_formula(xy):
    x, y = xy
    assert linear_cka(x, y) == pytest.approx(_cka_reference(x, y, _hsic_gram), abs=1e-6)


def test_debiased_cka_equals_the_unbiased_hsic_gram_formula(xy):
    x, y = xy
    xc, yc = x - x.mean(0), y - y.mean(0)
    assert linear_cka(x, y, debiased=True) == pytest.approx(_cka_reference(xc, yc, _hsic_unbiased_gram), abs=1e-6)


@pytest.mark.parametrize("debiased", [False, True])
def test_cka_is_one_under_orthogonal_transform_and_isotropic_scaling(xy, debiased):
    x, _ = xy
    q = ortho_group.rvs(12, random_state=1)
    assert linear_cka(x, 3.7 * x @ q, debiased=debiased) == pytest.approx(1.0, abs=1e-10)
    assert linear_cka(x, x, debiased=debiased) == pytest.approx(1.0, abs=1e-12)


def test_cka_is_not_invariant_to_an_anisotropic_scaling(xy):
    x, _ = xy
    assert linear_cka(x, x * np.linspace(0.1, 5, 12)) < 0.99


def test_debiased_cka_of_independent_noise_is_near_zero_where_plain_cka_is_biased_up():
    rng = np.random.default_rng(2)
    x, y = rng.normal(size=(40, 200)), rng.normal(size=(40, 200))  # width ≫ N: plain CKA is large
    assert linear_cka(x, y) > 0.5
    assert abs(linear_cka(x, y, debiased=True)) < 0.1


def test_cka_matrix_cells_equal_pairwise_cka(xy):
    x, y = xy
    m = cka_matrix([x, y, x[:, :5]], [y, x])
    for i, a in enumerate([x, y, x[:, :5]]):
        for j, b in enumerate([y, x]):
            assert m[i, j] == pytest.approx(linear_cka(a, b), abs=1e-12)
    d = cka_matrix([x, y], [x, y], debiased=True)
    assert d[0, 1] == pytest.approx(linear_cka(x, y, debiased=True), abs=1e-12)


def test_cka_of_a_constant_representation_is_undefined(xy):
    import math

    x, _ = xy
    const = np.tile(np.arange(12.0), (60, 1))  # the same vector for every sentence ([CLS] at layer 0)
    assert math.isnan(linear_cka(x, const)) and math.isnan(cka_matrix([x], [const])[0, 0])


def test_cka_needs_the_same_rows():
    with pytest.raises(InputError, match="same sentences"):
        linear_cka(np.ones((5, 2)), np.ones((6, 2)))


def test_knn_indices_match_brute_force_and_exclude_self():
    rng = np.random.default_rng(3)
    x = rng.normal(size=(50, 6))
    u = x / np.linalg.norm(x, axis=1, keepdims=True)
    sim = u @ u.T
    np.fill_diagonal(sim, -np.inf)
    want = np.argsort(-sim, axis=1)[:, :5]
    got = knn_indices(x, 5)
    assert all(set(g) == set(w) for g, w in zip(got, want))
    assert not np.any(got == np.arange(50)[:, None])


def test_knn_jaccard_is_one_for_a_rotation_and_low_for_unrelated_spaces():
    rng = np.random.default_rng(4)
    x = rng.normal(size=(80, 10))
    assert knn_jaccard(x, 2 * x @ ortho_group.rvs(10, random_state=5), k=7) == pytest.approx(1.0)
    assert knn_jaccard(x, rng.normal(size=(80, 10)), k=7) < 0.2


def test_knn_jaccard_by_hand():
    """Directions at angles 0, .1, .25, 1, 1.2; Y swaps the vectors of rows 0 and 1. Nearest neighbour (k = 1):
    X: 0→1, 1→0, 2→1, 3→4, 4→3; Y: 0→1, 1→0, 2→0, 3→4, 4→3 → Jaccard 1, 1, 0, 1, 1 → mean 0.8."""
    angles = np.array([0.0, 0.1, 0.25, 1.0, 1.2])
    x = np.c_[np.cos(angles), np.sin(angles)]
    y = x[[1, 0, 2, 3, 4]]
    assert knn_jaccard(x, y, k=1) == pytest.approx(0.8)


@pytest.mark.parametrize("k", [0, 5, 9])
def test_k_must_be_below_n(k):
    with pytest.raises(InputError, match="--k must be between 1 and N - 1"):
        knn_jaccard(np.eye(5), np.eye(5), k=k)


def test_layer_cka_is_the_matrix_and_the_debiased_diagonal_computed_apart():
    """compare's one pass (shared centring and cross products) equals the two estimators called separately,
    including a constant layer (NaN: CKA undefined) and sides of different widths."""
    rng = np.random.default_rng(7)
    xs = [rng.normal(size=(60, 5)), rng.normal(size=(60, 8)), np.tile(rng.normal(size=(1, 5)), (60, 1))]
    ys = [xs[0] @ rng.normal(size=(5, 6)) + 0.1 * rng.normal(size=(60, 6)), rng.normal(size=(60, 8)),
          rng.normal(size=(60, 3))]
    matrix, diagonal = layer_cka(xs, ys)
    np.testing.assert_allclose(matrix, cka_matrix(xs, ys), rtol=1e-12, equal_nan=True)
    want = [linear_cka(x, y, debiased=True) for x, y in zip(xs, ys)]
    np.testing.assert_allclose(diagonal, want, rtol=1e-12, equal_nan=True)
    assert np.isnan(diagonal[2]) and np.isnan(matrix[2]).all() and 0.5 < diagonal[0] < 1.0
