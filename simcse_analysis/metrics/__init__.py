"""Pure metrics of embedding spaces: arrays in, numbers and records out (formulas in each docstring).

Rows are points (sentences), columns are dimensions. Invalid input raises
:class:`~simcse_analysis.errors.InputError`.
"""

from __future__ import annotations

from .align_uniform import UniformityEstimate, alignment, uniformity, uniformity_sampled
from .anisotropy import (
    DEFAULT_SCORE_EDGES,
    AnisotropySummary,
    CosineBin,
    RandomPairCosine,
    anisotropy_summary,
    cosine_by_score_bin,
    first_pc_variance_share,
    log_partition_isotropy,
    mean_cosine,
    mean_norm,
    pair_cosines,
    partition_isotropy,
    random_pair_cosine,
)
from .isoscore import isoscore, isoscore_from_variances, pc_variances
from .spectrum import (
    DEFAULT_TOP_K,
    Spectrum,
    effective_rank,
    explained_variance,
    gram,
    singular_values,
    spectrum,
    stable_rank,
)

__all__ = [
    "DEFAULT_SCORE_EDGES", "DEFAULT_TOP_K", "AnisotropySummary", "CosineBin", "RandomPairCosine", "Spectrum",
    "UniformityEstimate", "alignment", "anisotropy_summary", "cosine_by_score_bin", "effective_rank",
    "explained_variance", "first_pc_variance_share", "gram", "isoscore", "isoscore_from_variances",
    "log_partition_isotropy", "mean_cosine", "mean_norm", "pair_cosines", "partition_isotropy", "pc_variances", "random_pair_cosine",
    "singular_values", "spectrum", "stable_rank", "uniformity", "uniformity_sampled",
]
