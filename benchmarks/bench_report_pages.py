"""Benchmark: page weight and first paint of report pages, before (a git revision) and after (this tree).

Renders the same saved documents with the ``reports/`` package of ``--before`` (default 5a5017a, taken
with ``git archive`` into a temporary directory) and with the working tree's, then opens each page
``--runs`` times in headless Chromium (Debian's ``chromium``, driven by Playwright, offline) at 1280 × 720
and reports medians of:

- **weight**: the HTML file's size;
- **first paint**: ``first-contentful-paint`` of the Paint Timing API (text and tables on screen);
- **first figure**: until the first figure box on the first screen (or, when none is there, the first one
  on the page after scrolling to it) holds its drawn SVG;
- **load**: the ``load`` event.

Pages: ``make report``'s (``--record``: a ``report --json`` record of one checkpoint) and, when given, a
report with the comparison and token sections (``--record3`` with ``--compare`` and ``--tokens``: a
3-checkpoint record, a ``compare --json`` document and a ``tokens --json`` document), as
``report --from-json R --compare-from C --tokens-from T`` builds it. Build the inputs once, e.g.::

    M=all-MiniLM-L6-v2; D=../shared/data
    .venv/bin/simcse-analyze report $M --data-dir $D --json out/one.json
    .venv/bin/simcse-analyze report $M@avg $M@cls_before_pooler $M@avg_first_last --data-dir $D --json out/three.json
    .venv/bin/simcse-analyze compare $M@avg $M@cls_before_pooler $M@avg_first_last --data-dir $D --json out/cmp.json
    .venv/bin/simcse-analyze tokens $M@avg $M@cls_before_pooler $M@avg_first_last --data-dir $D --json out/tok.json
    .venv/bin/python benchmarks/bench_report_pages.py --record out/one.json --record3 out/three.json \\
        --compare out/cmp.json --tokens out/tok.json

Wall-clock figures depend on the machine and its load: compare the before/after ratios of one run.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

# Render with whichever reports/ package comes first on sys.path (argv: record, compare|-, tokens|-, out).
_RENDER = r"""
import json, sys
sys.path.insert(0, sys.argv[1])
import reports
assert reports.__file__.startswith(sys.argv[1]), reports.__file__
from reports.html import write_report
record = json.load(open(sys.argv[2], encoding="utf-8"))
cmp = json.load(open(sys.argv[3], encoding="utf-8")) if sys.argv[3] != "-" else None
tok = json.load(open(sys.argv[4], encoding="utf-8")) if sys.argv[4] != "-" else None
blocks, sections = [], []
if cmp is not None:
    from reports.compare_page import comparison_report_parts
    blocks, sections = comparison_report_parts(cmp)
    record["comparison"] = cmp
if tok is not None:
    from reports.token_page import token_sections
    sections = [*sections, *token_sections(tok)]
    record["tokens"] = tok
write_report(record, sys.argv[5], extra_blocks=blocks, extra_sections=sections)
"""

_FIRST_FIGURE = """() => {
    const boxes = Array.from(document.querySelectorAll('.plotly-graph-div'));
    const onScreen = boxes.find(d => d.getBoundingClientRect().top < window.innerHeight);
    return !!(onScreen || boxes[0]) && !!(onScreen || boxes[0]).querySelector('svg.main-svg');
}"""


def _chromium() -> str:
    for name in ("chromium", "chromium-browser"):
        if shutil.which(name):
            return shutil.which(name)
    sys.exit("chromium not found: apt-get install -y chromium (make browser)")


def render(reports_parent: Path, record: Path, compare: Path | None, tokens: Path | None, out: Path) -> float:
    """Render one page with the ``reports`` package under ``reports_parent``; returns seconds."""
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-c", _RENDER, str(reports_parent), str(record), str(compare or "-"),
                    str(tokens or "-"), str(out)], check=True, cwd=REPO)
    return time.perf_counter() - t0


def measure(browser, page_path: Path, runs: int) -> dict[str, float]:
    """Median first paint, first figure and load (ms) over ``runs`` fresh pages; the page weight (MB)."""
    samples: dict[str, list[float]] = {"first_paint_ms": [], "first_figure_ms": [], "load_ms": []}
    for _ in range(runs):
        context = browser.new_context(viewport={"width": 1280, "height": 720}, service_workers="block")
        page = context.new_page()
        requests: list[str] = []
        context.on("request", lambda r, seen=requests: seen.append(r.url))
        t0 = time.perf_counter()
        page.goto(page_path.as_uri(), wait_until="load")
        load = (time.perf_counter() - t0) * 1000
        fcp = page.evaluate("""() => new Promise(resolve => {
            const get = () => performance.getEntriesByName('first-contentful-paint')[0];
            const e = get(); if (e) return resolve(e.startTime);
            new PerformanceObserver(() => resolve(get().startTime)).observe({type: 'paint', buffered: true});
        })""")
        on_screen = page.evaluate("""() => Array.from(document.querySelectorAll('.plotly-graph-div'))
            .some(d => d.getBoundingClientRect().top < window.innerHeight)""")
        if not on_screen:
            page.evaluate("() => { const d = document.querySelector('.plotly-graph-div'); if (d) d.scrollIntoView(); }")
        page.wait_for_function(_FIRST_FIGURE, timeout=120_000, polling=10)
        first_fig = page.evaluate("performance.now()")
        extra = [u for u in requests if u != page_path.as_uri()]
        if extra:
            sys.exit(f"{page_path} made external requests: {extra[:3]}")
        samples["first_paint_ms"].append(fcp)
        samples["first_figure_ms"].append(first_fig)
        samples["load_ms"].append(load)
        context.close()
    out = {k: statistics.median(v) for k, v in samples.items()}
    out["weight_mb"] = page_path.stat().st_size / 1e6
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--record", type=Path, required=True, help="report --json record (make report's page)")
    ap.add_argument("--record3", type=Path, help="a 3-checkpoint record, for the page with comparison and tokens")
    ap.add_argument("--compare", type=Path, help="compare --json document (with --record3)")
    ap.add_argument("--tokens", type=Path, help="tokens --json document (with --record3)")
    ap.add_argument("--before", default="5a5017a", help="git revision of the 'before' pages")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--out-dir", type=Path, default=Path(tempfile.gettempdir()) / "bench_report_pages")
    args = ap.parse_args()

    out = args.out_dir
    out.mkdir(parents=True, exist_ok=True)
    before = Path(tempfile.mkdtemp(prefix="reports_before_"))
    archive = subprocess.run(["git", "archive", args.before, "reports"], cwd=REPO, check=True, capture_output=True)
    subprocess.run(["tar", "-x", "-C", str(before)], input=archive.stdout, check=True)

    pages = [("make report (1 checkpoint)", args.record, None, None)]
    if args.record3:
        pages.append(("3 checkpoints + compare + tokens", args.record3, args.compare, args.tokens))
    from playwright.sync_api import sync_playwright

    print(f"{os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f}; before = {args.before}, after = working tree; "
          f"median of {args.runs} runs at 1280x720")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=_chromium(), args=[
            "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
            "--disable-background-networking", "--disable-component-update", "--disable-sync"])
        for name, record, cmp, tok in pages:
            results = {}
            for which, parent in (("before", before), ("after", REPO)):
                path = out / f"{name.split()[0]}_{len(json.loads(record.read_text())['models'])}_{which}.html"
                doc = cmp if which == "after" or cmp is None else _as_version_1(cmp, out)
                secs = render(parent, record, doc, tok, path)
                results[which] = {**measure(browser, path, args.runs), "render_s": secs}
            b, a = results["before"], results["after"]
            print(f"\n{name}")
            for key, unit in (("weight_mb", "MB"), ("first_paint_ms", "ms"), ("first_figure_ms", "ms"),
                              ("load_ms", "ms"), ("render_s", "s")):
                ratio = a[key] / b[key] if b[key] else float("nan")
                print(f"  {key:<16} before {b[key]:9.1f} {unit:<2}  after {a[key]:9.1f} {unit:<2}  after/before {ratio:5.2f}")
        browser.close()
    shutil.rmtree(before, ignore_errors=True)


def _as_version_1(cmp: Path, out: Path) -> Path:
    """The comparison document as the 'before' renderer reads it (version 1 named the adjusted p ``p_holm``)."""
    doc = json.loads(cmp.read_text(encoding="utf-8"))
    for row in doc.get("rows", []):
        row.setdefault("p_holm", row.get("p_adjusted"))
    path = out / f"{cmp.stem}_v1.json"
    path.write_text(json.dumps(doc), encoding="utf-8")
    return path


if __name__ == "__main__":
    main()
