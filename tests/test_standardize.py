"""Standardised checkpoints (z-scored dimensions, Timkey & van Schijndel 2021) and the ``standardize`` command."""

from __future__ import annotations

import json

import numpy as np
import pytest

from simcse_analysis.encoder import load_encoder
from simcse_analysis.metrics.rogue import fit_standardization
from trainers.standardize import standardization_transform, standardize_checkpoint


@pytest.fixture(scope="module")
def corpus(tmp_path_factory, data_dir):
    lines = (data_dir / "unsup" / "wiki1m_for_simcse.head.txt").read_text(encoding="utf-8").splitlines()[:120]
    f = tmp_path_factory.mktemp("standardize_corpus") / "wiki120.txt"
    f.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return f, lines


def test_the_transform_is_the_z_score_of_every_dimension_and_centres_constant_ones():
    x = np.random.default_rng(0).normal(size=(300, 5)) * np.array([0.1, 1, 5, 20, 2]) + 3
    mean, matrix = standardization_transform(*fit_standardization(x)).affine()
    z = (x - mean) @ matrix
    np.testing.assert_allclose(z, (x - x.mean(0)) / x.std(0), atol=1e-5)
    assert np.count_nonzero(matrix - np.diag(np.diag(matrix))) == 0  # one scale per dimension, nothing mixed
    x[:, 1] = 7.25  # a dead dimension (e.g. a LayerNorm weight of 0)
    mean, matrix = standardization_transform(*fit_standardization(x)).affine()
    z = (x - mean) @ matrix
    np.testing.assert_allclose(z[:, 1], 0.0, atol=1e-6)
    np.testing.assert_allclose(z[:, [0, 2, 3, 4]].std(0), 1.0, atol=1e-5)


def test_standardised_checkpoint_encodes_z_scores_of_the_base_embeddings(tmp_path, tiny_bert_dir, corpus):
    f, lines = corpus
    out = tmp_path / "std"
    res = standardize_checkpoint(tiny_bert_dir, [f], out, encoder_kwargs={"pooler": "avg", "device": "cpu",
                                                                          "use_cache": False})
    assert res.n_sentences == len(lines) and res.dim == 32
    meta = json.loads((out / "simcse_analysis.json").read_text())
    assert meta["baseline"] == "standardize" and meta["post_transform"]["type"] == "affine"
    base = load_encoder(tiny_bert_dir, pooler="avg", device="cpu", use_cache=False).encode(lines).astype(np.float64)
    z = load_encoder(out, device="cpu", use_cache=False).encode(lines).astype(np.float64)
    np.testing.assert_allclose(z, (base - base.mean(0)) / base.std(0), atol=1e-3)
    np.testing.assert_allclose(z.mean(0), 0, atol=1e-4)
    np.testing.assert_allclose(z.std(0), 1, atol=1e-4)


def test_standardize_command_writes_a_checkpoint_eval_reads(tmp_path, tiny_bert_dir, corpus, run_cli, small_data_dir):
    f, _ = corpus
    out = tmp_path / "std"
    code, stdout, err = run_cli("standardize", tiny_bert_dir, "--corpus", f, "--out", out, "--pooler",
                                "cls_before_pooler", "--device", "cpu", "--no-cache")
    assert code == 0, err
    assert "standardised" in stdout
    code, stdout, err = run_cli("eval", out, "--tasks", "STSBenchmark", "--data-dir", small_data_dir, "--device",
                                "cpu", "--no-cache")
    assert code == 0, err
    assert "STSBenchmark" in stdout or "STS-B" in stdout
    code, _, err = run_cli("standardize", out, "--corpus", f, "--out", tmp_path / "again", "--device", "cpu")
    assert code == 2 and err.startswith("error:") and "post-transform" in err and err.count("\n") == 1
