"""No number is computed from NaN, and stores are trusted only as far as they check out (issue 22).

Every vector that leaves the encoder or a store is checked finite before a metric sees it; the error names
the model (or store), the sentence and the likely cause: NaN/inf weights (the tensor), an fp16 overflow (the
sentence is finite in fp32), a post-transform file, NaN in an ``--embeddings`` file or store. Stores find
every key (keys ending in NUL bytes included), refuse a shard that no longer matches its checksum, and a
store/cache key covers the tokenizer. Weight files that would run code stay refused, with one line."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file, save_file
from test_hardening import assert_one_error

from simcse_analysis.errors import InputError


def assert_error_after_progress(code: int, err: str, *needles: str) -> None:
    """Like ``assert_one_error`` for commands that show progress on stderr first: exit code 2, no traceback,
    exactly one line starting ``error:`` (the last), holding each needle."""
    assert code == 2 and "Traceback" not in err, err
    errors = [ln[ln.index("error: "):] for ln in err.splitlines() if "error: " in ln]
    assert len(errors) == 1 and err.rstrip().endswith(errors[0]), err
    for n in needles:
        assert n in errors[0], (n, errors[0])


WORDS = ["the", "a", "an", ".", ",", "is", "are", "of", "to", "and", "in", "man", "woman", "on", "with", "dog"]


def _edit_weights(ckpt: Path, edit) -> Path:
    f = ckpt / "model.safetensors"
    tensors = load_file(str(f))
    edit(tensors)
    save_file(tensors, str(f), metadata={"format": "pt"})
    return ckpt


@pytest.fixture()
def nan_checkpoint(tiny_bert_copy) -> Path:
    """The tiny BERT with the word-embedding rows of common words set to NaN (most STS sentences hit one)."""
    from transformers import AutoTokenizer

    ids = AutoTokenizer.from_pretrained(str(tiny_bert_copy)).convert_tokens_to_ids(WORDS)

    def poison(t):
        t["embeddings.word_embeddings.weight"][ids] = float("nan")

    return _edit_weights(tiny_bert_copy, poison)


@pytest.fixture()
def loud_checkpoint(tiny_bert_copy) -> Path:
    """The tiny BERT whose last LayerNorm scales by 6e4: finite weights and finite fp32 vectors (|x| ~ 1e5),
    but beyond float16's range (65504)."""

    def scale(t):
        t["encoder.layer.2.output.LayerNorm.weight"].fill_(6e4)

    return _edit_weights(tiny_bert_copy, scale)


# ------------------------------------------------------------------ NaN / inf vectors from the encoder
def test_nan_weights_stop_eval_naming_the_tensor_and_the_sentence(run_cli, nan_checkpoint, small_data_dir, tmp_path):
    out = tmp_path / "scores.json"
    code, stdout, err = run_cli("eval", nan_checkpoint, "--tasks", "stsb", "--data-dir", small_data_dir, "--json",
                                out)
    assert_one_error(code, err, str(nan_checkpoint), "is NaN/inf", "(first: sentence",
                     "NaN/inf weights in the checkpoint", "tensor embeddings.word_embeddings.weight")
    assert stdout == "" and not out.exists()  # no score printed or written


def test_nan_vectors_are_never_cached(nan_checkpoint, tmp_path):
    from simcse_analysis.encoder import NonFiniteEmbeddingError, load_encoder

    enc = load_encoder(nan_checkpoint, pooler="avg", cache_dir=tmp_path / "cache")
    with pytest.raises(NonFiniteEmbeddingError, match="tensor embeddings.word_embeddings.weight") as e:
        enc.encode(["zebra zebra", "the man is here."])
    assert e.value.index == 1 and e.value.text == "the man is here."
    assert not list((tmp_path / "cache").rglob("*.npy"))
    np.testing.assert_equal(np.isfinite(enc.encode(["zebra zebra"])).all(), True)  # clean sentences still encode


def test_fp16_overflow_says_rerun_in_fp32(run_cli, loud_checkpoint, small_data_dir, monkeypatch):
    """fp16 is refused on the CPU (slow), so the overflow a GPU run meets is reached here by lifting that refusal."""
    from simcse_analysis import encoder

    args = ("eval", loud_checkpoint, "--tasks", "stsb", "--data-dir", small_data_dir, "--no-cache", "--pooler", "avg")
    code, _, err = run_cli(*args, "--dtype", "fp16")
    assert code == 2 and "--dtype fp16 on the CPU" in err  # the refusal, before any model loads
    monkeypatch.setattr(encoder, "check_dtype_for_device", lambda dtype, device: None)
    code, _, err = run_cli(*args, "--dtype", "fp16")
    assert_one_error(code, err, "fp16 overflow", "finite vector in fp32", "--dtype fp32")
    assert "weights" not in err
    code, out, err = run_cli(*args)  # the same checkpoint is fine in fp32
    assert code == 0, err
    assert "STSBenchmark" in out


def test_encode_fp16_refuses_values_beyond_float16_instead_of_writing_inf(run_cli, loud_checkpoint, tmp_path):
    lines = tmp_path / "lines.txt"
    lines.write_text("a first sentence\nanother one\n", encoding="utf-8")
    store = tmp_path / "store"
    code, _, err = run_cli("encode", loud_checkpoint, "--sentences", lines, "--out", store, "--fp16", "--pooler", "avg",
                           "--no-cache")
    assert_error_after_progress(code, err, "line 1 of the --sentences files", "beyond float16's range",
                                "without --fp16")
    assert not list(store.glob("shard-*.npy"))
    code, _, err = run_cli("encode", loud_checkpoint, "--sentences", lines, "--out", tmp_path / "s32", "--pooler", "avg",
                           "--no-cache")
    assert code == 0, err


def test_encode_names_the_line_of_a_nan_vector(run_cli, nan_checkpoint, tmp_path):
    lines = tmp_path / "lines.txt"
    lines.write_text("zebra\nzebra zebra\nzebra crossing\nthe man\n", encoding="utf-8")
    code, _, err = run_cli("encode", nan_checkpoint, "--sentences", lines, "--out", tmp_path / "store", "--pooler",
                           "avg", "--no-cache", "--shard-rows", "2")
    assert_error_after_progress(code, err, "'the man'", "line 4 of the --sentences files",
                                "embeddings.word_embeddings.weight")
    assert not (tmp_path / "store" / "shard-000001.npy").exists()


@pytest.mark.parametrize("command", ["whiten", "flow"])
def test_whiten_and_flow_blame_the_weights_not_variance_or_lr(run_cli, nan_checkpoint, tmp_path, command, wiki300):
    corpus, _ = wiki300
    code, _, err = run_cli(command, nan_checkpoint, "--corpus", corpus, "--out", tmp_path / "out", "--no-cache")
    assert_error_after_progress(code, err, "tensor embeddings.word_embeddings.weight")
    assert "variance" not in err and "--lr" not in err
    assert not (tmp_path / "out").exists()


def test_a_post_transform_holding_nan_is_named(tiny_bert_copy, tmp_path):
    from simcse_analysis.encoder import load_encoder

    d = 32
    save_file({"mean": torch.zeros(d), "matrix": torch.full((d, 4), float("nan"))},
              str(tiny_bert_copy / "whitening.safetensors"))
    (tiny_bert_copy / "simcse_analysis.json").write_text(json.dumps(
        {"pooler": "avg", "post_transform": {"type": "affine", "file": "whitening.safetensors"}}))
    enc = load_encoder(tiny_bert_copy, use_cache=False)
    with pytest.raises(InputError, match=r"post-transform \(affine, whitening\.safetensors\) turns finite vectors"):
        enc.encode(["a sentence", "another"])


# ------------------------------------------------------------------ NaN in --embeddings files and stores
def _protocol_store(run_cli, tmp_path, model, data, **kw) -> tuple[Path, Path]:
    sents = tmp_path / "protocol.txt"
    code, _, err = run_cli("align-uniform", "--data-dir", data, "--splits", "dev", "--export-sentences", sents)
    assert code == 0, err
    code, _, err = run_cli("encode", model, "--sentences", sents, "--out", tmp_path / "store", "--pooler", "avg",
                           "--shard-rows", "16", "--no-cache")
    assert code == 0, err
    return tmp_path / "store", sents


def _rewrite_shard(store: Path, k: int, edit, *, keep_checksum: bool) -> None:
    f = store / f"shard-{k:06d}.npy"
    arr = np.load(f)
    edit(arr)
    np.save(f, arr)
    if keep_checksum:  # as if the NaN had been written by the encoder: the checksum matches
        f.with_suffix(".sha256").write_text(hashlib.sha256(f.read_bytes()).hexdigest())


def test_nan_row_in_a_store_names_the_store_row_and_line_not_x(run_cli, tmp_path, tiny_bert_dir, small_data_dir):
    store, _ = _protocol_store(run_cli, tmp_path, tiny_bert_dir, small_data_dir)
    _rewrite_shard(store, 1, lambda a: a.__setitem__((4, 3), np.nan), keep_checksum=True)
    for args in (("spectrum", "--embeddings", store, "--data-dir", small_data_dir, "--splits", "dev"),
                 ("uniformity", store)):
        code, _, err = run_cli(*args)
        assert_one_error(code, err, f"store {store}: row 20 (line 21 of protocol.txt; sentence key",
                         "NaN in the --embeddings store")
        assert "x: row" not in err


def test_nan_row_in_an_npy_file_names_the_line_and_sentence(run_cli, tmp_path, small_data_dir):
    sents = tmp_path / "s.txt"
    sents.write_text("first sentence\nsecond sentence\nthird sentence\n", encoding="utf-8")
    x = np.random.default_rng(0).standard_normal((3, 8)).astype(np.float32)
    x[1, 5] = np.inf
    np.save(tmp_path / "x.npy", x)
    code, _, err = run_cli("spectrum", "--embeddings", tmp_path / "x.npy", "--sentences", sents,
                           "--data-dir", small_data_dir)
    assert_one_error(code, err, "row 1 holds NaN or inf", "line 2 of --sentences", "'second sentence'",
                     "NaN in the --embeddings file")
    code, _, err = run_cli("uniformity", tmp_path / "x.npy")
    assert_one_error(code, err, "x.npy: row 1 holds NaN or inf")


# ------------------------------------------------------------------ stores: keys, digests, verification
def _sentences_whose_keys_end_in_nul(count: int, nuls: int) -> list[str]:
    out, i = [], 0
    while len(out) < count:
        s = f"sentence {i}"
        if hashlib.sha256(s.encode()).digest()[:16].endswith(b"\0" * nuls):
            out.append(s)
        i += 1
    return out


def test_keys_ending_in_nul_bytes_are_found(tmp_path, tiny_bert_dir):
    from simcse_analysis.encoder import load_encoder
    from simcse_analysis.store import encode_to_store, open_store

    odd = _sentences_whose_keys_end_in_nul(3, 1) + _sentences_whose_keys_end_in_nul(1, 2)
    lines = [f"plain line {i}" for i in range(20)] + odd
    (tmp_path / "s.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
    enc = load_encoder(tiny_bert_dir, pooler="avg", use_cache=False)
    encode_to_store(enc, [tmp_path / "s.txt"], tmp_path / "store", shard_rows=8, progress=False)
    store = open_store(tmp_path / "store")
    rows = store.rows_of([odd[3], "plain line 2", *odd[:3]])
    assert rows.tolist() == [23, 2, 20, 21, 22]
    assert bytes(store.keys[23]).endswith(b"\0\0") and len(bytes(store.keys[23])) == 16
    np.testing.assert_allclose(store[rows], enc.encode([odd[3], "plain line 2", *odd[:3]]), rtol=1e-5, atol=1e-6)


def test_a_shard_that_no_longer_matches_its_checksum_is_refused(run_cli, tmp_path, tiny_bert_dir, small_data_dir):
    from simcse_analysis.store import corpus_uniformity, open_store

    store, _ = _protocol_store(run_cli, tmp_path, tiny_bert_dir, small_data_dir)
    before = corpus_uniformity(store)["uniformity"]
    _rewrite_shard(store, 2, lambda a: a.__setitem__(slice(0, 8), a[8:16] * 3 + 1), keep_checksum=False)
    for args in (("uniformity", store),
                 ("align-uniform", "--embeddings", store, "--data-dir", small_data_dir, "--splits", "dev")):
        code, _, err = run_cli(*args)
        assert_one_error(code, err, "shard shard-000002.npy no longer matches its checksum shard-000002.sha256",
                         "1 of", "re-encodes changed shards")
    changed = corpus_uniformity(store, verify=False)["uniformity"]  # the escape hatch reads it as it is
    assert abs(changed - before) > 1e-3
    for args in (("uniformity", store, "--no-verify"),
                 ("align-uniform", "--embeddings", store, "--data-dir", small_data_dir, "--splits", "dev",
                  "--no-verify")):
        code, _, err = run_cli(*args)
        assert code == 0, err
    assert open_store(store, verify=False).shape[0] == open_store(store, verify=False).manifest.n


def test_an_old_store_manifest_cannot_be_resumed_but_is_read(run_cli, tmp_path, tiny_bert_dir, small_data_dir):
    from simcse_analysis.store import open_store

    store, sents = _protocol_store(run_cli, tmp_path, tiny_bert_dir, small_data_dir)
    mf = store / "manifest.json"
    mf.write_text(json.dumps({**json.loads(mf.read_text()), "version": 1}))
    assert open_store(store).manifest.version == 1
    code, _, err = run_cli("encode", tiny_bert_dir, "--sentences", sents, "--out", store, "--pooler", "avg",
                           "--shard-rows", "16", "--no-cache")
    assert_one_error(code, err, "manifest version 1", "did not cover the tokenizer")


# ------------------------------------------------------------------ what a vector depends on
def test_editing_the_tokenizer_changes_the_cache_key_and_the_store_fingerprint(tiny_bert_copy, tmp_path):
    from simcse_analysis.encoder import load_encoder

    texts = ["HELLO World, Shouting Sentence", "Another MIXED case Line"]
    cache = tmp_path / "cache"
    first = load_encoder(tiny_bert_copy, pooler="avg", cache_dir=cache)
    lowered = first.encode(texts)
    cfg = tiny_bert_copy / "tokenizer_config.json"
    cfg.write_text(json.dumps({**json.loads(cfg.read_text()), "do_lower_case": False}))
    second = load_encoder(tiny_bert_copy, pooler="avg", cache_dir=cache)
    cased = second.encode(texts)  # not the cached vectors of the lower-casing tokenizer
    fresh = load_encoder(tiny_bert_copy, pooler="avg", use_cache=False).encode(texts)
    np.testing.assert_allclose(cased, fresh, rtol=1e-5, atol=1e-6)
    assert np.abs(cased - lowered).max() > 1e-2
    assert second.fingerprint != first.fingerprint
    assert second.weights_fingerprint == first.weights_fingerprint
    assert second.cache_settings("pooled", "avg") != first.cache_settings("pooled", "avg")


# ------------------------------------------------------------------ weights that would run code
def test_a_pickled_weights_file_that_would_run_code_is_one_error_and_nothing_runs(run_cli, tiny_bert_copy,
                                                                                  small_data_dir, tmp_path):
    marker = tmp_path / "code-ran"

    class Payload:
        def __reduce__(self):
            return open, (str(marker), "w")

    state = load_file(str(tiny_bert_copy / "model.safetensors"))
    torch.save({**state, "payload": Payload()}, tiny_bert_copy / "pytorch_model.bin")
    (tiny_bert_copy / "model.safetensors").unlink()
    code, _, err = run_cli("eval", tiny_bert_copy, "--tasks", "stsb", "--data-dir", small_data_dir, "--no-cache")
    assert_one_error(code, err, str(tiny_bert_copy), "pytorch_model.bin is a pickle", "nothing in it ran",
                     "model.safetensors")
    assert not marker.exists()


# ------------------------------------------------------------------ API arguments
@pytest.mark.parametrize("max_length", [-5, 0, True, "128", 2.5])
def test_max_length_must_be_a_positive_integer(tiny_bert_dir, max_length):
    from simcse_analysis.encoder import load_encoder

    with pytest.raises(InputError, match=f"max_length must be a positive integer .*got {max_length!r}"):
        load_encoder(tiny_bert_dir, max_length=max_length, use_cache=False)


def test_a_string_where_a_list_is_expected_names_the_argument(tiny_bert_dir, tmp_path):
    import simcse_analysis as sa
    from simcse_analysis.store import encode_to_store

    enc = sa.load_encoder(tiny_bert_dir, pooler="avg", use_cache=False)
    with pytest.raises(InputError, match="sentences: expected a list of sentences .*got the string 'A man plays'"):
        enc.encode("A man plays")
    with pytest.raises(InputError, match=r"sentences\[1\] is int"):
        enc.encode(["fine", 3])
    with pytest.raises(InputError, match="checkpoints: expected a list"):
        sa.compare("all-MiniLM-L6-v2")
    with pytest.raises(InputError, match="sentence_files: expected a list"):
        encode_to_store(enc, str(tmp_path / "lines.txt"), tmp_path / "store")
    assert not (tmp_path / "store").exists()
    with pytest.raises(InputError, match="train_files: expected a list"):
        sa.TrainConfig("unsup", str(tiny_bert_dir), "wiki.txt", str(tmp_path / "run")).resolved()


def test_resumed_store_never_mixes_shards_of_another_tokenizer(run_cli, tmp_path, tiny_bert_copy):
    lines = tmp_path / "lines.txt"
    lines.write_text("".join(f"Line Number {i}\n" for i in range(6)), encoding="utf-8")
    base = ("--sentences", lines, "--out", tmp_path / "store", "--pooler", "avg", "--no-cache", "--shard-rows", "2")
    code, _, err = run_cli("encode", tiny_bert_copy, *base)
    assert code == 0, err
    shutil.copy(tmp_path / "store" / "manifest.json", tmp_path / "manifest.before")
    cfg = tiny_bert_copy / "tokenizer_config.json"
    cfg.write_text(json.dumps({**json.loads(cfg.read_text()), "do_lower_case": False}))
    code, _, err = run_cli("encode", tiny_bert_copy, *base)
    assert_one_error(code, err, "holds vectors of another checkpoint")
