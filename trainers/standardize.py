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
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from simcse_analysis.errors import InputError

from .whitening import Whitening, sample_corpus, save_whitened_checkpoint

BASELINE = "standardize"


def standardization_transform(mean: np.ndarray, std: np.ndarray, n_samples: int) -> Whitening:
    """``(x − μ) @ diag(1/s)`` (``s`` = :func:`~simcse_analysis.metrics.rogue.standardization_scale` of ``σ``:
    dimensions constant on the corpus are centred, not scaled), as the affine record the checkpoint stores.

    ``variances`` holds the per-dimension variances ``σ_k²`` in decreasing order (so the record's
    ``explained_variance`` is 1: no dimension is dropped).
    """
    from simcse_analysis.metrics.rogue import standardization_scale

    return Whitening(mean=np.asarray(mean, dtype=np.float64), matrix=np.diag(1.0 / standardization_scale(std)),
                     variances=np.sort(np.asarray(std, dtype=np.float64) ** 2)[::-1], n_samples=int(n_samples))


@dataclass
class StandardizationResult:
    """What :func:`standardize_checkpoint` did (JSON-able)."""

    output_dir: str
    base_model: str
    pooler: str
    max_length: int
    n_sentences: int
    dim: int
    std_min: float
    std_max: float
    constant_dims: list[int] = field(default_factory=list)
    corpus: list[dict[str, Any]] = field(default_factory=list)
    sentence_transformers: bool = False

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
    from simcse_analysis.checkpoint import read_metadata, resolve_checkpoint, weights_fingerprint
    from simcse_analysis.encoder import load_encoder

    outp = Path(out)
    if outp.exists() and (not outp.is_dir() or (any(outp.iterdir()) and not overwrite)):
        raise InputError(f"--out {outp} already exists and is not empty: choose a new directory or pass --overwrite")
    texts, records = sample_corpus(corpus, max_sentences, seed)
    path = resolve_checkpoint(model)
    if read_metadata(path).get("post_transform"):
        raise InputError(f"{model} already applies a post-transform (whitened or standardised): standardise its "
                         "base model instead")
    enc = load_encoder(model, **(encoder_kwargs or {}))
    (log or (lambda m: None))(f"encoding {len(texts)} sentences with {model} ({enc.pooler}, max length "
                              f"{enc.max_length})")
    from simcse_analysis.metrics.rogue import fit_standardization, standardization_scale

    mean, std = fit_standardization(enc.encode(texts, batch_size=batch_size))
    transform = standardization_transform(mean, std, len(texts))
    constant = [int(k) for k in np.flatnonzero(standardization_scale(std) != std)]
    meta = {"standardize": {
        "method": "Timkey & van Schijndel 2021: z = (x - mean) / std per dimension, fitted on the corpus",
        "base_model": str(model), "base_path": str(path), "base_fingerprint": weights_fingerprint(path),
        "corpus": records, "n_sentences": len(texts), "max_sentences": max_sentences, "seed": seed,
        "dim": transform.dim, "constant_dims": constant}}
    save_whitened_checkpoint(path, transform, outp, pooler=enc.pooler, max_length=enc.max_length,
                             encoder_model=enc.model, metadata=meta, overwrite=overwrite, baseline=BASELINE)
    return StandardizationResult(output_dir=str(outp), base_model=str(model), pooler=enc.pooler,
                                 max_length=enc.max_length, n_sentences=len(texts), dim=transform.dim,
                                 std_min=float(std.min()), std_max=float(std.max()), constant_dims=constant, corpus=records,
                                 sentence_transformers=bool(read_metadata(outp).get("sentence_transformers")))
