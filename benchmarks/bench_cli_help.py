"""Start-up latency of ``simcse-analyze --help`` and of every sub-command's ``--help``.

Each is run as a fresh process ``--repeats`` times; the best wall time is printed next to the time of a
bare ``python -c pass`` (the interpreter's own start-up), measured in the same run. Floor: < 0.5 s.

    python benchmarks/bench_cli_help.py
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time


def best_time(cmd: list[str], repeats: int) -> float:
    best = float("inf")
    for _ in range(repeats):
        t = time.perf_counter()
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        best = min(best, time.perf_counter() - t)
    return best


def cpu_flags() -> str:
    """The CPU model and its vector-instruction flags (``/proc/cpuinfo``; empty elsewhere)."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            info = f.read()
    except OSError:
        return ""
    model = next((line.split(":", 1)[1].strip() for line in info.splitlines() if line.startswith("model name")), "?")
    flags = next((line.split(":", 1)[1].split() for line in info.splitlines() if line.startswith("flags")), [])
    vector = [f for f in flags if f.startswith(("sse4", "avx", "amx", "fma"))]
    return f"{model}; {' '.join(vector)}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args()
    import typer.main

    from simcse_analysis.cli import app

    group = typer.main.get_command(app)
    names = [[]] + [[n] for n in sorted(group.commands)]
    for n in sorted(group.commands):  # nested groups such as `train unsup`
        sub = group.commands[n]
        for m in sorted(getattr(sub, "commands", {}) or {}):
            names.append([n, m])
    print(f"CPU: {cpu_flags()}")
    base = best_time([sys.executable, "-c", "pass"], args.repeats)
    print(f"{'python -c pass':36s} {base * 1000:7.0f} ms  (peer)")
    worst = 0.0
    for parts in names:
        t = best_time([sys.executable, "-m", "simcse_analysis", *parts, "--help"], args.repeats)
        worst = max(worst, t)
        print(f"{'simcse-analyze ' + ' '.join(parts) + ' --help':36s} {t * 1000:7.0f} ms  {t / base:5.1f}x peer")
    print(f"slowest: {worst * 1000:.0f} ms (floor 500 ms) -> {'OK' if worst < 0.5 else 'TOO SLOW'}")


if __name__ == "__main__":
    main()
