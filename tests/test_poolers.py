"""Every pooler against a hand-computed reference: each sentence run alone, unpadded, pooled by loops."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from simcse_analysis.encoder import load_encoder
from simcse_analysis.errors import InputError
from simcse_analysis.pooling import POOLERS, check_pooler

SENTENCES = [
    "A man is playing a guitar.",
    "Two dogs run across a snowy field while children watch from the fence.",
    "Hi.",
    "The committee postponed the vote until next week.",
]


def reference_vector(model, tokenizer, sentence: str, pooler: str) -> np.ndarray:
    """The formula from the pooling module's docstring, evaluated token by token on one unpadded input."""
    enc = tokenizer(sentence, return_tensors="pt")
    with torch.no_grad():
        out = model(**enc, output_hidden_states=True, return_dict=True)
    hs = [h[0] for h in out.hidden_states]  # (T, D) per layer; hs[0] = embeddings
    T = hs[-1].shape[0]

    def mean(h):
        return sum(h[i] for i in range(T)) / T

    if pooler == "cls_before_pooler":
        v = hs[-1][0]
    elif pooler == "cls":
        W, b = model.pooler.dense.weight, model.pooler.dense.bias
        v = torch.tanh(W @ hs[-1][0] + b)
    elif pooler == "avg":
        v = mean(hs[-1])
    elif pooler == "avg_first_last":
        v = (mean(hs[1]) + mean(hs[-1])) / 2
    elif pooler == "avg_emb_last":  # the paper's numbers: embedding layer (hs[0]) + last layer
        v = (mean(hs[0]) + mean(hs[-1])) / 2
    elif pooler == "avg_top2":
        v = (mean(hs[-2]) + mean(hs[-1])) / 2
    else:  # pragma: no cover
        raise AssertionError(pooler)
    return v.detach().numpy()


@pytest.mark.parametrize("pooler", POOLERS)
def test_pooler_matches_hand_computed_reference(tiny_bert_dir, pooler):
    enc = load_encoder(tiny_bert_dir, pooler=pooler, use_cache=False, device="cpu")
    got = enc.encode(SENTENCES, batch_size=3)  # padded batches of mixed lengths
    expected = np.stack([reference_vector(enc.model, enc.tokenizer, s, pooler) for s in SENTENCES])
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-5)


def test_poolers_give_different_vectors(tiny_bert_dir):
    vecs = {p: load_encoder(tiny_bert_dir, pooler=p, use_cache=False).encode(SENTENCES[:2]) for p in POOLERS}
    for a in POOLERS:
        for b in POOLERS:
            if a < b:
                assert not np.allclose(vecs[a], vecs[b]), (a, b)


def test_unknown_pooler_is_rejected_with_choices():
    with pytest.raises(InputError, match="unknown pooler 'mean'.*cls_before_pooler"):
        check_pooler("mean")


def test_per_layer_avg_matches_hidden_state_means(tiny_bert_dir):
    enc = load_encoder(tiny_bert_dir, pooler="avg", use_cache=False)
    layers = enc.encode_layers(SENTENCES, batch_size=2)
    assert layers.shape == (enc.model.config.num_hidden_layers + 1, len(SENTENCES), 32)
    # the last layer's mean is exactly what the avg pooler returns
    np.testing.assert_allclose(layers[-1], enc.encode(SENTENCES), rtol=1e-5, atol=1e-6)
    for j, s in enumerate(SENTENCES):
        tok = enc.tokenizer(s, return_tensors="pt")
        with torch.no_grad():
            hs = enc.model(**tok, output_hidden_states=True).hidden_states
        for layer, h in enumerate(hs):
            np.testing.assert_allclose(layers[layer, j], h[0].mean(0).numpy(), rtol=1e-4, atol=1e-5)
