"""UMAP maps: exact cosine neighbours, seeded subsamples, deterministic and faithful 2-D maps."""

from __future__ import annotations

import numpy as np
import pytest

from reports.umap_map import UMAPSettings, cosine_knn, subsample, umap_embed, umap_panel
from simcse_analysis.errors import InputError


def _blobs(n_per: int = 60, d: int = 24, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Three tight clusters around orthogonal directions (cosine between centres = 0)."""
    rng = np.random.default_rng(seed)
    centres = np.eye(d)[:3] * 5.0
    x = np.concatenate([c + 0.3 * rng.standard_normal((n_per, d)) for c in centres]).astype(np.float32)
    return x, np.repeat(np.arange(3), n_per)


def test_cosine_knn_matches_brute_force_with_self_first():
    rng = np.random.default_rng(1)
    x = rng.standard_normal((130, 7)).astype(np.float32)
    idx, dist = cosine_knn(x, 6, block=50)  # several blocks
    u = x / np.linalg.norm(x, axis=1, keepdims=True)
    d = 1.0 - u.astype(np.float64) @ u.T.astype(np.float64)
    np.fill_diagonal(d, -1.0)
    expected = np.argsort(d, axis=1, kind="stable")[:, :6]
    assert (idx[:, 0] == np.arange(130)).all() and (dist[:, 0] == 0).all()
    assert (idx == expected).all()
    np.testing.assert_allclose(dist[:, 1:], np.take_along_axis(d, expected, 1)[:, 1:], atol=1e-5)
    assert (np.diff(dist, axis=1) >= 0).all()


def test_subsample_is_seeded_sorted_and_without_repeats():
    a, b = subsample(1000, 300, seed=3), subsample(1000, 300, seed=3)
    assert (a == b).all() and len(set(a.tolist())) == 300 and (np.diff(a) > 0).all()
    assert not (subsample(1000, 300, seed=4) == a).all()
    assert (subsample(50, 300, seed=3) == np.arange(50)).all()  # fewer items than asked: all of them


def test_umap_map_is_deterministic_for_a_seed_and_changes_with_it():
    x, _ = _blobs()
    s = UMAPSettings(n_neighbors=10, n_epochs=60, seed=7)
    first, again = umap_embed(x, s), umap_embed(x, s)
    assert first.shape == (180, 2)
    np.testing.assert_array_equal(first, again)
    other = umap_embed(x, UMAPSettings(n_neighbors=10, n_epochs=60, seed=8))
    assert not np.allclose(first, other)


def test_umap_map_keeps_cosine_clusters_apart():
    x, labels = _blobs()
    coords = umap_embed(x, UMAPSettings(n_neighbors=10, n_epochs=100, seed=0))
    # every point's nearest other point in the map belongs to its own cluster
    d = ((coords[:, None, :] - coords[None, :, :]) ** 2).sum(-1)
    np.fill_diagonal(d, np.inf)
    assert (labels[d.argmin(axis=1)] == labels).mean() == 1.0


def test_umap_panel_rounds_coordinates_for_json():
    x, _ = _blobs(n_per=10)
    panel = umap_panel(x, UMAPSettings(n_neighbors=5, n_epochs=30), decimals=2)
    assert len(panel["x"]) == len(panel["y"]) == 30
    assert all(round(v, 2) == v for v in panel["x"] + panel["y"])


def test_too_few_sentences_or_bad_settings_are_input_errors():
    with pytest.raises(InputError, match="at least 5 sentences"):
        umap_embed(np.ones((3, 4), dtype=np.float32), UMAPSettings())
    with pytest.raises(InputError, match="--umap-colour"):
        UMAPSettings(colour="rainbow")
    with pytest.raises(InputError, match="--umap-sentences"):
        UMAPSettings(n_sentences=2)
