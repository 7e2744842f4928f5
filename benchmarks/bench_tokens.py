"""Cost of the token analysis (``simcse-analyze tokens``) against the encoding it needs, in one run.

Same model (all-MiniLM-L6-v2 by default, 6 layers), same sentences (every distinct STS-B sentence, ≈15k,
or a seeded ``--max-sentences`` sample), same batch size, same process, caches off. Timed, in order:

1. ``Encoder.encode`` (pooled sentence vectors, the peer: what any analysis pays to encode);
2. ``Encoder.encode_layers`` (every hidden state pooled: the per-layer anisotropy's encoding);
3. ``analyze_tokens`` (one forward pass with all hidden states + every token measure + the embedding matrix);
4. of which the embedding-matrix part alone (spectra, kNN over the vocabulary), re-run on its own.

Each phase runs in a fresh process (model loaded and warmed up before the clock starts), so one phase's
freed-but-kept memory cannot hide another's. Peak memory: the resident set size sampled every 10 ms by a
thread, reported as the rise over the RSS at the start of the timed call (MiB). Prints CPU flags, thread
count and load average (the machine may be shared).

    python benchmarks/bench_tokens.py [--max-sentences N] [--batch-size 64]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

from machine import cpu_description, load_line


@contextlib.contextmanager
def peak_rss(interval: float = 0.01) -> Iterator[dict[str, float]]:
    """Yields ``{"rise_mib"}``, filled on exit: the peak resident set size while the block ran, sampled by a
    background thread every ``interval`` seconds, minus the RSS at its start (MiB)."""
    import psutil

    proc = psutil.Process()
    start = peak = proc.memory_info().rss
    stop = threading.Event()
    out: dict[str, float] = {}

    def sample() -> None:
        nonlocal peak
        while not stop.is_set():
            peak = max(peak, proc.memory_info().rss)
            time.sleep(interval)

    thread = threading.Thread(target=sample, daemon=True)
    thread.start()
    try:
        yield out
    finally:
        stop.set()
        thread.join()
        out["rise_mib"] = (max(peak, proc.memory_info().rss) - start) / 2 ** 20


def timed(fn: Callable[[], Any]) -> tuple[float, float, Any]:
    with peak_rss() as mem:
        t = time.perf_counter()
        out = fn()
        secs = time.perf_counter() - t
    return secs, mem["rise_mib"], out


PHASES = {"encode": "encode (pooled sentence vectors)", "layers": "encode_layers (every layer pooled)",
          "tokens": "analyze_tokens (all measures, all layers)", "matrix": "  of which: embedding-matrix summary"}


def run_phase(args: argparse.Namespace) -> dict[str, Any]:
    """One phase in this (fresh) process: model loaded and warmed up first, then timed."""
    import torch

    from simcse_analysis.encoder import load_encoder
    from simcse_analysis.metrics.tokens import embedding_matrix_summary
    from simcse_analysis.token_analysis import (
        TokenSettings,
        _token_matrix,
        analyze_tokens,
        build_units,
        load_token_corpus,
    )

    settings = TokenSettings(max_sentences=args.max_sentences)
    sentences = load_token_corpus(settings, (), args.data_dir).sentences
    enc = load_encoder(args.model, device=args.device, use_cache=False)
    enc.encode(sentences[:64], batch_size=args.batch_size, show_progress_bar=False)  # warm-up
    info: dict[str, Any] = {"n_sentences": len(sentences), "threads": torch.get_num_threads(),
                            "layers": enc.model.config.num_hidden_layers, "dim": enc.model.config.hidden_size,
                            "device": enc.device}
    bs = args.batch_size
    if args.phase == "encode":
        secs, rise, _ = timed(lambda: enc.encode(sentences, batch_size=bs, show_progress_bar=False))
    elif args.phase == "layers":
        secs, rise, _ = timed(lambda: enc.encode_layers(sentences, batch_size=bs, pooler="avg",
                                                        show_progress_bar=False))
    elif args.phase == "tokens":
        secs, rise, res = timed(lambda: analyze_tokens(enc, sentences, settings, batch_size=bs,
                                                       show_progress_bar=False))
        info.update(n_units=res.n_units, n_types=res.n_types, n_mev=res.n_mev_occurrences, n_mev_types=res.n_mev_types)
    else:
        units = build_units(enc.tokenizer, sentences, enc.max_length, settings.units)
        matrix = _token_matrix(enc.model, args.model)
        names = [n or "" for n in enc.tokenizer.convert_ids_to_tokens(list(range(matrix.shape[0])))]
        secs, rise, _ = timed(lambda: embedding_matrix_summary(matrix, units.piece_counts[:matrix.shape[0]], names,
                                                               exclude=enc.tokenizer.all_special_ids))
    return {**info, "secs": secs, "rise_mib": rise}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="all-MiniLM-L6-v2")
    ap.add_argument("--data-dir", default=os.environ.get("SIMCSE_DATA", "../shared/data"))
    ap.add_argument("--max-sentences", type=int, default=None)
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--phase", choices=sorted(PHASES), help=argparse.SUPPRESS)  # internal: one phase per process
    args = ap.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    if args.phase:
        print(json.dumps(run_phase(args)))
        return
    print(f"{cpu_description()}; {load_line()}", flush=True)
    results = {}
    for phase in ("encode", "layers", "tokens", "matrix"):  # each in a fresh process: peaks do not mix
        cmd = [sys.executable, __file__, "--phase", phase, "--model", args.model, "--data-dir", args.data_dir,
               "--batch-size", str(args.batch_size), "--device", args.device]
        if args.max_sentences:
            cmd += ["--max-sentences", str(args.max_sentences)]
        r = json.loads(subprocess.run(cmd, check=True, capture_output=True, text=True).stdout.strip().splitlines()[-1])
        results[phase] = r
        if phase == "encode":
            print(f"{args.model}: {r['layers']} layers, d = {r['dim']}; {r['n_sentences']:,} sentences, batch "
                  f"{args.batch_size}, device {r['device']}, {r['threads']} torch threads")
        print(f"{PHASES[phase]:44s} {r['secs']:8.2f} s   peak RSS rise {r['rise_mib']:8.1f} MiB", flush=True)
    enc, lay, tok, mat = (results[p] for p in ("encode", "layers", "tokens", "matrix"))
    print(f"{tok['n_units']:,} word units, {tok['n_types']:,} types with >= 5 occurrences, MEV on "
          f"{tok['n_mev']:,} stored occurrences of {tok['n_mev_types']} types")
    print(f"token analysis / encode: {tok['secs'] / enc['secs']:.2f}x time; / encode_layers: "
          f"{tok['secs'] / lay['secs']:.2f}x; without the embedding matrix: "
          f"{(tok['secs'] - mat['secs']) / enc['secs']:.2f}x encode")
    print(f"peak RSS rise: token analysis {tok['rise_mib']:.0f} MiB vs encode {enc['rise_mib']:.0f} MiB, "
          f"encode_layers {lay['rise_mib']:.0f} MiB")
    print(f"load average after: {' '.join(f'{x:.1f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
