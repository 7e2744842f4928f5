"""How far a sample is from the standard normal ``N(0, I)``, coordinate by coordinate.

For a sample ``Z`` (n × k), per coordinate ``j``: the mean ``z̄_j``, the standard deviation ``s_j``
(``ddof = 1``), the excess kurtosis ``m4_j / m2_j² − 3`` (biased central moments, as
``scipy.stats.kurtosis``; 0 for a normal, > 0 for heavy tails) and the Kolmogorov–Smirnov distance to
``Φ``, ``D_j = sup_t |F̂_j(t) − Φ(t)|`` (``F̂_j`` the empirical CDF). Each is summarised over the ``k``
coordinates. Reference: ``n`` draws of a standard normal give ``E[D] ≈ √(π/2)·ln 2 / √n ≈ 0.8687/√n``
(the mean of the Kolmogorov distribution, asymptotically), so ``ks_distance`` well above
``ks_reference`` means "not standard normal", whatever the likelihood says.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

#: Mean of the Kolmogorov distribution, √(π/2)·ln 2: ``E[√n · D_n]`` for large ``n`` under the null.
KOLMOGOROV_MEAN = math.sqrt(math.pi / 2) * math.log(2)


@dataclass
class NormalityFit:
    """Distance of a sample from ``N(0, I)`` (see the module docstring); means are over coordinates."""

    n: int
    dim: int
    mean_abs_mean: float  # mean_j |z̄_j|
    sd_mean: float  # mean_j s_j
    sd_min: float
    sd_max: float
    excess_kurtosis: float  # mean_j (m4_j / m2_j² − 3)
    ks_distance: float  # mean_j D_j
    ks_reference: float  # ≈ E[D] for n standard-normal draws: 0.8687 / √n
    squared_radius: float  # mean_i ‖z_i‖² / k (1 for N(0, I))

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def describe(self) -> str:
        """One line: ``mean |z̄| 0.02, sd 0.81 (0.52–1.10), excess kurtosis 2.1, KS 0.061 (0.013 if N(0, I))``."""
        return (f"mean |z̄| {self.mean_abs_mean:.3f}, sd {self.sd_mean:.2f} ({self.sd_min:.2f}–{self.sd_max:.2f}), "
                f"excess kurtosis {self.excess_kurtosis:.2f}, KS distance {self.ks_distance:.3f} "
                f"({self.ks_reference:.3f} for a standard-normal sample of this size)")


def normality_fit(z: np.ndarray) -> NormalityFit:
    """:class:`NormalityFit` of the rows of ``z`` (n × k, n ≥ 2), computed in float64."""
    from scipy.special import ndtr

    x = np.asarray(z, dtype=np.float64)
    if x.ndim != 2 or x.shape[0] < 2 or x.shape[1] < 1:
        raise ValueError(f"normality_fit needs an (n, k) sample with n >= 2, got shape {x.shape}")
    n, k = x.shape
    mean = x.mean(axis=0)
    c = x - mean
    m2 = (c ** 2).mean(axis=0)
    m4 = (c ** 4).mean(axis=0)
    with np.errstate(divide="ignore", invalid="ignore"):
        kurt = np.where(m2 > 0, m4 / m2 ** 2 - 3.0, np.nan)
    cdf = ndtr(np.sort(x, axis=0))  # (n, k)
    i = np.arange(1, n + 1, dtype=np.float64)[:, None]
    ks = np.maximum(i / n - cdf, cdf - (i - 1) / n).max(axis=0)
    sd = np.sqrt(m2 * n / (n - 1))
    return NormalityFit(n=n, dim=k, mean_abs_mean=float(np.abs(mean).mean()), sd_mean=float(sd.mean()),
                        sd_min=float(sd.min()), sd_max=float(sd.max()), excess_kurtosis=float(np.nanmean(kurt)),
                        ks_distance=float(ks.mean()), ks_reference=KOLMOGOROV_MEAN / math.sqrt(n),
                        squared_radius=float((x ** 2).sum(axis=1).mean() / k))
