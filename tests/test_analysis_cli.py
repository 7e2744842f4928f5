"""`simcse-analyze align-uniform | spectrum | anisotropy`: protocol, figures, JSON/HTML and bad input."""

from __future__ import annotations

import json
from html import escape as html_escape
from pathlib import Path

import numpy as np
import pytest
import torch

from simcse_analysis.analysis import AnalysisReport
from simcse_analysis.sts_data import load_sts


def one_line_error(err: str) -> bool:
    return err.startswith("error: ") and err.strip().count("\n") == 0


def _stsb(data_dir: Path, splits=("train", "dev", "test")):
    """Pairs, scores and distinct sentences, read independently of the analysis module."""
    s1, s2, scores = [], [], []
    for split in splits:
        sub = load_sts("STSBenchmark", data_dir, split=split)[0]
        s1 += sub.sentences1
        s2 += sub.sentences2
        scores += list(sub.scores)
    distinct = list(dict.fromkeys(x for pair in zip(s1, s2) for x in pair))
    return s1, s2, np.array(scores), distinct


@pytest.fixture()
def precomputed(tmp_path, small_data_dir):
    """Random 8-d embeddings for the protocol's sentences, written as .npy + sentence list."""
    *_, sentences = _stsb(small_data_dir)
    emb = np.random.default_rng(0).standard_normal((len(sentences), 8)).astype(np.float32)
    emb[:, 0] += 1.0
    npy, txt = tmp_path / "vectors.npy", tmp_path / "sentences.txt"
    np.save(npy, emb)
    txt.write_text("".join(s + "\n" for s in sentences), encoding="utf-8")
    return npy, txt, emb, sentences


def test_export_sentences_writes_every_distinct_sentence_once(run_cli, small_data_dir, tmp_path):
    out = tmp_path / "s.txt"
    code, stdout, err = run_cli("align-uniform", "--export-sentences", out, "--data-dir", small_data_dir)
    assert code == 0, err
    lines = out.read_text(encoding="utf-8").splitlines()
    assert lines == _stsb(small_data_dir)[3]
    assert len(set(lines)) == len(lines) and f"wrote {len(lines)} sentences" in stdout


def test_align_uniform_on_precomputed_embeddings_follows_the_protocol(run_cli, small_data_dir, precomputed, tmp_path):
    npy, txt, emb, sentences = precomputed
    js = tmp_path / "au.json"
    code, out, err = run_cli("align-uniform", "--embeddings", npy, "--sentences", txt, "--data-dir", small_data_dir,
                             "--json", js)
    assert code == 0, err
    s1, s2, scores, _ = _stsb(small_data_dir)
    row = {s: i for i, s in enumerate(sentences)}
    u = torch.nn.functional.normalize(torch.from_numpy(emb.astype(np.float64)), dim=1)
    pos = scores > 4
    a = u[[row[s] for s, p in zip(s1, pos) if p]]
    b = u[[row[s] for s, p in zip(s2, pos) if p]]
    expected_align = (a - b).norm(dim=1).pow(2).mean().item()
    expected_uniform = torch.pdist(u).pow(2).mul(-2).exp().mean().log().item()
    doc = json.loads(js.read_text())
    (res,) = doc["results"]
    assert res["alignment"] == pytest.approx(expected_align, rel=1e-6)
    assert res["uniformity"] == pytest.approx(expected_uniform, rel=1e-6)
    assert res["n_positive_pairs"] == int(pos.sum()) and res["n_sentences"] == len(sentences)
    assert doc["settings"]["splits"] == ["train", "dev", "test"] and doc["settings"]["positive_threshold"] == 4.0
    assert f"p_pos = {int(pos.sum())} of {len(scores)} pairs with gold score > 4" in out
    assert "protocol: STS-B train+dev+test (senteval)" in out
    assert f"{expected_align:.4f}" in out and f"{expected_uniform:.4f}" in out


def test_threshold_and_splits_change_the_positive_pairs(run_cli, small_data_dir, precomputed, tmp_path):
    npy, txt, *_ = precomputed
    js = tmp_path / "au.json"
    code, out, err = run_cli("align-uniform", "--embeddings", npy, "--sentences", txt, "--data-dir", small_data_dir,
                             "--splits", "dev", "--threshold", "3.5", "--json", js)
    assert code == 0, err
    _, _, scores, distinct = _stsb(small_data_dir, ("dev",))
    (res,) = json.loads(js.read_text())["results"]
    assert res["n_positive_pairs"] == int((scores > 3.5).sum()) and res["n_sentences"] == len(distinct)
    assert "STS-B dev (senteval)" in out and "gold score > 3.5" in out


def test_precomputed_rows_are_matched_by_sentence_not_position(run_cli, small_data_dir, precomputed, tmp_path):
    npy, txt, emb, sentences = precomputed
    perm = np.random.default_rng(1).permutation(len(sentences))
    extra = ["a sentence the protocol never uses"]
    npy2, txt2 = tmp_path / "shuffled.npy", tmp_path / "shuffled.txt"
    np.save(npy2, np.vstack([emb[perm], np.ones((1, emb.shape[1]), np.float32)]))
    txt2.write_text("".join(sentences[i] + "\n" for i in perm) + extra[0] + "\n", encoding="utf-8")
    js = tmp_path / "both.json"
    code, _, err = run_cli("spectrum", "--embeddings", npy, "--embeddings", npy2, "--sentences", txt,
                           "--sentences", txt2, "--data-dir", small_data_dir, "--json", js)
    assert code == 0, err
    a, b = json.loads(js.read_text())["results"]
    assert a["model"]["model"] == "vectors" and b["model"]["model"] == "shuffled"
    assert a["centered"]["singular_values"] == pytest.approx(b["centered"]["singular_values"], rel=1e-9)


def test_json_and_html_outputs_round_trip(run_cli, small_data_dir, precomputed, tmp_path):
    npy, txt, *_ = precomputed
    for cmd in ("align-uniform", "spectrum", "anisotropy"):
        js, page = tmp_path / f"{cmd}.json", tmp_path / f"{cmd}.html"
        code, out, err = run_cli(cmd, "--embeddings", npy, "--sentences", txt, "--data-dir", small_data_dir,
                                 "--json", js, "--out", page)
        assert code == 0, err
        report = AnalysisReport.load(js)
        assert AnalysisReport.from_dict(json.loads(report.to_json())) == report
        assert report.protocol in out and f"wrote {page}" in out
        html = page.read_text(encoding="utf-8")
        from reports.page import unpack_plotlyjs

        assert unpack_plotlyjs(html).count("plotly.js v") == 1  # the library is embedded (compressed), once
        assert html.count('id="plotly-js-gz"') == 1 and "cdn.plot.ly" not in html  # and not fetched from a CDN
        assert html_escape(report.protocol) in html and "vectors" in html
        main = html[html.index("<main>"):]
        assert main.index('id="summary"') < main.index('id="numbers"') < main.index('id="provenance"')


def test_anisotropy_reports_bins_and_summary_of_precomputed_vectors(run_cli, small_data_dir, precomputed, tmp_path):
    from simcse_analysis.metrics import isoscore, mean_cosine

    npy, txt, emb, _sentences = precomputed
    js = tmp_path / "an.json"
    code, out, err = run_cli("anisotropy", "--embeddings", npy, "--sentences", txt, "--data-dir", small_data_dir,
                             "--pairs", "500", "--seed", "3", "--json", js)
    assert code == 0, err
    (res,) = json.loads(js.read_text())["results"]
    s = res["summary"]
    assert s["mean_cosine_all_pairs"] == pytest.approx(mean_cosine(emb), rel=1e-9)
    assert s["isoscore"] == pytest.approx(isoscore(emb), rel=1e-9)
    assert s["n_pairs"] == 500 and s["seed"] == 3
    _, _, scores, _ = _stsb(small_data_dir)
    assert [b["n"] for b in res["score_bins"]] == [int(((scores >= lo) & ((scores < lo + 1) | (lo == 4) & (scores <= 5))).sum())
                                                   for lo in range(5)]
    assert res["layers"] is None  # no layers for precomputed vectors
    assert "cosine of STS-B pairs by gold score" in out


def test_encoder_path_encodes_once_and_reports_every_layer(run_cli, small_data_dir, tiny_bert_dir, tmp_path,
                                                           monkeypatch):
    from simcse_analysis.encoder import load_encoder
    from simcse_analysis.metrics import alignment, uniformity

    cache = tmp_path / "cache"
    monkeypatch.setenv("SIMCSE_CACHE", str(cache))
    entries = lambda: len(list(cache.rglob("*.npy")))
    au, an = tmp_path / "au.json", tmp_path / "an.json"
    base = ["--data-dir", small_data_dir, "--splits", "dev", "--pooler", "avg"]
    code, _, err = run_cli("align-uniform", tiny_bert_dir, *base, "--json", au)
    assert code == 0, err
    assert entries() == 1
    code, _, err = run_cli("spectrum", tiny_bert_dir, *base)
    assert code == 0, err
    assert entries() == 1  # same sentences, same encoder settings: served from the cache
    code, out, err = run_cli("anisotropy", tiny_bert_dir, *base, "--json", an)
    assert code == 0, err
    assert entries() == 2  # plus the per-layer stack
    res = json.loads(an.read_text())["results"][0]
    n_layers = json.loads((Path(tiny_bert_dir) / "config.json").read_text())["num_hidden_layers"]
    assert res["layer_pooler"] == "avg" and len(res["layers"]) == n_layers + 1  # embeddings + every layer
    assert "per layer (0 = embeddings)" in out

    s1, s2, scores, distinct = _stsb(small_data_dir, ("dev",))
    emb = load_encoder(tiny_bert_dir, pooler="avg", use_cache=False).encode(distinct)
    row = {s: i for i, s in enumerate(distinct)}
    pos = scores > 4
    (r,) = json.loads(au.read_text())["results"]
    assert r["model"]["pooler"] == "avg"
    assert r["alignment"] == pytest.approx(alignment(emb[[row[s] for s, p in zip(s1, pos) if p]],
                                                     emb[[row[s] for s, p in zip(s2, pos) if p]]), rel=1e-5)
    assert r["uniformity"] == pytest.approx(uniformity(emb), rel=1e-5)


@pytest.mark.slow
def test_minilm_brings_positive_pairs_closer_than_random_pairs(run_cli, small_data_dir, tmp_path):
    au, an = tmp_path / "au.json", tmp_path / "an.json"
    base = ["all-MiniLM-L6-v2", "--data-dir", small_data_dir]
    assert run_cli("align-uniform", *base, "--json", au)[0] == 0
    assert run_cli("anisotropy", *base, "--no-layers", "--json", an)[0] == 0
    (a,) = json.loads(au.read_text())["results"]
    (s,) = json.loads(an.read_text())["results"]
    random_pair_align = 2 - 2 * s["summary"]["mean_cosine_all_pairs"]  # E‖u−v‖² over all distinct pairs
    assert a["alignment"] < 0.5 * random_pair_align
    bins = [b["mean"] for b in s["score_bins"]]
    assert bins == sorted(bins)  # cosine grows with the gold score (Fig. G.1)


# ------------------------------------------------------------------------------------------ bad input
def test_mismatched_embedding_rows_and_sentence_lines_exit_2(run_cli, small_data_dir, precomputed, tmp_path):
    _npy, txt, emb, _ = precomputed
    short = tmp_path / "short.npy"
    np.save(short, emb[:-1])
    code, _out, err = run_cli("align-uniform", "--embeddings", short, "--sentences", txt, "--data-dir", small_data_dir)
    assert code == 2 and one_line_error(err)
    assert f"has {len(emb) - 1} rows" in err and f"has {len(emb)} lines" in err


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_non_finite_embeddings_exit_2(run_cli, small_data_dir, precomputed, tmp_path, bad):
    _npy, txt, emb, _ = precomputed
    broken = emb.copy()
    broken[5, 2] = bad
    path = tmp_path / "broken.npy"
    np.save(path, broken)
    code, _, err = run_cli("spectrum", "--embeddings", path, "--sentences", txt, "--data-dir", small_data_dir)
    assert code == 2 and one_line_error(err)
    assert "row 5 holds NaN or inf" in err


def test_fewer_than_two_sentences_exit_2(run_cli, small_data_dir, tmp_path):
    npy, txt = tmp_path / "one.npy", tmp_path / "one.txt"
    np.save(npy, np.ones((1, 4), np.float32))
    txt.write_text("only one\n", encoding="utf-8")
    code, _, err = run_cli("anisotropy", "--embeddings", npy, "--sentences", txt, "--data-dir", small_data_dir)
    assert code == 2 and one_line_error(err) and "at least 2 points" in err


def test_no_pair_above_threshold_exit_2(run_cli, small_data_dir, precomputed):
    npy, txt, *_ = precomputed
    code, _, err = run_cli("align-uniform", "--embeddings", npy, "--sentences", txt, "--data-dir", small_data_dir,
                           "--threshold", "5")
    assert code == 2 and one_line_error(err)
    assert "gold score > 5" in err and "lower --threshold" in err


def test_sentences_missing_from_the_list_exit_2(run_cli, small_data_dir, precomputed, tmp_path):
    _npy, _txt, emb, sentences = precomputed
    part_npy, part_txt = tmp_path / "part.npy", tmp_path / "part.txt"
    np.save(part_npy, emb[:10])
    part_txt.write_text("".join(s + "\n" for s in sentences[:10]), encoding="utf-8")
    code, _, err = run_cli("spectrum", "--embeddings", part_npy, "--sentences", part_txt, "--data-dir", small_data_dir)
    assert code == 2 and one_line_error(err)
    assert f"lacks {len(sentences) - 10} of the {len(sentences)} sentences" in err and "--export-sentences" in err


@pytest.mark.parametrize(("args", "message"), [
    ((), "nothing to analyse"),
    (("--embeddings", "x.npy"), "needs --sentences"),
    (("--splits", "validation,bogus"), "unknown split 'bogus'"),
    (("--variant", "tokenised"), "'tokenised' is not one of 'senteval', 'raw'"),
])
def test_bad_options_exit_2(run_cli, small_data_dir, args, message):
    code, _, err = run_cli("align-uniform", *args, "--data-dir", small_data_dir)
    assert code == 2 and one_line_error(err) and message in err


def test_html_page_escapes_user_text():
    from reports.analysis_page import render_analysis_page

    evil = "<img src=x onerror=alert(1)>"
    doc = {"analysis": "align_uniform", "protocol": f"proto {evil}", "settings": {"note": evil}, "data": {},
           "results": [{"model": {"model": evil, "pooler": None}, "alignment": 0.2, "uniformity": -3.0,
                        "uniformity_stderr": None, "n_positive_pairs": 3, "n_sentences": 10}]}
    page = render_analysis_page(doc)
    assert evil not in page
    assert "&lt;img src=x onerror=alert(1)&gt;" in page


def test_reports_of_the_same_protocol_merge_and_others_do_not(run_cli, small_data_dir, precomputed, tmp_path):
    from simcse_analysis.analysis import merge_reports
    from simcse_analysis.errors import InputError

    npy, txt, *_ = precomputed
    paths = [tmp_path / f"{i}.json" for i in range(3)]
    for path, extra in zip(paths, [(), (), ("--t", "1")]):
        assert run_cli("align-uniform", "--embeddings", npy, "--sentences", txt, "--data-dir", small_data_dir,
                       *extra, "--json", path)[0] == 0
    a, b, other = (AnalysisReport.load(p) for p in paths)
    merged = merge_reports([a, b])
    assert merged.results == a.results + b.results and merged.protocol == a.protocol
    with pytest.raises(InputError, match="different settings"):
        merge_reports([a, other])
