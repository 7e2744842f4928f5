"""'Is my space anisotropic?': the isotropic Gaussian reference and the one-line reading, checked on spaces
whose geometry is known by construction (a Gaussian, a Gaussian shifted into a cone, one stretched along a few
directions)."""

from __future__ import annotations

import numpy as np
import pytest

from reports import reading as R
from simcse_analysis.metrics.anisotropy import anisotropy_summary
from simcse_analysis.metrics.spectrum import effective_rank, singular_values

N, D = 3000, 64


def _reading(x: np.ndarray) -> str:
    s = anisotropy_summary(x, n_pairs=5000, seed=1).to_dict()
    return R.anisotropy_reading(s, R.reference_for(s), None, effective_rank(singular_values(x, center=True)))


def test_the_reference_is_what_an_isotropic_gaussian_of_that_shape_scores():
    ref = R.isotropic_reference(N, D, 5000, 0)
    assert ref["n"] == N and ref["dim"] == D
    assert abs(ref["random_pair_cosine"]) < 4 / np.sqrt(D * 5000) * 3  # mean of 5000 cosines of sd 1/sqrt(d)
    # finite samples: IsoScore and effective rank a little below their ideal 1 and d (Marchenko–Pastur spread)
    assert 0.85 < ref["isoscore"] < 1.0 and 0.9 * D < ref["effective_rank"] < D
    assert ref["first_pc_variance_share"] == pytest.approx((1 + np.sqrt(D / N)) ** 2 / D, rel=0.15)
    assert R.isotropic_reference(N, D, 5000, 0) is ref  # computed once per shape


def test_a_gaussian_reads_isotropic():
    x = np.random.default_rng(5).standard_normal((N, D))
    assert _reading(x).startswith("Close to isotropic")


def test_a_shifted_gaussian_reads_as_a_cone_in_direction_only():
    x = np.random.default_rng(6).standard_normal((N, D)) + 3.0  # a common offset: cos(random pair) ≈ 9/10
    line = _reading(x)
    assert line.startswith("Anisotropic in direction (a cone), even in spread"), line


def test_variance_on_few_directions_reads_anisotropic_in_spread_not_in_direction():
    """The case that looks contradictory: random pairs nearly orthogonal (cosine ≈ 0) and a low IsoScore."""
    x = np.random.default_rng(7).standard_normal((N, D))
    x[:, :4] *= 12.0  # four directions carry most of the variance, centred
    s = anisotropy_summary(x, n_pairs=5000, seed=1).to_dict()
    assert abs(s["random_pair_cosine"]) < 0.05 and s["isoscore"] < 0.35 * R.reference_for(s)["isoscore"]
    line = _reading(x)
    assert line.startswith("Anisotropic in spread, not in direction") and "concentrated" in line
    assert "isotropic" in line and "effective rank" in line


def test_the_reading_names_layer_zero_when_the_record_has_it():
    s = {"random_pair_cosine": 0.02, "isoscore": 0.9, "dim": D}
    ref = {"random_pair_cosine": 0.0, "isoscore": 0.95}
    line = R.anisotropy_reading(s, ref, {"random_pair_cosine": 0.61, "isoscore": 0.05})
    assert line.endswith("From layer 0 (embeddings): cosine 0.610, IsoScore 0.05.")
    assert R.anisotropy_headline(s, ref).startswith("Close to isotropic: random-pair cosine 0.020")
