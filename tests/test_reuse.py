"""Reuse across commands: a sentence encoded by one command is not encoded again by another, and the
report's per-layer forward pass covers only the sentences whose layers it analyses."""

from __future__ import annotations

import numpy as np
import pytest

from simcse_analysis.cache import EmbeddingCache
from simcse_analysis.encoder import load_encoder


def test_align_uniform_after_eval_encodes_nothing_new(run_cli, tmp_path, tiny_bert_dir, small_data_dir):
    cache = tmp_path / "cache"
    common = ["--data-dir", small_data_dir, "--pooler", "avg", "--cache-dir", cache]
    code, _, err = run_cli("eval", tiny_bert_dir, "--tasks", "sts-b", "--split", "dev", *common)
    assert code == 0, err
    enc = load_encoder(tiny_bert_dir, pooler="avg", cache_dir=cache)
    space = EmbeddingCache(cache).namespace(enc.cache_settings("pooled", "avg"))
    before = space.stats()
    assert before["shards"] == 1 and before["sentences"] > 10
    # the analysis protocol's sentences (STS-B dev) arrive in another list, order and with repeats removed
    code, _, err = run_cli("align-uniform", tiny_bert_dir, "--splits", "dev", *common)
    assert code == 0, err
    assert EmbeddingCache(cache).namespace(enc.cache_settings("pooled", "avg")).stats() == before


def test_report_encodes_layers_only_for_its_layer_sample(tiny_bert_dir, small_data_dir):
    from reports.collect import anisotropy_with_layers, layer_sample
    from simcse_analysis.analysis import AnalysisSettings, EncoderSource, load_protocol_data
    from simcse_analysis.metrics import anisotropy_summary

    settings = AnalysisSettings(splits=("train", "dev"), cosine_pairs=500)
    data = load_protocol_data(settings, small_data_dir)
    enc = load_encoder(tiny_bert_dir, pooler="avg", use_cache=False)
    passes: list[tuple[int, int]] = []  # (sentences, outputs per sentence) of each forward-pass loop
    orig = enc._run

    def counting(texts, *a, **k):
        out = orig(texts, *a, **k)
        passes.append((len(texts), out.shape[0]))
        return out

    enc._run = counting
    source = EncoderSource(enc)
    sample = layer_sample(data, 12, settings.seed)
    source.prefetch(sample, layers=True)
    result, _ = anisotropy_with_layers(source, data, settings, 12)
    n_layers = enc.n_layers
    assert passes[0] == (12, 1 + n_layers)  # the sample: final and per-layer vectors in one pass
    assert sum(n for n, k in passes if k > 1) == 12  # no other pass computes layers
    assert sum(n for n, _ in passes) == len(data.sentences)  # every sentence through the model once
    assert result["layer_sentences"] == 12 and len(result["layers"]) == n_layers
    # the same figures as subsampling the full per-layer stack
    full = load_encoder(tiny_bert_dir, pooler="avg", use_cache=False).encode_layers(data.sentences)
    rows = [data.sentences.index(s) for s in sample]
    for i in (1, n_layers - 1):
        ref = anisotropy_summary(full[i][rows], n_pairs=500, seed=settings.seed).to_dict()
        for key, value in ref.items():
            assert result["layers"][i][key] == pytest.approx(value, rel=1e-4, abs=1e-6), (i, key)
    assert np.isfinite(result["summary"]["random_pair_cosine"])
