"""Contrastive objectives of SimCSE (Gao, Yao & Chen 2021), as pure tensor functions.

With ``z1, z2`` the ``(N, d)`` embeddings of the two views (row ``i`` of ``z2`` is the positive of
row ``i`` of ``z1``), optional hard negatives ``z3`` ``(M, d)``, temperature ``tau`` and
``sim(a, b) = a·b / (|a| |b|)``, the logits are

    s_ij = sim(z1_i, z2_j) / tau                        (in-batch block, N × N)
    h_ij = sim(z1_i, z3_j) / tau + w · [i == j]         (hard-negative block, N × M)

and the loss is the mean cross-entropy with target ``i`` on row ``i`` of ``[s | h]``:

    L = -(1/N) Σ_i log( exp(s_ii) / (Σ_j exp(s_ij) + Σ_j exp(h_ij)) )

``w`` is the reference implementation's ``hard_negative_weight``: a *logit* added to each
anchor's own hard negative (``w = 0``: plain InfoNCE over all 2N candidates). Unsupervised SimCSE
is the same loss without ``z3``, where ``z1`` and ``z2`` are two dropout-noised encodings of the
same sentences. Hard negatives marked missing (``hard_negative_mask[j] == False``) are left out of
every row's denominator, so pairs without a hard negative mix freely with triplets.

Across processes, :func:`gather_with_grad` concatenates every process's embeddings (rank order)
while keeping the autograd graph of the local shard, exactly as the reference does, so the
negatives are the global batch. Each of the ``P`` processes then back-propagates the global loss
into its own shard only, and data-parallel averaging divides the sum by ``P``: the update is
``∇L / P`` (``"average"`` in :data:`trainers.config.CROSS_PROCESS_GRADIENTS`, the reference's behaviour, which clips
``∇L / P`` at ``max_grad_norm``). ``"global"`` rescales by ``P`` (:func:`scale_gradient`) so the
update equals single-process training on the global batch.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

DEFAULT_TEMPERATURE = 0.05


def cosine_logits(a: torch.Tensor, b: torch.Tensor, temperature: float) -> torch.Tensor:
    """``(N, M)`` matrix ``cos(a_i, b_j) / temperature``; rows are L2-normalised (eps 1e-8).

    Always computed in (at least) fp32 with autocast switched off: under mixed precision the matmul
    would otherwise run in fp16/bf16, whereas the reference's ``nn.CosineSimilarity`` runs in fp32
    (autocast lists it among the fp32 ops). Half-precision inputs are upcast first.
    """
    a, b = _at_least_fp32(a), _at_least_fp32(b)
    with torch.autocast(device_type=a.device.type, enabled=False):
        a = a / a.norm(dim=-1, keepdim=True).clamp_min(1e-8)
        b = b / b.norm(dim=-1, keepdim=True).clamp_min(1e-8)
        return a @ b.T / temperature


def _at_least_fp32(x: torch.Tensor) -> torch.Tensor:
    return x if x.dtype in (torch.float32, torch.float64) else x.float()


def contrastive_logits(z1: torch.Tensor, z2: torch.Tensor, z3: torch.Tensor | None = None, *,
                       temperature: float = DEFAULT_TEMPERATURE, hard_negative_weight: float = 0.0,
                       hard_negative_mask: torch.Tensor | None = None) -> torch.Tensor:
    """Logits ``[s | h]`` of the module docstring: ``(N, N)`` or ``(N, N + M)`` (in fp32 or fp64).

    ``hard_negative_mask`` (``(M,)`` bool, True = present) removes absent hard negatives by setting
    their column to ``-inf``. The weight ``w`` goes on entry ``(i, N + i)`` for ``i < min(N, M)``.
    """
    if temperature <= 0:
        raise ValueError(f"temperature must be > 0, got {temperature}")
    if z1.shape != z2.shape:
        raise ValueError(f"views differ in shape: {tuple(z1.shape)} vs {tuple(z2.shape)}")
    z1, z2 = _at_least_fp32(z1), _at_least_fp32(z2)
    logits = cosine_logits(z1, z2, temperature)
    if z3 is None:
        return logits
    hard = cosine_logits(z1, _at_least_fp32(z3), temperature)
    if hard_negative_weight:
        n = min(hard.shape)
        idx = torch.arange(n, device=hard.device)
        bonus = torch.zeros_like(hard)
        bonus[idx, idx] = hard_negative_weight
        hard = hard + bonus
    if hard_negative_mask is not None:
        hard = hard.masked_fill(~hard_negative_mask.to(torch.bool).view(1, -1), float("-inf"))
    return torch.cat([logits, hard], dim=1)


def simcse_loss(z1: torch.Tensor, z2: torch.Tensor, z3: torch.Tensor | None = None, *,
                temperature: float = DEFAULT_TEMPERATURE, hard_negative_weight: float = 0.0,
                hard_negative_mask: torch.Tensor | None = None) -> torch.Tensor:
    """SimCSE's InfoNCE loss ``L`` (module docstring): scalar mean over the ``N`` anchors."""
    logits = contrastive_logits(z1, z2, z3, temperature=temperature, hard_negative_weight=hard_negative_weight,
                                hard_negative_mask=hard_negative_mask)
    labels = torch.arange(logits.shape[0], device=logits.device)
    return F.cross_entropy(logits, labels)


def world() -> tuple[int, int]:
    """``(rank, world_size)`` of the initialised default process group, else ``(0, 1)``."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def gather_with_grad(x: torch.Tensor) -> torch.Tensor:
    """All-gather ``x`` ``(n, ...)`` from every process into ``(world · n, ...)`` in rank order.

    Gathered copies carry no gradient; the local slice is replaced by ``x`` itself so gradients flow
    into this process's encoder (the reference's ``z_list[rank] = z``). Every process must pass the
    same ``n``. Identity when not distributed.
    """
    import torch.distributed as dist

    rank, size = world()
    if size == 1:
        return x
    parts = [torch.empty_like(x) for _ in range(size)]
    dist.all_gather(parts, x.detach().contiguous())
    parts[rank] = x
    return torch.cat(parts, dim=0)


def scale_gradient(loss: torch.Tensor, factor: float) -> torch.Tensor:
    """Same value as ``loss``; gradient multiplied by ``factor``.

    With ``P`` processes each computing the *global* loss but back-propagating only into its local
    shard, data-parallel averaging divides the true gradient by ``P``; ``factor = P`` undoes it, so the
    update equals single-process training on the global batch.
    """
    if factor == 1:
        return loss
    return loss * factor - loss.detach() * (factor - 1)
