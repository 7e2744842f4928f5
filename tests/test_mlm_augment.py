"""Masked-LM replacement positives (``--positive mlm:K@MODEL``, the paper's Table 1 "MLM 15%")."""

from __future__ import annotations

import random

import pytest
import torch

from simcse_analysis.errors import InputError
from trainers.views import parse_positive, positive_name

SENTENCES = ["A man is playing a guitar on the stage tonight.", "Two dogs run across the wet green field.",
             "Short one."]


@pytest.fixture(scope="module")
def view(tiny_bert_mlm_dir):
    return parse_positive(f"mlm:0.3@{tiny_bert_mlm_dir}")


def test_chosen_tokens_change_and_nothing_else(view):
    enc = view.tokenizer(SENTENCES, padding="longest", return_tensors="pt")
    ids, mask = enc["input_ids"], enc["attention_mask"]
    special = torch.isin(ids, torch.tensor(view.tokenizer.all_special_ids))
    for seed in range(20):
        new = view.replace_tokens(ids, mask, random.Random(seed))
        changed = new != ids
        assert not (changed & special).any() and not (changed & ~mask.bool()).any()
        assert not torch.isin(new[changed], torch.tensor(view.tokenizer.all_special_ids)).any()
        for row in range(len(SENTENCES)):
            n = int((mask[row].bool() & ~special[row]).sum())
            k = int(changed[row].sum())
            lo = max(1, int(0.3 * n))
            assert lo <= k <= max(1, int(0.3 * n) + 1), (row, n, k)


def test_views_are_anchor_and_decoded_replacement_seeded_per_batch(view):
    first, second = view(SENTENCES, random.Random(1))
    assert first == SENTENCES
    assert all(a.lower() != b for a, b in zip(first, second))
    assert view(SENTENCES, random.Random(1))[1] == second
    assert view(SENTENCES, random.Random(2))[1] != second


def test_spec_names_and_errors(view, tiny_bert_mlm_dir, tiny_trainer_bert):
    assert positive_name(view) == f"mlm:0.3@{tiny_bert_mlm_dir}"
    with pytest.raises(InputError, match="mlm:0.15@bert-base-uncased"):
        parse_positive("mlm:0.15")
    with pytest.raises(InputError, match="no masked-LM head"):
        parse_positive(f"mlm:0.15@{tiny_trainer_bert}")  # a plain BertModel checkpoint
    with pytest.raises(InputError, match=r"share must be in \(0, 1\)"):
        parse_positive(f"mlm:1.5@{tiny_bert_mlm_dir}")
