"""Encoding throughput of ``Encoder.encode`` versus sentence-transformers' ``encode``.

Same model (all-MiniLM-L6-v2, offline weights), same sentences (the unique sentences of the raw STS-B
test split), same batch size, same process, caches off. The two are timed alternately, ``--repeats``
times each, and the best time of each is compared (sentences/s and the ratio ours / theirs). Also
reports the bf16 ratio against the same fp32 peer and what bf16 does to STS-B test Spearman.

    python benchmarks/bench_encode.py --data-dir ../shared/data
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np


def spearman_cos(a: np.ndarray, b: np.ndarray, gold: np.ndarray) -> float:
    from scipy.stats import spearmanr

    a = a / np.linalg.norm(a, axis=1, keepdims=True)
    b = b / np.linalg.norm(b, axis=1, keepdims=True)
    return 100 * float(spearmanr((a * b).sum(1), gold).statistic)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data-dir", default=os.environ.get("SIMCSE_DATA", "../shared/data"))
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")

    import torch
    from sentence_transformers import SentenceTransformer

    from simcse_analysis.encoder import load_encoder
    from simcse_analysis.sts_data import load_sts

    (sub,) = load_sts("STSBenchmark", args.data_dir, split="test", variant="raw")
    sentences = list(dict.fromkeys(sub.sentences1 + sub.sentences2))
    ours = load_encoder("all-MiniLM-L6-v2", device="cpu", use_cache=False)
    ours_bf16 = load_encoder("all-MiniLM-L6-v2", device="cpu", dtype="bf16", use_cache=False)
    peer = SentenceTransformer(str(ours.path), device="cpu")
    print(f"torch {torch.__version__}, threads {torch.get_num_threads()}, {len(sentences)} sentences, "
          f"batch {args.batch_size}")

    runners = {
        "simcse-analysis fp32": lambda: ours.encode(sentences, batch_size=args.batch_size, show_progress_bar=False),
        "simcse-analysis bf16": lambda: ours_bf16.encode(sentences, batch_size=args.batch_size, show_progress_bar=False),
        "sentence-transformers fp32": lambda: peer.encode(sentences, batch_size=args.batch_size,
                                                          convert_to_numpy=True, show_progress_bar=False),
    }
    best = {k: float("inf") for k in runners}
    outputs = {}
    for name, fn in runners.items():  # warm-up
        outputs[name] = fn()
    for _ in range(args.repeats):
        for name, fn in runners.items():
            t = time.perf_counter()
            fn()
            best[name] = min(best[name], time.perf_counter() - t)
    peer_rate = len(sentences) / best["sentence-transformers fp32"]
    for name, secs in best.items():
        rate = len(sentences) / secs
        print(f"{name:28s} {rate:8.1f} sentences/s  ({secs:.2f} s)  ratio vs ST fp32: {rate / peer_rate:.2f}x")

    index = {s: i for i, s in enumerate(sentences)}
    i1 = [index[s] for s in sub.sentences1]
    i2 = [index[s] for s in sub.sentences2]
    for name in ("simcse-analysis fp32", "simcse-analysis bf16", "sentence-transformers fp32"):
        e = outputs[name]
        print(f"STS-B test Spearman x100, {name:28s}: {spearman_cos(e[i1], e[i2], sub.scores):.2f}")
    diff = spearman_cos(outputs['simcse-analysis bf16'][i1], outputs['simcse-analysis bf16'][i2], sub.scores) \
        - spearman_cos(outputs['simcse-analysis fp32'][i1], outputs['simcse-analysis fp32'][i2], sub.scores)
    print(f"bf16 Spearman change: {diff:+.2f} points")


if __name__ == "__main__":
    main()
