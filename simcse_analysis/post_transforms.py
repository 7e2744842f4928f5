"""Post-transforms a checkpoint may declare: maps applied to the pooled vectors after encoding.

``simcse_analysis.json`` → ``post_transform``:

* ``{"type": "affine", "file": F}``: ``F`` holds tensors ``mean`` (d,) and ``matrix`` (d, k); vectors
  become ``(x − mean) @ matrix`` (BERT-whitening, all-but-the-top); with ``"bias": true`` also ``bias``
  (k,), added after: ``(x − mean) @ matrix + bias`` (all-but-the-top projecting the raw vector);
* ``{"type": "flow", "file": F, "library": "normflows", "dim": r, "blocks": K, "hidden": H}``: ``F`` holds
  the state of the Glow-style flow :func:`build_glow_flow` builds; vectors become the flow's latent
  ``z = g⁻¹(x)`` (BERT-flow, Li et al. 2020), the point whose image under the generative direction ``g``
  is ``x``. With ``"projection": true`` (and ``"input_dim": d``), ``F`` also holds ``projection.mean`` (d,)
  and ``projection.matrix`` (d, r): the flow runs on ``(x − mean) @ matrix``, the ``r`` directions the
  fitting corpus spans (its null directions, e.g. constant dimensions, are projected out first).

The architecture lives here, in the core, because loading needs it; fitting it is a trainer's job
(:mod:`trainers.flow`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .errors import InputError

#: ``post_transform`` types this version can apply.
POST_TRANSFORM_TYPES: tuple[str, ...] = ("affine", "flow")


@dataclass
class AffineMap:
    """``x ↦ (x − mean) @ matrix [+ bias]`` in float64, returned as float32."""

    mean: np.ndarray
    matrix: np.ndarray
    kind: str = "affine"
    bias: np.ndarray | None = None

    @property
    def out_dim(self) -> int:
        return int(self.matrix.shape[1])

    def apply(self, x: np.ndarray) -> np.ndarray:
        y = (np.asarray(x, dtype=np.float64) - self.mean) @ self.matrix
        if self.bias is not None:
            y += self.bias
        return y.astype(np.float32)


def build_glow_flow(dim: int, blocks: int, hidden: int, seed: int = 0):
    """A Glow-style normalising flow on ``R^dim`` (``normflows``), from data ``x`` to latent ``z``:

    ``K`` blocks of ActNorm → invertible linear map (LU-parametrised ``InvertibleAffine``, the 1-D
    "1×1 convolution") → affine coupling (RealNVP/Glow: the first ``⌈d/2⌉`` coordinates shift and scale
    the other ``⌊d/2⌋`` through an MLP ``⌈d/2⌉ → hidden → 2⌊d/2⌋``, zero-initialised so each coupling
    starts as the identity; sigmoid scale as in Glow), over a standard-normal base. ``dim`` ≥ 2 (odd
    dimensions split as ``torch.chunk`` does). The random permutation and initial rotation of each linear
    map are drawn from ``seed`` (and are saved with the state).
    """
    import warnings

    import normflows as nf
    import torch

    if dim < 2:
        raise InputError(f"BERT-flow's coupling layers split the embedding in two; dimension {dim} is too small")
    with torch.random.fork_rng(devices=[]), warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*torch.lu is deprecated.*")  # inside normflows' LU init
        torch.manual_seed(int(seed))
        flows = []
        for _ in range(int(blocks)):
            flows += [nf.flows.ActNorm((dim,)),
                      nf.flows.InvertibleAffine(dim, use_lu=True),
                      nf.flows.AffineCouplingBlock(nf.nets.MLP([(dim + 1) // 2, int(hidden), 2 * (dim // 2)],
                                                               init_zeros=True), scale_map="sigmoid")]
        # normflows composes flows from latent to data; fitting and encoding use the inverse direction
        flow = nf.NormalizingFlow(nf.distributions.DiagGaussian(dim, trainable=False), flows[::-1])
    return flow


class FlowMap:
    """``x ↦ g⁻¹(x)``, the latent of a fitted :func:`build_glow_flow` (float32, batches of ``batch_size``);
    with ``pre``, ``x ↦ g⁻¹(pre(x))`` (the projection onto the directions the flow was fitted on)."""

    kind = "flow"

    def __init__(self, flow: Any, dim: int, batch_size: int = 4096, pre: AffineMap | None = None) -> None:
        self.flow = flow.eval()
        self.dim = int(dim)
        self.batch_size = int(batch_size)
        self.pre = pre

    @property
    def out_dim(self) -> int:
        return self.dim

    def apply(self, x: np.ndarray) -> np.ndarray:
        import torch

        x = self.pre.apply(x) if self.pre is not None else np.asarray(x, dtype=np.float32)
        out = np.empty_like(x)
        with torch.no_grad():
            for i in range(0, len(x), self.batch_size):
                out[i:i + self.batch_size] = self.flow.inverse(torch.from_numpy(x[i:i + self.batch_size])).numpy()
        return out


def load_post_transform(path: Path, spec: dict[str, Any], metadata_file: str) -> AffineMap | FlowMap:
    """The map ``spec`` (a checkpoint's ``post_transform``) declares; :class:`InputError` if unusable."""
    from safetensors.numpy import load_file

    kind = spec.get("type")
    if kind not in POST_TRANSFORM_TYPES:
        raise InputError(f"{path / metadata_file}: unknown post_transform type {kind!r}")
    f = path / spec.get("file", "")
    if not f.is_file():
        raise InputError(f"{path / metadata_file} names post-transform file {f.name}, which is missing")
    if kind == "affine":
        tensors = load_file(str(f))
        if "mean" not in tensors or "matrix" not in tensors or (spec.get("bias") and "bias" not in tensors):
            raise InputError(f"{f} must hold tensors 'mean' and 'matrix'" + (" and 'bias'" if spec.get("bias") else ""))
        bias = tensors["bias"].astype(np.float64) if spec.get("bias") else None
        return AffineMap(tensors["mean"].astype(np.float64), tensors["matrix"].astype(np.float64), bias=bias)
    from safetensors.torch import load_file as load_torch

    try:
        dim, blocks, hidden = int(spec["dim"]), int(spec["blocks"]), int(spec["hidden"])
    except (KeyError, TypeError, ValueError) as e:
        raise InputError(f"{path / metadata_file}: a flow post_transform needs integer dim, blocks and hidden") from e
    flow = build_glow_flow(dim, blocks, hidden)
    state = load_torch(str(f))
    pre = None
    if spec.get("projection"):
        mean, matrix = state.pop("projection.mean", None), state.pop("projection.matrix", None)
        if mean is None or matrix is None or tuple(matrix.shape) != (mean.shape[0], dim):
            raise InputError(f"{f} must hold tensors 'projection.mean' (d,) and 'projection.matrix' (d, {dim}), "
                             "as its metadata's projection says")
        pre = AffineMap(mean.double().numpy(), matrix.double().numpy())
    try:
        flow.load_state_dict(state)
    except RuntimeError as e:
        raise InputError(f"{f} does not match the flow its metadata describes: {str(e).splitlines()[0]}") from e
    return FlowMap(flow, dim, pre=pre)
