"""The per-sentence embedding cache: reuse across lists, one forward pass for two outputs, the old layout's
removal, corruption and concurrent writers."""

from __future__ import annotations

import multiprocessing as mp

import numpy as np
import pytest

from simcse_analysis.cache import KEY_BYTES, EmbeddingCache, remove_old_layout, sentence_keys
from simcse_analysis.encoder import load_encoder

WORDS = ["the", "a", "man", "woman", "dog", "cat", "plays", "runs", "in", "park", "red", "guitar"]


def sentences(n: int, seed: int = 0) -> list[str]:
    rng = np.random.default_rng(seed)
    return [" ".join(rng.choice(WORDS, size=rng.integers(1, 30))) + f" {seed}.{i}" for i in range(n)]


def _count_encoded(enc) -> list[int]:
    """Sentences that go through the forward-pass loop (per call)."""
    seen: list[int] = []
    orig = enc._run

    def counting(texts, *a, **k):
        seen.append(len(texts))
        return orig(texts, *a, **k)

    enc._run = counting
    return seen


def test_any_list_reuses_every_sentence_another_list_encoded(tmp_path, tiny_bert_dir):
    a, b = sentences(12, seed=1), sentences(5, seed=2)
    load_encoder(tiny_bert_dir, pooler="avg", cache_dir=tmp_path).encode(a)
    enc = load_encoder(tiny_bert_dir, pooler="avg", cache_dir=tmp_path)
    seen = _count_encoded(enc)
    mixed = [a[3], b[0], a[0], b[1], a[3]] + b[2:] + a[::-1]  # other order, repeats, new sentences
    got = enc.encode(mixed)
    assert seen == [len(b)]  # only the new sentences, each once
    assert enc.cache.reused == len(a) and enc.cache.encoded == len(b)
    ref = load_encoder(tiny_bert_dir, pooler="avg", use_cache=False).encode(mixed)
    np.testing.assert_allclose(got, ref, rtol=1e-4, atol=1e-5)
    again = load_encoder(tiny_bert_dir, pooler="avg", cache_dir=tmp_path)
    seen = _count_encoded(again)
    np.testing.assert_array_equal(again.encode(mixed), got)
    assert seen == [] and again.cache.hits == 1


def test_duplicates_in_one_call_are_encoded_once(tiny_bert_dir):
    enc = load_encoder(tiny_bert_dir, pooler="avg", use_cache=False)
    seen = _count_encoded(enc)
    texts = sentences(4)
    x = enc.encode(texts * 3)
    assert seen == [4]
    np.testing.assert_array_equal(x[:4], x[4:8])


def test_final_and_layer_vectors_come_from_one_forward_pass(tmp_path, tiny_bert_dir):
    texts = sentences(9, seed=3)
    enc = load_encoder(tiny_bert_dir, pooler="avg_first_last", cache_dir=tmp_path)
    seen = _count_encoded(enc)
    emb, stack = enc.encode_with_layers(texts, layer_pooler="avg")
    assert seen == [9]
    ref = load_encoder(tiny_bert_dir, pooler="avg_first_last", use_cache=False)
    np.testing.assert_allclose(emb, ref.encode(texts), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(stack, ref.encode_layers(texts, pooler="avg"), rtol=1e-5, atol=1e-6)
    # both outputs were cached: the separate calls encode nothing
    assert stack.shape == (enc.n_layers, 9, 32)
    enc.encode(texts)
    enc.encode_layers(texts, pooler="avg")
    assert seen == [9]
    # avg_first_last is the mean of layers 1 and L of the avg stack
    np.testing.assert_allclose(emb, (stack[1] + stack[-1]) / 2, rtol=1e-5, atol=1e-6)


def test_old_whole_list_entries_are_removed_and_nothing_else(tmp_path):
    old = tmp_path / "ab"
    old.mkdir()
    (old / ("ab" + "0" * 62 + ".npy")).write_bytes(b"x")
    (old / ("ab" + "0" * 62 + ".sha256")).write_text("y")
    keep = tmp_path / "cd"
    keep.mkdir()
    (keep / "notes.txt").write_text("mine")
    EmbeddingCache(tmp_path)
    assert not old.exists()
    assert (keep / "notes.txt").read_text() == "mine"
    assert remove_old_layout(tmp_path) == 0


def test_a_corrupt_shard_is_removed_and_only_its_sentences_miss(tmp_path):
    cache = EmbeddingCache(tmp_path)
    space = cache.namespace({"k": 1})
    a, b = sentence_keys(["a", "b"]), sentence_keys(["c"])
    space.put(a, np.ones((2, 3), np.float32))
    space.put(b, np.full((1, 3), 2, np.float32))
    victim = next(p for p in space.dir.glob("*.npy") if np.load(p)[0, 0] == 2)
    data = bytearray(victim.read_bytes())
    data[-1] ^= 0x01
    victim.write_bytes(bytes(data))
    fresh = EmbeddingCache(tmp_path).namespace({"k": 1})
    arr, found = fresh.fetch(a + b)
    assert found.tolist() == [True, True, False]
    np.testing.assert_array_equal(arr[:2], 1.0)
    assert not victim.exists() and fresh.stats() == {"shards": 1, "sentences": 2}


def test_a_shard_without_its_checksum_is_invisible_not_deleted(tmp_path):
    space = EmbeddingCache(tmp_path).namespace({"k": 2})
    space.put(sentence_keys(["a"]), np.ones((1, 3), np.float32))
    (sha,) = space.dir.glob("*.sha256")
    sha.unlink()  # as a writer between its .keys and its .sha256
    arr, found = EmbeddingCache(tmp_path).namespace({"k": 2}).fetch(sentence_keys(["a"]))
    assert arr is None and not found.any()
    assert len(list(space.dir.glob("*.npy"))) == 1


def _writer(root: str, seed: int) -> None:
    space = EmbeddingCache(root).namespace({"k": "shared"})
    rng = np.random.default_rng(seed)
    for r in range(5):
        texts = [f"s{(seed * 5 + r) * 10 + i}" for i in range(10)] + ["common"]
        space.put(sentence_keys(texts), rng.normal(size=(11, 4)).astype(np.float32))


def test_concurrent_writers_leave_a_consistent_cache(tmp_path):
    ctx = mp.get_context("spawn")
    procs = [ctx.Process(target=_writer, args=(str(tmp_path), s)) for s in range(3)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
    assert all(p.exitcode == 0 for p in procs)
    space = EmbeddingCache(tmp_path).namespace({"k": "shared"})
    keys = sentence_keys([f"s{i}" for i in range(150)] + ["common"])
    arr, found = space.fetch(keys)
    assert found.all() and arr.shape == (151, 4)
    assert space.stats() == {"shards": 15, "sentences": 151}
    assert not list(space.dir.glob("*.tmp"))


def test_key_is_a_prefix_of_sha256():
    import hashlib

    assert sentence_keys(["é"])[0] == hashlib.sha256("é".encode()).digest()[:KEY_BYTES]


@pytest.mark.parametrize("n", [0, 1])
def test_tiny_inputs(tmp_path, tiny_bert_dir, n):
    enc = load_encoder(tiny_bert_dir, pooler="avg", cache_dir=tmp_path)
    assert enc.encode(sentences(n)).shape == (n, 32)
    assert enc.encode_layers(sentences(n)).shape == (enc.n_layers, n, 32)
