"""Masked-LM replacement as a positive view (the paper's Table 1 "MLM 15%").

The positive of a sentence is the sentence with a share ``K`` of its word pieces replaced by a masked
language model's guesses: tokenise, choose ``max(1, r(K·n))`` of the ``n`` non-special tokens uniformly
at random (``r`` = stochastic rounding, as for the other augmentations), mask them all, run the masked
LM once, and replace each by a token *sampled* from its predicted distribution with the original token
and the special tokens excluded (so every chosen token really changes). The result is decoded back to
text, so an uncased tokenizer lower-cases the positive; the anchor is the sentence as written. The
paper's caption says "use BERT-base to replace k% of words"; the unit here is the word piece, so a
word split into pieces may be changed in part.

``--positive mlm:K@MODEL``, e.g. ``mlm:0.15@bert-base-uncased``: ``MODEL`` is any masked-LM checkpoint
(hub id or directory), loaded once, frozen, on the CPU (or ``$SIMCSE_AUGMENT_DEVICE``). SimCSE's row
uses the pre-trained BERT for this; no masked-LM checkpoint is available offline on the development
machine (all-MiniLM-L6-v2 ships without its MLM head), so the figure was not reproduced there.
"""

from __future__ import annotations

import functools
import os
import random
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from simcse_analysis.errors import InputError
from simcse_analysis.hf_logging import quiet_transformers

from .augment import parse_ratio, stochastic_round
from .views import register_positive

DEVICE_ENV = "SIMCSE_AUGMENT_DEVICE"


@functools.lru_cache(maxsize=2)
def load_masked_lm(name: str) -> tuple[Any, Any]:
    """``(tokenizer, model)`` of a masked-LM checkpoint, in eval mode with gradients off."""
    from transformers import AutoModelForMaskedLM, AutoTokenizer

    from simcse_analysis.checkpoint import resolve_checkpoint

    from .model import missing_head_keys

    path = resolve_checkpoint(name)
    try:
        with quiet_transformers(progress_bars=True):
            model, info = AutoModelForMaskedLM.from_pretrained(str(path), output_loading_info=True)
            tokenizer = AutoTokenizer.from_pretrained(str(path))
    except (ValueError, OSError) as e:
        raise InputError(f"--positive mlm:…@{name}: cannot load a masked LM from {path}: "
                         f"{str(e).splitlines()[0]}") from e
    missing = missing_head_keys(model, info)
    if missing or tokenizer.mask_token_id is None:
        raise InputError(f"--positive mlm:…@{name}: {path} has no masked-LM head (missing "
                         f"{', '.join(sorted(missing)[:3]) or 'a mask token'}): use a masked-LM checkpoint such "
                         "as bert-base-uncased")
    model.requires_grad_(False).eval().to(os.environ.get(DEVICE_ENV, "cpu"))
    return tokenizer, model


@dataclass
class MaskedLMViews:
    """View function: first view = the sentence, second = it with a share ``ratio`` of tokens re-guessed."""

    name: str
    ratio: float
    tokenizer: Any
    model: Any
    max_length: int = 128

    def replace_tokens(self, input_ids: Any, attention_mask: Any, rng: random.Random) -> Any:
        """``(B, T)`` ids → ids with ``max(1, r(ratio·n))`` non-special tokens per row replaced by samples
        from the masked LM (never the original token, never a special token)."""
        import torch

        special_ids = torch.tensor(sorted(set(self.tokenizer.all_special_ids)), dtype=torch.long)
        ordinary = attention_mask.bool() & ~torch.isin(input_ids, special_ids)
        chosen = torch.zeros_like(ordinary)
        for row in range(input_ids.shape[0]):
            positions = ordinary[row].nonzero().flatten().tolist()
            if positions:
                k = min(len(positions), max(1, stochastic_round(self.ratio * len(positions), rng)))
                chosen[row, rng.sample(positions, k)] = True
        masked = input_ids.masked_fill(chosen, int(self.tokenizer.mask_token_id))
        device = next(self.model.parameters()).device
        with torch.no_grad():
            logits = self.model(input_ids=masked.to(device), attention_mask=attention_mask.to(device)).logits
        logits = logits[chosen.to(device)].float().cpu()                 # (M, V) at the chosen positions
        logits[:, special_ids[special_ids < logits.shape[1]]] = float("-inf")
        logits[torch.arange(logits.shape[0]), input_ids[chosen]] = float("-inf")  # must change
        g = torch.Generator().manual_seed(rng.getrandbits(63))
        new = torch.multinomial(torch.softmax(logits, dim=-1), 1, generator=g).flatten()
        out = input_ids.clone()
        out[chosen] = new
        return out

    def __call__(self, sentences: Sequence[str], rng: random.Random) -> tuple[list[str], list[str]]:
        first = list(sentences)
        enc = self.tokenizer(first, max_length=self.max_length, truncation=True, padding="longest",
                             return_tensors="pt")
        ids = self.replace_tokens(enc["input_ids"], enc["attention_mask"], rng)
        second = self.tokenizer.batch_decode(ids, skip_special_tokens=True, clean_up_tokenization_spaces=True)
        return first, [s.strip() for s in second]


def _mlm_factory(arg: str | None) -> MaskedLMViews:
    ratio_text, sep, model = (arg or "").partition("@")
    if not sep or not model.strip():
        raise InputError("--positive mlm needs the share of tokens and a masked-LM checkpoint: "
                         "mlm:0.15@bert-base-uncased")
    ratio = parse_ratio(ratio_text, "mlm")
    tokenizer, lm = load_masked_lm(model.strip())
    return MaskedLMViews(f"mlm:{ratio:g}@{model.strip()}", ratio, tokenizer, lm)


register_positive("mlm", _mlm_factory)
