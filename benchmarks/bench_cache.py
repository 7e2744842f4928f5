"""Cache layout: one shard per write (``simcse_analysis.cache``) versus one file per sentence.

Writes ``--n`` float32 vectors of ``--d`` dims under a fresh directory both ways — (a) the cache's layout,
one content-addressed shard (``.npy`` + ``.keys`` + ``.sha256``, each written atomically with fsync), and
(b) one ``<sentence key>.npy`` per sentence, written the same atomic way (the peer) — then reads all of
them back from a fresh object (cold index, warm page cache), and prints the seconds and the ratios.

    python benchmarks/bench_cache.py [--n 5000] [--d 384] [--dir /tmp/bench_cache]

``--report MODEL…`` times instead the same ``simcse-analyze report MODEL… --tokens`` twice in this process
against one fresh cache directory (extra options with ``--extra``, e.g. ``--extra "--compare-from cmp.json"``):
the cold run, then the identical second run, with the forward passes, UMAP fits and token analyses each
run performed (a second run should perform none of them):

    python benchmarks/bench_cache.py --report all-MiniLM-L6-v2@avg all-MiniLM-L6-v2@cls_before_pooler RUN \
        --data-dir ../shared/data [--extra "--compare-from cmp.json"]
"""

from __future__ import annotations

import argparse
import io
import shutil
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=5000)
    ap.add_argument("--d", type=int, default=384)
    ap.add_argument("--dir", default="/tmp/bench_cache")
    ap.add_argument("--report", nargs="+", default=None, metavar="MODEL",
                    help="time a report of these models twice (cold, then identical) instead")
    ap.add_argument("--data-dir", default=None)
    ap.add_argument("--extra", default="", help="further report options, one shell-quoted string")
    args = ap.parse_args()
    if args.report:
        report_twice(args)
        return

    from simcse_analysis.cache import EmbeddingCache, sentence_keys
    from simcse_analysis.io_utils import atomic_write_bytes

    root = Path(args.dir)
    shutil.rmtree(root, ignore_errors=True)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((args.n, args.d)).astype(np.float32)
    keys = sentence_keys([f"sentence number {i}" for i in range(args.n)])

    t0 = time.perf_counter()
    EmbeddingCache(root / "shards").namespace({"bench": 1}).put(keys, x)
    w_shard = time.perf_counter() - t0
    t0 = time.perf_counter()
    got, found = EmbeddingCache(root / "shards").namespace({"bench": 1}).fetch(keys)
    r_shard = time.perf_counter() - t0
    assert found.all() and np.array_equal(got, x)

    per = root / "per_sentence"
    t0 = time.perf_counter()
    for k, row in zip(keys, x):
        buf = io.BytesIO()
        np.save(buf, row, allow_pickle=False)
        atomic_write_bytes(per / k.hex()[:2] / f"{k.hex()}.npy", buf.getvalue())
    w_file = time.perf_counter() - t0
    t0 = time.perf_counter()
    back = np.stack([np.load(per / k.hex()[:2] / f"{k.hex()}.npy") for k in keys])
    r_file = time.perf_counter() - t0
    assert np.array_equal(back, x)

    print(f"{args.n} vectors x {args.d} dims (under whatever load the machine has)")
    print(f"write: shard {w_shard:.3f} s, one file per sentence {w_file:.3f} s  (ratio {w_file / w_shard:.0f}x)")
    print(f"read:  shard {r_shard:.3f} s, one file per sentence {r_file:.3f} s  (ratio {r_file / r_shard:.0f}x)")
    shutil.rmtree(root, ignore_errors=True)


def report_twice(args: argparse.Namespace) -> None:
    """``--report``: one report command, cold then again, counting the work each run does."""
    import shlex
    import tempfile

    from reports import umap_map
    from simcse_analysis import token_analysis
    from simcse_analysis.cli import main as cli
    from simcse_analysis.encoder import Encoder

    counts: dict[str, float] = {}

    def counted(owner, name, what):
        real = getattr(owner, name)

        def wrapper(*a, **k):
            counts[what] = counts.get(what, 0) + (len(a[1]) if what == "sentences forwarded" else 1)
            return real(*a, **k)

        setattr(owner, name, wrapper)

    counted(Encoder, "_run", "sentences forwarded")
    counted(umap_map, "umap_embed", "UMAP fits")
    counted(token_analysis, "analyze_tokens", "token analyses")
    with tempfile.TemporaryDirectory(prefix="bench_cache_report_") as tmp:
        argv = ["report", *args.report, "--tokens", "--cache-dir", str(Path(tmp) / "cache"),
                *(["--data-dir", args.data_dir] if args.data_dir else []), *shlex.split(args.extra)]
        for run in ("cold", "second, identical"):
            counts.clear()
            t0 = time.perf_counter()
            try:
                cli([*argv, "--out", str(Path(tmp) / "report.html")])
            except SystemExit as e:
                if e.code not in (0, None):
                    raise
            seconds = time.perf_counter() - t0
            work = ", ".join(f"{k} {v:,.0f}" for k, v in sorted(counts.items())) or "no model, UMAP or token work"
            print(f"report ({run}): {seconds:.1f} s; {work}", flush=True)
    print("wall-clock seconds depend on the machine's load; the counts do not")


if __name__ == "__main__":
    main()
