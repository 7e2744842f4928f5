"""IsoScore (Rudman, Gillman, Rayne & Eickhoff, ACL 2022): how uniformly a point cloud uses its space.

Rows are points here; the reference implementation (``IsoScore.IsoScore(points)``, repository
bcbi-edu/p_eickhoff_isoscore) takes the transpose, ``(dims, points)``. Its steps, for n = d dimensions:

1. rotate the centred points onto their principal components (PCA);
2. ``Σ_D`` = the variances along those components, i.e. the eigenvalues of the sample covariance
   (divisor N − 1; the scale cancels in step 3);
3. normalise: ``Σ̂_D = √n · Σ_D / ‖Σ_D‖₂`` (so ``‖Σ̂_D‖₂ = ‖1‖₂ = √n``);
4. isotropy defect ``δ = ‖Σ̂_D − 1‖₂ / sqrt(2(n − √n))`` ∈ [0, 1];
5. ``k = (n − δ²(n − √n))² / n`` dimensions are "uniformly used";
6. ``IsoScore ι = (k − 1) / (n − 1) = ((n − δ²(n − √n))² − n) / (n(n − 1))`` ∈ [0, 1].

An isotropic Gaussian has equal variances, δ = 0 and ι = 1; a cloud on a line has one non-zero
variance, δ = 1 and ι = 0. The variances here come from the float64 covariance matrix's eigenvalues,
which equal PCA's variances and also cover N < d (the missing variances are zero), where the
reference's sklearn PCA would refuse.
"""

from __future__ import annotations

import math

import numpy as np

from ..errors import InputError
from ._checks import as_points
from .spectrum import _singular_values


def isoscore_from_variances(variances: np.ndarray) -> float:
    """IsoScore from the n principal-component variances (steps 3–6 of the module docstring)."""
    v = np.clip(np.asarray(variances, dtype=np.float64), 0.0, None)
    n = v.size
    if n < 2:
        raise InputError("IsoScore needs at least two dimensions")
    norm = float(np.linalg.norm(v))
    if norm == 0.0:
        raise InputError("IsoScore is undefined when all points are identical (zero variance)")
    v_hat = v * math.sqrt(n) / norm
    defect = float(np.linalg.norm(v_hat - 1.0)) / math.sqrt(2.0 * (n - math.sqrt(n)))
    score = ((n - defect ** 2 * (n - math.sqrt(n))) ** 2 - n) / (n * (n - 1))
    return float(min(max(score, 0.0), 1.0))


def pc_variances(x: np.ndarray) -> np.ndarray:
    """Variances of the rows of ``x`` along all d principal directions (descending; zeros when N ≤ d)."""
    x = as_points(x, "x", min_rows=2)
    return _pc_variances(x)


def _pc_variances(x: np.ndarray) -> np.ndarray:
    n, d = x.shape
    sigma = _singular_values(x, center=True)
    var = np.zeros(d, dtype=np.float64)
    var[: sigma.size] = sigma ** 2 / (n - 1)
    return var


def isoscore(x: np.ndarray) -> float:
    """IsoScore ι ∈ [0, 1] of the point cloud ``x`` (``(N, d)``: N points as rows, d ≥ 2 dimensions)."""
    x = as_points(x, "x", min_rows=2)
    return isoscore_from_variances(_pc_variances(x))
