"""BERT-flow (Li, Zhou, He, Wang, Yang & Li, EMNLP 2020, "On the Sentence Embeddings from Pre-trained Language
Models"): an invertible flow fitted by maximum likelihood on frozen sentence embeddings, mapping them to an
isotropic Gaussian; the embeddings are the flow's latent.

With ``g`` the Glow-style flow of :func:`simcse_analysis.post_transforms.build_glow_flow` (from ``normflows``:
ActNorm, invertible linear map, affine coupling; ``K`` blocks) and ``u = g⁻¹(x)``, the density of an
embedding ``x`` is

    log p(x) = log N(u; 0, I) + log |det ∂g⁻¹/∂x|

and the flow maximises the mean ``log p`` over the embeddings of a corpus (Adam; the encoder stays
frozen, as in the paper's flow-only variant). ActNorm layers start from the data (Glow's data-dependent
initialisation, on up to 4096 embeddings), couplings start as the identity.

**Null directions are projected out first.** A density on ``R^d`` cannot be fitted to points that span
fewer than ``d`` directions: the likelihood is unbounded along a direction without variance. Pooled
transformer outputs have such directions — all-MiniLM-L6-v2's mean-pooled dimensions 127, 223 and 319
are constant (a final LayerNorm with ``γ_i = 0``), and ActNorm's data-dependent initialisation gives each
of them a scale of ~1e6, which flatters the starting likelihood and derails Adam's first steps. So, as
``whiten`` does, the flow is fitted on the ``r`` directions the corpus spans (its numerical rank,
:func:`~trainers.postprocess.principal_axes`): ``y = (x − μ) Q`` with ``Q`` (d × r) the orthonormal basis
of that subspace closest to the original coordinate axes (:func:`spanned_basis`; when the null directions
are constant coordinates, ``Q`` simply drops them and ``y`` is ``x − μ`` without them). The likelihood
(the NLL per dimension the fit reports) is over those ``r`` coordinates only, and the checkpoint stores
``μ`` and ``Q`` with the flow, so encoding maps every vector the same way; its encodings have ``r``
dimensions.

**A fitted flow is not a standard normal.** The fit is reported with the latent's distance from
``N(0, I)`` on the fitting corpus (:func:`~simcse_analysis.metrics.normality.normality_fit`: per-coordinate
mean, standard deviation, excess kurtosis and Kolmogorov–Smirnov distance against a standard-normal
sample of the same size), recorded in the checkpoint's metadata as ``latent``.

Which corpus: the unsupervised training corpus by default (``--corpus``); the paper's "target" variant fits
on the evaluation sentences themselves (``--target``: every sentence of the 7 STS test sets) — it sees the
test data, so it is labelled ``variant: target`` in the checkpoint and never the default.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from simcse_analysis.errors import InputError
from simcse_analysis.metrics.normality import NormalityFit
from simcse_analysis.path_safety import data_inputs
from simcse_analysis.post_transforms import AffineMap, FlowMap

from .flow_settings import FlowSettings
from .postprocess import (
    RELATIVE_EIGEN_FLOOR,
    PostProcessResult,
    PrincipalAxes,
    post_process_checkpoint,
    principal_axes,
)

#: File holding the flow's state inside a BERT-flow checkpoint.
FLOW_FILE = "flow.safetensors"

#: Fewest embeddings a flow is fitted on.
MIN_SENTENCES = 64


@dataclass
class FittedFlow:
    """A fitted flow, its settings and how the fit went (mean negative log-likelihood in nats per dimension of
    the ``dim`` spanned directions; ``input_dim`` is the embedding dimension, ``projection`` the map onto
    the spanned directions, ``None`` when they are all ``input_dim``; ``latent`` the fitting corpus's latent
    against ``N(0, I)``)."""

    flow: Any
    dim: int
    hidden: int
    settings: FlowSettings
    nll_start: float
    nll_end: float
    steps: int
    fit_time_s: float
    input_dim: int = 0
    projection: AffineMap | None = None
    constant_dims: list[int] = field(default_factory=list)
    latent: NormalityFit | None = None
    baseline: str = "flow"

    def files(self) -> dict[str, dict[str, np.ndarray]]:
        state = {k: v.detach().cpu().contiguous().numpy() for k, v in self.flow.state_dict().items()}
        if self.projection is not None:
            state["projection.mean"] = np.ascontiguousarray(self.projection.mean, dtype=np.float32)
            state["projection.matrix"] = np.ascontiguousarray(self.projection.matrix, dtype=np.float32)
        return {FLOW_FILE: state}

    def spec(self) -> dict[str, Any]:
        spec = {"type": "flow", "file": FLOW_FILE, "library": "normflows", "dim": self.dim,
                "blocks": self.settings.blocks, "hidden": self.hidden}
        if self.projection is not None:
            spec.update(projection=True, input_dim=self.input_dim)
        return spec

    def affine(self) -> None:
        return None

    def offset(self) -> None:
        return None

    def transform(self, x: np.ndarray) -> np.ndarray:
        return FlowMap(self.flow, self.dim, pre=self._stored_projection()).apply(x)

    def _stored_projection(self) -> AffineMap | None:
        """The projection as the checkpoint stores it (float32), so :meth:`transform` encodes as a loaded one."""
        if self.projection is None:
            return None
        return AffineMap(self.projection.mean.astype(np.float32).astype(np.float64),
                         self.projection.matrix.astype(np.float32).astype(np.float64))

    @property
    def null_dims(self) -> int:
        """Directions of the embedding space the fitting corpus does not span (projected out)."""
        return self.input_dim - self.dim


def spanned_basis(axes: PrincipalAxes) -> np.ndarray | None:
    """Orthonormal basis ``Q`` (d × r) of the ``r = axes.rank`` directions the corpus spans, as close to the
    coordinate axes as possible; ``None`` when ``r = d`` (nothing to project out).

    With ``N`` (d × (d − r)) the null directions and ``P = I − N Nᵀ`` the projector onto the spanned
    subspace, the ``r`` coordinates least involved in ``N`` (smallest ``‖N_i‖²``) are projected,
    ``C = P[:, keep]``, and orthonormalised symmetrically (Löwdin): ``Q = C (Cᵀ C)^(−1/2)``, the
    orthonormal frame nearest to ``C``. If the null directions are coordinate axes (constant dimensions),
    ``Q`` is exactly the identity's columns of the other coordinates. Falls back to the top ``r``
    principal directions if ``Cᵀ C`` is ill-conditioned.
    """
    d, r = axes.directions.shape[0], axes.rank
    if r == d:
        return None
    null = axes.directions[:, r:]
    keep = np.sort(np.argsort((null ** 2).sum(axis=1), kind="stable")[:r])
    c = (np.eye(d) - null @ null.T)[:, keep]
    w, v = np.linalg.eigh(c.T @ c)
    if w.min() < 1e-6:
        return axes.directions[:, :r]
    return c @ (v / np.sqrt(w)) @ v.T


def _nll_per_dim(flow: Any, x: Any) -> float:
    import torch

    with torch.no_grad():
        return float(flow.forward_kld(x)) / x.shape[1]


def fit_flow(embeddings: np.ndarray, settings: FlowSettings | None = None, *, progress: bool = False
             ) -> FittedFlow:
    """Fit the flow by maximum likelihood on ``embeddings`` (N × d) after projecting out their null
    directions (see the module docstring)."""
    import torch
    from tqdm.auto import tqdm

    from simcse_analysis.metrics.normality import normality_fit
    from simcse_analysis.post_transforms import build_glow_flow

    s = settings or FlowSettings()
    s.check()
    raw = np.asarray(embeddings, dtype=np.float64)
    if raw.ndim != 2 or len(raw) < MIN_SENTENCES:
        raise InputError(f"BERT-flow needs at least {MIN_SENTENCES} sentences to fit on, got {len(raw)}: give a "
                         "larger --corpus")
    axes = principal_axes(raw, "BERT-flow")
    if axes.rank < 2:
        raise InputError(f"the corpus embeddings span {axes.rank} direction(s); a flow needs at least 2: use a "
                         "varied corpus")
    basis = spanned_basis(axes)
    projection = AffineMap(axes.mean, basis) if basis is not None else None
    x = projection.apply(raw) if projection is not None else raw.astype(np.float32)
    coord_var = raw.var(axis=0)
    constant = np.flatnonzero(coord_var <= coord_var.max() * RELATIVE_EIGEN_FLOOR).tolist()
    n, d = x.shape
    hidden = s.hidden or d
    flow = build_glow_flow(d, s.blocks, hidden, seed=s.seed)
    data = torch.from_numpy(x)
    g = torch.Generator().manual_seed(s.seed)
    with torch.no_grad():  # data-dependent ActNorm initialisation, block by block
        flow.inverse(data[torch.randperm(n, generator=g)[:4096]])
    flow.train()
    nll_start = _nll_per_dim(flow, data)
    optimiser = torch.optim.Adam(flow.parameters(), lr=s.learning_rate)
    batch = min(s.batch_size, n)
    steps = max(1, math.ceil(s.epochs * n / batch))
    order = torch.empty(0, dtype=torch.long)
    began = time.perf_counter()
    for _ in tqdm(range(steps), desc="BERT-flow", disable=not progress):
        if len(order) < batch:
            order = torch.randperm(n, generator=g)
        idx, order = order[:batch], order[batch:]
        loss = flow.forward_kld(data[idx])
        if not torch.isfinite(loss):
            raise InputError(f"the flow's likelihood diverged (loss {float(loss.detach())}): lower --lr (now "
                             f"{s.learning_rate:g}, e.g. {s.learning_rate / 10:g})")
        optimiser.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(flow.parameters(), 10.0)
        optimiser.step()
    elapsed = time.perf_counter() - began
    flow.eval()
    nll_end = _nll_per_dim(flow, data)
    if not nll_end < nll_start:
        raise InputError(f"the flow's fit made the likelihood worse (NLL {nll_start:.3f} → {nll_end:.3f} nats per "
                         f"dimension over {d} spanned directions, {steps} steps): lower --lr (now "
                         f"{s.learning_rate:g}, e.g. {s.learning_rate / 10:g})")
    fitted = FittedFlow(flow=flow, dim=d, hidden=hidden, settings=s, nll_start=nll_start, nll_end=nll_end,
                        steps=steps, fit_time_s=elapsed, input_dim=raw.shape[1], projection=projection,
                        constant_dims=constant)
    fitted.latent = normality_fit(fitted.transform(raw))
    return fitted


def sts_sentences(data_dir: str | os.PathLike[str] | None = None) -> list[str]:
    """Every distinct sentence of the 7 STS test sets (the paper's "target" fitting data)."""
    from simcse_analysis.sts_data import TASKS, load_sts
    from simcse_analysis.sts_eval import unique_pairs

    subsets = [s for task in TASKS for s in load_sts(task, data_dir, "test")]
    return unique_pairs(subsets)[0]


def flow_checkpoint(model: str | os.PathLike[str], corpus: Sequence[str | os.PathLike[str]],
                    out: str | os.PathLike[str], *, settings: FlowSettings | None = None, target: bool = False,
                    data_dir: str | os.PathLike[str] | None = None, max_sentences: int | None = None,
                    seed: int = 0, batch_size: int = 64, overwrite: bool = False,
                    encoder_kwargs: dict[str, Any] | None = None, progress: bool = False,
                    log: Callable[[str], None] | None = None) -> PostProcessResult:
    """Encode the corpus (or, with ``target``, the STS test sentences) with ``model``, fit BERT-flow on the
    embeddings and write the checkpoint whose encodings are the flow's latent."""
    s = settings or FlowSettings()
    s.check()
    if target and corpus:
        raise InputError("--target fits on the STS test sentences: drop --corpus (or drop --target)")
    texts = sts_sentences(data_dir) if target else None

    def fit(emb: np.ndarray) -> tuple[FittedFlow, dict[str, Any]]:
        f = fit_flow(emb, s, progress=progress)
        return f, {"variant": "target" if target else "corpus", "blocks": s.blocks, "hidden": f.hidden,
                   "epochs": s.epochs, "learning_rate": s.learning_rate, "flow_batch_size": s.batch_size,
                   "flow_seed": s.seed, "steps": f.steps, "null_dims": f.null_dims,
                   "constant_dims": f.constant_dims, "nll_dims": f.dim, "nll_per_dim_start": f.nll_start,
                   "nll_per_dim_end": f.nll_end, "fit_time_s": f.fit_time_s, "out_dim": f.dim,
                   "latent": f.latent.to_dict() if f.latent is not None else None}

    method = ("Li et al. 2020: Glow-style flow (normflows: ActNorm, LU invertible linear, affine coupling) fitted "
              "by maximum likelihood on frozen embeddings, after projecting out the directions the corpus does "
              "not span; embeddings = the flow's latent")
    if target:
        method += " [target variant: fitted on the STS test sentences themselves]"
    return post_process_checkpoint(model, corpus, out, fit, baseline="flow", method=method,
                                   max_sentences=max_sentences, seed=seed, batch_size=batch_size,
                                   overwrite=overwrite, encoder_kwargs=encoder_kwargs, texts=texts,
                                   min_sentences=MIN_SENTENCES, reads=data_inputs(data_dir) if target else (), log=log)
