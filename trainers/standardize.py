"""Standardised checkpoints: z-score every dimension of the sentence embeddings (Timkey & van Schijndel 2021,
§6 — the post-processing that stops rogue dimensions from dominating cosine similarity).

On the embeddings of a corpus, per dimension ``k``: ``μ_k`` (mean) and ``σ_k`` (population standard deviation,
:func:`simcse_analysis.metrics.rogue.fit_standardization`); the checkpoint then encodes
``z = (x − μ) / σ = (x − μ) @ diag(1/σ)``. That is an affine post-transform, so it is written by the shared
post-processing recipe (:func:`trainers.postprocess.post_process_checkpoint`: the base model's files,
``standardize.safetensors`` with ``mean`` (d,) and ``matrix = diag(1/σ)`` (d, d), ``simcse_analysis.json``
with ``post_transform`` and ``baseline: "standardize"``), and every command — ``eval``, ``align-uniform``,
``anisotropy``, ``report`` — loads it like any checkpoint; ``SentenceTransformer(dir)`` too, where the pooler
has a sentence-transformers equivalent.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from .postprocess import AffinePostTransform, post_process_checkpoint

BASELINE = "standardize"
#: File holding ``mean`` and ``matrix`` inside a standardised checkpoint.
STANDARDIZE_FILE = "standardize.safetensors"


def standardization_transform(mean: np.ndarray, std: np.ndarray) -> AffinePostTransform:
    """``(x − μ) @ diag(1/s)`` (``s`` = :func:`~simcse_analysis.metrics.rogue.standardization_scale` of ``σ``:
    dimensions dead on the corpus are centred, not scaled), as the affine map the checkpoint stores."""
    from simcse_analysis.metrics.rogue import standardization_scale

    return AffinePostTransform(BASELINE, STANDARDIZE_FILE, np.asarray(mean, dtype=np.float64),
                               np.diag(1.0 / standardization_scale(std)))


@dataclass
class StandardizationResult:
    """What :func:`standardize_checkpoint` did (JSON-able): where, from what, on how many sentences, the range
    of ``σ`` and the dimensions dead on the corpus (centred, not scaled)."""

    output_dir: str
    base_model: str
    pooler: str
    max_length: int
    n_sentences: int
    dim: int
    corpus: list[dict[str, Any]] = field(default_factory=list)
    sentence_transformers: bool = False
    std_min: float = float("nan")
    std_max: float = float("nan")
    dead_dims: list[int] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def standardize_checkpoint(model: str | os.PathLike[str], corpus: Sequence[str | os.PathLike[str]],
                           out: str | os.PathLike[str], *, max_sentences: int | None = None, seed: int = 0,
                           batch_size: int = 64, overwrite: bool = False,
                           encoder_kwargs: dict[str, Any] | None = None,
                           log: Callable[[str], None] | None = None) -> StandardizationResult:
    """Encode ``corpus`` with ``model``, fit ``μ``, ``σ`` per dimension and write the standardised checkpoint.

    ``encoder_kwargs`` go to :func:`~simcse_analysis.encoder.load_encoder`; the pooler and max length used
    are stored in the output. Bad input (corpus, model, a checkpoint that already applies a post-transform,
    a non-empty ``out``) is refused before ``out`` is written.
    """
    from simcse_analysis.metrics.rogue import fit_standardization, standardization_scale

    def fit(emb: np.ndarray) -> tuple[AffinePostTransform, dict[str, Any]]:
        mean, std = fit_standardization(emb)
        dead = [int(k) for k in np.flatnonzero(standardization_scale(std) != std)]
        return standardization_transform(mean, std), {
            "out_dim": int(std.size), "dead_dims": dead, "std_min": float(std.min()), "std_max": float(std.max())}

    r = post_process_checkpoint(
        model, corpus, out, fit, baseline=BASELINE,
        method="Timkey & van Schijndel 2021: z = (x - mean) / std per dimension, fitted on the corpus",
        max_sentences=max_sentences, seed=seed, batch_size=batch_size, overwrite=overwrite,
        encoder_kwargs=encoder_kwargs, log=log)
    return StandardizationResult(output_dir=r.output_dir, base_model=r.base_model, pooler=r.pooler,
                                 max_length=r.max_length, n_sentences=r.n_sentences, dim=r.dim, corpus=r.corpus,
                                 sentence_transformers=r.sentence_transformers, std_min=r.details["std_min"],
                                 std_max=r.details["std_max"], dead_dims=r.details["dead_dims"])
