"""Benchmark: ``make report`` (``eval`` then ``report`` of one checkpoint) from a cold embedding cache,
counting the sentences that go through the model.

Runs both commands in this process (``simcse_analysis.cli.main``) against an empty ``--cache-dir``, with
``Encoder._run`` (the forward-pass loop) wrapped to count the sentences it encodes per call and the
seconds spent there. Point ``PYTHONPATH`` at another checkout (e.g. ``git archive 76a6111``) to
measure the code before a change with the same script:

    PYTHONPATH=/path/to/checkout python benchmarks/bench_report_reuse.py --out-dir /tmp/rr [--model M]

Prints, per command: wall seconds, sentences encoded (pooled and per-layer passes separately), seconds
inside the forward-pass loop; and the total. Timings depend on the machine's load; counts do not.
``--report-models M@avg M@cls_before_pooler …`` times one cold multi-checkpoint report instead (no
eval): wall seconds versus the seconds spent encoding, in the same run.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sys
import time
from pathlib import Path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="all-MiniLM-L6-v2")
    ap.add_argument("--data-dir", default=os.environ.get("SIMCSE_DATA", "/work/shared/data"))
    ap.add_argument("--out-dir", required=True)
    ap.add_argument("--extra", default="", help="extra report options, e.g. '--no-umap'")
    ap.add_argument("--report-models", nargs="*", default=None,
                    help="skip eval; report these MODEL[@POOLER] arguments together (e.g. three poolers)")
    args = ap.parse_args()

    import simcse_analysis
    from simcse_analysis import encoder as enc_mod
    from simcse_analysis.cli import main as cli_main

    out = Path(args.out_dir)
    cache = out / "cache"
    shutil.rmtree(cache, ignore_errors=True)
    out.mkdir(parents=True, exist_ok=True)
    calls: list[dict] = []
    orig = enc_mod.Encoder._run

    def counting(self, texts, batch_size, show_progress_bar, fn, hidden_states):
        t0 = time.perf_counter()
        arr = orig(self, texts, batch_size, show_progress_bar, fn, hidden_states)
        calls.append({"n": len(texts), "kind": getattr(fn, "__name__", "?"), "shape": list(arr.shape),
                      "seconds": time.perf_counter() - t0})
        return arr

    enc_mod.Encoder._run = counting
    commands = {
        "eval": ["eval", args.model, "--data-dir", args.data_dir, "--json", str(out / "sts.json"),
                 "--cache-dir", str(cache)],
        "report": ["report", *(args.report_models or [args.model]), "--data-dir", args.data_dir,
                   "--out", str(out / "report.html"), "--cache-dir", str(cache), *args.extra.split()],
    }
    if args.report_models:
        del commands["eval"]
    print(f"code: {simcse_analysis.__file__}; python {platform.python_version()}; "
          f"cpus {os.cpu_count()}; OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS')}", flush=True)
    summary = {}
    for name, argv in commands.items():
        start = len(calls)
        t0 = time.perf_counter()
        try:
            cli_main(argv)
        except SystemExit as e:
            if e.code not in (0, None):
                sys.exit(f"{name} failed with exit code {e.code}")
        wall = time.perf_counter() - t0
        mine = calls[start:]
        layers = sum(c["n"] for c in mine if c["shape"] and c["shape"][0] > 1)
        pooled = sum(c["n"] for c in mine) - layers
        enc_s = sum(c["seconds"] for c in mine)
        summary[name] = {"wall_s": round(wall, 1), "forward_calls": len(mine), "sentences_pooled_only": pooled,
                         "sentences_with_layers": layers, "sentences_total": pooled + layers,
                         "encode_s": round(enc_s, 1)}
        print(f"{name}: {json.dumps(summary[name])}", flush=True)
    total = {k: round(sum(s[k] for s in summary.values()), 1) for k in next(iter(summary.values()))}
    print(f"total: {json.dumps(total)}")
    (out / "summary.json").write_text(json.dumps({"commands": summary, "total": total, "calls": calls}, indent=1))


if __name__ == "__main__":
    main()
