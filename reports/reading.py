""""Is my space anisotropic?": reference values and a one-line reading of the anisotropy numbers.

A page shows seven anisotropy numbers per checkpoint (random-pair and all-pairs cosine, IsoScore, I(W),
log I(W), first-PC share, effective rank). They measure two different things, which is why a newcomer
reads them as contradicting each other (random-pair cosine 0.025 "isotropic", IsoScore 0.28 "not"):

- **direction** — do the vectors share a common direction (a cone)? The mean cosine of random pairs
  (Ethayarajh 2019) is 0 when they do not, whatever the spread. I(W) (Mu & Viswanath 2018, uncentred)
  also drops with a common direction.
- **spread** — after centring, is the variance spread evenly over the directions? IsoScore (Rudman et
  al. 2022), the first principal component's variance share and the effective rank (Roy & Vetterli 2007)
  of the centred matrix measure this.

:func:`isotropic_reference` computes every number for ``n`` samples of N(0, I_d) of the same shape
(seeded), what a perfectly isotropic space of this size scores (finite samples keep IsoScore below 1
and the effective rank below d). :func:`anisotropy_reading` states both properties against it in one
line, and where the record has it, against the checkpoint's own layer 0 (the embedding layer).

The thresholds of the reading (:data:`DIRECTION_LEVELS`, :data:`SPREAD_LEVELS`) are conventions of this
page, stated with it, not statistical tests.
"""

from __future__ import annotations

import functools
import math
from typing import Any

import numpy as np

#: Random-pair cosine below which the reading says "no common direction", then "a moderate one", above: a cone.
DIRECTION_LEVELS = (0.1, 0.4)
#: IsoScore as a fraction of the Gaussian reference's: at least the first → "even", at least the second →
#: "uneven", below → "concentrated in few directions".
SPREAD_LEVELS = (0.75, 0.35)
#: The reference's label in tables and figures.
REFERENCE_LABEL = "isotropic Gaussian N(0, I), same n and d"


@functools.lru_cache(maxsize=8)
def isotropic_reference(n: int, d: int, n_pairs: int = 10_000, seed: int = 0) -> dict[str, Any]:
    """The anisotropy summaries of ``n`` samples of N(0, I_d) drawn by ``default_rng(seed)``.

    Returns ``{"n", "dim", "seed", "random_pair_cosine", "mean_cosine_all_pairs", "isoscore",
    "first_pc_variance_share", "log_partition_isotropy", "partition_isotropy", "effective_rank"}``; the
    random pairs are drawn as the checkpoint's (``n_pairs``, ``seed``); the effective rank is that of the
    centred matrix, ``exp(H(σ/Σσ))``.
    """
    from simcse_analysis.metrics.anisotropy import anisotropy_summary
    from simcse_analysis.metrics.spectrum import effective_rank, singular_values

    n, d = int(n), int(d)
    x = np.random.default_rng(seed).standard_normal((n, d))
    s = anisotropy_summary(x, n_pairs=n_pairs, seed=seed).to_dict()
    keep = ("random_pair_cosine", "mean_cosine_all_pairs", "isoscore", "first_pc_variance_share",
            "log_partition_isotropy", "partition_isotropy")
    return {"n": n, "dim": d, "seed": seed, **{k: s.get(k) for k in keep},
            "effective_rank": float(effective_rank(singular_values(x, center=True)))}


def reference_for(summary: dict[str, Any]) -> dict[str, Any] | None:
    """:func:`isotropic_reference` of the shape (and random pairs) of an anisotropy ``summary``."""
    n, d = summary.get("n_points"), summary.get("dim")
    if not (isinstance(n, int) and isinstance(d, int) and n >= 2 and d >= 2):
        return None
    return isotropic_reference(n, d, int(summary.get("n_pairs") or 10_000), int(summary.get("seed") or 0))


def _ok(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


def direction_level(random_pair_cosine: float) -> str:
    """``none`` | ``moderate`` | ``cone`` by :data:`DIRECTION_LEVELS`."""
    lo, hi = DIRECTION_LEVELS
    return "none" if random_pair_cosine < lo else ("moderate" if random_pair_cosine < hi else "cone")


def spread_level(isoscore: float, reference_isoscore: float) -> str:
    """``even`` | ``uneven`` | ``concentrated`` by IsoScore relative to the reference (:data:`SPREAD_LEVELS`)."""
    ratio = isoscore / reference_isoscore if reference_isoscore > 0 else 0.0
    return "even" if ratio >= SPREAD_LEVELS[0] else ("uneven" if ratio >= SPREAD_LEVELS[1] else "concentrated")


_HEADLINE = {("none", "even"): "Close to isotropic", ("none", "uneven"): "Anisotropic in spread, not in direction",
             ("none", "concentrated"): "Anisotropic in spread, not in direction",
             ("moderate", "even"): "Mildly anisotropic in direction, even in spread",
             ("cone", "even"): "Anisotropic in direction (a cone), even in spread"}


def anisotropy_reading(summary: dict[str, Any], reference: dict[str, Any] | None,
                       layer0: dict[str, Any] | None = None, effective_rank: float | None = None) -> str:
    """One line that answers "is this space anisotropic?" for an anisotropy ``summary`` (the checkpoint's
    final embeddings), against the Gaussian ``reference`` and the checkpoint's ``layer0`` summary.

    The headline combines the direction level (random-pair cosine) and the spread level (IsoScore against
    the reference's); the numbers behind both follow, reference values in brackets.
    """
    rpc, iso = summary.get("random_pair_cosine"), summary.get("isoscore")
    if not _ok(rpc):
        return "No anisotropy summary for this checkpoint."
    ref = reference or {}
    direction = direction_level(rpc)
    words = {"none": "random pairs are nearly orthogonal", "moderate": "random pairs share a moderate common direction",
             "cone": "random pairs share a strong common direction (a narrow cone)"}[direction]
    iso_rpc = ref.get("random_pair_cosine")
    parts = [f"{words} (cosine {rpc:.3f}" + (f"; isotropic {iso_rpc:.3f})" if _ok(iso_rpc) else ")")]
    if _ok(iso) and _ok(ref.get("isoscore")):
        spread = spread_level(iso, ref["isoscore"])
        text = {"even": "the variance is spread evenly", "uneven": "the variance is spread unevenly",
                "concentrated": "the variance is concentrated in few directions"}[spread]
        detail = [f"IsoScore {iso:.2f} ({ref['isoscore']:.2f})"]
        pc1 = summary.get("first_pc_variance_share")
        if _ok(pc1) and _ok(ref.get("first_pc_variance_share")):
            detail.append(f"PC1 {100 * pc1:.1f}% of it ({100 * ref['first_pc_variance_share']:.1f}%)")
        if _ok(effective_rank) and _ok(ref.get("effective_rank")):
            detail.append(f"effective rank {effective_rank:.0f} of {summary.get('dim')} ({ref['effective_rank']:.0f})")
        parts.append(f"{text}: {', '.join(detail)}")
        headline = _HEADLINE.get((direction, spread), "Anisotropic in direction and spread")
    else:
        spread, headline = None, {"none": "No common direction", "moderate": "Mildly anisotropic in direction",
                                  "cone": "Anisotropic in direction (a cone)"}[direction]
    line = f"{headline}: " + "; ".join(parts) + "."
    if layer0 and _ok(layer0.get("random_pair_cosine")):
        l0 = f"layer 0 (embeddings): cosine {layer0['random_pair_cosine']:.3f}"
        if _ok(layer0.get("isoscore")):
            l0 += f", IsoScore {layer0['isoscore']:.2f}"
        line += f" From {l0}."
    return line


def anisotropy_headline(summary: dict[str, Any], reference: dict[str, Any] | None) -> str:
    """The reading's headline with its two key numbers (for a summary line)."""
    rpc, iso = summary.get("random_pair_cosine"), summary.get("isoscore")
    ref = reference or {}
    if not _ok(rpc):
        return "No anisotropy summary."
    direction = direction_level(rpc)
    nums = f"random-pair cosine {rpc:.3f}"
    if _ok(ref.get("random_pair_cosine")):
        nums += f" (isotropic {ref['random_pair_cosine']:.3f})"
    if _ok(iso) and _ok(ref.get("isoscore")):
        headline = _HEADLINE.get((direction, spread_level(iso, ref["isoscore"])), "Anisotropic in direction and spread")
        nums += f", IsoScore {iso:.2f} (isotropic {ref['isoscore']:.2f})"
    else:
        headline = {"none": "No common direction", "moderate": "Mildly anisotropic in direction",
                    "cone": "Anisotropic in direction (a cone)"}[direction]
    return f"{headline}: {nums}."


#: What the two kinds of number measure (shown once beside the readings).
READING_NOTE = ("Random-pair cosine (and I(W)) measure a common direction: 0 when random pairs are orthogonal "
                "on average. IsoScore, the first PC's variance share and the effective rank measure how evenly "
                "the variance spreads over directions after centring. A space can have no common direction and "
                "still concentrate its variance in few directions, so a low random-pair cosine and a low "
                "IsoScore do not contradict each other. Reference: " + REFERENCE_LABEL + " (seeded), what a "
                f"perfectly isotropic space of the same size scores. Levels: cosine < {DIRECTION_LEVELS[0]:g} "
                f"no common direction, < {DIRECTION_LEVELS[1]:g} moderate, else a cone; IsoScore ≥ "
                f"{SPREAD_LEVELS[0]:g}× the reference even, ≥ {SPREAD_LEVELS[1]:g}× uneven, else concentrated.")
