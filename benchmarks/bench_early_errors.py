"""Time to the error for bad input that used to be caught late (issue 24, items 3 and 8).

Two cases, each run as a fresh ``simcse-analyze`` process on this tree and, with ``--baseline REF``, on the tree
of git revision ``REF`` (exported to a temporary directory):

* ``compare MODEL nonexistent``: the second checkpoint does not exist;
* ``report MODEL --compare-from wrong.json``: the file is not a ``compare --json`` document.

Each row prints the exit code, the error line and the seconds until the process ended. ``--cold`` gives each
run an empty embedding cache (what a first run costs); by default the cache of ``$SIMCSE_CACHE`` is used.

    python benchmarks/bench_early_errors.py --data-dir ../shared/data [--baseline 5a5017a] [--cold]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench_cli_help import export_tree
from machine import cpu_description

REPO = Path(__file__).resolve().parents[1]


def run(root: Path, args: list[str], cache: str | None) -> tuple[int, str, float]:
    env = {**os.environ, "PYTHONPATH": str(root)}
    if cache is not None:
        env["SIMCSE_CACHE"] = cache
    t = time.perf_counter()
    p = subprocess.run([sys.executable, "-m", "simcse_analysis", *args], cwd=root, env=env, capture_output=True,
                       text=True, check=False)
    seconds = time.perf_counter() - t
    errors = [line for line in p.stderr.splitlines() if line.startswith("error:")]
    line = errors[-1] if errors else (p.stderr.strip().splitlines() or [""])[-1]
    return p.returncode, line[:110], seconds


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data-dir", required=True)
    ap.add_argument("--model", default="all-MiniLM-L6-v2")
    ap.add_argument("--baseline", metavar="REF", help="git revision to compare with (e.g. 5a5017a)")
    ap.add_argument("--cold", action="store_true", help="an empty embedding cache for every run")
    args = ap.parse_args()
    data = str(Path(args.data_dir).resolve())
    with tempfile.TemporaryDirectory() as tmp:
        tmpdir = Path(tmp)
        wrong = tmpdir / "wrong.json"
        wrong.write_text(json.dumps({"results": []}))
        cases = {
            "compare MODEL nonexistent": ["compare", args.model, str(tmpdir / "nonexistent"), "--data-dir", data,
                                          "--no-progress"],
            "report MODEL --compare-from wrong.json": ["report", args.model, "--compare-from", str(wrong), "--out",
                                                       str(tmpdir / "page.html"), "--data-dir", data,
                                                       "--no-progress"],
        }
        trees = [("this tree", REPO)]
        if args.baseline:
            trees.append((args.baseline, export_tree(args.baseline, tmpdir)))
        print(f"CPU: {cpu_description()}; python {sys.version.split()[0]}; cache: "
              f"{'cold (empty) per run' if args.cold else os.environ.get('SIMCSE_CACHE', 'default')}")
        for case, argv in cases.items():
            for label, root in trees:
                if args.baseline and label != "this tree":
                    argv = [a for a in argv if a != "--no-progress"]  # the older tree lacks the flag here
                cache = tempfile.mkdtemp(dir=tmp) if args.cold else None
                code, line, seconds = run(root, argv, cache)
                print(f"{case:42s} {label:10s} exit {code}  {seconds:8.1f} s  {line}")


if __name__ == "__main__":
    main()
