"""BERT-whitening (Su et al. 2021, "Whitening Sentence Representations for Better Semantics and Faster
Retrieval"): a post-processing baseline that makes sentence embeddings isotropic.

On the embeddings ``X`` (N × d) of a corpus:

* ``μ = mean(X)`` (d,),
* ``Σ = (X − μ)ᵀ (X − μ) / (N − 1)`` (the covariance, as ``np.cov`` in the reference),
* ``Σ = U diag(s) Uᵀ`` (SVD of the symmetric PSD ``Σ``; ``s`` descending),
* ``W = U diag(1/√s)[:, :K]`` (d × K): the first ``K`` components, each scaled to unit variance.

Whitened vectors are ``x̃ = (x − μ) W``; on the fitting corpus their covariance is the K × K identity.
``K < d`` also reduces the dimension (Su et al.'s "BERT-whitening-256"). ``K`` defaults to the number of
directions the corpus actually spans (see :func:`fit_whitening`).

:func:`whiten_checkpoint` writes a checkpoint directory that applies ``(x − μ) W`` at encoding time
through the shared post-processing writer (:mod:`trainers.postprocess`): the base model's files,
``whitening.safetensors`` (``mean`` (d,), ``matrix`` (d, K)) and ``simcse_analysis.json`` with
``post_transform: {"type": "affine", …}``, so every analysis and the STS evaluation load it like any
checkpoint. Where the pooler has a sentence-transformers equivalent, the module files (Transformer →
Pooling [→ Dense tanh for ``cls``] → Dense(identity) with weight ``Wᵀ`` and bias ``−μW``) make
``SentenceTransformer(dir)`` return the same vectors.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from simcse_analysis.errors import InputError

from .postprocess import AffinePostTransform, numerical_rank, post_process_checkpoint, principal_axes

#: File holding ``mean`` and ``matrix`` inside a whitened checkpoint.
WHITENING_FILE = "whitening.safetensors"


@dataclass
class Whitening:
    """A fitted whitening: ``transform(x) = (x − mean) @ matrix``.

    ``variances`` are the covariance's eigenvalues ``s`` (all d, descending); ``n_samples`` the number of
    embeddings it was fitted on.
    """

    mean: np.ndarray
    matrix: np.ndarray
    variances: np.ndarray
    n_samples: int

    @property
    def dim(self) -> int:
        return int(self.matrix.shape[0])

    @property
    def rank(self) -> int:
        """Directions the fitting corpus spans (:func:`~trainers.postprocess.numerical_rank` of ``variances``)."""
        return numerical_rank(self.variances)

    @property
    def n_components(self) -> int:
        return int(self.matrix.shape[1])

    @property
    def explained_variance(self) -> float:
        """Share of the total variance kept by the first K components: ``Σ_{i≤K} s_i / Σ_i s_i``."""
        total = float(self.variances.sum())
        return float(self.variances[: self.n_components].sum() / total) if total > 0 else float("nan")

    def transform(self, x: np.ndarray) -> np.ndarray:
        """``(x − μ) W`` in float64, returned as float32 (N, K)."""
        return ((np.asarray(x, dtype=np.float64) - self.mean) @ self.matrix).astype(np.float32)


def fit_whitening(embeddings: np.ndarray, n_components: int | None = None) -> Whitening:
    """Fit μ and ``W = U diag(1/√s)[:, :K]`` on ``embeddings`` (N × d) (see the module docstring).

    ``n_components`` defaults to the covariance's numerical rank ``r`` (components with variance above
    :data:`~trainers.postprocess.RELATIVE_EIGEN_FLOOR` × the largest), not to the dimension ``d``. That is
    ``d`` for generic data, but less where the encoder's output has null directions: a final LayerNorm
    puts every token vector in an affine hyperplane (``Σ_i (h_i − β_i)/γ_i = 0``), and a dimension with
    ``γ_i = 0`` is constant (all-MiniLM-L6-v2's mean-pooled output: dimensions 127, 223 and 319, so
    ``r = 381`` of 384). Whitening a null direction would only amplify rounding noise. Raises :class:`InputError` if the data cannot support ``K``
    components (fewer than ``K + 1`` embeddings, or ``K > r``).
    """
    x = np.asarray(embeddings, dtype=np.float64)
    if x.ndim != 2 or x.shape[0] == 0:
        raise InputError(f"whitening needs a non-empty (N, d) embedding matrix, got shape {x.shape}")
    n, d = x.shape
    if n_components is not None and not 1 <= n_components <= d:
        raise InputError(f"--n-components {n_components}: must be between 1 and the embedding dimension {d}")
    need = (d if n_components is None else int(n_components)) + 1
    if n < need:
        raise InputError(f"whitening to {need - 1} components needs at least {need} sentences, got {n}: "
                         "give a larger --corpus / --max-sentences, or fewer --n-components")
    axes = principal_axes(x, "whitening")
    u, s = axes.directions, axes.variances
    rank = axes.rank
    k = rank if n_components is None else int(n_components)
    if rank < k:
        raise InputError(f"the corpus embeddings span only {rank} of {d} directions, so {k} components cannot be "
                         f"whitened: pass --n-components {rank} or less, or a more varied corpus")
    matrix = u[:, :k] / np.sqrt(s[:k])
    return Whitening(mean=axes.mean, matrix=matrix, variances=s, n_samples=n)


def whitening_transform(w: Whitening) -> AffinePostTransform:
    """The checkpoint form of ``w``: tensors ``mean`` and ``matrix`` in :data:`WHITENING_FILE`."""
    return AffinePostTransform("whitening", WHITENING_FILE, w.mean, w.matrix)


@dataclass
class WhiteningResult:
    """What :func:`whiten_checkpoint` did (JSON-able)."""

    output_dir: str
    base_model: str
    pooler: str
    max_length: int
    n_sentences: int
    dim: int
    n_components: int
    explained_variance: float
    corpus: list[dict[str, Any]] = field(default_factory=list)
    sentence_transformers: bool = False
    rank: int | None = None  # directions the corpus embeddings span (the default K)
    n_components_rule: str = ""  # "given" or "numerical rank of the corpus embeddings"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def whiten_checkpoint(model: str | os.PathLike[str], corpus: Sequence[str | os.PathLike[str]],
                      out: str | os.PathLike[str], *, n_components: int | None = None,
                      max_sentences: int | None = None, seed: int = 0, batch_size: int = 64,
                      overwrite: bool = False, encoder_kwargs: dict[str, Any] | None = None,
                      log: Callable[[str], None] | None = None) -> WhiteningResult:
    """Encode ``corpus`` with ``model``, fit the whitening and write the whitened checkpoint to ``out``
    (the shared recipe of :func:`trainers.postprocess.post_process_checkpoint`).

    ``encoder_kwargs`` go to :func:`~simcse_analysis.encoder.load_encoder` (pooler, max_length, device,
    dtype, cache …); the pooler and max length used are the checkpoint's defaults unless given there,
    and are stored in the output so it encodes the same way. Everything the user can get wrong (corpus,
    model, output directory, K) is checked before ``out`` is written.
    """

    def check_dim(dim: int) -> None:
        if n_components is not None and not 1 <= n_components <= dim:
            raise InputError(f"--n-components {n_components}: must be between 1 and the embedding dimension {dim}")

    def fit(emb: np.ndarray) -> tuple[AffinePostTransform, dict[str, Any]]:
        w = fit_whitening(emb, n_components)
        return whitening_transform(w), {"n_components": w.n_components, "out_dim": w.n_components,
                                        "n_components_rule": "given" if n_components is not None else
                                        "numerical rank of the corpus embeddings", "rank": w.rank,
                                        "explained_variance": w.explained_variance}

    r = post_process_checkpoint(
        model, corpus, out, fit, baseline="whitening",
        method="Su et al. 2021: (x - mean) @ U diag(1/sqrt(s))[:, :K], SVD of the corpus covariance",
        max_sentences=max_sentences, seed=seed, batch_size=batch_size, overwrite=overwrite,
        encoder_kwargs=encoder_kwargs, check_dim=check_dim, log=log)
    return WhiteningResult(output_dir=r.output_dir, base_model=r.base_model, pooler=r.pooler,
                           max_length=r.max_length, n_sentences=r.n_sentences, dim=r.dim,
                           n_components=r.details["n_components"],
                           explained_variance=r.details["explained_variance"], corpus=r.corpus,
                           sentence_transformers=r.sentence_transformers, rank=r.details["rank"],
                           n_components_rule=r.details["n_components_rule"])
