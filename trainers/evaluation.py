"""What the trainer measures every ``--eval-steps`` steps: STS-B dev Spearman, alignment, uniformity.

* ``stsb_spearman``: Spearman ×100 between ``cos(f(a_i), f(b_i))`` and the gold scores of the STS
  Benchmark dev split (SentEval copy) — the reference trainer's ``eval_stsb_spearman``, which picks the
  best checkpoint;
* ``alignment`` / ``uniformity``: the analysis protocol of :mod:`simcse_analysis.analysis` (α = 2,
  t = 2; positives = pairs with gold score > 4, data = the distinct sentences, uniformity exact), on the
  STS-B splits given by ``align_uniform_splits``. The trainer's default is ``dev`` — the sentences the
  Spearman already encodes, so one evaluation costs one encoding; ``train,dev,test`` gives exactly the
  figures of ``simcse-analyze align-uniform`` at the price of encoding ~5× more sentences.

Every distinct sentence is encoded once per evaluation and shared by the three figures.
"""

from __future__ import annotations

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

    def describe(self) -> dict[str, Any]:
        """JSON-able description of what is evaluated (stored in ``run.json``)."""
        return {"stsb": {"task": "STSBenchmark", "split": "dev", "variant": self.variant, "pairs": len(self.gold)},
                "align_uniform": describe_protocol(self.settings, self.protocol)}


def load_dev_set(data_dir: str | os.PathLike[str] | None = None, *, align_uniform_splits: Sequence[str] = ("dev",),
                 variant: str = "senteval") -> DevSet:
    """Read STS-B dev and the alignment/uniformity splits (:class:`InputError` if missing or without positives)."""
    subsets = load_sts("STSBenchmark", data_dir, "dev", variant)
    dev_texts, idx1, idx2 = unique_pairs(subsets)
    settings = AnalysisSettings(splits=tuple(align_uniform_splits), variant=variant)
    protocol = load_protocol_data(settings, data_dir)
    if not protocol.positive.any():
        from simcse_analysis.errors import InputError

        raise InputError(f"no STS-B {'+'.join(settings.splits)} pair has a gold score above "
                         f"{settings.positive_threshold:g}, so alignment is undefined: add splits")
    texts = list(dict.fromkeys([*dev_texts, *protocol.sentences]))
    return DevSet(texts, np.concatenate(idx1), np.concatenate(idx2), np.concatenate([s.scores for s in subsets]),
                  subsets[0].variant, protocol, settings)


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
    """``{"stsb_spearman": ×100, "alignment": …, "uniformity": …}`` of the embeddings ``encode`` gives."""
    emb = np.asarray(encode(dev.texts), dtype=np.float32)
    au = run_align_uniform(_Rows(dev.texts, emb), dev.protocol, dev.settings)
    return {
        "stsb_spearman": 100.0 * spearman(cosine_scores(emb[dev.idx1], emb[dev.idx2]), dev.gold),
        "alignment": float(au.alignment),
        "uniformity": float(au.uniformity),
    }
