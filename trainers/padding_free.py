"""Padding-free training forward of BERT-family encoders: the same numbers as the model's own forward,
without the matrix multiplies on padding tokens.

A training batch is padded to its longest text (32 tokens with SimCSE's ``max_length``); on the paper's
Wikipedia sentences about a third of those positions are padding. A padding position changes nothing
a real token computes — attention gives it weight exactly 0 — yet the model's own forward pushes it
through every dense layer. This forward runs the token-wise parts of each layer (the Q/K/V, output and
feed-forward projections, GELU, LayerNorm, the residuals) on the ``n`` real tokens only, stacked as an
``(n, d)`` matrix, and scatters Q/K/V back into the padded ``(N, heads, T, d_head)`` layout just for the
attention function the model itself uses (SDPA or eager, called with a key mask built here, the model's
scaling and dropout). With a [CLS] pooler only the [CLS] rows of the last layer reach the loss, so that
layer's output and feed-forward projections run on the ``N`` [CLS] rows alone (its keys and values still
need every token).

Same numbers, same random stream. Every dropout draws its mask over the full padded shape, exactly
as the model's own ``nn.Dropout`` would (same shape, dtype and device: torch's CPU dropout recipe on the
CPU, ``F.dropout`` of ones elsewhere, so CPU, CUDA and mixed precision consume the generator
identically), and keeps the rows of the real tokens. Pad positions get zero keys and values where the
model has finite ones; both vanish under the mask, so attention outputs of real tokens do not change.
What differs is only the floating-point summation order of matrix multiplies over a different number
of rows: ``tests/test_padding_free.py`` checks that embeddings agree to 1e-5 (fp32) and gradients to
1e-4, relative, and that a training trajectory stays the same.

Never silently different. This module re-implements transformers' layer from its submodules, so a
release that changes the layer's computation would make it train something else. :func:`verify`
therefore compares it with the model's own forward on the first batch of each encoder instance (dropout
off, no gradient); :class:`trainers.model.SimCSEModel` falls back to the model's forward, with one
warning, on any exception or mismatch. It calls no private method of transformers; the one private name
it reads is ``config._attn_implementation``.

Used by :class:`trainers.model.SimCSEModel` for BERT and RoBERTa encoders (``transformers`` ≥ 5
module layout); anything else — another architecture, a decoder, chunked feed-forward, gradient
checkpointing, left padding — goes through the model's own forward (:func:`unsupported_reason` says why).
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from simcse_analysis.pooling import NEEDS_HIDDEN_STATES

#: Model types whose layers have the BERT layout this forward re-implements (tested in tests/test_padding_free.py).
SUPPORTED_MODEL_TYPES: tuple[str, ...] = ("bert", "roberta")

#: Poolers that read only the last layer's [CLS] row.
CLS_POOLERS = frozenset({"cls", "cls_before_pooler"})

#: The attention implementations whose mask :func:`attention_mask_for` builds: SDPA takes a boolean "may
#: attend" mask, eager attention an additive one (0 or the dtype's most negative value), both broadcast
#: over heads and query positions.
MASK_KINDS: tuple[str, ...] = ("sdpa", "eager")

_LAYER_PARTS = ("attention.self.query", "attention.self.key", "attention.self.value", "attention.self.dropout",
                "attention.output.dense", "attention.output.dropout", "attention.output.LayerNorm",
                "intermediate.dense", "intermediate.intermediate_act_fn", "output.dense", "output.dropout",
                "output.LayerNorm")


@dataclass
class PaddingFreeOutput:
    """What :func:`simcse_analysis.pooling.pool` reads, padded back to ``(N, T, d)`` (pad rows zero):
    ``last_hidden_state`` (only ``(N, 1, d)`` [CLS] rows for the [CLS] poolers), ``pooler_output`` (the
    model's pooler on [CLS], pooler ``cls`` only) and ``hidden_states`` (layer-mixing poolers only: the
    embedding output and each layer's output)."""

    last_hidden_state: torch.Tensor
    pooler_output: torch.Tensor | None = None
    hidden_states: tuple[torch.Tensor, ...] | None = None


def _get(module: Any, dotted: str) -> Any:
    for part in dotted.split("."):
        module = getattr(module, part, None)
    return module


def unsupported_reason(encoder: nn.Module) -> str | None:
    """``None`` if :func:`forward` reproduces ``encoder``'s own forward, else why not (one phrase)."""
    config = getattr(encoder, "config", None)
    model_type = getattr(config, "model_type", None)
    if model_type not in SUPPORTED_MODEL_TYPES:
        return f"model type {model_type!r} (padding-free covers {', '.join(SUPPORTED_MODEL_TYPES)})"
    if getattr(config, "is_decoder", False) or getattr(config, "add_cross_attention", False):
        return "a decoder / cross-attention configuration"
    if getattr(config, "chunk_size_feed_forward", 0):
        return "chunked feed-forward"
    if getattr(config, "position_embedding_type", "absolute") not in (None, "absolute"):
        return f"position_embedding_type {config.position_embedding_type!r}"
    if getattr(encoder, "gradient_checkpointing", False):
        return "gradient checkpointing"
    if _get(encoder, "embeddings") is None:
        return "no embeddings module"
    implementation = getattr(config, "_attn_implementation", None)
    if not isinstance(implementation, str):
        return "a config without _attn_implementation"
    if implementation not in MASK_KINDS:
        return (f"attention implementation {implementation!r} (padding-free builds masks for "
                f"{', '.join(MASK_KINDS)})")
    layers = _get(encoder, "encoder.layer")
    if not isinstance(layers, nn.ModuleList) or len(layers) == 0:
        return "no encoder.layer list"
    for layer in layers:
        missing = [p for p in _LAYER_PARTS if _get(layer, p) is None]
        if missing:
            return f"a layer without {missing[0]}"
        if not isinstance(_get(layer, "attention.self.scaling"), float):
            return "an attention module without a scaling attribute"
        if getattr(layer, "crossattention", None) is not None:
            return "cross-attention layers"
        if _attention_function(layer.attention.self) is None:
            return "an unknown attention implementation"
    return None


#: Reasons of :func:`unsupported_reason` that are a configuration padding-free does not cover (said only in
#: ``run.json``); any other reason means the installed transformers lays the model out differently from what
#: this forward re-implements, which also gets a ``warning:`` line.
_CONFIGURATION_REASONS = ("model type", "a decoder", "chunked feed-forward", "position_embedding_type",
                          "gradient checkpointing", "attention implementation")


@dataclass(frozen=True)
class Verdict:
    """Whether the padding-free forward runs for one encoder instance, and why (``note`` goes to
    ``run.json`` → ``resolved.padding_free``); ``warn``: the reason is a fault worth a ``warning:`` line."""

    on: bool
    note: str
    warn: bool = False
    max_relative_difference: float | None = None
    tolerance: float | None = None


def tolerance(dtype: torch.dtype) -> float:
    """Largest accepted relative difference between this forward's and the model's own embeddings in
    ``dtype``: 1e-5 in fp32/fp64 (measured ~1e-7: only the summation order differs), else 4 units of the
    dtype's rounding (bf16: 3.1e-2, fp16: 3.9e-3)."""
    return 1e-5 if dtype in (torch.float32, torch.float64) else 4 * torch.finfo(dtype).eps


def working_dtype(t: torch.Tensor) -> torch.dtype:
    """The dtype a forward producing ``t`` computed in: autocast's where it is on for ``t``'s device (its
    LayerNorm outputs are fp32 even then), else ``t``'s own."""
    device = t.device.type
    if torch.is_autocast_enabled(device):
        return torch.get_autocast_dtype(device)
    return t.dtype


def _relative_difference(ours: torch.Tensor, theirs: torch.Tensor) -> float:
    """max over rows of ‖ours − theirs‖ / ‖theirs‖ (NaN if either is not finite)."""
    ours, theirs = ours.float().flatten(1), theirs.float().flatten(1)
    return float(((ours - theirs).norm(dim=1) / theirs.norm(dim=1).clamp_min(1e-30)).max())


def verify(encoder: nn.Module, input_ids: torch.Tensor, attention_mask: torch.Tensor,
           token_type_ids: torch.Tensor | None = None, *, pooler: str = "avg") -> Verdict:
    """Whether :func:`forward` may stand in for ``encoder``'s own forward: the encoder is one it covers
    (:func:`unsupported_reason`), and on this batch, with dropout off and no gradient, its ``pooler``
    embeddings equal the model's own to :func:`tolerance` of their dtype (under autocast, the autocast
    dtype). Any exception on the way is a failed check, not an error: the caller falls back to the model's
    own forward. Costs two forwards without a graph; draws nothing from the random generator."""
    reason = unsupported_reason(encoder)
    if reason is not None:
        configuration = reason.startswith(_CONFIGURATION_REASONS)
        return Verdict(False, f"off: not supported for {reason}", warn=not configuration)
    from simcse_analysis.pooling import pool

    was_training = encoder.training
    encoder.eval()
    try:
        with torch.no_grad():
            ours = pool(pooler, forward(encoder, input_ids, attention_mask, token_type_ids, pooler=pooler),
                        attention_mask)
            kwargs = {"token_type_ids": token_type_ids} if token_type_ids is not None else {}
            theirs = pool(pooler, encoder(input_ids=input_ids, attention_mask=attention_mask, return_dict=True,
                                          output_hidden_states=pooler in NEEDS_HIDDEN_STATES, **kwargs),
                          attention_mask)
    except Exception as e:  # noqa: BLE001 — whatever a changed transformers raises, fall back to its forward
        first_line = (str(e).splitlines() or [""])[0][:200]
        return Verdict(False, f"off: the padding-free forward failed ({type(e).__name__}: {first_line})", warn=True)
    finally:
        encoder.train(was_training)
    dtype = working_dtype(theirs)
    tol = tolerance(dtype)
    if ours.shape != theirs.shape:
        return Verdict(False, f"off: its embeddings have shape {tuple(ours.shape)}, the model's own "
                              f"{tuple(theirs.shape)}", warn=True)
    rel = _relative_difference(ours, theirs)
    if not rel <= tol:  # also NaN
        return Verdict(False, f"off: its embeddings differ from the model's own forward by {rel:.3g} (relative; "
                              f"tolerance {tol:.1g} in {str(dtype).removeprefix('torch.')})",
                       warn=True, max_relative_difference=rel, tolerance=tol)
    return Verdict(True, "on", max_relative_difference=rel, tolerance=tol)


def applicable(encoder: nn.Module, attention_mask: torch.Tensor) -> bool:
    """Whether :func:`forward` may replace ``encoder``'s forward on this batch: a supported encoder, and
    right padding (every text's first position is real, where [CLS] sits)."""
    return unsupported_reason(encoder) is None and bool(attention_mask[:, 0].all())


def _attention_function(self_attention: nn.Module) -> Callable[..., Any] | None:
    """The attention function the model's own forward calls: its configured implementation, else its
    module's ``eager_attention_forward`` (the same lookup as ``BertSelfAttention.forward``)."""
    try:
        from transformers.modeling_utils import ALL_ATTENTION_FUNCTIONS
    except ImportError:  # a transformers without the attention registry (< 4.48): no function to call
        return None
    eager = getattr(sys.modules.get(type(self_attention).__module__), "eager_attention_forward", None)
    get_interface = getattr(ALL_ATTENTION_FUNCTIONS, "get_interface", None)
    implementation = getattr(getattr(self_attention, "config", None), "_attn_implementation", None)
    if eager is None or get_interface is None or not isinstance(implementation, str):
        return None
    return get_interface(implementation, eager)


def attention_mask_for(implementation: str, attention_mask: torch.Tensor, dtype: torch.dtype) -> torch.Tensor | None:
    """The ``(N, 1, 1, T)`` key mask that ``implementation``'s attention function applies to padded keys,
    built from the ``(N, T)`` 0/1 ``attention_mask`` without the model's private mask helpers:

    * ``sdpa``: boolean, True where a key may be attended; ``None`` when nothing is padded (as the model
      passes, which lets SDPA pick its unmasked kernel);
    * ``eager``: additive in ``dtype`` (the embedding output's), 0 for real keys and ``finfo(dtype).min``
      for pad keys, so ``softmax(scores + mask)`` gives pad keys weight exactly 0.
    """
    real = attention_mask.bool()[:, None, None, :]
    if implementation == "sdpa":
        return None if bool(real.all()) else real
    if implementation == "eager":
        return torch.zeros(real.shape, dtype=dtype, device=real.device).masked_fill_(~real, torch.finfo(dtype).min)
    raise ValueError(f"no padding-free mask for attention implementation {implementation!r}")


def _dropout_scale(shape: tuple[int, int], p: float, like: torch.Tensor) -> torch.Tensor:
    """What ``F.dropout(x, p, training=True)`` multiplies an ``x`` of ``shape`` (dtype and device of ``like``)
    by — 0 or 1/(1-p) — drawn from the same random stream. On the CPU that is torch's own recipe
    (``empty.bernoulli_(1-p).div_(1-p)``, checked bitwise against ``F.dropout`` in the tests) without
    filling and multiplying a tensor of ones; elsewhere (CUDA's fused dropout kernel) ``F.dropout`` of ones."""
    if like.device.type == "cpu":
        return torch.empty(shape, dtype=like.dtype).bernoulli_(1.0 - p).div_(1.0 - p)
    return F.dropout(like.new_ones(shape), p, True)


def _dropout_rows(x: torch.Tensor, dropout: nn.Dropout, full_rows: int, rows: torch.Tensor) -> torch.Tensor:
    """``dropout`` applied to the rows ``rows`` of a ``(full_rows, d)`` tensor whose other rows are not
    needed: the mask is drawn over the full shape (the random stream the model's own forward uses) and
    its selected rows multiply ``x`` ``(len(rows), d)``."""
    if not dropout.training or dropout.p == 0.0:
        return x  # F.dropout draws nothing here either
    return x * _dropout_scale((full_rows, x.shape[1]), dropout.p, x).index_select(0, rows)


@dataclass
class _Layout:
    """Where the ``n`` real tokens sit in the ``(N, T)`` batch: (``seq``, ``pos``) and ``rows``, their positions
    in the flattened ``N × T`` batch (ascending); and the pad positions."""

    shape: tuple[int, int]
    seq: torch.Tensor
    pos: torch.Tensor
    rows: torch.Tensor
    pad_seq: torch.Tensor
    pad_pos: torch.Tensor

    @classmethod
    def of(cls, attention_mask: torch.Tensor) -> _Layout:
        real = attention_mask.bool()
        seq, pos = real.nonzero(as_tuple=True)
        pad_seq, pad_pos = (~real).nonzero(as_tuple=True)
        return cls(tuple(real.shape), seq, pos, seq * real.shape[1] + pos, pad_seq, pad_pos)


class _ToHeads(torch.autograd.Function):
    """``(n, heads·d_h)`` real-token rows → ``(N, heads, T, d_h)``, zeros at pad positions. The model has
    this as a transposed view of ``(N, T, heads, d_h)``; contiguous here, which spares each of attention's
    matmuls a copy. Backward gathers the real rows of the gradient."""

    @staticmethod
    def forward(ctx: Any, t: torch.Tensor, layout: _Layout, shape: tuple[int, int, int, int]) -> torch.Tensor:
        _, heads, _, head_size = shape
        out = t.new_empty(shape)
        tokens_first = out.permute(0, 2, 1, 3)  # a view: writes land in out
        tokens_first[layout.pad_seq, layout.pad_pos] = 0
        tokens_first[layout.seq, layout.pos] = t.view(-1, heads, head_size)
        ctx.layout = layout
        return out

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor, None, None]:
        rows = grad.permute(0, 2, 1, 3)[ctx.layout.seq, ctx.layout.pos]
        return rows.reshape(rows.shape[0], -1), None, None


def _scatter_rows(x: torch.Tensor, rows: torch.Tensor, full_rows: int) -> torch.Tensor:
    """``(n, d)`` → ``(full_rows, d)`` with ``x`` at ``rows`` and zeros elsewhere."""
    return x.new_zeros((full_rows, x.shape[1])).index_copy(0, rows, x)


def _layer(layer: nn.Module, x: torch.Tensor, layout: _Layout, mask: Any,
           keep: tuple[torch.Tensor, torch.Tensor] | None = None) -> torch.Tensor:
    """One BERT layer on the real tokens ``x`` ``(n, d)``, laid out as ``layout`` says. With
    ``keep = (positions in the flattened batch, indices into x)`` only those rows are carried past the
    attention (the last layer under a [CLS] pooler)."""
    n_seq, length = layout.shape
    full = n_seq * length
    sa = layer.attention.self
    heads, head_size = sa.num_attention_heads, sa.attention_head_size

    q, k, v = (_ToHeads.apply(proj(x), layout, (n_seq, heads, length, head_size))
               for proj in (sa.query, sa.key, sa.value))
    context, _ = _attention_function(sa)(sa, q, k, v, mask, dropout=sa.dropout.p if sa.training else 0.0,
                                         scaling=sa.scaling)
    context = context.reshape(full, heads * head_size)
    out_rows, residual = (layout.rows, x) if keep is None else (keep[0], x.index_select(0, keep[1]))
    context = context.index_select(0, out_rows)
    ao = layer.attention.output
    h = ao.LayerNorm(_dropout_rows(ao.dense(context), ao.dropout, full, out_rows) + residual)
    out = layer.output
    y = out.dense(layer.intermediate.intermediate_act_fn(layer.intermediate.dense(h)))
    return out.LayerNorm(_dropout_rows(y, out.dropout, full, out_rows) + h)


def forward(encoder: nn.Module, input_ids: torch.Tensor, attention_mask: torch.Tensor,
            token_type_ids: torch.Tensor | None = None, *, pooler: str = "avg") -> PaddingFreeOutput:
    """``encoder``'s forward on ``(N, T)`` right-padded tokens, computing only what ``pooler`` reads
    (check :func:`applicable` first). The embedding layer is the model's own; the attention mask is built
    here (:func:`attention_mask_for`), from public inputs only."""
    n_seq, length = input_ids.shape
    full = n_seq * length
    emb = encoder.embeddings(input_ids=input_ids, token_type_ids=token_type_ids)  # (N, T, d), dropout included
    mask = attention_mask_for(encoder.config._attn_implementation, attention_mask, emb.dtype)
    layout = _Layout.of(attention_mask)
    rows = layout.rows
    x = emb.reshape(full, -1).index_select(0, rows)
    layers = encoder.encoder.layer
    keep_hidden = pooler in NEEDS_HIDDEN_STATES
    states = [emb] if keep_hidden else []
    cls_only = pooler in CLS_POOLERS
    keep = None
    if cls_only:  # [CLS] sits at position 0 of each text: flattened position i·T, index in x = tokens before it
        cls_rows = torch.arange(n_seq, device=rows.device) * length
        keep = (cls_rows, torch.searchsorted(rows, cls_rows))
    for i, layer in enumerate(layers):
        last = i == len(layers) - 1
        x = _layer(layer, x, layout, mask, keep if last else None)
        if keep_hidden:
            states.append(_scatter_rows(x, rows, full).view(n_seq, length, -1))
    if cls_only:
        last_hidden = x.unsqueeze(1)  # (N, 1, d): the [CLS] rows
        module = getattr(encoder, "pooler", None)
        pooled = module(last_hidden) if pooler == "cls" and module is not None else None
        return PaddingFreeOutput(last_hidden, pooled)
    last_hidden = states[-1] if keep_hidden else _scatter_rows(x, rows, full).view(n_seq, length, -1)
    return PaddingFreeOutput(last_hidden, None, tuple(states) if keep_hidden else None)
