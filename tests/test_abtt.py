"""All-but-the-top (Mu & Viswanath 2018): the fit, the checkpoint that applies it, and the ``abtt`` command."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest

from simcse_analysis.encoder import load_encoder
from simcse_analysis.errors import InputError
from trainers.abtt import ABTT_FILE, abtt_checkpoint, default_n_directions, fit_abtt


def _anisotropic(n: int = 400, d: int = 8, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    q, _ = np.linalg.qr(rng.normal(size=(d, d)))
    scales = np.array([10.0, 6.0, 3.0, 1.0, 0.9, 0.8, 0.7, 0.6])[:d]
    return (rng.normal(size=(n, d)) * scales) @ q.T + 4.0  # dominant directions and a common mean


def test_default_d_is_one_hundredth_of_the_dimension():
    assert [default_n_directions(d) for d in (32, 384, 768, 1024)] == [1, 4, 8, 10]


def test_abtt_removes_the_mean_and_the_top_principal_directions():
    x = _anisotropic()
    a = fit_abtt(x, n_directions=2)
    y = a.transform(x).astype(np.float64)
    np.testing.assert_allclose(y.mean(axis=0), 0.0, atol=1e-5)
    # the covariance's eigen-decomposition, computed independently: the top-2 eigenvectors are removed
    evals, evecs = np.linalg.eigh(np.cov(x.T))
    top = evecs[:, ::-1][:, :2]
    np.testing.assert_allclose(y @ top, 0.0, atol=1e-4)
    # the remaining spectrum is the original one without its top 2 eigenvalues (and two zeros)
    got = np.sort(np.linalg.eigvalsh(np.cov(y.T)))[::-1]
    np.testing.assert_allclose(got[:6], evals[::-1][2:], rtol=1e-4)
    np.testing.assert_allclose(got[6:], 0.0, atol=1e-6)
    assert a.variance_share == pytest.approx(evals[::-1][:2] / evals.sum(), rel=1e-9)
    # the affine form written to the checkpoint is the same map
    np.testing.assert_allclose((x - a.mean) @ a.matrix, y, rtol=1e-5, atol=1e-5)


def test_raw_projection_is_algorithm_1_as_written():
    """Mu & Viswanath's Algorithm 1: ṽ = v − μ; u_i = PCA of {ṽ}; v' = ṽ − Σ_i (u_iᵀ v) u_i (the raw v in the
    projection), i.e. the centred variant shifted by the constant −μ U Uᵀ."""
    x = _anisotropic()
    mu = x.mean(axis=0)
    evecs = np.linalg.eigh(np.cov(x.T))[1][:, ::-1][:, :2]
    expected = (x - mu) - (x @ evecs) @ evecs.T
    raw, centred = fit_abtt(x, 2, projection="raw"), fit_abtt(x, 2)
    np.testing.assert_allclose(raw.transform(x), expected, rtol=1e-5, atol=1e-5)
    shift = raw.transform(x).astype(np.float64) - centred.transform(x)
    np.testing.assert_allclose(shift, np.broadcast_to(-(mu @ evecs) @ evecs.T, shift.shape), atol=1e-4)
    assert np.abs(shift).max() > 0.1 and centred.bias is None  # the variants differ here
    # the affine form with its bias is the same map
    np.testing.assert_allclose((x - raw.mean) @ raw.matrix + raw.bias, expected, rtol=1e-5, atol=1e-5)
    with pytest.raises(InputError, match="choose centred"):
        fit_abtt(x, 2, projection="uncentred")


@pytest.mark.parametrize("k, needle", [(0, "between 1 and"), (8, "between 1 and")])
def test_bad_number_of_directions_is_refused(k, needle):
    with pytest.raises(InputError, match=needle):
        fit_abtt(_anisotropic(), n_directions=k)


def test_too_few_sentences_are_refused():
    with pytest.raises(InputError, match="at least 4 sentences"):
        fit_abtt(_anisotropic(n=3), n_directions=3)


def test_abtt_checkpoint_encodes_as_the_fitted_map_in_every_loader(tmp_path, tiny_bert_dir, wiki300):
    from sentence_transformers import SentenceTransformer

    f, lines = wiki300
    out = tmp_path / "abtt"
    r = abtt_checkpoint(tiny_bert_dir, [f], out, n_directions=3, encoder_kwargs={"pooler": "avg", "device": "cpu"})
    assert (r.baseline, r.n_sentences, r.dim, r.out_dim, r.details["n_directions"]) == ("abtt", 300, 32, 32, 3)
    raw = load_encoder(tiny_bert_dir, pooler="avg", device="cpu").encode(lines)
    enc = load_encoder(out, device="cpu")
    got = enc.encode(lines)
    np.testing.assert_allclose(got, fit_abtt(raw, 3).transform(raw), rtol=1e-4, atol=1e-4)
    meta = json.loads((out / "simcse_analysis.json").read_text())
    assert meta["baseline"] == "abtt" and meta["post_transform"] == {"type": "affine", "file": ABTT_FILE}
    assert meta["abtt"]["n_directions"] == 3 and meta["abtt"]["corpus"][0]["rows"] == 300
    assert meta["abtt"]["projection"] == "centred" and "centred vector" in meta["abtt"]["method"]
    st = SentenceTransformer(str(out), device="cpu").encode(lines[:10], convert_to_numpy=True)
    np.testing.assert_allclose(st, got[:10], rtol=1e-3, atol=1e-3)
    # the raw variant: a bias after the projection, in the checkpoint and in its sentence-transformers Dense layer
    r = abtt_checkpoint(tiny_bert_dir, [f], tmp_path / "raw", n_directions=3, projection="raw",
                        encoder_kwargs={"pooler": "avg", "device": "cpu"})
    assert r.details["projection"] == "raw"
    got = load_encoder(tmp_path / "raw", device="cpu").encode(lines)
    np.testing.assert_allclose(got, fit_abtt(raw, 3, projection="raw").transform(raw), rtol=1e-4, atol=1e-4)
    meta = json.loads((tmp_path / "raw" / "simcse_analysis.json").read_text())
    assert meta["post_transform"] == {"type": "affine", "file": ABTT_FILE, "bias": True}
    assert meta["abtt"]["projection"] == "raw" and "raw vector" in meta["abtt"]["method"]
    st = SentenceTransformer(str(tmp_path / "raw"), device="cpu").encode(lines[:10], convert_to_numpy=True)
    np.testing.assert_allclose(st, got[:10], rtol=1e-3, atol=1e-3)


def test_abtt_command_writes_the_checkpoint_and_refuses_bad_input(tmp_path, tiny_bert_dir, wiki300, run_cli):
    f, _ = wiki300
    code, out, err = run_cli("abtt", tiny_bert_dir, "--corpus", f, "--out", tmp_path / "a", "--pooler", "avg",
                             "--device", "cpu", "--json", tmp_path / "a.json")
    assert code == 0, err
    assert "removed the mean and 1 of 32 directions" in out  # default D = round(32 / 100) → 1
    assert "projected from the centred vector" in out
    assert json.loads((tmp_path / "a.json").read_text())["details"]["n_directions"] == 1
    code, out, err = run_cli("abtt", tiny_bert_dir, "--corpus", f, "--out", tmp_path / "r", "--pooler", "avg",
                             "--device", "cpu", "--projection", "raw")
    assert code == 0, err
    assert "projected from the raw vector" in out
    assert json.loads((tmp_path / "r" / "simcse_analysis.json").read_text())["abtt"]["projection"] == "raw"
    code, _, err = run_cli("abtt", tiny_bert_dir, "--corpus", f, "--out", tmp_path / "b", "--n-directions", "32")
    assert code == 2 and err.startswith("error: --n-directions 32") and not (tmp_path / "b").exists()
    code, _, err = run_cli("abtt", tmp_path / "a", "--corpus", f, "--out", tmp_path / "c")
    assert code == 2 and "already applies a post-transform" in err


def test_abtt_json_dash_is_standard_output_and_a_device_is_written_through(tmp_path, tiny_bert_dir, wiki300, run_cli):
    """``--json`` goes through the one output writer: ``-`` is standard output (the summary moves to stderr) and
    ``/dev/full`` is a full disk, never replaced by a regular file."""
    import stat

    f, _ = wiki300
    code, out, err = run_cli("abtt", tiny_bert_dir, "--corpus", f, "--out", tmp_path / "a", "--pooler", "avg",
                             "--device", "cpu", "--json", "-")
    assert code == 0, err
    assert json.loads(out)["details"]["n_directions"] == 1 and "removed the mean" in err
    assert not (tmp_path / "-").exists()
    code, _, err = run_cli("abtt", tiny_bert_dir, "--corpus", f, "--out", tmp_path / "b", "--pooler", "avg",
                           "--device", "cpu", "--json", "/dev/full")
    assert code == 2 and err.strip().splitlines()[-1].startswith("error: cannot write /dev/full: No space left")
    assert stat.S_ISCHR(os.stat("/dev/full").st_mode)
