"""What the trainer measures every ``--eval-steps`` steps: STS-B and SICK-R dev Spearman, alignment, uniformity.

* ``stsb_spearman``: Spearman ×100 between ``cos(f(a_i), f(b_i))`` and the gold scores of the STS
  Benchmark dev split (SentEval copy) — the reference trainer's ``eval_stsb_spearman``, which picks the
  best checkpoint by default;
* ``sickr_spearman``: the same on SICK-Relatedness dev (``SICK_trial``, 500 pairs) — the reference
  evaluates it too (``eval_sickr_spearman``) and selects its released checkpoints on the average
  ``(stsb + sickr) / 2`` (``--select-on stsb_sickr``, :func:`selection_score`);
* ``alignment`` / ``uniformity``: the analysis protocol of :mod:`simcse_analysis.analysis` (α = 2,
  t = 2; positives = pairs with gold score > 4, data = the distinct sentences, uniformity exact), on the
  STS-B splits given by ``align_uniform_splits``. The trainer's default is ``dev`` — the sentences the
  Spearman already encodes, so one evaluation costs one encoding; ``train,dev,test`` gives exactly the
  figures of ``simcse-analyze align-uniform`` at the price of encoding ~5× more sentences.

Every distinct sentence is encoded once per evaluation and shared by the three figures.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from simcse_analysis.analysis import (
    AnalysisSettings,
    ProtocolData,
    describe_protocol,
    load_protocol_data,
    run_align_uniform,
)
from simcse_analysis.sts_data import load_sts
from simcse_analysis.sts_eval import cosine_scores, spearman, unique_pairs

from .config import SELECTION_METRICS


@dataclass(frozen=True)
class DevSet:
    """The STS-B dev pairs (for the Spearman) and the alignment/uniformity protocol data, with the
    distinct sentences of both in ``texts``."""

    texts: list[str]
    idx1: np.ndarray
    idx2: np.ndarray
    gold: np.ndarray
    variant: str
    protocol: ProtocolData
    settings: AnalysisSettings
    sick_idx1: np.ndarray | None = None
    sick_idx2: np.ndarray | None = None
    sick_gold: np.ndarray | None = None
    sick_variant: str | None = None

    def describe(self) -> dict[str, Any]:
        """JSON-able description of what is evaluated (stored in ``run.json``)."""
        d = {"stsb": {"task": "STSBenchmark", "split": "dev", "variant": self.variant, "pairs": len(self.gold)},
             "align_uniform": describe_protocol(self.settings, self.protocol)}
        if self.sick_gold is not None:
            d["sickr"] = {"task": "SICKRelatedness", "split": "dev", "variant": self.sick_variant,
                          "pairs": len(self.sick_gold)}
        return d


def load_dev_set(data_dir: str | os.PathLike[str] | None = None, *, align_uniform_splits: Sequence[str] = ("dev",),
                 variant: str = "senteval") -> DevSet:
    """Read STS-B dev and the alignment/uniformity splits (:class:`InputError` if missing or without positives)."""
    subsets = load_sts("STSBenchmark", data_dir, "dev", variant)
    sick = load_sts("SICKRelatedness", data_dir, "dev", variant)
    dev_texts, idx1, idx2 = unique_pairs(subsets + sick)
    n_stsb = len(subsets)
    settings = AnalysisSettings(splits=tuple(align_uniform_splits), variant=variant)
    protocol = load_protocol_data(settings, data_dir)
    if not protocol.positive.any():
        from simcse_analysis.errors import InputError

        raise InputError(f"no STS-B {'+'.join(settings.splits)} pair has a gold score above "
                         f"{settings.positive_threshold:g}, so alignment is undefined: add splits")
    texts = list(dict.fromkeys([*dev_texts, *protocol.sentences]))
    return DevSet(texts, np.concatenate(idx1[:n_stsb]), np.concatenate(idx2[:n_stsb]),
                  np.concatenate([s.scores for s in subsets]), subsets[0].variant, protocol, settings,
                  sick_idx1=np.concatenate(idx1[n_stsb:]), sick_idx2=np.concatenate(idx2[n_stsb:]),
                  sick_gold=np.concatenate([s.scores for s in sick]), sick_variant=sick[0].variant)


class _Rows:
    """An embedding source (``embed``/``describe``) over already computed vectors."""

    def __init__(self, texts: list[str], emb: np.ndarray) -> None:
        self.row = {t: i for i, t in enumerate(texts)}
        self.emb = emb

    def embed(self, sentences: Sequence[str]) -> np.ndarray:
        return self.emb[[self.row[s] for s in sentences]]

    def describe(self) -> dict[str, Any]:
        return {"model": "training"}


def dev_metrics(encode: Callable[[list[str]], np.ndarray], dev: DevSet) -> dict[str, float]:
    """``{"stsb_spearman": ×100, "sickr_spearman": ×100, "alignment": …, "uniformity": …}`` of the
    embeddings ``encode`` gives (``sickr_spearman`` only when the dev set holds SICK-R)."""
    emb = np.asarray(encode(dev.texts), dtype=np.float32)
    au = run_align_uniform(_Rows(dev.texts, emb), dev.protocol, dev.settings)
    out = {"stsb_spearman": 100.0 * spearman(cosine_scores(emb[dev.idx1], emb[dev.idx2]), dev.gold)}
    if dev.sick_gold is not None:
        out["sickr_spearman"] = 100.0 * spearman(cosine_scores(emb[dev.sick_idx1], emb[dev.sick_idx2]),
                                                 dev.sick_gold)
    return {**out, "alignment": float(au.alignment), "uniformity": float(au.uniformity)}


def selection_score(entry: dict[str, Any], metric: str = "stsb") -> float:
    """The score a trajectory entry is selected on: ``stsb_spearman``, or with ``stsb_sickr``
    ``(stsb_spearman + sickr_spearman) / 2``; NaN when a needed figure is missing or not finite."""
    stsb = entry.get("stsb_spearman")
    if metric == "stsb":
        values = [stsb]
    elif metric == "stsb_sickr":
        values = [stsb, entry.get("sickr_spearman")]
    else:
        raise ValueError(f"unknown selection metric {metric!r}: choose one of {', '.join(SELECTION_METRICS)}")
    if any(v is None or not math.isfinite(float(v)) for v in values):
        return float("nan")
    return float(sum(float(v) for v in values) / len(values))
