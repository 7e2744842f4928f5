"""Distance of a sample from N(0, I) (the BERT-flow latent's fit diagnostic): each figure against its
definition (scipy), and the Kolmogorov–Smirnov reference against simulated standard-normal samples."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from simcse_analysis.metrics.normality import normality_fit


def test_each_figure_is_its_definition_per_coordinate():
    z = np.random.default_rng(0).standard_t(4, size=(400, 5)) * [1, 2, 0.5, 1, 1] + [0, 1, 0, -1, 0]
    f = normality_fit(z)
    ks = [stats.kstest(z[:, j], "norm").statistic for j in range(5)]
    assert f.ks_distance == pytest.approx(np.mean(ks), rel=1e-12)
    assert f.excess_kurtosis == pytest.approx(np.mean(stats.kurtosis(z, axis=0)), rel=1e-12)
    sd = z.std(axis=0, ddof=1)
    assert (f.sd_mean, f.sd_min, f.sd_max) == pytest.approx((sd.mean(), sd.min(), sd.max()), rel=1e-12)
    assert f.mean_abs_mean == pytest.approx(np.abs(z.mean(axis=0)).mean(), rel=1e-12)
    assert f.squared_radius == pytest.approx((z ** 2).sum(axis=1).mean() / 5, rel=1e-12)
    assert (f.n, f.dim) == (400, 5)


def test_standard_normal_samples_sit_at_the_reference_and_heavy_tails_do_not():
    """Over 200 simulated N(0, I) samples of n = 500 in 8 dimensions, the mean KS distance is the reference
    0.8687/√n (to a few %), kurtosis ≈ 0, sd ≈ 1; a scaled Student t(5) sample (sd ≈ 0.77, heavy tails, as the latent of a short
    BERT-flow fit) is far from all three."""
    rng = np.random.default_rng(1)
    fits = [normality_fit(rng.standard_normal((500, 8))) for _ in range(200)]
    ref = fits[0].ks_reference
    assert ref == pytest.approx(0.8687 / math.sqrt(500), rel=1e-3)
    # finite n sits slightly below the asymptotic mean (≈ −0.1/n relative correction is tiny at n = 500)
    assert np.mean([f.ks_distance for f in fits]) == pytest.approx(ref, rel=0.05)
    assert abs(np.mean([f.excess_kurtosis for f in fits])) < 0.05
    assert np.mean([f.sd_mean for f in fits]) == pytest.approx(1.0, abs=0.01)
    heavy = normality_fit(0.6 * rng.standard_t(5, size=(500, 8)))  # sd 0.6·√(5/3) ≈ 0.77
    assert heavy.excess_kurtosis > 1.0 and heavy.ks_distance > 2 * ref and heavy.sd_mean < 0.9
    assert "KS distance" in heavy.describe() and "standard-normal sample of this size" in heavy.describe()


def test_too_small_a_sample_is_refused():
    with pytest.raises(ValueError, match="n >= 2"):
        normality_fit(np.zeros((1, 3)))
