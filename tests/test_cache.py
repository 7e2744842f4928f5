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


# ---------------------------------------------------------------------------------- one forward, several poolers
def test_also_pool_fills_the_other_poolers_from_the_same_forward_pass(tmp_path, tiny_bert_dir):
    """An encoder loaded with ``also_pool`` pools every listed pooler (and its per-layer pooling) from the hidden
    states of its own forward passes; encoders of those poolers then encode nothing."""
    texts = sentences(11, seed=4)
    enc = load_encoder(tiny_bert_dir, pooler="avg", cache_dir=tmp_path, also_pool=["cls_before_pooler", "avg",
                                                                                    "avg_first_last"])
    assert enc.also_pool == ("cls_before_pooler", "avg_first_last")  # its own pooler dropped
    seen = _count_encoded(enc)
    enc.encode_with_layers(texts, layer_pooler="avg")
    assert seen == [11]
    ref = {p: load_encoder(tiny_bert_dir, pooler=p, use_cache=False) for p in ("cls_before_pooler", "avg_first_last")}
    for p, r in ref.items():
        other = load_encoder(tiny_bert_dir, pooler=p, cache_dir=tmp_path)
        other_seen = _count_encoded(other)
        np.testing.assert_allclose(other.encode(texts), r.encode(texts), rtol=1e-5, atol=1e-6)
        assert other_seen == [] and other.cache.hits == 1
    cls_layers = load_encoder(tiny_bert_dir, pooler="cls_before_pooler", cache_dir=tmp_path)
    layer_seen = _count_encoded(cls_layers)
    np.testing.assert_allclose(cls_layers.encode_layers(texts, pooler="cls_before_pooler"),
                               ref["cls_before_pooler"].encode_layers(texts, pooler="cls_before_pooler"),
                               rtol=1e-5, atol=1e-6)
    assert layer_seen == []
    # companions ride along, never cost a pass of their own: fully cached own output → no forward at all
    late = load_encoder(tiny_bert_dir, pooler="avg", cache_dir=tmp_path, also_pool=["avg_top2"])
    late_seen = _count_encoded(late)
    late.encode(texts)
    assert late_seen == []


def _distinct_sentences(data) -> set[str]:
    from simcse_analysis.sts_eval import unique_pairs

    out = set(data.protocol.sentences)
    for subsets in data.tasks.values():
        out |= set(unique_pairs(subsets)[0])
    return out


@pytest.mark.parametrize("cached", [True, False])
def test_compare_sends_each_distinct_sentence_through_the_model_once(tmp_path, tiny_bert_dir, small_data_dir,
                                                                     monkeypatch, cached):
    """Two poolers of one checkpoint: every distinct sentence of the 7 tasks and the STS-B protocol goes
    through the model once (final vectors, per-layer poolings and the second pooler from that pass); without
    the disk cache, once per pooler."""
    from simcse_analysis.comparison import CompareSettings, compare, load_compare_data
    from simcse_analysis.encoder import Encoder

    settings = CompareSettings(resamples=100, k=5, movers=2)
    n_distinct = len(_distinct_sentences(load_compare_data(settings, small_data_dir)))
    passes: list[int] = []
    run = Encoder._run

    def counting(self, texts, *a, **k):
        passes.append(len(texts))
        return run(self, texts, *a, **k)

    monkeypatch.setattr(Encoder, "_run", counting)
    kwargs = {"device": "cpu", "cache_dir": tmp_path} if cached else {"device": "cpu", "use_cache": False}
    rep = compare([f"{tiny_bert_dir}@avg", f"{tiny_bert_dir}@cls_before_pooler"], settings, data_dir=small_data_dir,
                  encoder_kwargs=kwargs)
    assert sum(passes) == n_distinct * (1 if cached else 2)
    assert len(rep.pairs) == 1 and rep.pairs[0].cka is not None


# ---------------------------------------------------------------------------------- derived results
def test_result_cache_round_trips_and_a_corrupt_entry_is_recomputed(tmp_path, capsys):
    from simcse_analysis.cache import ResultCache

    rc = ResultCache(tmp_path)
    key = {"x": "abc", "settings": {"n": 3}}
    assert rc.get("umap", key) is None and rc.misses == 1
    value = [[0.1, 1 / 3], [float("nan"), -2.5e-300]]
    rc.put("umap", key, value, checkpoint={"model": "m"})
    got = ResultCache(tmp_path).get("umap", key)
    assert got[0] == value[0] and got[1][1] == value[1][1] and np.isnan(got[1][0])  # floats exactly
    assert ResultCache(tmp_path).get("umap", {**key, "settings": {"n": 4}}) is None  # another key, another entry
    (entry,) = (tmp_path / "results" / "umap").glob("*.entry")
    data = bytearray(entry.read_bytes())
    data[-3] ^= 0x01
    entry.write_bytes(bytes(data))
    again = ResultCache(tmp_path)
    assert again.get("umap", key) is None and not entry.exists()
    assert "is corrupt" in capsys.readouterr().err


def test_umap_maps_are_read_back_for_the_same_vectors_settings_and_versions(tmp_path, monkeypatch):
    from reports import umap_map
    from reports.umap_map import UMAPSettings, umap_cache_key, umap_maps_cached
    from simcse_analysis.cache import ResultCache

    fits: list[int] = []

    def fake_fit(x, settings, init=None):  # the wrapper's job is the caching: a stand-in fit that counts its calls
        fits.append(len(x))
        return np.random.default_rng(settings.seed + len(fits)).normal(size=(len(x), 2))

    monkeypatch.setattr(umap_map, "umap_embed", fake_fit)
    rng = np.random.default_rng(0)
    xs = [rng.normal(size=(40, 8)).astype(np.float32), rng.normal(size=(40, 6)).astype(np.float32)]
    s = UMAPSettings(n_sentences=40)
    first = umap_maps_cached(xs, s, ResultCache(tmp_path))
    assert fits == [40, 40]  # one joint fit: a map per checkpoint
    again = umap_maps_cached(xs, UMAPSettings(n_sentences=40, colour="split"), ResultCache(tmp_path))
    for a, b in zip(again, first):
        np.testing.assert_array_equal(a, b)  # the colouring does not reach the fit: read back, exactly
    assert fits == [40, 40]
    umap_maps_cached(xs, UMAPSettings(n_sentences=40, n_neighbors=5), ResultCache(tmp_path))
    umap_maps_cached([xs[0], xs[1] + 1e-3], s, ResultCache(tmp_path))  # another checkpoint's vectors moved
    umap_maps_cached(xs[:1], s, ResultCache(tmp_path))  # fewer checkpoints: another joint fit
    umap_maps_cached(xs, s, None)
    assert fits == [40] * 9
    key = umap_cache_key(xs, s)
    assert set(key["versions"]) >= {"umap-learn", "numba", "numpy", "scipy"} and key["versions"]["numpy"]
    assert "colour" not in key["settings"] and len(key["x"]) == 2


def test_token_analyses_are_read_back_unless_something_they_depend_on_changes(tmp_path, tiny_bert_dir, monkeypatch):
    from simcse_analysis import token_analysis as ta

    texts = [f"the man plays the guitar in the park {i}" for i in range(6)] + sentences(20, seed=5)
    corpus = ta.TokenCorpus(texts, "test", [])
    calls: list[str] = []
    real = ta.analyze_tokens

    def counting(enc, *a, **k):
        calls.append(enc.pooler)
        return real(enc, *a, **k)

    monkeypatch.setattr(ta, "analyze_tokens", counting)
    settings = ta.TokenSettings(min_count=2)

    def run(pooler="avg", s=settings, **kw):
        enc = load_encoder(tiny_bert_dir, pooler=pooler, device="cpu", cache_dir=tmp_path, **kw)
        log: list[str] = []
        return ta.run_token_analysis([enc], corpus, s, log=log.append), log

    first, _ = run()
    second, log = run()
    assert calls == ["avg"] and "read the cached token analysis" in log[0]
    assert second.to_dict() == first.to_dict()
    run("avg_first_last")  # another pooler with the same per-layer pooling: the same analysis
    assert calls == ["avg"]
    run("cls_before_pooler")  # [CLS] per-layer pooling: another analysis
    run(s=ta.TokenSettings(min_count=3))
    run(use_cache=False)
    assert calls == ["avg", "cls_before_pooler", "avg", "avg"]


# ---------------------------------------------------------------------------------- simcse-analyze cache
def _fill(root, tiny_bert_dir):
    """Pooled and per-layer vectors, a token analysis and a UMAP entry of the tiny BERT under ``root``."""
    from simcse_analysis.cache import ResultCache

    enc = load_encoder(tiny_bert_dir, pooler="avg", device="cpu", cache_dir=root)
    enc.encode_with_layers(sentences(30, seed=6))
    ResultCache(root).put("tokens", {"t": 1}, {"v": 1}, checkpoint=enc.cache_label())
    ResultCache(root).put("umap", {"u": 1}, [[0.0, 1.0]], checkpoint={"model": "other", "path": None})


def test_cache_command_shows_size_per_kind_and_checkpoint(tmp_path, tiny_bert_dir, run_cli):
    import json

    root = tmp_path / "c"
    code, out, _ = run_cli("cache", "--cache-dir", root)
    assert code == 0 and "is empty" in out
    _fill(root, tiny_bert_dir)
    code, out, err = run_cli("cache", "--cache-dir", root, "--json", tmp_path / "c.json")
    assert code == 0, err
    lines = out.splitlines()
    assert "4 unit(s)" in lines[0]
    row = next(r for r in lines if r.startswith("embeddings"))
    assert str(tiny_bert_dir) in row and "avg" in row and "30 sentences" in row
    assert any(r.startswith("layers") for r in lines) and any(r.startswith("umap") and "other" in r for r in lines)
    doc = json.loads((tmp_path / "c.json").read_text())
    assert sorted(u["kind"] for u in doc["units"]) == ["embeddings", "layers", "tokens", "umap"]
    on_disk = sum(f.stat().st_size for f in root.rglob("*") if f.is_file())
    assert doc["bytes"] == on_disk


def test_cache_prune_by_kind_checkpoint_age_and_size_and_clear(tmp_path, tiny_bert_dir, run_cli):
    import os
    import time

    from simcse_analysis.cache_inventory import inventory

    root = tmp_path / "c"
    _fill(root, tiny_bert_dir)
    (root / "notes.txt").write_text("mine")  # not the cache's: never touched
    kinds = lambda: sorted(u.kind for u in inventory(root))
    code, out, _ = run_cli("cache", "prune", "--kind", "umap", "--dry-run", "--cache-dir", root)
    assert code == 0 and "would remove 1 of 4" in out and kinds() == ["embeddings", "layers", "tokens", "umap"]
    code, out, _ = run_cli("cache", "prune", "--kind", "umap", "--cache-dir", root)
    assert code == 0 and kinds() == ["embeddings", "layers", "tokens"]
    # by age: make the per-layer namespace look unused for 40 days
    layers = next(u for u in inventory(root) if u.kind == "layers")
    old = time.time() - 40 * 86400
    os.utime(os.path.join(layers.path, "namespace.json"), (old, old))
    code, out, _ = run_cli("cache", "prune", "--older-than", "30d", "--cache-dir", root)
    assert code == 0 and "removed 1 of 3" in out and kinds() == ["embeddings", "tokens"]
    # by checkpoint (a directory resolves to its weights), by size (least recently used first)
    _fill(root, tiny_bert_dir)
    emb = next(u for u in inventory(root) if u.kind == "embeddings")
    code, out, _ = run_cli("cache", "prune", "--max-size", str(emb.bytes), "--cache-dir", root)
    assert code == 0 and sum(u.bytes for u in inventory(root)) <= emb.bytes
    _fill(root, tiny_bert_dir)
    code, out, _ = run_cli("cache", "prune", "--checkpoint", tiny_bert_dir, "--cache-dir", root)
    assert code == 0 and kinds() == ["umap"]  # the UMAP entry was labelled as another checkpoint
    code, _, err = run_cli("cache", "clear", "--cache-dir", root)  # no terminal to confirm on
    assert code == 2 and err.startswith("error: cache clear would remove 1 unit(s)") and "--yes" in err
    code, out, _ = run_cli("cache", "clear", "--yes", "--cache-dir", root)
    assert code == 0 and inventory(root) == [] and (root / "notes.txt").read_text() == "mine"
    for bad, needle in ((["--older-than", "soon"], "--older-than 'soon'"), (["--max-size", "big"], "--max-size"),
                        ([], "needs --older-than"), (["--kind", "vectors"], "--kind 'vectors'")):
        code, _, err = run_cli("cache", "prune", *bad, "--cache-dir", root)
        assert code == 2 and err.startswith("error:") and needle in err


def test_report_of_two_poolers_of_one_checkpoint_runs_the_model_for_the_first_only(tmp_path, tiny_bert_dir,
                                                                                   small_data_dir, monkeypatch):
    from reports.result import analyze
    from simcse_analysis.encoder import Encoder

    passes: list[str] = []
    run = Encoder._run

    def counting(self, texts, *a, **k):
        passes.append(self.pooler)
        return run(self, texts, *a, **k)

    monkeypatch.setattr(Encoder, "_run", counting)
    a = analyze([f"{tiny_bert_dir}@avg", f"{tiny_bert_dir}@cls_before_pooler"], data_dir=small_data_dir, umap=False,
                encoder_kwargs={"device": "cpu", "cache_dir": tmp_path})
    assert passes and set(passes) == {"avg"}  # every vector of the second came from the first one's passes
    assert a.models[1].pooler == "cls_before_pooler" and a.models[1].sts["avg"] != a.models[0].sts["avg"]
