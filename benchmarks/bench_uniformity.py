"""Benchmark: exact uniformity and the singular-value spectrum at realistic sizes, in bounded memory.

Each measurement runs in its own child process, so its peak RSS (``getrusage(RUSAGE_SELF).ru_maxrss``)
covers exactly that computation plus its input data:

- ``uniformity``: N random unit vectors in d dims (default 100,000 × 384, float32). Times (a) the
  bare blocked products ``X_I·X_Jᵀ`` over the upper-triangle tiles that the exact computation needs
  and (b) :func:`simcse_analysis.metrics.uniformity` on the same data, and prints both and the ratio.
  ``torch.pdist`` would need N(N−1)/2 float32 distances, ~20 GB here.
- ``spectrum``: 100,000 × 768 float32. Times the bare float64 Gram products (``dsyrk`` over the same
  row blocks) and :func:`simcse_analysis.metrics.spectrum` (centred), and prints the ratio;
  ``--svd`` also times ``scipy.linalg.svdvals`` on the same matrix (the full-SVD peer).
- ``accuracy``: float32 vs float64 uniformity on a subset (N = 20,000), relative difference.

Usage: ``python benchmarks/bench_uniformity.py [--n 100000] [--d 384] [--spectrum-d 768] [--svd]``
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def _unit_vectors(n: int, d: int, seed: int = 0) -> np.ndarray:
    """n uniform random unit vectors in R^d, float32, generated in blocks (no float64 N×d temporary)."""
    rng = np.random.default_rng(seed)
    x = np.empty((n, d), dtype=np.float32)
    for s in range(0, n, 8192):
        g = rng.standard_normal((min(8192, n - s), d))
        x[s:s + len(g)] = g / np.linalg.norm(g, axis=1, keepdims=True)
    return x


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # Linux reports KiB


def child_uniformity(n: int, d: int) -> dict:
    from simcse_analysis.metrics.align_uniform import UNIFORMITY_BLOCK, uniformity, uniformity_sampled

    x = _unit_vectors(n, d)
    b = min(UNIFORMITY_BLOCK, n)
    tile = np.empty((b, b), dtype=np.float32)
    t0 = time.perf_counter()
    for r0 in range(0, n, b):
        for c0 in range(r0, n, b):
            left, right = x[r0:r0 + b], x[c0:c0 + b]
            np.matmul(left, right.T, out=tile[: len(left), : len(right)])
    t_products = time.perf_counter() - t0
    rss_before = _peak_rss_mb()
    t0 = time.perf_counter()
    value = uniformity(x)
    t_metric = time.perf_counter() - t0
    t0 = time.perf_counter()
    est = uniformity_sampled(x, n_pairs=1_000_000)
    t_sampled = time.perf_counter() - t0
    return {"n": n, "d": d, "products_s": t_products, "metric_s": t_metric, "value": value,
            "sampled": est.value, "sampled_stderr": est.stderr, "sampled_s": t_sampled,
            "peak_rss_mb": _peak_rss_mb(), "rss_before_metric_mb": rss_before, "data_mb": x.nbytes / 2**20}


def child_spectrum(n: int, d: int) -> dict:
    from scipy.linalg.blas import dsyrk

    from simcse_analysis.metrics.spectrum import GRAM_BLOCK, spectrum

    rng = np.random.default_rng(1)
    x = np.empty((n, d), dtype=np.float32)
    scales = np.geomspace(1.0, 1e-3, d)  # a decaying spectrum, like real embeddings
    for s in range(0, n, 8192):
        m = min(8192, n - s)
        x[s:s + m] = rng.standard_normal((m, d)) * scales + 0.5
    g = np.zeros((d, d), order="F")
    t0 = time.perf_counter()
    for s in range(0, n, GRAM_BLOCK):
        g = dsyrk(1.0, x[s:s + GRAM_BLOCK].astype(np.float64), beta=1.0, c=g, trans=1, overwrite_c=1)
    t_products = time.perf_counter() - t0
    t0 = time.perf_counter()
    sp = spectrum(x, center=True)
    t_metric = time.perf_counter() - t0
    return {"n": n, "d": d, "products_s": t_products, "metric_s": t_metric, "effective_rank": sp.effective_rank,
            "stable_rank": sp.stable_rank, "peak_rss_mb": _peak_rss_mb(), "data_mb": x.nbytes / 2**20}


def child_svd(n: int, d: int) -> dict:
    from scipy.linalg import svdvals

    rng = np.random.default_rng(1)
    x = np.empty((n, d), dtype=np.float32)
    scales = np.geomspace(1.0, 1e-3, d)
    for s in range(0, n, 8192):
        m = min(8192, n - s)
        x[s:s + m] = rng.standard_normal((m, d)) * scales + 0.5
    t0 = time.perf_counter()
    x -= x.mean(axis=0)
    svdvals(x, overwrite_a=True, check_finite=False)
    return {"n": n, "d": d, "svd_s": time.perf_counter() - t0, "peak_rss_mb": _peak_rss_mb()}


def child_accuracy(n: int, d: int) -> dict:
    from simcse_analysis.metrics.align_uniform import uniformity

    x = _unit_vectors(n, d, seed=2)
    a, b = uniformity(x, precision="float32"), uniformity(x, precision="float64")
    return {"n": n, "d": d, "float32": a, "float64": b, "rel_diff": abs(a - b) / abs(b)}


CHILDREN = {"uniformity": child_uniformity, "spectrum": child_spectrum, "svd": child_svd,
            "accuracy": child_accuracy}


def run_child(kind: str, n: int, d: int) -> dict:
    out = subprocess.run([sys.executable, __file__, "--child", kind, "--n", str(n), "--d", str(d)],
                         check=True, capture_output=True, text=True, env=os.environ.copy())
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=100_000)
    ap.add_argument("--d", type=int, default=384)
    ap.add_argument("--spectrum-d", type=int, default=768)
    ap.add_argument("--svd", action="store_true", help="also time a full SVD of the spectrum matrix")
    ap.add_argument("--child", choices=sorted(CHILDREN))
    args = ap.parse_args()
    if args.child:
        print(json.dumps(CHILDREN[args.child](args.n, args.d)))
        return

    acc = run_child("accuracy", min(args.n, 20_000), args.d)
    print(f"accuracy  N={acc['n']} d={acc['d']}: float32 {acc['float32']:.10f}  float64 {acc['float64']:.10f}"
          f"  rel diff {acc['rel_diff']:.2e}")
    u = run_child("uniformity", args.n, args.d)
    print(f"uniformity N={u['n']} d={u['d']} (data {u['data_mb']:.0f} MB): value {u['value']:.6f}"
          f"  (sampled 1e6 pairs: {u['sampled']:.6f} ± {u['sampled_stderr']:.6f}, {u['sampled_s']:.2f} s)")
    print(f"  bare blocked products {u['products_s']:.2f} s   exact uniformity {u['metric_s']:.2f} s"
          f"   ratio {u['metric_s'] / u['products_s']:.2f}   peak RSS {u['peak_rss_mb']:.0f} MB"
          f"   (pdist would hold {args.n * (args.n - 1) / 2 * 4 / 1e9:.0f} GB of distances)")
    s = run_child("spectrum", args.n, args.spectrum_d)
    print(f"spectrum  N={s['n']} d={s['d']} (data {s['data_mb']:.0f} MB): erank {s['effective_rank']:.2f}"
          f"  stable rank {s['stable_rank']:.3f}")
    print(f"  bare Gram products {s['products_s']:.2f} s   spectrum(centred) {s['metric_s']:.2f} s"
          f"   ratio {s['metric_s'] / s['products_s']:.2f}   peak RSS {s['peak_rss_mb']:.0f} MB")
    if args.svd:
        v = run_child("svd", args.n, args.spectrum_d)
        print(f"  full SVD (scipy svdvals) {v['svd_s']:.2f} s   peak RSS {v['peak_rss_mb']:.0f} MB"
              f"   -> Gram method {v['svd_s'] / s['metric_s']:.1f}x faster")


if __name__ == "__main__":
    main()
