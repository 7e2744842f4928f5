"""The streaming embedding store: what ``encode`` writes, resuming after a kill, reading it memory-mapped in
every analysis command, uniformity over all its rows, multi-process encoding, and bad input."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from simcse_analysis.encoder import load_encoder
from simcse_analysis.errors import InputError
from simcse_analysis.store import encode_to_store, open_store, read_manifest, verify_store

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory, data_dir) -> Path:
    """70 lines: Wikipedia sentences with a blank line and a repeated sentence, CRLF endings on one."""
    lines = (data_dir / "unsup" / "wiki1m_for_simcse.head.txt").read_text(encoding="utf-8").splitlines()[:66]
    lines[5] = ""
    lines += [lines[0], lines[1], "last line\r", "tail"]
    f = tmp_path_factory.mktemp("store_corpus") / "corpus.txt"
    f.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return f


def _lines(f: Path) -> list[str]:
    from simcse_analysis.corpora import split_lines

    return split_lines(f.read_text(encoding="utf-8"))


def _build(tiny_bert_dir, corpus, out, **kw):
    enc = load_encoder(tiny_bert_dir, pooler="avg", use_cache=False)
    return encode_to_store(enc, [corpus], out, shard_rows=16, batch_size=8, progress=False, **kw), enc


def test_store_rows_are_the_lines_vectors_with_a_manifest(tmp_path, tiny_bert_dir, corpus):
    summary, enc = _build(tiny_bert_dir, corpus, tmp_path / "s")
    lines = _lines(corpus)
    assert summary.n == len(lines) == 70 and summary.n_shards == 5 and summary.encoded_shards == 5
    store = open_store(tmp_path / "s", fingerprint=enc.fingerprint, pooler="avg")
    np.testing.assert_allclose(store[:], enc.encode(lines), rtol=1e-5, atol=1e-6)
    m = json.loads((tmp_path / "s" / "manifest.json").read_text())
    assert (m["pooler"], m["precision"], m["dim"], m["n"], m["shard_rows"], m["n_shards"]) == (
        "avg", "float32", 32, 70, 16, 5)
    assert m["fingerprint"] == enc.fingerprint and m["max_length"] == enc.max_length and m["dtype"] == "fp32"
    # slices across shard boundaries and index arrays read the right rows
    full = store[:]
    np.testing.assert_array_equal(store[10:40], full[10:40])
    idx = np.array([69, 0, 17, 16, 15, 33])
    np.testing.assert_array_equal(store[idx], full[idx])
    rows = store.rows_of([lines[40], lines[0], "tail"])
    assert rows.tolist() == [40, 0, 69]
    assert verify_store(store) == []


def test_fp16_store_records_its_precision(tmp_path, tiny_bert_dir, corpus):
    _build(tiny_bert_dir, corpus, tmp_path / "h", precision="float16")
    _build(tiny_bert_dir, corpus, tmp_path / "f")
    half, full = open_store(tmp_path / "h"), open_store(tmp_path / "f")
    assert half.manifest.precision == "float16" and half._shards[0].dtype == np.float16
    assert half[:].dtype == np.float32
    np.testing.assert_allclose(half[:], full[:], rtol=1e-3, atol=1e-3)


def test_a_killed_run_resumes_without_re_encoding_finished_shards(tmp_path, tiny_bert_dir, corpus):
    ref, _ = _build(tiny_bert_dir, corpus, tmp_path / "ref")

    def kill_after_two(k, done):
        if done >= 32:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        _build(tiny_bert_dir, corpus, tmp_path / "s", on_shard=kill_after_two)
    with pytest.raises(InputError, match="shard-000002.npy is missing or unfinished"):
        open_store(tmp_path / "s")
    (tmp_path / "s" / "shard-000001.sha256").unlink()  # killed between the shard and its checksum
    enc = load_encoder(tiny_bert_dir, pooler="avg", use_cache=False)
    encoded: list[int] = []
    orig = enc._run
    enc._run = lambda texts, *a, **k: (encoded.append(len(texts)), orig(texts, *a, **k))[1]
    summary = encode_to_store(enc, [corpus], tmp_path / "s", shard_rows=16, batch_size=8, progress=False)
    assert (summary.encoded_shards, summary.skipped_shards) == (4, 1)
    assert sum(encoded) == 70 - 16  # the rows of shards 1-4 only
    for k in range(5):
        a = (tmp_path / "s" / f"shard-{k:06d}.npy").read_bytes()
        assert a == (tmp_path / "ref" / f"shard-{k:06d}.npy").read_bytes()
    assert read_manifest(tmp_path / "s").to_dict() == read_manifest(tmp_path / "ref").to_dict()
    assert ref.n == 70


def test_store_serves_every_analysis_command_like_a_matrix(run_cli, tmp_path, tiny_bert_dir, small_data_dir):
    sents = tmp_path / "protocol.txt"
    base = ["--data-dir", small_data_dir, "--splits", "dev"]
    code, _, err = run_cli("align-uniform", *base, "--export-sentences", sents)
    assert code == 0, err
    code, out, err = run_cli("encode", tiny_bert_dir, "--sentences", sents, "--out", tmp_path / "store",
                             "--pooler", "avg", "--shard-rows", "7", "--no-cache")
    assert code == 0, err
    assert "sentences in" in out
    x = open_store(tmp_path / "store")[:]
    np.save(tmp_path / "x.npy", x)
    for cmd in ("align-uniform", "spectrum", "anisotropy"):
        a, b = tmp_path / f"{cmd}.store.json", tmp_path / f"{cmd}.npy.json"
        code, _, err = run_cli(cmd, *base, "--embeddings", tmp_path / "store", "--json", a)
        assert code == 0, err
        code, _, err = run_cli(cmd, *base, "--embeddings", tmp_path / "x.npy", "--sentences", sents, "--json", b)
        assert code == 0, err
        ra, rb = json.loads(a.read_text())["results"][0], json.loads(b.read_text())["results"][0]
        assert ra["model"]["pooler"] == "avg" and ra["model"]["store_precision"] == "float32"
        for key in set(ra) - {"model"}:
            assert ra[key] == rb[key], (cmd, key)


def test_uniformity_over_all_rows_exact_within_budget_else_sampled(run_cli, tmp_path, tiny_bert_dir, corpus):
    from simcse_analysis.metrics import uniformity

    _build(tiny_bert_dir, corpus, tmp_path / "s")
    x = open_store(tmp_path / "s")[:]
    j = tmp_path / "u.json"
    code, out, err = run_cli("uniformity", tmp_path / "s", "--json", j)
    assert code == 0, err
    r = json.loads(j.read_text())
    assert r["method"] == "exact" and r["pairs_evaluated"] == 70 * 69 // 2 and r["stderr"] is None
    assert r["uniformity"] == pytest.approx(uniformity(x, precision="float64"), rel=1e-6)
    code, out, err = run_cli("uniformity", tmp_path / "s", "--budget", "1000", "--json", j)
    assert code == 0, err
    r = json.loads(j.read_text())
    assert r["method"] == "sampled" and r["pairs_evaluated"] == 1000 and r["stderr"] > 0
    assert "±" in out


@pytest.mark.parametrize("damage,message", [
    ("missing", "shard-000001.npy is missing or unfinished"),
    ("truncated", "shard-000001.npy is truncated or unreadable"),
    ("pooler", "holds pooler 'avg' vectors, not 'cls'"),
])
def test_damaged_or_mismatched_store_is_one_error_line(run_cli, tmp_path, tiny_bert_dir, corpus, small_data_dir,
                                                       damage, message):
    _build(tiny_bert_dir, corpus, tmp_path / "s")
    shard = tmp_path / "s" / "shard-000001.npy"
    extra = []
    if damage == "missing":
        shard.unlink()
    elif damage == "truncated":
        shard.write_bytes(shard.read_bytes()[:300])
    else:
        extra = ["--pooler", "cls"]
    code, out, err = run_cli("spectrum", "--data-dir", small_data_dir, "--embeddings", tmp_path / "s", *extra)
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and err.startswith("error: ") and message in err


def test_resuming_with_another_checkpoint_or_pooler_is_refused(run_cli, tmp_path, tiny_bert_dir, tiny_trainer_bert,
                                                              corpus):
    out = tmp_path / "s"
    code, _, err = run_cli("encode", tiny_bert_dir, "--sentences", corpus, "--out", out, "--pooler", "avg",
                           "--shard-rows", "32")
    assert code == 0, err
    code, _, err = run_cli("encode", tiny_trainer_bert, "--sentences", corpus, "--out", out, "--pooler", "avg")
    assert code == 2 and "holds vectors of another checkpoint" in err and err.count("\n") == 1
    code, _, err = run_cli("encode", tiny_bert_dir, "--sentences", corpus, "--out", out, "--pooler", "cls",
                           "--shard-rows", "32")
    assert code == 2 and "holds pooler 'avg' vectors, not 'cls'" in err


def test_device_cuda_without_a_gpu_is_one_error_line(run_cli, tmp_path, tiny_bert_dir, corpus):
    import torch

    if torch.cuda.is_available():
        pytest.skip("a GPU is present")
    _build(tiny_bert_dir, corpus, tmp_path / "s")
    for args in (["uniformity", tmp_path / "s", "--device", "cuda"],
                 ["encode", tiny_bert_dir, "--sentences", corpus, "--out", tmp_path / "t", "--device", "cuda"],
                 ["spectrum", "--embeddings", tmp_path / "s", "--device", "cuda"]):
        code, _, err = run_cli(*args)
        assert code == 2 and "no CUDA GPU" in err and err.count("\n") == 1, (args, err)
    assert not (tmp_path / "t").exists() or not list((tmp_path / "t").glob("shard-*"))


def test_two_processes_under_torchrun_write_the_single_process_store(tmp_path, tiny_bert_dir, corpus):
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    args = ["encode", str(tiny_bert_dir), "--sentences", str(corpus), "--pooler", "avg", "--shard-rows", "16",
            "--batch-size", "8", "--no-cache"]
    one = subprocess.run([sys.executable, "-m", "simcse_analysis", *args, "--out", str(tmp_path / "one")],
                         env=env, capture_output=True, text=True, timeout=300, check=False)
    assert one.returncode == 0, one.stderr[-2000:]
    two = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2", "--master-port",
                          str(29500 + os.getpid() % 1000), "-m", "simcse_analysis", *args,
                          "--out", str(tmp_path / "two")], env=env, capture_output=True, text=True, timeout=300,
                         check=False)
    assert two.returncode == 0, two.stderr[-3000:]
    assert "5 encoded now, 0 already complete, 2 processes" in two.stdout
    names = sorted(p.name for p in (tmp_path / "one").iterdir())
    assert names == sorted(p.name for p in (tmp_path / "two").iterdir())
    for name in names:
        assert (tmp_path / "one" / name).read_bytes() == (tmp_path / "two" / name).read_bytes(), name
