"""Poolers: how a sentence vector is read off a transformer's outputs.

Semantics follow the SimCSE reference (``evaluation.py`` / ``simcse/models.py``). With
``H_l`` the hidden states of layer ``l`` (``H_0`` = embedding output, ``H_L`` = last layer),
``m`` the attention mask (1 for real tokens) and ``n = sum_i m_i`` the number of real tokens:

==================== ================================================================
``cls``              ``tanh(W_p H_L[CLS] + b_p)``: [CLS] through the model's pooler
                     (BERT's "pooler" dense+tanh; SimCSE checkpoints store their MLP there)
``cls_before_pooler`` ``H_L[CLS]``: the raw last-layer [CLS] vector
``avg``              ``sum_i m_i H_L[i] / n``: mean of the last layer over real tokens
``avg_first_last``   ``sum_i m_i (H_1[i] + H_L[i]) / 2 / n``: first *transformer* layer (``H_1``,
                     not the embeddings) and last layer, averaged, as the reference's evaluation code
``avg_emb_last``     ``sum_i m_i (H_0[i] + H_L[i]) / 2 / n``: embedding layer and last layer — what
                     the SimCSE paper's "first-last avg." numbers used (its README notes the later
                     code change to ``H_1``)
``avg_top2``         ``sum_i m_i (H_{L-1}[i] + H_L[i]) / 2 / n``
==================== ================================================================

All functions are pure tensor maps: ``(batch, seq, dim)`` hidden states in, ``(batch, dim)`` out.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .errors import InputError

if TYPE_CHECKING:  # pragma: no cover
    import torch

POOLERS: tuple[str, ...] = ("cls", "cls_before_pooler", "avg", "avg_first_last", "avg_emb_last", "avg_top2")

#: Poolers that need every layer's hidden states (``output_hidden_states=True``).
NEEDS_HIDDEN_STATES = frozenset({"avg_first_last", "avg_emb_last", "avg_top2"})

#: Layer mixed with the last one by each layer-mixing pooler (an index into ``hidden_states``).
OTHER_LAYER: dict[str, int] = {"avg_first_last": 1, "avg_emb_last": 0, "avg_top2": -2}


def split_pooler(arg: str) -> tuple[str, str | None]:
    """``"MODEL@POOLER"`` → ``(MODEL, POOLER)`` when POOLER is a known pooler name, else ``(arg, None)``.

    Lets one command compare poolers of one checkpoint: ``all-MiniLM-L6-v2@avg all-MiniLM-L6-v2@avg_first_last``.
    """
    head, sep, tail = arg.rpartition("@")
    if sep and head and tail in POOLERS:
        return head, tail
    return arg, None


def check_pooler(name: str) -> str:
    """Return ``name`` if it is a known pooler, else raise :class:`InputError`."""
    if name not in POOLERS:
        raise InputError(f"unknown pooler {name!r}: choose one of {', '.join(POOLERS)}")
    return name


def masked_mean(hidden: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """``sum_i m_i h_i / sum_i m_i`` over the sequence axis; ``hidden`` is ``(B, T, D)``."""
    m = attention_mask.unsqueeze(-1).to(hidden.dtype)
    return (hidden * m).sum(1) / m.sum(1).clamp_min(1.0)


def pool(name: str, outputs: Any, attention_mask: torch.Tensor, pooler_module: Any = None) -> torch.Tensor:
    """Apply pooler ``name`` to a Hugging Face model output.

    ``outputs`` needs ``last_hidden_state``; ``hidden_states`` for the two layer-mixing poolers;
    ``cls`` uses ``outputs.pooler_output`` when present, else applies ``pooler_module`` (a callable on
    the ``(B, T, D)`` last hidden state, e.g. ``BertPooler``) to it.
    """
    last = outputs.last_hidden_state
    if name == "cls_before_pooler":
        return last[:, 0]
    if name == "cls":
        pooled = getattr(outputs, "pooler_output", None)
        if pooled is None:
            if pooler_module is None:
                raise InputError(
                    "pooler 'cls' needs the model's pooler layer, which this checkpoint lacks: "
                    "use --pooler cls_before_pooler"
                )
            pooled = pooler_module(last)
        return pooled
    if name == "avg":
        return masked_mean(last, attention_mask)
    if name in NEEDS_HIDDEN_STATES:
        hs = outputs.hidden_states
        if hs is None:
            raise ValueError(f"pooler {name!r} needs output_hidden_states=True")
        other = hs[OTHER_LAYER[name]]
        return masked_mean((other + hs[-1]) / 2.0, attention_mask)
    check_pooler(name)
    raise AssertionError("unreachable")
