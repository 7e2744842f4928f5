"""The report in a real browser: headless Chromium (Debian's ``chromium``) driven by Playwright.

Asserts every figure is drawn (SVG paths inside each plot), no console errors, no dialogs (no injected
script ran), no network request besides the page itself, escaped text shown literally in a hover label,
working table sorting; saves a full-page screenshot (``$SIMCSE_SCREENSHOT_DIR``, else the test's tmp dir).

Setup: ``apt-get install -y chromium`` and ``pip install playwright`` (its wheel bundles the driver; no
browser download is needed, the system Chromium is used). Without them the test skips, except under
``CI`` where it fails.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
from pathlib import Path

import pytest
from conftest import HOSTILE_SENTENCE

#: Flags that keep Chromium headless and off the network (no updates, sync, QUIC or background fetches).
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def _chromium() -> str | None:
    for name in ("chromium", "chromium-browser"):
        found = shutil.which(name)
        if found:
            return found
    return "/usr/bin/chromium" if Path("/usr/bin/chromium").exists() else None


@pytest.fixture(scope="module")
def browser():
    exe = _chromium()
    missing = [what for what, ok in (("chromium", exe), ("playwright", importlib.util.find_spec("playwright")))
               if not ok]
    if missing:
        reason = (f"{' and '.join(missing)} not installed: apt-get install -y chromium; "
                  ".venv/bin/pip install playwright")
        if os.environ.get("CI"):
            pytest.fail(f"CI must run the browser test: {reason}")
        pytest.skip(reason)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=exe, args=CHROMIUM_ARGS)
        yield b
        b.close()


@pytest.fixture(scope="module")
def loaded(browser, report_record, tmp_path_factory):
    """The report opened in a fresh page, with every request, console message and dialog recorded."""
    from reports.html import write_report

    path = write_report(report_record, tmp_path_factory.mktemp("browser") / "report.html")
    context = browser.new_context(viewport={"width": 1400, "height": 1000}, service_workers="block")
    page = context.new_page()
    events: dict[str, list] = {"requests": [], "console": [], "dialogs": []}
    context.on("request", lambda r: events["requests"].append(r.url))
    page.on("console", lambda m: events["console"].append((m.type, m.text)))
    page.on("pageerror", lambda e: events["console"].append(("pageerror", str(e))))
    page.on("dialog", lambda d: (events["dialogs"].append(d.message), d.dismiss()))
    page.goto(path.as_uri(), wait_until="load")
    page.wait_for_function("""() => {
        const divs = Array.from(document.querySelectorAll('.plotly-graph-div'));
        return divs.length > 0 && divs.every(d => d._fullLayout && d.querySelector('svg.main-svg'));
    }""", timeout=60_000)
    page.wait_for_timeout(500)  # let plotly finish its last animation frame
    yield page, path, events
    context.close()


def test_every_figure_is_drawn(loaded, report_record):
    page, _, _ = loaded
    figs = page.evaluate("""() => Array.from(document.querySelectorAll('.plotly-graph-div')).map(d => {
        const svg = d.querySelector('svg.main-svg').getBoundingClientRect();
        const paths = Array.from(d.querySelectorAll('g.trace path')).filter(p => (p.getAttribute('d') || '').length > 4);
        return {id: d.id, width: svg.width, height: svg.height, paths: paths.length,
                traces: d._fullData.filter(t => t.visible === true && Array.from(t.x || []).some(v => v != null)).length,
                points: d.querySelectorAll('g.trace path.point').length};
    })""")
    ids = [f["id"] for f in figs]
    assert ids == ["fig-align-uniform", "fig-trajectories", "fig-spectra", "fig-cosine-bins", "fig-random-pairs",
                   "fig-layers", "fig-umap"]
    for f in figs:
        assert f["width"] > 300 and f["height"] > 200, f
        assert f["traces"] > 0 and f["paths"] >= f["traces"], f  # a drawn path per trace with data
    umap = figs[-1]
    assert umap["points"] == len(report_record["umap"]["sentences"]) * len(report_record["models"])


def test_no_console_errors_no_dialogs_no_network(loaded):
    page, path, events = loaded
    assert [m for m in events["console"] if m[0] in ("error", "pageerror", "warning", "trace")] == []
    assert events["dialogs"] == []  # no injected script ran
    assert events["requests"] == [path.as_uri()]  # the page itself, nothing else
    assert page.evaluate("document.querySelectorAll('img, iframe').length") == 0


def test_hover_label_shows_markup_as_text(loaded):
    page, _, _ = loaded
    text = page.evaluate("""() => {
        const gd = document.getElementById('fig-umap');
        const c = gd.data.findIndex(t => t.xaxis === 'x' && (t.customdata || []).some(s => s.includes('&lt;script')));
        const p = gd.data[c].customdata.findIndex(s => s.includes('&lt;script'));
        Plotly.Fx.hover(gd, [{curveNumber: c, pointNumber: p}], 'xy');
        const label = gd.querySelector('.hoverlayer .hovertext');
        return label ? label.textContent : null;
    }""")
    assert text is not None
    assert '<script>alert("x")</script>' in text and "</script><b>bold</b>" in text and "100%{y}" in text
    assert HOSTILE_SENTENCE.split()[0] in text


def test_sts_table_sorts_by_a_clicked_column(loaded, report_record):
    page, _, _ = loaded
    header = page.locator("#sts-table thead th", has_text="Avg.")

    def order() -> list[float]:
        return [float(v) for v in page.eval_on_selector_all(
            "#sts-table tbody tr", "rows => rows.map(r => r.cells[8].getAttribute('data-v'))")]

    header.click()
    assert order() == sorted(order()) and header.get_attribute("aria-sort") == "ascending"
    header.click()
    assert order() == sorted(order(), reverse=True) and header.get_attribute("aria-sort") == "descending"
    assert sorted(order()) == sorted(m["sts_test"]["scores"]["avg"] for m in report_record["models"])


def test_screenshot_is_saved(loaded, tmp_path):
    page, _, _ = loaded
    out_dir = Path(os.environ.get("SIMCSE_SCREENSHOT_DIR") or tmp_path)
    out_dir.mkdir(parents=True, exist_ok=True)
    shot = out_dir / "report_browser.png"
    page.screenshot(path=str(shot), full_page=True)
    assert shot.stat().st_size > 50_000 and shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def extended(browser, report_record, tiny_bert_dir, small_data_dir, tmp_path_factory):
    """The report with the Token level section (``report --tokens``) and the Comparison section
    (``report --compare-from``), opened like :func:`loaded`."""
    from reports.compare_page import comparison_report_parts
    from reports.html import write_report
    from reports.token_page import token_sections
    from simcse_analysis.comparison import CompareSettings, compare
    from simcse_analysis.encoder import load_encoder
    from simcse_analysis.token_analysis import TokenCorpus, TokenSettings, run_token_analysis

    words = ["the cat sat on the mat", "a dog ran in the park", "the bank of the river was wet",
             "she went to the bank to get money", "a man plays a guitar on the stage"]
    enc = load_encoder(tiny_bert_dir, pooler="avg", device="cpu", use_cache=False)
    tokens = run_token_analysis([enc], TokenCorpus(words * 4, "test", []), TokenSettings(min_count=3)).to_dict()
    cmp = compare([f"{tiny_bert_dir}@avg", f"{tiny_bert_dir}@cls_before_pooler"],
                  CompareSettings(resamples=100, k=5, movers=3), data_dir=small_data_dir,
                  encoder_kwargs={"device": "cpu"}).to_dict()
    blocks, cmp_figs = comparison_report_parts(cmp)
    path = write_report(report_record, tmp_path_factory.mktemp("browser_ext") / "report.html", extra_blocks=blocks,
                        extra_sections=[*cmp_figs, *token_sections(tokens)])
    context = browser.new_context(viewport={"width": 1400, "height": 1000}, service_workers="block")
    page = context.new_page()
    events: dict[str, list] = {"requests": [], "console": []}
    context.on("request", lambda r: events["requests"].append(r.url))
    page.on("console", lambda m: events["console"].append((m.type, m.text)))
    page.on("pageerror", lambda e: events["console"].append(("pageerror", str(e))))
    page.goto(path.as_uri(), wait_until="load")
    page.wait_for_function("""() => {
        const divs = Array.from(document.querySelectorAll('.plotly-graph-div'));
        return divs.length > 0 && divs.every(d => d._fullLayout && d.querySelector('svg.main-svg'));
    }""", timeout=60_000)
    yield page, path, events, cmp
    context.close()


def test_token_and_comparison_sections_draw_offline_and_the_movers_table_filters(extended):
    page, path, events, cmp = extended
    ids = page.evaluate("() => Array.from(document.querySelectorAll('.plotly-graph-div')).map(d => d.id)")
    for anchor in ("token-layers", "token-rogue", "token-spectrum", "token-frequency", "cmp-forest"):
        assert f"fig-{anchor}" in ids
    drawn = page.evaluate("""() => Array.from(document.querySelectorAll('.plotly-graph-div')).every(d =>
        d.querySelector('svg.main-svg').getBoundingClientRect().width > 300)""")
    assert drawn
    assert [m for m in events["console"] if m[0] in ("error", "pageerror")] == []
    assert events["requests"] == [path.as_uri()]
    rows = "#movers-table tbody tr"
    total = page.locator(rows).count()
    assert total == sum(len(p["movers"]) for p in cmp["pairs"]) > 0
    first = cmp["pairs"][0]["movers"][0]["sentence1"]
    page.fill("input.filter[data-table='movers-table']", first)
    visible = page.eval_on_selector_all(rows, "rs => rs.filter(r => r.style.display !== 'none').length")
    assert 1 <= visible < total or total == 1
