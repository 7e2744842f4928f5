"""SimCSE's contrastive loss against an independent, straightforward computation of the reference formula."""

from __future__ import annotations

import math

import pytest
import torch

from trainers.objectives import contrastive_logits, scale_gradient, simcse_loss


def _cos(a: list[float], b: list[float]) -> float:
    dot = sum(x * y for x, y in zip(a, b))
    return dot / (math.sqrt(sum(x * x for x in a)) * math.sqrt(sum(y * y for y in b)))


def reference_loss(z1, z2, z3=None, *, tau: float, w: float = 0.0, present=None) -> float:
    """-(1/N) Σ_i log(e^{s_ii} / (Σ_j e^{s_ij} + Σ_j e^{h_ij})), s = cos/τ, h = cos/τ + w·[i = j], in float64
    loops over Python lists (no shared code with the implementation)."""
    a, b = z1.tolist(), z2.tolist()
    c = z3.tolist() if z3 is not None else []
    present = present if present is not None else [True] * len(c)
    total = 0.0
    for i in range(len(a)):
        pos = math.exp(_cos(a[i], b[i]) / tau)
        denom = sum(math.exp(_cos(a[i], b[j]) / tau) for j in range(len(b)))
        denom += sum(math.exp(_cos(a[i], c[j]) / tau + (w if i == j else 0.0))
                     for j in range(len(c)) if present[j])
        total += -math.log(pos / denom)
    return total / len(a)


@pytest.fixture()
def views():
    g = torch.Generator().manual_seed(0)
    return [torch.randn(6, 8, generator=g, dtype=torch.float64) for _ in range(3)]


@pytest.mark.parametrize("tau", [0.05, 0.5])
def test_unsupervised_loss_equals_reference_formula(views, tau):
    z1, z2, _ = views
    expected = reference_loss(z1, z2, tau=tau)
    assert simcse_loss(z1, z2, temperature=tau).item() == pytest.approx(expected, rel=1e-5)


@pytest.mark.parametrize("w", [0.0, 0.7, -1.5])
def test_supervised_loss_with_weighted_hard_negatives_equals_reference_formula(views, w):
    z1, z2, z3 = views
    expected = reference_loss(z1, z2, z3, tau=0.05, w=w)
    got = simcse_loss(z1, z2, z3, temperature=0.05, hard_negative_weight=w).item()
    assert got == pytest.approx(expected, rel=1e-5)


def test_hard_negative_weight_matches_the_reference_weight_matrix(views):
    """The reference adds ``[[0]*n + [0]*i + [w] + [0]*(n-i-1) for i in range(n)]`` to the logits."""
    z1, z2, z3 = views
    n, w = z1.shape[0], 0.9
    plain = contrastive_logits(z1, z2, z3, temperature=0.05)
    weights = torch.tensor([[0.0] * n + [0.0] * i + [w] + [0.0] * (n - i - 1) for i in range(n)])
    weighted = contrastive_logits(z1, z2, z3, temperature=0.05, hard_negative_weight=w)
    torch.testing.assert_close(weighted, plain + weights)


def test_rows_without_hard_negative_drop_out_of_every_denominator(views):
    z1, z2, z3 = views
    present = [True, False, True, True, False, True]
    expected = reference_loss(z1, z2, z3, tau=0.05, w=0.3, present=present)
    got = simcse_loss(z1, z2, z3, temperature=0.05, hard_negative_weight=0.3,
                      hard_negative_mask=torch.tensor(present)).item()
    assert got == pytest.approx(expected, rel=1e-5)


def test_orthogonal_identical_views_give_the_analytic_loss():
    """z1 = z2 = N orthonormal rows: s_ii = 1/τ, s_ij = 0, so L = log(1 + (N − 1) e^{−1/τ})."""
    n, tau = 5, 0.1
    z = torch.eye(n, dtype=torch.float64)
    assert simcse_loss(z, z.clone(), temperature=tau).item() == pytest.approx(
        math.log(1 + (n - 1) * math.exp(-1 / tau)), rel=1e-6)


def test_gradient_flows_to_both_views_and_hard_negatives(views):
    z1, z2, z3 = (v.clone().requires_grad_(True) for v in views)
    simcse_loss(z1, z2, z3, temperature=0.05, hard_negative_weight=0.5).backward()
    for z in (z1, z2, z3):
        assert z.grad is not None and z.grad.abs().sum() > 0


def test_loss_is_invariant_to_embedding_scale(views):
    z1, z2, _ = views
    assert simcse_loss(3.0 * z1, 0.2 * z2).item() == pytest.approx(simcse_loss(z1, z2).item(), rel=1e-6)


def test_scale_gradient_keeps_the_value_and_multiplies_the_gradient():
    x = torch.tensor([1.0, 2.0], requires_grad=True)
    loss = (x ** 2).sum()
    scaled = scale_gradient(loss, 4)
    assert scaled.item() == pytest.approx(loss.item())
    scaled.backward()
    torch.testing.assert_close(x.grad, 4 * 2 * x.detach())


@pytest.mark.parametrize("hard", [False, True])
def test_logits_under_bf16_autocast_are_fp32_and_equal_the_fp32_computation(views, hard):
    """The reference's nn.CosineSimilarity runs in fp32 under mixed precision; so do our logits."""
    z1, z2, z3 = (v.detach().float() for v in views)
    torch.manual_seed(0)
    lin = torch.nn.Linear(z1.shape[1], z1.shape[1])  # an autocast-eligible op upstream, as the encoder is
    with torch.autocast("cpu", dtype=torch.bfloat16):
        a, b, c = lin(z1), lin(z2), lin(z3)
        assert a.dtype == torch.bfloat16  # the encoder's outputs are half precision under autocast
        got = contrastive_logits(a, b, c if hard else None, temperature=0.05)
        # what the bare matmul would have done inside autocast: a bf16 result
        half = (a / a.norm(dim=-1, keepdim=True)) @ (b / b.norm(dim=-1, keepdim=True)).T / 0.05
    assert got.dtype == torch.float32 and half.dtype == torch.bfloat16
    # the same inputs (the bf16 embeddings, upcast) in fp32 outside autocast give the very same logits
    ref = contrastive_logits(a.float(), b.float(), c.float() if hard else None, temperature=0.05)
    torch.testing.assert_close(got, ref, rtol=0, atol=0)
    assert not torch.equal(half.float(), got[:, : z1.shape[0]])  # so the test can tell the two apart
