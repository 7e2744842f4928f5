"""Standardised checkpoints: z-score every dimension of the sentence embeddings (Timkey & van Schijndel 2021,
§6 — the post-processing that stops rogue dimensions from dominating cosine similarity).

On the embeddings of a corpus, per dimension ``k``: ``μ_k`` (mean) and ``σ_k`` (population standard deviation,
:func:`simcse_analysis.metrics.rogue.fit_standardization`); the checkpoint then encodes
``z = (x − μ) / σ = (x − μ) @ diag(1/σ)``. That is an affine post-transform, so it is written exactly like
the whitened checkpoint (:func:`trainers.whitening.save_whitened_checkpoint`: the base model's files,
``whitening.safetensors`` with ``mean`` (d,) and ``matrix = diag(1/σ)`` (d, d), ``simcse_analysis.json`` with
``post_transform`` and ``baseline: "standardize"``), and every command — ``eval``, ``align-uniform``,
``anisotropy``, ``report`` — loads it like any checkpoint; ``SentenceTransformer(dir)`` too, where the pooler
has a sentence-transformers equivalent.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from simcse_analysis.io_utils import write_error

from .whitening import Whitening, WhiteningResult, encode_corpus, save_whitened_checkpoint

BASELINE = "standardize"


def standardization_transform(mean: np.ndarray, std: np.ndarray, n_samples: int) -> Whitening:
    """``(x − μ) @ diag(1/s)`` (``s`` = :func:`~simcse_analysis.metrics.rogue.standardization_scale` of ``σ``:
    dimensions dead on the corpus are centred, not scaled), as the affine record the checkpoint stores.

    ``variances`` holds the per-dimension variances ``σ_k²`` in decreasing order (so the record's
    ``explained_variance`` is 1: no dimension is dropped).
    """
    from simcse_analysis.metrics.rogue import standardization_scale

    return Whitening(mean=np.asarray(mean, dtype=np.float64), matrix=np.diag(1.0 / standardization_scale(std)),
                     variances=np.sort(np.asarray(std, dtype=np.float64) ** 2)[::-1], n_samples=int(n_samples))


@dataclass
class StandardizationResult(WhiteningResult):
    """What :func:`standardize_checkpoint` did (JSON-able): the whitening record's fields (``n_components`` =
    ``dim``, ``explained_variance`` = 1), the range of ``σ`` and the dimensions dead on the corpus (centred, not scaled)."""

    std_min: float = float("nan")
    std_max: float = float("nan")
    dead_dims: list[int] = field(default_factory=list)


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
    from simcse_analysis.checkpoint import read_metadata
    from simcse_analysis.metrics.rogue import fit_standardization, standardization_scale

    fitted = encode_corpus(model, corpus, out, max_sentences=max_sentences, seed=seed, batch_size=batch_size,
                           overwrite=overwrite, encoder_kwargs=encoder_kwargs, log=log)
    path, enc, texts, outp = fitted.path, fitted.encoder, fitted.texts, Path(out)
    mean, std = fit_standardization(fitted.embeddings)
    transform = standardization_transform(mean, std, len(texts))
    dead = [int(k) for k in np.flatnonzero(standardization_scale(std) != std)]
    meta = {"standardize": {
        "method": "Timkey & van Schijndel 2021: z = (x - mean) / std per dimension, fitted on the corpus",
        **fitted.provenance(), "dim": transform.dim, "dead_dims": dead}}
    try:
        save_whitened_checkpoint(path, transform, outp, pooler=enc.pooler, max_length=enc.max_length,
                                 encoder_model=enc.model, metadata=meta, overwrite=overwrite, baseline=BASELINE)
    except OSError as e:  # a full disk or lost rights while writing: nothing half-written is left (atomic swap)
        raise write_error(f"--out {outp}", e) from e
    return StandardizationResult(output_dir=str(outp), base_model=str(model), pooler=enc.pooler,
                                 max_length=enc.max_length, n_sentences=len(texts), dim=transform.dim,
                                 n_components=transform.dim, explained_variance=1.0, corpus=fitted.records,
                                 sentence_transformers=bool(read_metadata(outp).get("sentence_transformers")),
                                 std_min=float(std.min()), std_max=float(std.max()), dead_dims=dead)
