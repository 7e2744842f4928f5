"""BERT-flow (Li et al. 2020): the Glow-style flow's likelihood, the maximum-likelihood fit, the checkpoint whose
encodings are the latent, the target variant, and the ``flow`` command."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from simcse_analysis.encoder import load_encoder
from simcse_analysis.errors import InputError
from simcse_analysis.metrics.isoscore import isoscore
from simcse_analysis.post_transforms import build_glow_flow
from trainers.flow import FLOW_FILE, FlowSettings, fit_flow, flow_checkpoint, sts_sentences


def _skewed(n: int = 3000, d: int = 8, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    q, _ = np.linalg.qr(rng.normal(size=(d, d)))
    return ((rng.normal(size=(n, d)) ** 3) * np.linspace(3, 0.2, d)) @ q.T + 2.0


def test_flow_log_likelihood_is_the_change_of_variables_formula():
    """−forward_kld = mean log N(g⁻¹(x); 0, I) + log|det ∂g⁻¹/∂x|, the Jacobian taken by autograd."""
    flow = build_glow_flow(4, blocks=2, hidden=8, seed=3).double()
    for p in flow.parameters():  # move away from the identity initialisation
        p.data += 0.1 * torch.randn(p.shape, generator=torch.Generator().manual_seed(1), dtype=p.dtype)
    x = torch.from_numpy(_skewed(5, 4)).double()
    with torch.no_grad():
        flow.inverse(x)  # ActNorm's data-dependent initialisation, then a fixed map
        got = -float(flow.forward_kld(x))
    expected = []
    for xi in x:
        jac = torch.autograd.functional.jacobian(lambda v: flow.inverse(v[None])[0], xi)
        u = flow.inverse(xi[None])[0].detach()
        log_n = float(-0.5 * (u ** 2).sum() - 2 * np.log(2 * np.pi))
        expected.append(log_n + float(torch.linalg.slogdet(jac)[1]))
    assert got == pytest.approx(np.mean(expected), rel=1e-6)
    with torch.no_grad():  # and the flow is invertible
        torch.testing.assert_close(flow.forward(flow.inverse(x)), x)


def test_maximum_likelihood_fit_makes_skewed_data_more_gaussian():
    from scipy import stats

    x = _skewed()
    f = fit_flow(x, FlowSettings(blocks=2, epochs=20, batch_size=256, learning_rate=1e-3))
    assert f.nll_end < f.nll_start - 0.2  # nats per dimension
    z = f.transform(x)
    assert np.abs(z.mean(axis=0)).max() < 0.2
    assert np.abs(stats.kurtosis(z, axis=0)).mean() < 0.5 * np.abs(stats.kurtosis(x, axis=0)).mean()
    assert isoscore(z) > isoscore(x)


def test_a_fit_that_does_not_improve_the_likelihood_is_an_error():
    with pytest.raises(InputError, match="lower --lr"):
        fit_flow(_skewed(n=500), FlowSettings(blocks=2, epochs=2, batch_size=64, learning_rate=5.0))


def _constant_dims(n: int = 3000, d: int = 32, const: tuple[int, ...] = (5, 17, 30), seed: int = 0) -> np.ndarray:
    """Heavy-tailed, correlated embeddings whose coordinates ``const`` are constant (as all-MiniLM-L6-v2's
    mean-pooled dimensions 127, 223 and 319: a final LayerNorm with γ_i = 0 there)."""
    rng = np.random.default_rng(seed)
    q, _ = np.linalg.qr(rng.normal(size=(d, d)))
    x = (rng.standard_t(5, size=(n, d)) * np.linspace(0.3, 0.02, d)) @ q.T + rng.normal(size=d) * 0.1
    x[:, list(const)] = rng.normal(size=len(const)) * 0.05
    return x.astype(np.float32)


def test_default_settings_fit_a_few_thousand_embeddings_with_constant_dimensions():
    """The constant coordinates are projected out before the fit (without that, ActNorm scales them by ~1e6 and
    the default fit makes the likelihood worse: NLL −1.28 → 72.4 here), the NLL is over the other 29, and the
    latent is reported against N(0, I) rather than assumed to be one."""
    from simcse_analysis.metrics.normality import normality_fit

    x = _constant_dims()
    f = fit_flow(x)  # defaults: 4 blocks, 1 epoch = 12 steps of 256, lr 1e-4
    assert (f.input_dim, f.dim, f.null_dims, f.constant_dims) == (32, 29, 3, [5, 17, 30])
    assert f.nll_end < f.nll_start
    keep = [j for j in range(32) if j not in (5, 17, 30)]
    # the projection keeps the other coordinates as they are (centred), so the NLL is the flow's on them
    y = f.projection.apply(x)
    np.testing.assert_allclose(y, x[:, keep] - x[:, keep].mean(axis=0), atol=1e-5)
    with torch.no_grad():
        assert f.nll_end == pytest.approx(float(f.flow.forward_kld(torch.from_numpy(y))) / 29, rel=1e-5)
    z = f.transform(x)
    assert z.shape == (3000, 29) and f.latent == normality_fit(z)
    assert f.latent.ks_distance > 2 * f.latent.ks_reference  # 12 steps do not make a standard normal


def test_spanned_basis_is_orthonormal_spans_the_data_and_drops_constant_coordinates():
    from trainers.flow import spanned_basis
    from trainers.postprocess import principal_axes

    rng = np.random.default_rng(1)
    x = rng.normal(size=(500, 6)) * [3, 2, 1, 1, 0.5, 0.1]
    hyper = x - x.mean(axis=1, keepdims=True) + 2.0  # every row in the hyperplane Σ_i x_i = 12 (a LayerNorm's)
    q = spanned_basis(principal_axes(hyper, "test"))
    assert q.shape == (6, 5)
    np.testing.assert_allclose(q.T @ q, np.eye(5), atol=1e-10)
    np.testing.assert_allclose(q.T @ np.ones(6), 0.0, atol=1e-10)  # orthogonal to the null direction
    c = hyper - hyper.mean(axis=0)
    np.testing.assert_allclose((c @ q) @ q.T, c, atol=1e-10)  # loses nothing the data spans
    const = x.copy()
    const[:, [1, 4]] = [0.7, -2.0]
    q = spanned_basis(principal_axes(const, "test"))
    np.testing.assert_allclose(q, np.eye(6)[:, [0, 2, 3, 5]], atol=1e-12)
    assert spanned_basis(principal_axes(x, "test")) is None  # full rank: nothing projected


def test_too_few_sentences_are_refused():
    with pytest.raises(InputError, match="at least 64 sentences"):
        fit_flow(_skewed(n=20))


def test_flow_checkpoint_encodes_the_latent_of_the_fitted_flow(tmp_path, tiny_bert_dir, wiki300):
    f, lines = wiki300
    out = tmp_path / "flow"
    settings = FlowSettings(blocks=2, epochs=2, batch_size=64)
    r = flow_checkpoint(tiny_bert_dir, [f], out, settings=settings, encoder_kwargs={"pooler": "avg", "device": "cpu"})
    # the final LayerNorm (γ = 1) puts every mean-pooled vector in a hyperplane: 31 of 32 directions are modelled
    assert (r.baseline, r.n_sentences, r.dim, r.out_dim) == ("flow", 300, 32, 31)
    assert (r.details["null_dims"], r.details["nll_dims"], r.details["constant_dims"]) == (1, 31, [])
    assert r.details["variant"] == "corpus" and r.details["nll_per_dim_end"] < r.details["nll_per_dim_start"]
    raw = load_encoder(tiny_bert_dir, pooler="avg", device="cpu").encode(lines)
    enc = load_encoder(out, device="cpu")
    got = enc.encode(lines)
    assert got.shape == (300, 31) and enc.dim == 31
    # the same fit (same seed, same embeddings) reproduces the checkpoint's map, projection included
    again = fit_flow(raw, settings)
    np.testing.assert_allclose(got, again.transform(raw), rtol=1e-4, atol=1e-4)
    # a vector moved along the null direction (off the corpus's hyperplane) encodes as its projection does
    null = np.ones(32, dtype=np.float32) / np.sqrt(32)
    np.testing.assert_allclose(again.transform(raw[:5] + 0.3 * null), again.transform(raw[:5]), rtol=1e-4, atol=1e-4)
    assert r.details["latent"] == again.latent.to_dict()
    assert isoscore(got) > isoscore(raw)
    assert enc.describe()["post_transform"] == "flow" and enc.fingerprint != load_encoder(tiny_bert_dir).fingerprint
    meta = json.loads((out / "simcse_analysis.json").read_text())
    assert meta["baseline"] == "flow" and meta["post_transform"]["type"] == "flow"
    assert meta["post_transform"]["file"] == FLOW_FILE and meta["flow"]["corpus"][0]["rows"] == 300
    assert meta["post_transform"]["projection"] is True and meta["post_transform"]["input_dim"] == 32
    assert meta["flow"]["latent"]["dim"] == 31


def test_target_variant_fits_on_the_sts_test_sentences_and_says_so(tmp_path, tiny_bert_dir, small_data_dir, wiki300):
    r = flow_checkpoint(tiny_bert_dir, [], tmp_path / "target", target=True, data_dir=small_data_dir,
                        settings=FlowSettings(blocks=1, epochs=1, batch_size=64),
                        encoder_kwargs={"pooler": "avg", "device": "cpu"})
    assert r.n_sentences == len(sts_sentences(small_data_dir)) and r.details["variant"] == "target"
    meta = json.loads((tmp_path / "target" / "simcse_analysis.json").read_text())
    assert "target variant" in meta["flow"]["method"]
    with pytest.raises(InputError, match="drop --corpus"):
        flow_checkpoint(tiny_bert_dir, [wiki300[0]], tmp_path / "both", target=True)


def test_flow_command_writes_the_checkpoint_and_refuses_a_tiny_corpus(tmp_path, tiny_bert_dir, wiki300, run_cli):
    f, lines = wiki300
    code, out, err = run_cli("flow", tiny_bert_dir, "--corpus", f, "--out", tmp_path / "a", "--pooler", "avg",
                             "--blocks", "1", "--epochs", "1", "--device", "cpu")
    assert code == 0, err
    assert "BERT-flow" in out and (tmp_path / "a" / FLOW_FILE).is_file()
    assert "projected out 1 of 32 directions the corpus does not span; the flow models the other 31" in out
    assert "latent on the fitting corpus: mean |z̄|" in out and "for a standard-normal sample of this size" in out
    assert "Gaussian latent" not in out and "standard normal" not in out.replace("standard-normal sample", "")
    small = tmp_path / "ten.txt"
    small.write_text("\n".join(lines[:10]) + "\n", encoding="utf-8")
    code, _, err = run_cli("flow", tiny_bert_dir, "--corpus", small, "--out", tmp_path / "b")
    assert code == 2 and err.startswith("error: flow needs at least 64 sentences") and not (tmp_path / "b").exists()
