"""The model trained by SimCSE: a Hugging Face encoder, a pooler, and the contrastive objective.

:class:`SimCSEModel` wraps an ``AutoModel`` (``self.encoder``). Sentence representations during
training are read off it with :func:`simcse_analysis.pooling.pool`; for the ``cls`` pooler that is
``tanh(W h_[CLS] + b)`` — the reference's MLP head. Here that MLP *is* the encoder's own pooler layer
(BERT/RoBERTa's dense+tanh over [CLS]), re-initialised as the reference initialises its fresh
``MLPLayer`` (weights ~ N(0, initializer_range²), bias 0). So the saved encoder carries the trained
MLP where evaluation looks for it — what the reference's ``simcse_to_huggingface.py`` achieves by
renaming ``mlp.*`` to ``pooler.*`` — and the ``cls`` pooler at evaluation reproduces training exactly.
With ``mlp_only_train`` (the paper's unsupervised default) evaluation uses ``cls_before_pooler``.

Views. ``input_ids`` is ``(B, S, T)``: ``S = 2`` views (or pair) per row, ``S = 3`` with a hard
negative. All ``B·S`` texts go through the encoder in one forward pass, each with its own dropout
mask, as in the reference. With ``fixed_dropout_mask`` (the paper's "fixed 0.1") both views share one
mask: identical inputs under the same mask give identical outputs, so the first view is encoded once
and used for both (same values and same gradient as two passes with one mask).

Two encoders (the paper's Table 2, right column): with ``two_encoders`` a second, independent copy of
the encoder (same initial weights, its own parameters and optimiser state) encodes every text after the
first of each row (the positive and any hard negative), the first encoder the anchors. The first
encoder is the one evaluated and saved.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import torch
from torch import nn

from simcse_analysis.checkpoint import loading_error
from simcse_analysis.errors import InputError, warn
from simcse_analysis.hf_logging import quiet_transformers
from simcse_analysis.pooling import NEEDS_HIDDEN_STATES, check_pooler, pool

from . import padding_free
from .config import CROSS_PROCESS_GRADIENTS
from .objectives import DEFAULT_TEMPERATURE, contrastive_logits, gather_with_grad, scale_gradient, world

#: Config attributes that hold the hidden and the attention dropout, per architecture family.
DROPOUT_ATTRIBUTES: tuple[tuple[str, str], ...] = (
    ("hidden_dropout_prob", "attention_probs_dropout_prob"),  # BERT, RoBERTa, ELECTRA, MPNet, XLM-R
    ("dropout", "attention_dropout"),                          # DistilBERT, BART-style
    ("hidden_dropout", "attention_dropout"),                   # DeBERTa-v2 style names
)


def set_dropout(config: Any, rate: float) -> list[str]:
    """Set the hidden and attention dropout of a transformers ``config`` to ``rate``; returns the
    attributes changed. Raises :class:`InputError` if the architecture names them differently."""
    changed = []
    for hidden, attention in DROPOUT_ATTRIBUTES:
        for name in (hidden, attention):
            if hasattr(config, name) and isinstance(getattr(config, name), (int, float)):
                setattr(config, name, float(rate))
                changed.append(name)
        if changed:
            return changed
    raise InputError(f"cannot set the dropout of a {getattr(config, 'model_type', '?')} model: its config has none "
                     "of hidden_dropout_prob/attention_probs_dropout_prob/dropout/attention_dropout; omit --dropout")


def get_dropout(config: Any) -> float | None:
    """The hidden dropout rate of a transformers ``config`` (``None`` if not found)."""
    for hidden, _ in DROPOUT_ATTRIBUTES:
        v = getattr(config, hidden, None)
        if isinstance(v, (int, float)):
            return float(v)
    return None


def mlp_layer(encoder: nn.Module) -> nn.Linear:
    """The dense layer of the encoder's [CLS] pooler (the MLP head), or :class:`InputError`."""
    pooler = getattr(encoder, "pooler", None)
    dense = getattr(pooler, "dense", None)
    if not isinstance(dense, nn.Linear):
        raise InputError(f"pooler 'cls' trains an MLP in the model's pooler layer, which this "
                         f"{type(encoder).__name__} lacks: use --pooler cls_before_pooler or avg")
    return dense


class SimCSEModel(nn.Module):
    """Encoder + pooler + SimCSE loss. ``forward`` returns ``{"loss", "reported_loss", "logits"[, "mlm_loss"]}``."""

    def __init__(self, encoder: nn.Module, *, pooler: str = "cls", mlp_only_train: bool = False,
                 temperature: float = DEFAULT_TEMPERATURE, hard_negative_weight: float = 0.0,
                 fixed_dropout_mask: bool = False, lm_head: nn.Module | None = None,
                 mlm_weight: float = 0.1, two_encoders: bool = False,
                 cross_process_gradient: str = "average", mini_batch_size: int | None = None,
                 padding_free: bool = True) -> None:
        super().__init__()
        #: run supported encoders padding-free (:mod:`trainers.padding_free`): same numbers, no FLOPs on padding
        self.padding_free = bool(padding_free)
        #: the check of :meth:`_padding_free_for`, per encoder instance (``id``): done once, on its first batch
        self.padding_free_verdicts: dict[int, padding_free.Verdict] = {}
        if mini_batch_size is not None and mini_batch_size < 1:
            raise InputError(f"--mini-batch-size {mini_batch_size}: must be at least 1")
        if mini_batch_size is not None and lm_head is not None:
            raise InputError("--mini-batch-size (gradient caching) cannot be combined with --do-mlm")
        #: gradient caching (:mod:`trainers.gradcache`): encode the batch in chunks of this many rows
        self.mini_batch_size = mini_batch_size
        if cross_process_gradient not in CROSS_PROCESS_GRADIENTS:
            raise InputError(f"--cross-process-gradient {cross_process_gradient!r}: choose one of "
                             f"{', '.join(CROSS_PROCESS_GRADIENTS)}")
        self.cross_process_gradient = cross_process_gradient
        if two_encoders and fixed_dropout_mask:
            raise InputError("a fixed dropout mask shares one mask between the views of one encoder; it cannot be "
                             "combined with two encoders")
        self.encoder = encoder
        self.pooler = check_pooler(pooler)
        self.mlp_only_train = bool(mlp_only_train)
        self.temperature = float(temperature)
        self.hard_negative_weight = float(hard_negative_weight)
        self.fixed_dropout_mask = bool(fixed_dropout_mask)
        self.lm_head = lm_head
        self.mlm_weight = float(mlm_weight)
        if pooler == "cls":
            mlp_layer(encoder)
        elif getattr(encoder, "pooler", None) is not None:
            encoder.pooler.requires_grad_(False)  # unused: keep it out of the optimiser and of DDP
        # the positives' encoder: an independent copy, same starting weights (MLP included)
        self.second_encoder = copy.deepcopy(encoder) if two_encoders else None

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_pretrained(cls, path: str, *, pooler: str = "cls", mlp_only_train: bool = False,
                        dropout: float | None = None, temperature: float = DEFAULT_TEMPERATURE,
                        hard_negative_weight: float = 0.0, fixed_dropout_mask: bool = False,
                        do_mlm: bool = False, mlm_weight: float = 0.1, seed: int = 42,
                        trust_remote_code: bool = False, two_encoders: bool = False,
                        cross_process_gradient: str = "average",
                        mini_batch_size: int | None = None, padding_free: bool = True) -> SimCSEModel:
        """Load the encoder from a checkpoint directory, set its dropout, prepare the MLP / MLM head."""
        from transformers import AutoConfig, AutoModel

        check_pooler(pooler)
        config = AutoConfig.from_pretrained(path, trust_remote_code=trust_remote_code)
        if dropout is not None:
            set_dropout(config, dropout)
        try:
            with quiet_transformers(progress_bars=True):  # the pooler may be missing or re-initialised: we handle it
                encoder = AutoModel.from_pretrained(path, config=config, trust_remote_code=trust_remote_code)
                lm_head = _load_lm_head(path, config, trust_remote_code) if do_mlm else None
        except Exception as e:  # OSError, torch's RuntimeError, safetensors' SafetensorError: the files are bad
            err = loading_error(Path(path), e)
            if err is None:
                raise
            raise err from e
        if pooler == "cls":
            dense = mlp_layer(encoder)
            g = torch.Generator().manual_seed(int(seed))
            std = float(getattr(config, "initializer_range", 0.02))
            with torch.no_grad():
                dense.weight.copy_(torch.randn(dense.weight.shape, generator=g) * std)
                dense.bias.zero_()
        return cls(encoder, pooler=pooler, mlp_only_train=mlp_only_train, temperature=temperature,
                   hard_negative_weight=hard_negative_weight, fixed_dropout_mask=fixed_dropout_mask,
                   lm_head=lm_head, mlm_weight=mlm_weight, two_encoders=two_encoders,
                   cross_process_gradient=cross_process_gradient, mini_batch_size=mini_batch_size,
                   padding_free=padding_free)

    @property
    def eval_pooler(self) -> str:
        """Pooler that reads the trained representation at evaluation time."""
        return "cls_before_pooler" if self.pooler == "cls" and self.mlp_only_train else self.pooler

    # ------------------------------------------------------------------ forward
    def embed(self, input_ids: torch.Tensor, attention_mask: torch.Tensor,
              token_type_ids: torch.Tensor | None = None, encoder: nn.Module | None = None) -> torch.Tensor:
        """``(N, T)`` tokens -> ``(N, d)`` training representations (MLP applied for ``cls``), by ``encoder``
        (default: the first); padding-free (:mod:`trainers.padding_free`) where it reproduces the encoder."""
        encoder = encoder if encoder is not None else self.encoder
        if self._padding_free_for(encoder, input_ids, attention_mask, token_type_ids):
            out = padding_free.forward(encoder, input_ids, attention_mask, token_type_ids, pooler=self.pooler)
            return pool(self.pooler, out, attention_mask)
        kwargs = {"token_type_ids": token_type_ids} if token_type_ids is not None else {}
        out = encoder(input_ids=input_ids, attention_mask=attention_mask,
                      output_hidden_states=self.pooler in NEEDS_HIDDEN_STATES, return_dict=True, **kwargs)
        return pool(self.pooler, out, attention_mask)

    def _padding_free_for(self, encoder: nn.Module, input_ids: torch.Tensor, attention_mask: torch.Tensor,
                          token_type_ids: torch.Tensor | None) -> bool:
        """Whether this batch goes through the padding-free forward: asked for, right-padded, and — checked
        once per encoder instance, on the first batch it sees (:func:`trainers.padding_free.verify`) —
        equal to the model's own forward. A failed check prints one ``warning:`` line and the encoder
        keeps the model's own forward for the rest of the run."""
        if not self.padding_free or not bool(attention_mask[:, 0].all()):
            return False
        verdict = self.padding_free_verdicts.get(id(encoder))
        if verdict is None:
            verdict = padding_free.verify(encoder, input_ids, attention_mask, token_type_ids, pooler=self.pooler)
            self.padding_free_verdicts[id(encoder)] = verdict
            if verdict.warn and not any(v.warn for k, v in self.padding_free_verdicts.items() if k != id(encoder)):
                warn(f"padding-free forward {verdict.note.removeprefix('off: ')}; training with the model's own "
                     "forward instead (same numbers, slower); --no-padding-free silences this")
        return verdict.on

    def padding_free_note(self) -> str:
        """``run.json`` → ``resolved.padding_free``: ``on``, ``off (--no-padding-free)``, ``off: …`` (why),
        or ``pending`` before the first batch (the check runs then)."""
        if not self.padding_free:
            return "off (--no-padding-free)"
        verdicts = [self.padding_free_verdicts.get(id(e)) for e in (self.encoder, self.second_encoder)
                    if e is not None]
        off = [v for v in verdicts if v is not None and not v.on]
        if off:
            return off[0].note
        if all(v is not None for v in verdicts):
            return "on"
        reason = padding_free.unsupported_reason(self.encoder)
        return f"off: not supported for {reason}" if reason is not None else "pending"

    def embed_views(self, input_ids: torch.Tensor, attention_mask: torch.Tensor,
                    token_type_ids: torch.Tensor | None = None) -> torch.Tensor:
        """``(B, S, T)`` -> ``(B, S, d)``: every text of every row in one forward pass (or, with a fixed
        dropout mask and identical views, the first view once, reused)."""
        b, s, t = input_ids.shape
        if self.fixed_dropout_mask:
            if not torch.equal(input_ids[:, 0], input_ids[:, 1]):
                raise InputError("a fixed dropout mask needs both views to be the same text (--positive dropout)")
            tt = token_type_ids[:, 0] if token_type_ids is not None else None
            z = self.embed(input_ids[:, 0], attention_mask[:, 0], tt)
            return torch.stack([z, z], dim=1)
        if self.second_encoder is not None:  # anchors by the first encoder, the rest by the second
            rest = s - 1
            z0 = self.embed(input_ids[:, 0], attention_mask[:, 0],
                            token_type_ids[:, 0] if token_type_ids is not None else None)
            zr = self.embed(input_ids[:, 1:].reshape(b * rest, t), attention_mask[:, 1:].reshape(b * rest, t),
                            token_type_ids[:, 1:].reshape(b * rest, t) if token_type_ids is not None else None,
                            encoder=self.second_encoder)
            return torch.cat([z0.unsqueeze(1), zr.view(b, rest, -1)], dim=1)
        flat_tt = token_type_ids.reshape(b * s, t) if token_type_ids is not None else None
        z = self.embed(input_ids.reshape(b * s, t), attention_mask.reshape(b * s, t), flat_tt)
        return z.view(b, s, -1)

    def loss_of_views(self, z: torch.Tensor, hard_negative_mask: torch.Tensor | None = None
                      ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(loss to back-propagate, reported loss, logits)`` of the ``(B, S, d)`` views ``z`` (gathered
        across processes in training; the back-propagated loss carries the cross-process gradient scaling)."""
        z1, z2 = z[:, 0], z[:, 1]
        z3 = z[:, 2] if z.shape[1] > 2 else None
        _, size = world()
        distributed = self.training and size > 1
        if distributed:
            if z3 is not None:
                if hard_negative_mask is None:
                    hard_negative_mask = torch.ones(z3.shape[0], dtype=torch.bool, device=z3.device)
                hard_negative_mask = gather_with_grad(hard_negative_mask.to(z3.device))
                z3 = gather_with_grad(z3)
            z1, z2 = gather_with_grad(z1), gather_with_grad(z2)
        logits = contrastive_logits(z1, z2, z3, temperature=self.temperature,
                                    hard_negative_weight=self.hard_negative_weight,
                                    hard_negative_mask=hard_negative_mask)
        labels = torch.arange(logits.shape[0], device=logits.device)
        loss = nn.functional.cross_entropy(logits, labels)
        reported = loss.detach()
        if distributed and self.cross_process_gradient == "global":
            loss = scale_gradient(loss, size)
        return loss, reported, logits

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor,
                token_type_ids: torch.Tensor | None = None, hard_negative_mask: torch.Tensor | None = None,
                mlm_input_ids: torch.Tensor | None = None, mlm_labels: torch.Tensor | None = None
                ) -> dict[str, torch.Tensor]:
        """SimCSE loss of a ``(B, S, T)`` batch; see :mod:`trainers.objectives` for the formula.

        In a process group (training mode), the views of every process are gathered first, so the
        loss is that of the global batch. After data-parallel averaging the update is ``∇L / P`` as in
        the reference (``cross_process_gradient="average"``), or, with ``"global"``, the gradient is
        scaled by the world size ``P`` so the update equals single-process training on the global batch.
        """
        if self.mini_batch_size is not None and self.training and torch.is_grad_enabled() \
                and input_ids.shape[0] > self.mini_batch_size:
            from .gradcache import cached_forward

            return cached_forward(self, input_ids, attention_mask, token_type_ids, hard_negative_mask)
        z = self.embed_views(input_ids, attention_mask, token_type_ids)
        loss, reported, logits = self.loss_of_views(z, hard_negative_mask)
        out = {"logits": logits}
        if self.lm_head is not None and mlm_input_ids is not None and mlm_labels is not None:
            b, s, t = mlm_input_ids.shape
            kwargs = {"token_type_ids": token_type_ids.reshape(b * s, t)} if token_type_ids is not None else {}
            hidden = self.encoder(input_ids=mlm_input_ids.reshape(b * s, t),
                                  attention_mask=attention_mask.reshape(b * s, t), return_dict=True,
                                  **kwargs).last_hidden_state
            scores = self.lm_head(hidden)
            mlm = nn.functional.cross_entropy(scores.reshape(-1, scores.shape[-1]).float(), mlm_labels.reshape(-1),
                                              ignore_index=-100)
            out["mlm_loss"] = mlm.detach()
            loss = loss + self.mlm_weight * mlm
            reported = reported + self.mlm_weight * mlm.detach()
        out["loss"] = loss
        out["reported_loss"] = reported  # the loss value, without the distributed gradient scaling
        return out


def missing_head_keys(mlm: nn.Module, loading_info: dict[str, Any]) -> list[str]:
    """Weights outside the base model that ``from_pretrained(..., output_loading_info=True)`` had to
    initialise: a checkpoint without its masked-LM head has some."""
    prefix = mlm.base_model_prefix + "."
    return [k for k in loading_info.get("missing_keys", []) if not k.startswith(prefix)]


def _load_lm_head(path: str, config: Any, trust_remote_code: bool) -> nn.Module:
    """The checkpoint's masked-LM head (everything of ``AutoModelForMaskedLM`` but the base model),
    untied from the encoder's embeddings as in the reference; :class:`InputError` if it has none."""
    from transformers import AutoModelForMaskedLM

    try:
        mlm, info = AutoModelForMaskedLM.from_pretrained(path, config=config, trust_remote_code=trust_remote_code,
                                                         output_loading_info=True)
    except (ValueError, OSError) as e:
        raise InputError(f"--do-mlm: cannot load a masked-LM head from {path}: {str(e).splitlines()[0]}") from e
    heads = [(name, m) for name, m in mlm.named_children() if name != mlm.base_model_prefix]
    missing = missing_head_keys(mlm, info)
    if missing or len(heads) != 1:
        raise InputError(f"--do-mlm needs a checkpoint with a masked-LM head; {path} has none "
                         f"(missing {', '.join(sorted(missing)[:3]) or 'a single head module'}): drop --do-mlm")
    return heads[0][1]
