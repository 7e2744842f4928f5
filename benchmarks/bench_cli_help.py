"""Start-up latency of ``import simcse_analysis``, ``simcse-analyze --help`` and every sub-command's ``--help``.

Each is run as a fresh process ``--repeats`` times; the best wall time is printed next to the time of a
bare ``python -c pass`` (the interpreter's own start-up), measured in the same run. Floor: < 0.5 s.
With ``--baseline REF`` the same commands also run on the tree of git revision ``REF`` (exported to a
temporary directory), interleaved with this tree's runs, and each row prints before / after and their ratio.

    python benchmarks/bench_cli_help.py [--baseline 76a6111] [--repeats 5]
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

from machine import cpu_description

REPO = Path(__file__).resolve().parents[1]


def best_time(cmd: list[str], repeats: int, root: Path) -> float:
    env = {**os.environ, "PYTHONPATH": str(root)}
    best = float("inf")
    for _ in range(repeats):
        t = time.perf_counter()
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=root, env=env)
        best = min(best, time.perf_counter() - t)
    return best


def export_tree(ref: str, into: Path) -> Path:
    """The files of git revision ``ref`` under ``into`` (``git archive``)."""
    archive = into / "tree.tar"
    with open(archive, "wb") as f:
        subprocess.run(["git", "-C", str(REPO), "archive", ref], check=True, stdout=f)
    with tarfile.open(archive) as tf:
        tf.extractall(into / "tree", filter="data")
    return into / "tree"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--baseline", metavar="REF", help="git revision to compare with (e.g. the commit before a change)")
    args = ap.parse_args()
    sys.path.insert(0, str(REPO))
    import typer.main

    from simcse_analysis.cli import app

    group = typer.main.get_command(app)
    names = [[]] + [[n] for n in sorted(group.commands)]
    for n in sorted(group.commands):  # nested groups such as `train unsup`
        sub = group.commands[n]
        for m in sorted(getattr(sub, "commands", {}) or {}):
            names.append([n, m])
    rows = [("import simcse_analysis", [sys.executable, "-c", "import simcse_analysis"])]
    rows += [("simcse-analyze " + " ".join(p + ["--help"]), [sys.executable, "-m", "simcse_analysis", *p, "--help"])
             for p in names]

    print(f"CPU: {cpu_description()}")
    print(f"python {platform.python_version()}; best of {args.repeats} fresh processes per row")
    with tempfile.TemporaryDirectory() as tmp:
        base_root = export_tree(args.baseline, Path(tmp)) if args.baseline else None
        py = best_time([sys.executable, "-c", "pass"], args.repeats, REPO)
        print(f"{'python -c pass':44s} {py * 1000:7.0f} ms")
        head = f"{'':44s} {'after':>10s}" + (f" {'before (' + args.baseline + ')':>18s} {'after/before':>13s}"
                                              if base_root else "")
        print(head)
        worst = 0.0
        for label, cmd in rows:
            if base_root is not None:
                # interleave the two trees so that load on the machine affects both alike
                after = before = float("inf")
                for _ in range(args.repeats):
                    after = min(after, best_time(cmd, 1, REPO))
                    try:
                        before = min(before, best_time(cmd, 1, base_root))
                    except subprocess.CalledProcessError:  # a command the baseline lacks
                        before = float("nan")
                line = f"{label:44s} {after * 1000:7.0f} ms {before * 1000:15.0f} ms {after / before:12.2f}x"
            else:
                after = best_time(cmd, args.repeats, REPO)
                line = f"{label:44s} {after * 1000:7.0f} ms  {after / py:5.1f}x python -c pass"
            if label != "import simcse_analysis":
                worst = max(worst, after)
            print(line)
    print(f"slowest --help: {worst * 1000:.0f} ms (floor 500 ms) -> {'OK' if worst < 0.5 else 'TOO SLOW'}")


if __name__ == "__main__":
    main()
