"""BERT-whitening: the fit (Su et al. 2021), the checkpoint that applies it, and the ``whiten`` command."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest

from simcse_analysis.encoder import load_encoder
from simcse_analysis.errors import InputError
from simcse_analysis.metrics.isoscore import isoscore
from trainers.whitening import WHITENING_FILE, fit_whitening, whiten_checkpoint


def _correlated(n: int = 500, d: int = 6, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    mix = rng.normal(size=(d, d)) * np.linspace(3.0, 0.2, d)  # very unequal variances, correlated axes
    return rng.normal(size=(n, d)) @ mix.T + rng.normal(size=d) * 5


def test_whitened_corpus_has_zero_mean_and_identity_covariance():
    x = _correlated()
    w = fit_whitening(x)
    z = w.transform(x).astype(np.float64)
    np.testing.assert_allclose(z.mean(axis=0), 0.0, atol=1e-5)
    np.testing.assert_allclose(np.cov(z.T), np.eye(6), atol=1e-5)


def test_full_whitening_matrix_inverts_the_covariance():
    # W Wᵀ = U diag(1/s) Uᵀ = Σ⁻¹
    x = _correlated(seed=1)
    w = fit_whitening(x)
    np.testing.assert_allclose(np.cov(x.T) @ w.matrix @ w.matrix.T, np.eye(6), atol=1e-8)


def test_truncated_whitening_keeps_the_top_components_and_reports_their_variance_share():
    x = _correlated(seed=2)
    full, top = fit_whitening(x), fit_whitening(x, n_components=2)
    assert top.matrix.shape == (6, 2)
    # same leading directions (up to the sign of each singular vector)
    np.testing.assert_allclose(np.abs(top.matrix), np.abs(full.matrix[:, :2]), atol=1e-10)
    s = np.linalg.eigvalsh(np.cov(x.T))[::-1]
    assert top.explained_variance == pytest.approx(s[:2].sum() / s.sum(), rel=1e-9)
    np.testing.assert_allclose(np.cov(top.transform(x).astype(np.float64).T), np.eye(2), atol=1e-5)


@pytest.mark.parametrize("n, k, needle", [(4, None, "at least 7 sentences"), (50, 7, "between 1 and"),
                                          (50, 0, "between 1 and")])
def test_too_little_data_or_a_bad_k_is_refused(n, k, needle):
    with pytest.raises(InputError, match=needle):
        fit_whitening(_correlated(n=n), n_components=k)


def test_rank_deficient_embeddings_whiten_the_spanned_directions_by_default():
    x = _correlated(d=4)
    x = np.concatenate([x, x[:, :2] - x[:, 2:3]], axis=1)  # 6 columns spanning 4 directions
    w = fit_whitening(x)
    assert w.n_components == 4
    np.testing.assert_allclose(np.cov(w.transform(x).astype(np.float64).T), np.eye(4), atol=1e-5)
    with pytest.raises(InputError, match="span only 4 of 6 directions"):
        fit_whitening(x, n_components=5)


# ---------------------------------------------------------------------------------- checkpoint
@pytest.fixture(scope="module")
def corpus(tmp_path_factory, data_dir):
    lines = (data_dir / "unsup" / "wiki1m_for_simcse.head.txt").read_text(encoding="utf-8").splitlines()[:300]
    f = tmp_path_factory.mktemp("whiten_corpus") / "wiki300.txt"
    f.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return f, lines


def _tree(path):
    return {p.relative_to(path): (p.stat().st_size, p.read_bytes()) for p in sorted(path.rglob("*")) if p.is_file()}


def test_whitened_checkpoint_encodes_as_the_fitted_transform(tmp_path, tiny_bert_dir, corpus):
    f, lines = corpus
    before = _tree(tiny_bert_dir)
    out = tmp_path / "white"
    result = whiten_checkpoint(tiny_bert_dir, [f], out, encoder_kwargs={"pooler": "avg", "device": "cpu"})
    # a final LayerNorm (γ = 1, β = 0 at random init) centres every token vector: Σ_i h_i = 0, so the
    # pooled embeddings span d − 1 = 31 directions, and that is what the default K keeps
    assert (result.n_sentences, result.dim, result.n_components) == (300, 32, 31)

    base = load_encoder(tiny_bert_dir, pooler="avg", device="cpu")
    white = load_encoder(out, device="cpu")
    assert white.pooler == "avg" and white.max_length == base.max_length
    raw, got = base.encode(lines), white.encode(lines)
    w = fit_whitening(raw)
    np.testing.assert_allclose(got, w.transform(raw), rtol=1e-4, atol=1e-4)
    # the corpus it was fitted on is isotropic afterwards: identity covariance → IsoScore 1
    assert isoscore(got) == pytest.approx(1.0, abs=1e-3)
    assert isoscore(raw) < 0.9
    assert white.fingerprint != base.fingerprint

    meta = json.loads((out / "simcse_analysis.json").read_text())
    assert meta["baseline"] == "whitening"
    assert meta["post_transform"] == {"type": "affine", "file": WHITENING_FILE}
    assert meta["whitening"]["n_sentences"] == 300 and meta["whitening"]["corpus"][0]["rows"] == 300
    assert meta["whitening"]["rank"] == 31 and result.rank == 31
    assert meta["whitening"]["n_components_rule"] == result.n_components_rule == "numerical rank of the corpus embeddings"
    # the base checkpoint is untouched, its weights shared rather than copied where possible
    assert _tree(tiny_bert_dir) == before
    assert (out / "model.safetensors").read_bytes() == (tiny_bert_dir / "model.safetensors").read_bytes()
    if os.stat(out / "model.safetensors").st_dev == os.stat(tiny_bert_dir / "model.safetensors").st_dev:
        assert os.stat(out / "model.safetensors").st_ino == os.stat(tiny_bert_dir / "model.safetensors").st_ino


@pytest.mark.parametrize("pooler", ["cls_before_pooler", "cls"])  # cls: Pooling → Dense(tanh) → whitening
def test_sentence_transformers_loads_the_whitened_checkpoint_with_the_same_vectors(tmp_path, tiny_bert_dir, corpus,
                                                                                  pooler):
    from sentence_transformers import SentenceTransformer

    f, lines = corpus
    out = tmp_path / "white16"
    whiten_checkpoint(tiny_bert_dir, [f], out, n_components=16, encoder_kwargs={"pooler": pooler, "device": "cpu"})
    ours = load_encoder(out, device="cpu").encode(lines[:20])
    st = SentenceTransformer(str(out), device="cpu").encode(lines[:20], convert_to_numpy=True)
    assert ours.shape == st.shape == (20, 16)
    np.testing.assert_allclose(st, ours, rtol=1e-3, atol=1e-3)


def test_max_sentences_samples_the_corpus_reproducibly(tmp_path, tiny_bert_dir, corpus):
    f, _ = corpus
    kw = {"pooler": "avg", "device": "cpu"}
    a = whiten_checkpoint(tiny_bert_dir, [f], tmp_path / "a", max_sentences=100, seed=3, encoder_kwargs=kw)
    whiten_checkpoint(tiny_bert_dir, [f], tmp_path / "b", max_sentences=100, seed=3, encoder_kwargs=kw)
    assert a.n_sentences == 100
    assert (tmp_path / "a" / WHITENING_FILE).read_bytes() == (tmp_path / "b" / WHITENING_FILE).read_bytes()


def test_whitening_a_whitened_checkpoint_is_refused(tmp_path, tiny_bert_dir, corpus):
    f, _ = corpus
    whiten_checkpoint(tiny_bert_dir, [f], tmp_path / "w1", encoder_kwargs={"pooler": "avg", "device": "cpu"})
    with pytest.raises(InputError, match="already applies a post-transform"):
        whiten_checkpoint(tmp_path / "w1", [f], tmp_path / "w2")
    assert not (tmp_path / "w2").exists()


# ---------------------------------------------------------------------------------- CLI
def test_whiten_command_writes_a_checkpoint_eval_can_read(tmp_path, tiny_bert_dir, corpus, run_cli, small_data_dir):
    f, _ = corpus
    out = tmp_path / "cli_white"
    code, stdout, err = run_cli("whiten", tiny_bert_dir, "--corpus", f, "--out", out, "--n-components", "8",
                                "--pooler", "avg", "--device", "cpu", "--json", tmp_path / "w.json")
    assert code == 0, err
    assert "32 → 8 dimensions," in stdout
    assert json.loads((tmp_path / "w.json").read_text())["n_components"] == 8
    assert json.loads((tmp_path / "w.json").read_text())["n_components_rule"] == "given"
    code, stdout, err = run_cli("whiten", tiny_bert_dir, "--corpus", f, "--out", tmp_path / "rank", "--pooler", "avg",
                                "--device", "cpu")
    assert code == 0, err
    assert "32 → 31 dimensions (the 31 directions the corpus embeddings span; --n-components K to choose)" in stdout
    code, stdout, _ = run_cli("whiten", "--help")
    assert "numerical rank" in " ".join(stdout.split()) and "the model's dimension" not in stdout
    code, stdout, err = run_cli("eval", out, "--tasks", "sts-b", "--split", "dev", "--data-dir", small_data_dir,
                                "--device", "cpu")
    assert code == 0, err
    assert "STSBenchmark" in stdout


@pytest.mark.parametrize("extra, needle", [
    (["--n-components", "33"], "--n-components 33"),
    (["--corpus", "/nonexistent/corpus.txt"], "does not exist"),
])
def test_whiten_bad_input_exits_2_and_writes_nothing(tmp_path, tiny_bert_dir, corpus, run_cli, extra, needle):
    f, _ = corpus
    out = tmp_path / "nothing"
    args = ["whiten", tiny_bert_dir, "--out", out, "--pooler", "avg", "--device", "cpu", *extra]
    if "--corpus" not in extra:
        args += ["--corpus", f]
    code, _, err = run_cli(*args)
    assert code == 2
    assert err.startswith("error:") and needle in err
    assert not out.exists()


def test_whiten_refuses_a_non_empty_output_dir(tmp_path, tiny_bert_dir, corpus, run_cli):
    f, _ = corpus
    out = tmp_path / "busy"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    code, _, err = run_cli("whiten", tiny_bert_dir, "--corpus", f, "--out", out, "--pooler", "avg")
    assert code == 2 and "--overwrite" in err
    assert [p.name for p in out.iterdir()] == ["notes.txt"]
