"""The token-analysis protocol (streamed, one forward pass) against a direct computation, and the CLI."""

from __future__ import annotations

import json

import numpy as np
import pytest

from simcse_analysis.metrics.rogue import cosine_contributions
from simcse_analysis.metrics.tokens import baseline_anisotropy, intra_sentence_similarity, self_similarity
from simcse_analysis.token_analysis import TokenReport, TokenSettings, analyze_tokens, build_units

SENTENCES = [
    "the cat sat on the mat .",
    "a dog sat on a log .",
    "the hyperparameterization of the model failed .",
    "the cat and the dog are friends .",
    "on the mat the cat slept .",
    "a log is on the mat .",
    "the dog saw the cat on a log .",
    "the model is unbelievably hyperparameterized !",
]


@pytest.fixture(scope="module")
def tiny_encoder(tiny_bert_dir):
    from simcse_analysis.encoder import load_encoder

    return load_encoder(tiny_bert_dir, pooler="avg", device="cpu", use_cache=False)


def _direct_units(enc, sentences, merge=True):
    """Every unit vector per layer, computed sentence by sentence without the streaming code."""
    import torch

    layers, ctx, keys = None, [], []
    with torch.inference_mode():
        for s_i, s in enumerate(sentences):
            b = enc.tokenizer(s, return_tensors="pt")
            hs = enc.model(**b, output_hidden_states=True).hidden_states
            h = torch.stack(hs)[:, 0].double().numpy()  # (L+1, T, d)
            word_ids = b.word_ids(0)
            groups: dict[int, list[int]] = {}
            for p, w in enumerate(word_ids):
                if w is not None:
                    groups.setdefault(w if merge else p, []).append(p)
            vecs = [h[:, g].mean(axis=1) for g in groups.values()]
            ids = b["input_ids"][0].tolist()
            keys += [tuple(ids[p] for p in g) for g in groups.values()]
            ctx += [s_i] * len(vecs)
            stack = np.stack(vecs, axis=1)
            layers = stack if layers is None else np.concatenate([layers, stack], axis=1)
    return layers, np.asarray(ctx), keys


def _qualifying(enc, keys, min_count=3):
    """Occurrence indices of each type seen ``min_count`` times, punctuation (here "." and "!") excluded."""
    types: dict[tuple, list[int]] = {}
    for i, k in enumerate(keys):
        types.setdefault(k, []).append(i)
    return [ix for k, ix in types.items()
            if len(ix) >= min_count and enc.tokenizer.decode(list(k)).strip() not in (".", "!")]


def test_word_pieces_of_one_word_form_one_unit_and_special_tokens_none(tiny_encoder):
    tok = tiny_encoder.tokenizer
    u = build_units(tok, ["the hyperparameterization ."], 128, "word")
    pieces = tok.tokenize("the hyperparameterization .")
    assert len(pieces) > 3  # the long word is several pieces
    assert u.unit_type[0].size == 3  # "the", the long word, "."
    assert u.positions[0].tolist() == list(range(1, len(pieces) + 1))  # [CLS] (0) and [SEP] excluded
    assert u.unit_of_position[0].tolist() == [0] + [1] * (len(pieces) - 2) + [2]
    p = build_units(tok, ["the hyperparameterization ."], 128, "piece")
    assert p.unit_type[0].size == len(pieces)


def test_streamed_measures_equal_a_direct_computation(tiny_encoder):
    settings = TokenSettings(min_count=3, mev_cap=100)
    res = analyze_tokens(tiny_encoder, SENTENCES, settings, batch_size=3)
    layers, ctx, keys = _direct_units(tiny_encoder, SENTENCES)
    assert res.n_units == layers.shape[1]
    assert len(res.layers) == tiny_encoder.model.config.num_hidden_layers + 1
    qual = _qualifying(tiny_encoder, keys)
    assert res.n_types == len(qual) > 3
    for lay, got in zip(layers, res.layers):
        base = baseline_anisotropy(lay, ctx)
        assert got.baseline == pytest.approx(base, abs=1e-6)
        assert got.self_similarity == pytest.approx(np.mean([self_similarity(lay[ix]) for ix in qual]), abs=1e-6)
        intra = np.mean([intra_sentence_similarity(lay[ctx == s]) for s in range(len(SENTENCES))])
        assert got.intra_sentence == pytest.approx(intra, abs=1e-6)
        assert got.intra_sentence_adjusted == pytest.approx(intra - base, abs=1e-6)
        assert got.mean_norm == pytest.approx(np.linalg.norm(lay, axis=1).mean(), rel=1e-5)
        assert sum(got.token_rogue.contributions) == pytest.approx(base, abs=1e-6)


def test_sentence_level_rogue_dimensions_are_those_of_the_pooled_layers(tiny_encoder):
    res = analyze_tokens(tiny_encoder, SENTENCES, TokenSettings(min_count=3), batch_size=4)
    stack = tiny_encoder.encode_layers(SENTENCES, pooler="avg")
    for lay, got in zip(stack, res.layers):
        np.testing.assert_allclose(got.sentence_rogue.contributions, cosine_contributions(lay), atol=1e-6)


def test_results_do_not_depend_on_the_batch_size(tiny_encoder):
    a = analyze_tokens(tiny_encoder, SENTENCES, TokenSettings(min_count=3), batch_size=2).to_dict()
    b = analyze_tokens(tiny_encoder, SENTENCES, TokenSettings(min_count=3), batch_size=64).to_dict()
    for la, lb in zip(a["layers"], b["layers"]):
        for key in ("baseline", "self_similarity", "intra_sentence", "mev", "mev_centered"):
            assert la[key] == pytest.approx(lb[key], abs=1e-6)


def test_mev_with_every_occurrence_stored_matches_the_direct_computation(tiny_encoder):
    from simcse_analysis.metrics.tokens import maximum_explainable_variance

    res = analyze_tokens(tiny_encoder, SENTENCES, TokenSettings(min_count=3, mev_cap=1000), batch_size=5)
    layers, _, keys = _direct_units(tiny_encoder, SENTENCES)
    qual = _qualifying(tiny_encoder, keys)
    for lay, got in zip(layers, res.layers):
        assert got.mev == pytest.approx(np.mean([maximum_explainable_variance(lay[ix]) for ix in qual]), abs=1e-5)


def test_piece_units_count_every_non_special_token(tiny_encoder):
    res = analyze_tokens(tiny_encoder, SENTENCES, TokenSettings(units="piece", min_count=3), batch_size=8)
    n = sum(len(tiny_encoder.tokenizer.tokenize(s)) for s in SENTENCES)
    assert res.n_units == n


# ------------------------------------------------------------------------------------ CLI
@pytest.fixture()
def corpus(tmp_path):
    p = tmp_path / "corpus.txt"
    p.write_text("\n".join(SENTENCES * 2) + "\n", encoding="utf-8")
    return p


def test_tokens_command_writes_json_and_a_token_level_page(tmp_path, tiny_bert_dir, corpus, run_cli):
    out, js = tmp_path / "t.html", tmp_path / "t.json"
    code, stdout, err = run_cli("tokens", tiny_bert_dir, "--corpus", corpus, "--json", js, "--out", out,
                                "--device", "cpu", "--no-cache")
    assert code == 0, err
    assert "baseline" in stdout and "token-embedding matrix" in stdout
    doc = json.loads(js.read_text())
    assert doc["schema"] == "simcse-analysis/token-analysis" and doc["data"]["n_sentences"] == 2 * len(SENTENCES)
    rep = TokenReport.from_dict(doc)
    assert len(rep.results[0].layers) == 4
    assert rep.results[0].embedding_matrix["vocab_size"] == 30522
    page = out.read_text()
    assert "Token level" in page and "fig-token-layers" in page and "fig-token-frequency" in page


def test_corpus_without_a_type_reaching_the_threshold_exits_2(tmp_path, tiny_bert_dir, run_cli):
    p = tmp_path / "rare.txt"
    p.write_text("alpha beta gamma\ndelta epsilon zeta\n", encoding="utf-8")
    js = tmp_path / "t.json"
    code, _, err = run_cli("tokens", tiny_bert_dir, "--corpus", p, "--json", js, "--device", "cpu")
    assert code == 2
    assert err.count("\n") == 1 and err.startswith("error: no word type occurs at least 5 times")
    assert not js.exists()


@pytest.mark.parametrize("how", ["model", "option"])
def test_precomputed_vectors_have_no_tokens_exit_2(tmp_path, tiny_bert_dir, run_cli, how):
    x = tmp_path / "emb.npy"
    np.save(x, np.zeros((3, 4), dtype=np.float32))
    args = [x] if how == "model" else [tiny_bert_dir, "--embeddings", x]
    code, _, err = run_cli("tokens", *args, "--device", "cpu")
    assert code == 2
    assert err.count("\n") == 1 and "precomputed" in err and "checkpoint" in err


def test_bad_units_exit_2(tiny_bert_dir, corpus, run_cli):
    code, _, err = run_cli("tokens", tiny_bert_dir, "--corpus", corpus, "--units", "letters")
    assert code == 2 and err.startswith("error: Invalid value for '--units'") and "'word', 'piece'" in err


def test_report_adds_the_token_level_section_from_a_saved_document(tmp_path, tiny_encoder, report_record, run_cli):
    from reports.collect import save_record
    from simcse_analysis.token_analysis import TokenCorpus, run_token_analysis

    doc = run_token_analysis([tiny_encoder], TokenCorpus(SENTENCES * 2, "test", []), TokenSettings(min_count=3))
    tj, rec = tmp_path / "tokens.json", tmp_path / "record.json"
    doc.save(tj)
    save_record(report_record, rec)
    out, rec2 = tmp_path / "page.html", tmp_path / "record2.json"
    code, _, err = run_cli("report", "--from-json", rec, "--tokens-from", tj, "--out", out, "--json", rec2)
    assert code == 0, err
    page = out.read_text()
    for anchor in ("token-layers", "token-words", "token-rogue", "token-spectrum", "token-frequency"):
        assert f'href="#{anchor}"' in page and f'id="fig-{anchor}"' in page
    again = tmp_path / "again.html"
    code, _, err = run_cli("report", "--from-json", rec2, "--out", again)  # the record carries the tokens
    assert code == 0, err
    assert 'id="fig-token-layers"' in again.read_text()
    code, _, err = run_cli("report", "--from-json", rec, "--tokens-from", tmp_path / "missing.json", "--out", out)
    assert code == 2 and err.startswith("error:") and "missing.json" in err


def test_report_token_request_analyses_fresh_models_and_appends_them_to_a_saved_document(
        tmp_path, tiny_bert_dir, small_data_dir):
    from reports.result import TokenRequest
    from simcse_analysis.errors import InputError

    kwargs = {"device": "cpu", "use_cache": False}

    def document(models, n_sentences, saved):
        request = TokenRequest.prepare([(m, None) for m in models], n_sentences, 0, saved, small_data_dir)
        return request.run(encoder_kwargs=kwargs)

    doc = document([f"{tiny_bert_dir}@cls_before_pooler"], None, None)
    assert doc["results"][0]["model"]["pooler"] == "cls_before_pooler"
    assert doc["results"][0]["layer_pooler"] == "cls_before_pooler"
    saved = tmp_path / "t.json"
    saved.write_text(json.dumps(doc))
    both = document([str(tiny_bert_dir)], None, saved)
    assert [r["model"]["pooler"] for r in both["results"]] == ["cls_before_pooler", "cls"]
    sampled = document([str(tiny_bert_dir)], 30, saved)  # saved settings win
    assert [r["n_sentences"] for r in sampled["results"]] == [doc["data"]["n_sentences"]] * 2
    other = tmp_path / "other.json"
    other.write_text(json.dumps({**doc, "protocol": "something else"}))
    with pytest.raises(InputError, match="another protocol"):  # refused before any model is analysed
        TokenRequest.prepare([(str(tiny_bert_dir), None)], None, 0, other, small_data_dir)