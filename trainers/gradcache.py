"""Gradient caching (Gao, Zhang, Han & Callan 2021, "Scaling Deep Contrastive Learning Batch Size under Memory
Limited Setup"; the anchor implementation is sentence-transformers' ``CachedMultipleNegativesRankingLoss``).

The contrastive loss ``L(z)`` couples every row of the batch, but it depends on the encoder parameters
``θ`` only through the representations ``z = f_θ(x)``. So with the batch split into chunks ``c`` of ``M``
rows:

1. representation pass: ``z_c = f_θ(x_c)`` for every chunk without an autograd graph (memory of one
   chunk), recording the RNG state before each chunk;
2. loss pass: ``L(z)`` on the cached ``z`` (gathered across processes as usual) and its gradient
   ``g = ∂L/∂z`` — cheap, ``B × S × d`` numbers;
3. replay (run from the backward pass, so the Trainer's scaling, accumulation and mixed-precision
   scaler apply as to any loss): for each chunk, restore its RNG state, re-encode it *with* a graph and
   accumulate ``∂/∂θ (z_c · g_c)``; since ``∂L/∂θ = Σ_c (∂z_c/∂θ)ᵀ g_c`` this is exactly the full-batch
   gradient.

Dropout is SimCSE's augmentation, so step 3 must draw the very masks of step 1: the CPU and CUDA RNG
states are saved before each chunk's first pass and restored for its replay (inside
``torch.random.fork_rng``, so the training stream continues as after step 1). The replay also re-enters
the autocast state of step 1 (mixed precision), which the backward pass would otherwise leave. The per-chunk gradients are
summed with ``torch.autograd.grad`` and handed to the parameters in *one* accumulation at the end, so
data-parallel training (DDP marks each parameter ready once) averages them as it would a plain step.

Memory: one chunk's activations plus one extra copy of the gradients, instead of the whole batch's
activations. Compute: about one extra forward pass.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Protocol

import torch


class CachedModel(Protocol):
    """What gradient caching needs of the model (:class:`trainers.model.SimCSEModel` provides it)."""

    mini_batch_size: int | None

    def embed_views(self, input_ids: torch.Tensor, attention_mask: torch.Tensor,
                    token_type_ids: torch.Tensor | None = None) -> torch.Tensor: ...

    def loss_of_views(self, z: torch.Tensor, hard_negative_mask: torch.Tensor | None = None
                      ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]: ...

    def parameters(self) -> Iterator[torch.nn.Parameter]: ...


class RNGState:
    """The CPU RNG state and, for a CUDA device, that device's RNG state."""

    def __init__(self, device: torch.device) -> None:
        self.cuda_device = device.index if device.type == "cuda" else None
        if self.cuda_device is None and device.type == "cuda":
            self.cuda_device = torch.cuda.current_device()
        self.cpu = torch.get_rng_state()
        self.cuda = torch.cuda.get_rng_state(self.cuda_device) if self.cuda_device is not None else None

    def restore(self) -> None:
        torch.set_rng_state(self.cpu)
        if self.cuda is not None:
            torch.cuda.set_rng_state(self.cuda, self.cuda_device)

    @property
    def devices(self) -> list[int]:
        return [self.cuda_device] if self.cuda_device is not None else []


def _chunks(b: int, m: int) -> list[slice]:
    return [slice(i, min(i + m, b)) for i in range(0, b, m)]


def cached_forward(model: CachedModel, input_ids: torch.Tensor, attention_mask: torch.Tensor,
                   token_type_ids: torch.Tensor | None = None,
                   hard_negative_mask: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
    """``SimCSEModel.forward`` with gradient caching in chunks of ``model.mini_batch_size`` rows.

    Returns the same keys; ``loss`` is a leaf whose backward hook replays the chunks (module docstring).
    """
    b = input_ids.shape[0]
    chunks = _chunks(b, int(model.mini_batch_size))

    def views(sl: slice) -> torch.Tensor:
        tt = token_type_ids[sl] if token_type_ids is not None else None
        return model.embed_views(input_ids[sl], attention_mask[sl], tt)

    # the replay runs inside backward, outside the Trainer's autocast: re-enter the forward's precision
    device_type = input_ids.device.type
    amp = torch.is_autocast_enabled(device_type), torch.get_autocast_dtype(device_type)
    # 1. representation pass, no graph; RNG state recorded before each chunk
    states: list[RNGState] = []
    reps: list[torch.Tensor] = []
    with torch.no_grad():
        for sl in chunks:
            states.append(RNGState(input_ids.device))
            reps.append(views(sl))
    z = torch.cat(reps).detach().requires_grad_(True)
    # 2. loss on the cached representations and its gradient with respect to them
    with torch.enable_grad():
        loss, reported, logits = model.loss_of_views(z, hard_negative_mask)
        (grad_z,) = torch.autograd.grad(loss, z)
    params = [p for p in model.parameters() if p.requires_grad]

    # 3. replay, from the backward pass of the returned loss
    def replay(grad_output: torch.Tensor) -> torch.Tensor:
        totals: list[torch.Tensor | None] = [None] * len(params)
        for sl, state in zip(chunks, states):
            with torch.random.fork_rng(devices=state.devices), torch.enable_grad(), \
                    torch.autocast(device_type, dtype=amp[1], enabled=amp[0]):
                state.restore()
                surrogate = (views(sl) * (grad_z[sl] * grad_output).to(z.dtype)).sum()
                grads = torch.autograd.grad(surrogate, params, allow_unused=True)
            for i, g in enumerate(grads):
                if g is not None:
                    totals[i] = g if totals[i] is None else totals[i] + g
        used = [(p, g) for p, g in zip(params, totals) if g is not None]
        # one accumulation per parameter (as a plain backward does, so DDP reduces each once)
        torch.autograd.backward([p for p, _ in used], [g for _, g in used])
        return grad_output

    out_loss = loss.detach().requires_grad_(True)
    out_loss.register_hook(replay)
    return {"logits": logits.detach(), "loss": out_loss, "reported_loss": reported}
