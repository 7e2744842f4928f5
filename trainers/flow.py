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

Which corpus: the unsupervised training corpus by default (``--corpus``); the paper's "target" variant fits
on the evaluation sentences themselves (``--target``: every sentence of the 7 STS test sets) — it sees the
test data, so it is labelled ``variant: target`` in the checkpoint and never the default.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from simcse_analysis.errors import InputError
from simcse_analysis.path_safety import data_inputs

from .flow_settings import FlowSettings
from .postprocess import PostProcessResult, post_process_checkpoint

#: File holding the flow's state inside a BERT-flow checkpoint.
FLOW_FILE = "flow.safetensors"

#: Fewest embeddings a flow is fitted on.
MIN_SENTENCES = 64


@dataclass
class FittedFlow:
    """A fitted flow, its settings and how the fit went (mean negative log-likelihood in nats per dimension)."""

    flow: Any
    dim: int
    hidden: int
    settings: FlowSettings
    nll_start: float
    nll_end: float
    steps: int
    fit_time_s: float
    baseline: str = "flow"

    def files(self) -> dict[str, dict[str, np.ndarray]]:
        return {FLOW_FILE: {k: v.detach().cpu().contiguous().numpy() for k, v in self.flow.state_dict().items()}}

    def spec(self) -> dict[str, Any]:
        return {"type": "flow", "file": FLOW_FILE, "library": "normflows", "dim": self.dim,
                "blocks": self.settings.blocks, "hidden": self.hidden}

    def affine(self) -> None:
        return None

    def transform(self, x: np.ndarray) -> np.ndarray:
        from simcse_analysis.post_transforms import FlowMap

        return FlowMap(self.flow, self.dim).apply(x)


def _nll_per_dim(flow: Any, x: Any) -> float:
    import torch

    with torch.no_grad():
        return float(flow.forward_kld(x)) / x.shape[1]


def fit_flow(embeddings: np.ndarray, settings: FlowSettings | None = None, *, progress: bool = False
             ) -> FittedFlow:
    """Fit the flow by maximum likelihood on ``embeddings`` (N × d), see the module docstring."""
    import torch
    from tqdm.auto import tqdm

    from simcse_analysis.post_transforms import build_glow_flow

    s = settings or FlowSettings()
    s.check()
    x = np.asarray(embeddings, dtype=np.float32)
    if x.ndim != 2 or len(x) < MIN_SENTENCES:
        raise InputError(f"BERT-flow needs at least {MIN_SENTENCES} sentences to fit on, got {len(x)}: give a "
                         "larger --corpus")
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
                             f"{s.learning_rate:g}) or use fewer --blocks")
        optimiser.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(flow.parameters(), 10.0)
        optimiser.step()
    elapsed = time.perf_counter() - began
    flow.eval()
    nll_end = _nll_per_dim(flow, data)
    if not nll_end < nll_start:
        raise InputError(f"the flow's fit made the likelihood worse (NLL {nll_start:.3f} → {nll_end:.3f} nats per "
                         f"dimension): lower --lr (now {s.learning_rate:g}) or use fewer --blocks")
    return FittedFlow(flow=flow, dim=d, hidden=hidden, settings=s, nll_start=nll_start, nll_end=nll_end,
                      steps=steps, fit_time_s=elapsed)


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

    def check_dim(dim: int) -> None:
        if dim % 2:
            raise InputError(f"BERT-flow's coupling layers split the embedding in halves; dimension {dim} is odd")

    def fit(emb: np.ndarray) -> tuple[FittedFlow, dict[str, Any]]:
        f = fit_flow(emb, s, progress=progress)
        return f, {"variant": "target" if target else "corpus", "blocks": s.blocks, "hidden": f.hidden,
                   "epochs": s.epochs, "learning_rate": s.learning_rate, "flow_batch_size": s.batch_size,
                   "flow_seed": s.seed, "steps": f.steps, "nll_per_dim_start": f.nll_start,
                   "nll_per_dim_end": f.nll_end, "fit_time_s": f.fit_time_s, "out_dim": f.dim}

    method = ("Li et al. 2020: Glow-style flow (normflows: ActNorm, LU invertible linear, affine coupling) fitted "
              "by maximum likelihood on frozen embeddings; embeddings = the flow's latent")
    if target:
        method += " [target variant: fitted on the STS test sentences themselves]"
    return post_process_checkpoint(model, corpus, out, fit, baseline="flow", method=method,
                                   max_sentences=max_sentences, seed=seed, batch_size=batch_size,
                                   overwrite=overwrite, encoder_kwargs=encoder_kwargs, check_dim=check_dim,
                                   texts=texts, min_sentences=MIN_SENTENCES,
                                   reads=data_inputs(data_dir) if target else (), log=log)
