"""Benchmark: the statistics of ``compare`` against the encoding they reuse (same run, same machine).

- **bootstrap**: each checkpoint's Spearman CIs with ``--resamples`` (default 1,000) resamples on all 7 STS
  tasks for 3 checkpoints (one shared, stratified bootstrap per task, as ``compare`` does);
- **verdicts**: the paired tests of the 2 checkpoints against the baseline as ``compare`` makes them now
  (influence-function standard errors, simultaneous intervals per family: ``comparison.verdict_rows``), and
  for reference the paired permutation tests the earlier design ran (``--resamples`` permutations per task
  and checkpoint);
- **CKA**: linear CKA between every layer of two checkpoints (7 × 7 for MiniLM: embeddings + 6 layers)
  on the distinct STS-B sentences (train + dev + test, ~15k);
- **encoding** (the peer): the same checkpoint encoding the 7 tasks' distinct sentences, and the STS-B
  sentences with every hidden layer pooled, with the embedding cache off. One checkpoint is timed and the
  figure multiplied by the number of checkpoints that need it (3 for the tasks, 2 for the layers) — every
  checkpoint here has the same architecture, so the cost per checkpoint is the same.

Prints the CPU, thread counts and each ratio statistics / encoding. Inputs for the statistics are the
checkpoints' cached embeddings (encoded once beforehand if the cache is cold; that time is not counted).

Usage: ``python benchmarks/bench_compare.py [--models A@avg B@cls_before_pooler C@cls_before_pooler]
[--resamples 1000] [--data-dir D]``

``--cold`` measures the whole of ``compare`` instead (the goal: at most 1.2× its pure encoding), in one run:

- **pure encoding** (the peer, first): each distinct checkpoint among ``--models`` (``A@avg`` and
  ``A@cls_before_pooler`` are one checkpoint) encodes the comparison's distinct sentences (the 7 tasks'
  and the STS-B protocol's, ~28k) once, cache off, its first pooler — the least any comparison must encode;
- **compare, cold**: ``simcse_analysis.comparison.compare`` of ``--models`` end to end against an empty
  ``--cache-dir`` (a fresh temporary directory), ``Encoder._run`` (the forward-pass loop) wrapped to count
  the sentences that go through the model and the seconds spent there.

The pure encoding is timed before and after compare and compare is set against their mean, so a load
that changes during the run shifts both sides alike; wall-clock and this process's CPU time are both
printed. Prints the times, their ratios, and where compare's time went (forward passes, sentences
forwarded vs distinct, the rest: loading, cache, statistics). ``--tasks STSBenchmark,SICKRelatedness``
runs a smaller check; ``--max-length 8`` makes every forward pass cheap, which shows the cost of the rest.

    python benchmarks/bench_compare.py --cold [--models …] [--resamples 1000] [--data-dir D] [--tasks T,…]
"""

from __future__ import annotations

import argparse
import functools
import os
import sys
import time
from pathlib import Path

import numpy as np
from machine import cpu_description

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

DEFAULT_MODELS = ["all-MiniLM-L6-v2@avg", "all-MiniLM-L6-v2@cls_before_pooler",
                  "/work/runs/minilm-unsup-48/best@cls_before_pooler"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", nargs="+", default=DEFAULT_MODELS)
    ap.add_argument("--resamples", type=int, default=1000)
    ap.add_argument("--data-dir", default=None)
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--cold", action="store_true", help="time compare end to end, cold, against pure encoding")
    ap.add_argument("--tasks", default=None, help="with --cold: comma-separated tasks (default: all 7)")
    ap.add_argument("--max-length", type=int, default=None, help="with --cold: truncate every sentence (both sides)")
    args = ap.parse_args()
    if args.cold:
        cold_compare(args)
        return

    import torch

    from simcse_analysis.analysis import EncoderSource
    from simcse_analysis.comparison import (
        CompareSettings,
        ModelScores,
        TaskScores,
        load_compare_data,
        verdict_rows,
    )
    from simcse_analysis.encoder import load_encoder
    from simcse_analysis.metrics import stats
    from simcse_analysis.metrics.similarity import cka_matrix
    from simcse_analysis.pooling import split_pooler
    from simcse_analysis.sts_eval import score_task, unique_pairs

    print(f"CPU: {cpu_description()}")
    print(f"threads: torch {torch.get_num_threads()}, OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')}")
    print("timings are wall-clock on a shared machine (other jobs running): compare the ratios, not the seconds")
    settings = CompareSettings(resamples=args.resamples)
    data = load_compare_data(settings, args.data_dir)
    sentences = data.protocol.sentences
    n_task_sentences = sum(len(unique_pairs(s)[0]) for s in data.tasks.values())
    n_pairs = sum(len(data.gold(t)) for t in data.tasks)
    print(f"data: {len(data.tasks)} tasks, {n_pairs:,} scored pairs, {n_task_sentences:,} distinct task sentences "
          f"(per task); {len(sentences):,} distinct STS-B sentences")

    # ---------------------------------------------------------------- peer: encoding, cache off
    name, pooler = split_pooler(args.models[0])
    cold = load_encoder(name, pooler=pooler, use_cache=False)
    encode_cold = functools.partial(cold.encode, batch_size=args.batch_size)
    t0 = time.perf_counter()
    for subsets in data.tasks.values():
        score_task(encode_cold, subsets)
    t_enc_tasks = time.perf_counter() - t0
    layer_pooler = EncoderSource(cold).layer_pooler
    t0 = time.perf_counter()
    cold.encode_layers(sentences, batch_size=args.batch_size, pooler=layer_pooler)
    t_enc_layers = time.perf_counter() - t0
    cold = encode_cold = None  # free the model before loading the cached ones
    print(f"encoding (1 checkpoint, cache off): 7 tasks {t_enc_tasks:.1f} s; STS-B layers {t_enc_layers:.1f} s")

    # ---------------------------------------------------------------- inputs of the statistics (cached)
    preds, layers = [], []
    for spec in args.models:
        name, pooler = split_pooler(spec)
        enc = load_encoder(name, pooler=pooler)
        src = EncoderSource(enc, args.batch_size)
        preds.append({t: np.concatenate(score_task(src.embed, s)) for t, s in data.tasks.items()})
        if len(layers) < 2:
            layers.append(src.embed_layers(sentences))
    gold = {t: data.gold(t) for t in data.tasks}
    bounds = {t: data.bounds(t) for t in data.tasks}

    # ---------------------------------------------------------------- statistics
    t0 = time.perf_counter()
    stats.task_intervals(preds, gold, bounds, "all", args.resamples, 0)
    t_boot = time.perf_counter() - t0
    scores = [ModelScores(spec, {}, {t: TaskScores([s.subset for s in data.tasks[t]], bounds[t], t, p[t])
                                     for t in data.tasks}) for spec, p in zip(args.models, preds)]
    t0 = time.perf_counter()
    rows = verdict_rows(scores, gold, settings)
    t_verdicts = time.perf_counter() - t0
    t0 = time.perf_counter()
    for other in preds[1:]:
        for t in data.tasks:
            stats.permutation_spearman(preds[0][t], other[t], gold[t], bounds[t], "all", args.resamples, 1)
    t_perm = time.perf_counter() - t0
    t0 = time.perf_counter()
    m = cka_matrix(list(layers[0]), list(layers[1]))
    t_cka = time.perf_counter() - t0

    k = len(args.models)
    enc_tasks, enc_layers = k * t_enc_tasks, 2 * t_enc_layers
    print(f"\nbootstrap, {args.resamples} resamples x 7 tasks x {k} checkpoints: {t_boot:.2f} s"
          f"   vs encoding the tasks for {k} checkpoints {enc_tasks:.1f} s   ratio {t_boot / enc_tasks:.3f}")
    print(f"verdicts (influence-function se, simultaneous intervals), {len(rows)} rows: {t_verdicts:.3f} s"
          f"   ratio to the same encoding {t_verdicts / enc_tasks:.5f}")
    print(f"  for reference, the earlier design's paired permutation tests, {args.resamples} permutations x 7 tasks"
          f" x {k - 1} pairs: {t_perm:.2f} s   ratio {t_perm / enc_tasks:.3f}")
    print(f"CKA {m.shape[0]}x{m.shape[1]} layers on {len(sentences):,} sentences: {t_cka:.2f} s"
          f"   vs encoding the layers of 2 checkpoints {enc_layers:.1f} s   ratio {t_cka / enc_layers:.3f}")
    total_stats, total_enc = t_boot + t_verdicts + t_cka, enc_tasks + enc_layers
    print(f"all statistics {total_stats:.1f} s vs all encoding {total_enc:.1f} s: ratio {total_stats / total_enc:.3f} "
          f"({'statistics cheaper' if total_stats < total_enc else 'STATISTICS DEARER'})")
    print("CKA diagonal: " + ", ".join(f"{m[i, i]:.3f}" for i in range(min(m.shape))))


def cold_compare(args: argparse.Namespace) -> None:
    """``--cold``: compare end to end from an empty cache vs the pure encoding of its distinct sentences."""
    import tempfile

    import torch

    from simcse_analysis.checkpoint import resolve_checkpoint
    from simcse_analysis.comparison import CompareSettings, compare, load_compare_data
    from simcse_analysis.encoder import Encoder, load_encoder
    from simcse_analysis.pooling import split_pooler
    from simcse_analysis.sts_eval import unique_pairs

    print(f"CPU: {cpu_description()}")
    print(f"threads: torch {torch.get_num_threads()}, OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')}")
    tasks = tuple(args.tasks.split(",")) if args.tasks else None
    settings = CompareSettings(tasks=tasks, resamples=args.resamples)
    data = load_compare_data(settings, args.data_dir)
    distinct = list(dict.fromkeys([*data.protocol.sentences,
                                   *(t for subsets in data.tasks.values() for t in unique_pairs(subsets)[0])]))
    groups: dict[str, tuple[str, str | None]] = {}
    for spec in args.models:
        name, pooler = split_pooler(spec)
        groups.setdefault(str(resolve_checkpoint(name).resolve()), (name, pooler))
    print(f"data: {len(data.tasks)} task(s), {len(distinct):,} distinct sentences (tasks + STS-B protocol); "
          f"{len(args.models)} checkpoint argument(s) = {len(groups)} distinct checkpoint(s)")

    def pure_encoding() -> tuple[float, float]:
        wall = cpu = 0.0
        for name, pooler in groups.values():
            enc = load_encoder(name, pooler=pooler, use_cache=False, max_length=args.max_length)
            t0, c0 = time.perf_counter(), time.process_time()
            enc.encode(distinct, batch_size=args.batch_size)
            wall, cpu = wall + time.perf_counter() - t0, cpu + time.process_time() - c0
            del enc
        print(f"pure encoding: {len(groups)} x {len(distinct):,} sentences, cache off: {wall:.1f} s (CPU {cpu:.1f} s)",
              flush=True)
        return wall, cpu

    before = pure_encoding()
    forward = {"seconds": 0.0, "sentences": 0, "passes": 0}
    run = Encoder._run

    def timed_run(self, texts, *a, **k):
        t0 = time.perf_counter()
        try:
            return run(self, texts, *a, **k)
        finally:
            forward["seconds"] += time.perf_counter() - t0
            forward["sentences"] += len(texts)
            forward["passes"] += 1

    Encoder._run = timed_run
    with tempfile.TemporaryDirectory(prefix="bench_compare_cache_") as cache:
        t0, c0 = time.perf_counter(), time.process_time()
        compare(args.models, settings, data_dir=args.data_dir, batch_size=args.batch_size,
                encoder_kwargs={"cache_dir": cache, "max_length": args.max_length})
        t_cold, c_cold = time.perf_counter() - t0, time.process_time() - c0
    Encoder._run = run
    after = pure_encoding()
    t_pure, c_pure = (before[0] + after[0]) / 2, (before[1] + after[1]) / 2
    print(f"compare, cold cache: {t_cold:.1f} s (CPU {c_cold:.1f} s); forward passes {forward['seconds']:.1f} s over "
          f"{forward['sentences']:,} sentences in {forward['passes']} call(s) (distinct sentences x distinct "
          f"checkpoints = {len(distinct) * len(groups):,}); everything else {t_cold - forward['seconds']:.1f} s "
          "(loading, cache, statistics, CKA, kNN)")
    print(f"ratio compare cold / pure encoding (mean of before and after): wall {t_cold / t_pure:.2f}, CPU "
          f"{c_cold / c_pure:.2f} (goal <= 1.2)")
    print("timings are wall-clock; on a shared machine compare the ratios, not the seconds")


if __name__ == "__main__":
    main()
