"""Token-level measures (metrics.tokens) against straightforward reference computations and analytic cases."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from simcse_analysis.errors import InputError
from simcse_analysis.metrics.tokens import (
    baseline_anisotropy,
    embedding_matrix_summary,
    frequency_buckets,
    intra_sentence_similarity,
    knn_distances,
    maximum_explainable_variance,
    mean_vector_share,
    self_similarity,
    self_similarity_from_sums,
    spearman,
)


def _cos(a: np.ndarray, b: np.ndarray) -> float:
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


# ------------------------------------------------------------------------------------ self-similarity
def test_self_similarity_is_the_mean_cosine_over_distinct_occurrence_pairs():
    x = np.random.default_rng(0).normal(size=(7, 5))
    ref = np.mean([_cos(x[i], x[j]) for i, j in itertools.permutations(range(7), 2)])
    assert self_similarity(x) == pytest.approx(ref, abs=1e-12)


def test_identical_occurrences_have_self_similarity_one():
    v = np.random.default_rng(1).normal(size=8)
    x = np.outer([1.0, 2.0, 0.5, 3.0, 1.5], v)  # the same direction at different scales: a static embedding
    assert self_similarity(x) == pytest.approx(1.0, abs=1e-12)


def test_self_similarity_from_sums_matches_per_type_computation():
    rng = np.random.default_rng(2)
    groups = [rng.normal(size=(n, 6)) for n in (2, 5, 9)]
    sums = np.stack([(g / np.linalg.norm(g, axis=1, keepdims=True)).sum(0) for g in groups])
    got = self_similarity_from_sums(sums, np.array([len(g) for g in groups]))
    np.testing.assert_allclose(got, [self_similarity(g) for g in groups], atol=1e-12)
    with pytest.raises(InputError):
        self_similarity_from_sums(sums[:1], np.array([1]))


# ------------------------------------------------------------------------------------ intra-sentence
def test_intra_sentence_similarity_is_the_mean_cosine_to_the_sentence_mean():
    x = np.random.default_rng(3).normal(size=(6, 4)) + 0.3
    mean = x.mean(0)
    assert intra_sentence_similarity(x) == pytest.approx(np.mean([_cos(r, mean) for r in x]), abs=1e-12)
    assert intra_sentence_similarity(np.tile(x[:1], (4, 1))) == pytest.approx(1.0)


# ------------------------------------------------------------------------------------ baseline
def _baseline_reference(x: np.ndarray, ctx: np.ndarray) -> float:
    """E over ordered pairs of distinct contexts (uniform) of the mean cosine of their tokens (uniform)."""
    ids = list(dict.fromkeys(ctx.tolist()))
    vals = []
    for s, t in itertools.permutations(ids, 2):
        a, b = x[ctx == s], x[ctx == t]
        vals.append(np.mean([_cos(p, q) for p in a for q in b]))
    return float(np.mean(vals))


def test_baseline_is_the_expected_cosine_of_tokens_from_two_different_sentences():
    rng = np.random.default_rng(4)
    ctx = np.array([0, 0, 0, 1, 1, 2, 3, 3, 3, 3, 5, 5])  # unequal sentence lengths, a gap in the ids
    x = rng.normal(size=(ctx.size, 5)) + np.array([1.0, 0, 0, 0, 0])
    assert baseline_anisotropy(x, ctx) == pytest.approx(_baseline_reference(x, ctx), abs=1e-12)


def test_baseline_equals_the_mean_of_ethayarajhs_sampling_scheme_by_simulation():
    """Sentence uniformly, then a token uniformly, from two different sentences: the sample mean of many such
    draws lies within 4 standard errors of the exact value (seeded)."""
    rng = np.random.default_rng(5)
    lengths = rng.integers(1, 8, size=40)
    ctx = np.repeat(np.arange(40), lengths)
    x = rng.normal(size=(ctx.size, 6)) + 0.8
    exact = baseline_anisotropy(x, ctx)
    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]])
    n = 20_000
    s = rng.integers(0, 40, n)
    t = rng.integers(0, 39, n)
    t += t >= s
    i = starts[s] + (rng.random(n) * lengths[s]).astype(int)
    j = starts[t] + (rng.random(n) * lengths[t]).astype(int)
    u = x / np.linalg.norm(x, axis=1, keepdims=True)
    draws = np.einsum("ij,ij->i", u[i], u[j])
    se = draws.std(ddof=1) / np.sqrt(n)
    assert abs(draws.mean() - exact) < 4 * se


def test_isotropic_gaussian_tokens_have_baseline_near_zero():
    rng = np.random.default_rng(6)
    x = rng.normal(size=(3000, 64))
    ctx = np.repeat(np.arange(300), 10)
    assert abs(baseline_anisotropy(x, ctx)) < 0.01
    assert baseline_anisotropy(x + 5.0, ctx) > 0.9  # a common offset: a narrow cone


def test_baseline_needs_two_contexts_and_one_context_id_per_token():
    x = np.random.default_rng(7).normal(size=(4, 3))
    with pytest.raises(InputError, match="two different contexts"):
        baseline_anisotropy(x, np.zeros(4, dtype=int))
    with pytest.raises(InputError, match="one id per token"):
        baseline_anisotropy(x, np.zeros(3, dtype=int))


# ------------------------------------------------------------------------------------ MEV
def test_mev_of_a_rank_one_occurrence_matrix_is_one():
    v = np.random.default_rng(8).normal(size=10)
    assert maximum_explainable_variance(np.outer([1.0, -2.0, 3.0], v)) == pytest.approx(1.0)


def test_mev_matches_the_singular_values_uncentred_and_pca_centred():
    x = np.random.default_rng(9).normal(size=(12, 5)) + 1.0
    s = np.linalg.svd(x, compute_uv=False)
    assert maximum_explainable_variance(x) == pytest.approx(s[0] ** 2 / np.sum(s ** 2), abs=1e-12)
    sc = np.linalg.svd(x - x.mean(0), compute_uv=False)  # PCA's explained_variance_ratio_[0]
    assert maximum_explainable_variance(x, center=True) == pytest.approx(sc[0] ** 2 / np.sum(sc ** 2), abs=1e-12)


# ------------------------------------------------------------------------------------ static matrix
def test_mean_vector_share_is_one_for_equal_rows_zero_for_centred_rows_and_the_formula_between():
    rng = np.random.default_rng(10)
    v = rng.normal(size=6)
    assert mean_vector_share(np.tile(v, (5, 1))) == pytest.approx(1.0)
    x = rng.normal(size=(50, 6))
    assert mean_vector_share(x - x.mean(0)) == pytest.approx(0.0, abs=1e-12)
    y = x + 2.0
    mu = y.mean(0)
    assert mean_vector_share(y) == pytest.approx(mu @ mu / np.mean(np.sum(y * y, axis=1)))


def test_knn_distances_match_a_brute_force_search_excluding_the_row_itself():
    from scipy.spatial.distance import cdist

    e = np.random.default_rng(11).normal(size=(40, 7))
    rows = np.array([0, 5, 39, 17])
    d = cdist(e[rows], e)
    d[np.arange(rows.size), rows] = np.inf
    ref = np.sort(d, axis=1)[:, :3].mean(1)
    np.testing.assert_allclose(knn_distances(e, rows, k=3, block=3), ref, rtol=1e-5)
    with pytest.raises(InputError):
        knn_distances(e, rows, k=40)


def test_spearman_sees_a_monotone_decreasing_norm_and_is_undefined_for_constants():
    counts = np.array([100, 50, 20, 10, 5, 1])
    assert spearman(counts, 1.0 / counts) == pytest.approx(-1.0)
    assert np.isnan(spearman(counts, np.ones(6)))


def test_frequency_buckets_split_by_rank_and_average_within():
    counts = np.array([5, 50, 1, 20, 3])  # ranks: 50→0, 20→1, 5→2, 3→3, 1→4
    norms = np.array([1.0, 2.0, 3.0, 4.0, 5.0])
    knn = norms * 10
    b = frequency_buckets(counts, norms, knn, edges=(2, 4))
    assert [x.n for x in b] == [2, 2, 1]
    assert b[0].mean_norm == pytest.approx((2.0 + 4.0) / 2)  # ranks 0, 1: counts 50 and 20
    assert b[1].mean_knn_distance == pytest.approx((10.0 + 50.0) / 2)  # ranks 2, 3: counts 5 and 3
    assert b[2].label == "4+" and b[2].mean_norm == pytest.approx(3.0)


def test_embedding_matrix_summary_uses_observed_non_special_rows_only():
    rng = np.random.default_rng(12)
    e = rng.normal(size=(30, 4))
    counts = np.zeros(30, dtype=int)
    counts[:10] = np.arange(10, 0, -1)
    e[:10] *= np.linspace(0.5, 2.0, 10)[:, None] / np.linalg.norm(e[:10], axis=1, keepdims=True)  # rare = long
    s = embedding_matrix_summary(e, counts, [f"t{i}" for i in range(30)], exclude=[0], k=2, edges=(3,), scatter=4)
    assert s.n_observed == 9  # row 0 is "special"
    assert s.spearman_frequency_norm == pytest.approx(-1.0)
    assert s.tokens == ["t1", "t2", "t3", "t4"] and s.counts == [9, 8, 7, 6]
    assert [b.n for b in s.buckets] == [3, 6]
    with pytest.raises(InputError, match="occur in the corpus"):
        embedding_matrix_summary(e, np.zeros(30, dtype=int), [""] * 30)
