"""Encoding: order restoration after length sorting, normalisation, the on-disk cache."""

from __future__ import annotations

import json

import numpy as np
import pytest

from simcse_analysis.cache import EmbeddingCache, sentence_keys
from simcse_analysis.encoder import Encoder, load_encoder

WORDS = ["the", "a", "man", "woman", "dog", "cat", "plays", "runs", "on", "in", "park", "street", "quickly", "slowly", "red", "blue", "guitar"]


def sentences(n: int, seed: int = 0) -> list[str]:
    rng = np.random.default_rng(seed)
    return [" ".join(rng.choice(WORDS, size=rng.integers(1, 30))) for _ in range(n)]


def test_length_sorted_batches_restore_input_order(tiny_bert_dir):
    enc = load_encoder(tiny_bert_dir, pooler="avg", use_cache=False)
    texts = sentences(37)
    batched = enc.encode(texts, batch_size=8)
    one_by_one = np.concatenate([enc.encode([t], batch_size=1) for t in texts])
    np.testing.assert_allclose(batched, one_by_one, rtol=1e-4, atol=1e-5)
    assert batched.dtype == np.float32 and batched.shape == (37, 32)


def test_normalize_gives_unit_rows(tiny_bert_dir):
    enc = load_encoder(tiny_bert_dir, pooler="cls", use_cache=False)
    x = enc.encode(sentences(5), normalize=True)
    np.testing.assert_allclose(np.linalg.norm(x, axis=1), 1.0, rtol=1e-6)


def test_empty_input_gives_empty_array(tiny_bert_dir):
    assert load_encoder(tiny_bert_dir, use_cache=False).encode([]).shape == (0, 32)


def test_truncation_to_max_length(tiny_bert_dir):
    enc = load_encoder(tiny_bert_dir, pooler="avg", max_length=5, use_cache=False)
    long = "the man plays the red guitar in the park"
    head = enc.tokenizer.decode(enc.tokenizer(long, add_special_tokens=False)["input_ids"][:3])
    np.testing.assert_allclose(enc.encode([long]), enc.encode([head]), rtol=1e-5, atol=1e-6)


def _count_forward_calls(enc: Encoder) -> list[int]:
    calls = [0]
    orig = enc.model.forward

    def counting(*a, **k):
        calls[0] += 1
        return orig(*a, **k)

    enc.model.forward = counting
    return calls


def test_second_encode_is_a_cache_hit(tmp_path, tiny_bert_dir):
    texts = sentences(20)
    first = load_encoder(tiny_bert_dir, pooler="avg", cache_dir=tmp_path)
    a = first.encode(texts, batch_size=4)
    second = load_encoder(tiny_bert_dir, pooler="avg", cache_dir=tmp_path)
    calls = _count_forward_calls(second)
    b = second.encode(texts, batch_size=4)
    assert calls[0] == 0 and second.cache.hits == 1
    np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("change", ["texts", "pooler", "max_length"])
def test_cache_misses_when_anything_that_matters_changes(tmp_path, tiny_bert_dir, change):
    texts = sentences(10)
    load_encoder(tiny_bert_dir, pooler="avg", cache_dir=tmp_path).encode(texts)
    kwargs = {"pooler": "avg", "cache_dir": tmp_path}
    if change == "pooler":
        kwargs["pooler"] = "cls"
    if change == "max_length":
        kwargs["max_length"] = 7
    if change == "texts":
        texts = texts[:-1] + [texts[-1] + " again"]
    if change == "order":
        texts = texts[::-1]
    enc = load_encoder(tiny_bert_dir, **kwargs)
    calls = _count_forward_calls(enc)
    enc.encode(texts)
    assert calls[0] > 0 and enc.cache.misses == 1


@pytest.mark.parametrize("damage", ["flip_byte", "truncate", "drop_checksum"])
def test_corrupt_cache_entry_is_detected_and_rebuilt(tmp_path, tiny_bert_dir, damage):
    texts = sentences(12)
    clean = load_encoder(tiny_bert_dir, pooler="avg", cache_dir=tmp_path).encode(texts)
    (npy,) = list(tmp_path.rglob("*.npy"))
    data = bytearray(npy.read_bytes())
    if damage == "flip_byte":
        data[-5] ^= 0xFF
        npy.write_bytes(bytes(data))
    elif damage == "truncate":
        npy.write_bytes(bytes(data[: len(data) // 2]))
    else:
        npy.with_suffix(".sha256").unlink()
    enc = load_encoder(tiny_bert_dir, pooler="avg", cache_dir=tmp_path)
    calls = _count_forward_calls(enc)
    again = enc.encode(texts)
    assert calls[0] > 0
    np.testing.assert_allclose(again, clean, rtol=1e-6)
    # the rebuilt entry is valid again: a fresh cache answers every sentence
    keys = sentence_keys(texts)
    _, found = EmbeddingCache(tmp_path).namespace(enc.cache_settings("pooled", "avg")).fetch(keys)
    assert found.all()


def test_use_cache_false_writes_nothing(tmp_path, tiny_bert_dir):
    load_encoder(tiny_bert_dir, cache_dir=tmp_path, use_cache=False).encode(sentences(3))
    assert not list(tmp_path.rglob("*.npy"))


def test_whitening_post_transform_applies_and_changes_fingerprint(tmp_path, tiny_bert_copy):
    from safetensors.numpy import save_file

    texts = sentences(6)
    base = load_encoder(tiny_bert_copy, pooler="avg", cache_dir=tmp_path)
    raw = base.encode(texts)
    rng = np.random.default_rng(0)
    mean, matrix = rng.normal(size=32).astype(np.float32), rng.normal(size=(32, 8)).astype(np.float32)
    save_file({"mean": mean, "matrix": matrix}, str(tiny_bert_copy / "whitening.safetensors"))
    (tiny_bert_copy / "simcse_analysis.json").write_text(json.dumps(
        {"pooler": "avg", "post_transform": {"type": "affine", "file": "whitening.safetensors"}}))
    white = load_encoder(tiny_bert_copy, cache_dir=tmp_path)
    got = white.encode(texts)
    np.testing.assert_allclose(got, (raw.astype(np.float64) - mean) @ matrix, rtol=1e-4, atol=1e-5)
    assert got.shape == (6, 8) and white.dim == 8
    assert white.fingerprint != base.fingerprint


def test_from_model_encodes_without_cache(tiny_bert_dir):
    ref = load_encoder(tiny_bert_dir, pooler="avg", use_cache=False)
    mem = Encoder.from_model(ref.model, ref.tokenizer, pooler="avg")
    assert mem.cache is None and mem.fingerprint is None
    np.testing.assert_allclose(mem.encode(["in memory"]), ref.encode(["in memory"]), rtol=1e-6)


def test_atomic_writes_get_ordinary_file_permissions(tmp_path):
    import os

    from simcse_analysis.io_utils import atomic_write_text

    mask = os.umask(0o022)
    try:
        p = atomic_write_text(tmp_path / "out.json", "{}")
    finally:
        os.umask(mask)
    assert (p.stat().st_mode & 0o777) == 0o644 and p.read_text() == "{}"
    assert [q.name for q in tmp_path.iterdir()] == ["out.json"]  # no temporary left behind
