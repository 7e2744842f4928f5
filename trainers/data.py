"""Training data for SimCSE: reading the corpus, and turning batches of rows into model inputs.

Unsupervised SimCSE reads one sentence per line (``.txt``); supervised SimCSE a ``sent0,sent1[,hard_neg]``
CSV (:mod:`simcse_analysis.corpora` does the parsing). Several files are concatenated in order.

A batch is built on the fly by :class:`ContrastiveCollator` from the row indices the sampler picks:
each row becomes ``S`` texts (``S = 2`` views for unsupervised, 2 or 3 for supervised) that are
tokenised together and padded to the batch's longest (truncated to ``max_length``), giving
``input_ids`` of shape ``(B, S, T)`` as in the reference. Any randomness (positive views, MLM masks)
comes from generators seeded by ``(seed, row indices)``, never from the global RNG, so a resumed run
rebuilds exactly the batches of an uninterrupted one.
"""

from __future__ import annotations

import os
import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from simcse_analysis.checkpoint import file_digest
from simcse_analysis.corpora import read_pair_corpus, read_text_corpus
from simcse_analysis.errors import InputError

from .views import ViewFn, dropout_views, neighbour_window


@dataclass
class TrainingData:
    """Columns of the training rows. ``hard_neg[i]`` is ``None`` where row ``i`` has no hard negative;
    ``sent1`` is ``None`` for unsupervised data (the positive is built by a view function).
    ``neighbours[i]`` (``--positive next[:K]`` only) lists the up to ``K`` lines that follow row ``i`` in
    its file; the positive is drawn from them per batch."""

    objective: str
    sent0: list[str]
    sent1: list[str] | None = None
    hard_neg: list[str | None] | None = None
    files: list[dict[str, Any]] = field(default_factory=list)
    neighbours: list[list[str]] | None = None

    def __len__(self) -> int:
        return len(self.sent0)

    @property
    def num_sent(self) -> int:
        """Texts per row: 2 (pairs or two views) or 3 (with hard negatives)."""
        return 3 if self.hard_neg is not None else 2


def load_training_data(files: Sequence[str | os.PathLike[str]], objective: str,
                       positive: str = "dropout") -> TrainingData:
    """Read and check every training file (:class:`InputError` names the file and line at fault).

    With ``positive="next[:K]"`` (unsupervised) every line that has a successor in its file becomes a
    row whose candidates are the next ``K`` lines; a file's last line only serves as a positive.
    """
    if not files:
        raise InputError("no training file given: pass --train-file FILE")
    window = neighbour_window(positive)
    if window and objective != "unsup":
        raise InputError(f"--positive {positive} applies to unsupervised SimCSE only (train unsup)")
    neighbours: list[list[str]] = []
    sent0: list[str] = []
    sent1: list[str] = []
    hard: list[str | None] = []
    any_hard = False
    records: list[dict[str, Any]] = []
    for f in files:
        p = Path(f)
        is_table = p.suffix.lower() in (".csv", ".tsv")
        if objective == "unsup":
            if is_table:
                raise InputError(f"{p}: unsupervised SimCSE reads one sentence per line from a text file "
                                 "(.txt); for sent0,sent1[,hard_neg] pairs use `train sup`")
            rows = read_text_corpus(p)
            if window:
                neighbours += [rows[i + 1:i + 1 + window] for i in range(len(rows) - 1)]
                rows = rows[:-1]
                if not rows:
                    raise InputError(f"{p}: --positive {positive} needs at least two lines (a sentence and the "
                                     "next one)")
            sent0 += rows
            n = len(rows)
        else:
            if not is_table:
                raise InputError(f"{p}: supervised SimCSE reads a CSV with a header 'sent0,sent1[,hard_neg]' "
                                 "(.csv or .tsv); for one sentence per line use `train unsup`")
            corpus = read_pair_corpus(p)
            for i, (a, b) in enumerate(zip(corpus.sent0, corpus.sent1), start=1):
                if not a.strip() or not b.strip():
                    col = corpus.columns[0] if not a.strip() else corpus.columns[1]
                    raise InputError(f"{p}: data row {i} has an empty {col!r}; every row needs a sentence and "
                                     "its positive (only the hard negative may be left empty)")
            sent0 += corpus.sent0
            sent1 += corpus.sent1
            if corpus.hard_neg is not None:
                hard += [h if h.strip() else None for h in corpus.hard_neg]
                any_hard = any_hard or any(h.strip() for h in corpus.hard_neg)
            else:
                hard += [None] * len(corpus)
            n = len(corpus)
        records.append({"path": str(p.resolve()), "sha256": file_digest(p), "rows": n})
    if objective == "unsup":
        return TrainingData("unsup", sent0, files=records, neighbours=neighbours if window else None)
    return TrainingData("sup", sent0, sent1, hard if any_hard else None, files=records)


class RowDataset(torch.utils.data.Dataset):
    """Row indices ``0 … n-1``; the collator looks the texts up (so views are drawn per batch)."""

    def __init__(self, n: int) -> None:
        self.n = int(n)

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: int) -> int:
        return int(i)


def batch_seed(seed: int, indices: Sequence[int]) -> int:
    """A 63-bit seed that depends on the run's seed and on exactly which rows form the batch."""
    return int(np.random.SeedSequence([int(seed) & 0xFFFFFFFF, *map(int, indices)]).generate_state(2, np.uint64)[0]
               >> np.uint64(1))


class ContrastiveCollator:
    """Row indices -> ``{"input_ids", "attention_mask"[, "token_type_ids"]}`` of shape ``(B, S, T)``.

    Supervised batches with hard negatives also carry ``hard_negative_mask`` ``(B,)`` (False where a row
    has none; its slot holds an empty text that the loss ignores). With ``mlm_probability`` set, adds
    ``mlm_input_ids``/``mlm_labels`` ``(B, S, T)``: BERT's masking (15 % of non-special tokens; of those
    80 % → [MASK], 10 % → random token, 10 % kept; labels -100 elsewhere).
    """

    def __init__(self, data: TrainingData, tokenizer: Any, max_length: int, *, views: ViewFn = dropout_views,
                 seed: int = 42, mlm_probability: float | None = None) -> None:
        self.data = data
        self.tokenizer = tokenizer
        self.max_length = int(max_length)
        self.views = views
        self.seed = int(seed)
        self.mlm_probability = mlm_probability
        if mlm_probability is not None and tokenizer.mask_token_id is None:
            raise InputError("--do-mlm needs a tokenizer with a mask token")
        self._special = torch.tensor(sorted(set(tokenizer.all_special_ids)), dtype=torch.long)

    def _tokenize(self, texts: list[str], groups: int) -> dict[str, torch.Tensor]:
        enc = self.tokenizer(texts, max_length=self.max_length, truncation=True, padding="longest",
                             return_tensors="pt")
        b = len(texts) // groups
        return {k: v.view(groups, b, -1).transpose(0, 1).contiguous() for k, v in enc.items()
                if k in ("input_ids", "attention_mask", "token_type_ids")}

    def __call__(self, indices: Sequence[int]) -> dict[str, torch.Tensor]:
        idx = [int(i) for i in indices]
        seed = batch_seed(self.seed, idx)
        d = self.data
        first = [d.sent0[i] for i in idx]
        if d.neighbours is not None:  # --positive next[:K]: a following line of the same file
            rng = random.Random(seed)
            batch = self._tokenize(first + [rng.choice(d.neighbours[i]) for i in idx], 2)
        elif d.sent1 is None:
            a, b = self.views(first, random.Random(seed))
            if len(a) != len(idx) or len(b) != len(idx):
                raise ValueError("a view function must return one text per sentence for each view")
            if a == b:  # identical texts (dropout views): tokenise once
                one = self._tokenize(list(a), 1)
                batch = {k: v.expand(-1, 2, -1).contiguous() for k, v in one.items()}
            else:
                batch = self._tokenize(list(a) + list(b), 2)
        else:
            texts = first + [d.sent1[i] for i in idx]
            groups = 2
            if d.hard_neg is not None:
                negs = [d.hard_neg[i] for i in idx]
                texts += [h if h is not None else "" for h in negs]
                groups = 3
            batch = self._tokenize(texts, groups)
            if d.hard_neg is not None:
                present = torch.tensor([h is not None for h in negs], dtype=torch.bool)
                if not bool(present.all()):
                    batch["hard_negative_mask"] = present
        if self.mlm_probability is not None:
            batch["mlm_input_ids"], batch["mlm_labels"] = self.mask_tokens(batch["input_ids"], seed)
        return batch

    def mask_tokens(self, input_ids: torch.Tensor, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
        """BERT masking of ``input_ids`` with a generator seeded by ``seed``: ``(masked_ids, labels)``."""
        g = torch.Generator().manual_seed(seed)
        labels = input_ids.clone()
        special = torch.isin(input_ids, self._special)
        prob = torch.full(input_ids.shape, float(self.mlm_probability)).masked_fill_(special, 0.0)
        masked = torch.bernoulli(prob, generator=g).bool()
        labels[~masked] = -100
        inputs = input_ids.clone()
        replace = torch.bernoulli(torch.full(input_ids.shape, 0.8), generator=g).bool() & masked
        inputs[replace] = int(self.tokenizer.mask_token_id)
        rand = torch.bernoulli(torch.full(input_ids.shape, 0.5), generator=g).bool() & masked & ~replace
        words = torch.randint(len(self.tokenizer), input_ids.shape, dtype=torch.long, generator=g)
        inputs[rand] = words[rand]
        return inputs, labels
