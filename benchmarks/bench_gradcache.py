"""Gradient caching: peak memory and steps/s of one contrastive batch computed in mini-batches vs all at once.

Both arms train the same model (unsupervised SimCSE, ``cls_before_pooler``, dropout 0.1, AdamW) on the same
rows with the same batch size ``B``; the peer is the plain full-batch step, ours is ``--mini-batch-size M``
(:mod:`trainers.gradcache`). Each arm runs in its own child process (so peak memory is its own): after
loading the model and building the batches, the resident set size is recorded, ``--warmup`` untimed and
``--steps`` timed optimiser steps are run (forward, backward, clipping, AdamW), and the peak RSS growth
during the steps (``ru_maxrss`` − RSS before the steps; on CUDA, ``torch.cuda.max_memory_allocated``) and the
median step time are reported. Prints both, the ratios ours / peer, and the CPU flags.

    python benchmarks/bench_gradcache.py [--model all-MiniLM-L6-v2] [--batch-size 256] [--mini-batch-size 32]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

from machine import cpu_description

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def _rss_kib() -> int:
    with open("/proc/self/status", encoding="utf-8") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def child(a: argparse.Namespace) -> None:
    import torch
    from transformers import AutoTokenizer

    from simcse_analysis.checkpoint import resolve_checkpoint
    from trainers.data import ContrastiveCollator, load_training_data
    from trainers.model import SimCSEModel

    torch.manual_seed(0)
    path = str(resolve_checkpoint(a.model))
    mini = a.mini_batch_size if a.arm == "cached" else None
    model = SimCSEModel.from_pretrained(path, pooler="cls_before_pooler", dropout=0.1, mini_batch_size=mini)
    device = torch.device(a.device)
    model.to(device).train()
    collate = ContrastiveCollator(load_training_data([a.corpus], "unsup"), AutoTokenizer.from_pretrained(path),
                                  a.max_length)
    batches = [{k: v.to(device) for k, v in collate(range(i * a.batch_size, (i + 1) * a.batch_size)).items()}
               for i in range(a.warmup + a.steps)]
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=3e-5)
    times = []
    base_rss = _rss_kib()
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
        base_cuda = torch.cuda.memory_allocated(device)
    for i, batch in enumerate(batches):
        t = time.perf_counter()
        out = model(**batch)
        out["loss"].backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        if i >= a.warmup:
            times.append(time.perf_counter() - t)
    peak_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    result = {"arm": a.arm, "median_step_s": statistics.median(times), "steps": len(times),
              "peak_growth_mib": (peak_rss - base_rss) / 1024, "peak_rss_mib": peak_rss / 1024,
              "loss": float(out["reported_loss"])}
    if device.type == "cuda":
        result["peak_cuda_growth_mib"] = (torch.cuda.max_memory_allocated(device) - base_cuda) / 2**20
    print("RESULT " + json.dumps(result))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default="all-MiniLM-L6-v2")
    p.add_argument("--corpus", default=os.path.join(os.environ.get("SIMCSE_DATA", str(REPO.parent / "shared" / "data")),
                                                    "unsup", "wiki1m_for_simcse.head.txt"))
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument("--mini-batch-size", type=int, default=32)
    p.add_argument("--max-length", type=int, default=32)
    p.add_argument("--warmup", type=int, default=1)
    p.add_argument("--steps", type=int, default=3)
    p.add_argument("--device", default="cpu")
    p.add_argument("--arm", choices=["plain", "cached"], help=argparse.SUPPRESS)
    a = p.parse_args()
    if a.arm:
        child(a)
        return
    results = {}
    for arm in ("plain", "cached"):
        cmd = [sys.executable, __file__, "--arm", arm] + [x for k, v in vars(a).items() if k != "arm"
                                                         for x in (f"--{k.replace('_', '-')}", str(v))]
        out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
        results[arm] = json.loads(next(line for line in out.splitlines() if line.startswith("RESULT "))[7:])
    plain, cached = results["plain"], results["cached"]
    print(f"model {a.model}, batch {a.batch_size}, mini-batch {a.mini_batch_size}, max length {a.max_length}, "
          f"device {a.device}, {a.steps} timed steps after {a.warmup}; CPU: {cpu_description()}; "
          f"threads {os.environ.get('OMP_NUM_THREADS', 'default')}")
    for arm, r in results.items():
        print(f"{arm:>6}: {1 / r['median_step_s']:.4f} steps/s (median step {r['median_step_s']:.2f} s), peak memory "
              f"growth during steps {r['peak_growth_mib']:.0f} MiB (peak RSS {r['peak_rss_mib']:.0f} MiB)"
              + (f", CUDA {r['peak_cuda_growth_mib']:.0f} MiB" if "peak_cuda_growth_mib" in r else ""))
    print(f"ratio cached / plain: steps/s {plain['median_step_s'] / cached['median_step_s']:.2f}x, peak memory "
          f"growth {cached['peak_growth_mib'] / plain['peak_growth_mib']:.2f}x")
    print(json.dumps(results))


if __name__ == "__main__":
    main()
