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


def test_too_few_sentences_are_refused():
    with pytest.raises(InputError, match="at least 64 sentences"):
        fit_flow(_skewed(n=20))


def test_flow_checkpoint_encodes_the_latent_of_the_fitted_flow(tmp_path, tiny_bert_dir, wiki300):
    f, lines = wiki300
    out = tmp_path / "flow"
    settings = FlowSettings(blocks=2, epochs=2, batch_size=64)
    r = flow_checkpoint(tiny_bert_dir, [f], out, settings=settings, encoder_kwargs={"pooler": "avg", "device": "cpu"})
    assert (r.baseline, r.n_sentences, r.dim, r.out_dim) == ("flow", 300, 32, 32)
    assert r.details["variant"] == "corpus" and r.details["nll_per_dim_end"] < r.details["nll_per_dim_start"]
    raw = load_encoder(tiny_bert_dir, pooler="avg", device="cpu").encode(lines)
    enc = load_encoder(out, device="cpu")
    got = enc.encode(lines)
    # the same fit (same seed, same embeddings) reproduces the checkpoint's map
    again = fit_flow(raw, settings)
    np.testing.assert_allclose(got, again.transform(raw), rtol=1e-4, atol=1e-4)
    assert isoscore(got) > isoscore(raw)
    assert enc.describe()["post_transform"] == "flow" and enc.fingerprint != load_encoder(tiny_bert_dir).fingerprint
    meta = json.loads((out / "simcse_analysis.json").read_text())
    assert meta["baseline"] == "flow" and meta["post_transform"]["type"] == "flow"
    assert meta["post_transform"]["file"] == FLOW_FILE and meta["flow"]["corpus"][0]["rows"] == 300


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
    small = tmp_path / "ten.txt"
    small.write_text("\n".join(lines[:10]) + "\n", encoding="utf-8")
    code, _, err = run_cli("flow", tiny_bert_dir, "--corpus", small, "--out", tmp_path / "b")
    assert code == 2 and err.startswith("error: flow needs at least 64 sentences") and not (tmp_path / "b").exists()
