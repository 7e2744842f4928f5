"""The report in a real browser: headless Chromium (Debian's ``chromium``) driven by Playwright.

At 1280 × 720 px asserts: the summary is the first screen; figures are drawn when scrolled into view
(and all of them on request, as printing does), each with SVG paths; one colour per checkpoint in every
figure (the colour of its swatch in the summary); no horizontal overflow; every heading visible below the
sticky navigation after a jump; no console errors, no dialogs (no injected script ran), no network request
besides the page itself; escaped text shown literally in a hover label; working table sorting and the
movers filter. Saves screenshots of the first screen (``$SIMCSE_SCREENSHOT_DIR``, else the test's tmp dir).

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


#: The screen the pages are checked on (a laptop): no horizontal overflow at this width.
VIEWPORT = {"width": 1280, "height": 720}


def _open(browser, path: Path) -> tuple:
    """``path`` in a fresh 1280 × 720 page, recording every request, console message and dialog."""
    context = browser.new_context(viewport=VIEWPORT, service_workers="block")
    page = context.new_page()
    events: dict[str, list] = {"requests": [], "console": [], "dialogs": []}
    context.on("request", lambda r: events["requests"].append(r.url))
    page.on("console", lambda m: events["console"].append((m.type, m.text)))
    page.on("pageerror", lambda e: events["console"].append(("pageerror", str(e))))
    page.on("dialog", lambda d: (events["dialogs"].append(d.message), d.dismiss()))
    page.goto(path.as_uri(), wait_until="load")
    page.wait_for_function("() => typeof Plotly !== 'undefined'", timeout=60_000)  # unpacked after first paint
    return context, page, events


def _render_all(page) -> None:
    """Draw every figure (as printing does) and wait until each holds its SVG."""
    page.evaluate("() => window.simcseRenderAll()")
    page.wait_for_function("""() => Array.from(document.querySelectorAll('.plotly-graph-div'))
        .every(d => d._fullLayout && d.querySelector('svg.main-svg'))""", timeout=60_000)


@pytest.fixture(scope="module")
def loaded(browser, report_record, tmp_path_factory):
    """The report opened in a fresh page, nothing scrolled yet."""
    from reports.html import write_report

    path = write_report(report_record, tmp_path_factory.mktemp("browser") / "report.html")
    context, page, events = _open(browser, path)
    yield page, path, events
    context.close()


def test_the_summary_is_the_first_screen_and_figures_wait_until_scrolled_into_view(loaded):
    page, _, _ = loaded
    first = page.evaluate("""() => {
        const main = document.querySelector('main'), first = main.querySelector('section');
        const r = first.getBoundingClientRect();
        return {id: first.id, top: r.top, text: first.innerText.slice(0, 400)};
    }""")
    assert first["id"] == "summary" and first["top"] < 150  # right under the header and the one-line nav
    assert "STS avg" in first["text"] and "95% CI" in first["text"]
    drawn = "id => !!document.getElementById(id).querySelector('svg.main-svg')"
    page.wait_for_timeout(300)
    assert not page.evaluate(drawn, "fig-umap")  # far below: not drawn yet
    page.evaluate("document.getElementById('fig-umap').scrollIntoView()")
    page.wait_for_function(f"() => ({drawn})('fig-umap')", timeout=30_000)


def test_every_figure_is_drawn(loaded, report_record):
    page, _, _ = loaded
    _render_all(page)
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
    _render_all(page)
    assert [m for m in events["console"] if m[0] in ("error", "pageerror", "warning", "trace")] == []
    assert events["dialogs"] == []  # no injected script ran
    assert events["requests"] == [path.as_uri()]  # the page itself, nothing else
    assert page.evaluate("document.querySelectorAll('img, iframe').length") == 0


def test_hover_label_shows_markup_as_text(loaded):
    page, _, _ = loaded
    _render_all(page)
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


def _no_overflow(page) -> None:
    """Nothing sticks out sideways at 1280 px (wide tables scroll inside their own box)."""
    page.evaluate("() => document.querySelectorAll('details').forEach(d => d.open = true)")
    widths = page.evaluate("() => [document.documentElement.scrollWidth, window.innerWidth]")
    assert widths[0] <= widths[1], widths


def _headings_visible_after_each_jump(page) -> None:
    links = page.eval_on_selector_all("nav a", "as => as.map(a => [a.getAttribute('href'), a.textContent])")
    assert len({text for _, text in links}) == len(links) <= 9  # one short line of unique names
    nav_height = page.evaluate("document.querySelector('nav').getBoundingClientRect().height")
    assert nav_height <= 48
    for href, _ in links:
        page.click(f'nav a[href="{href}"]')
        page.wait_for_timeout(50)
        box = page.evaluate("""id => {
            const s = document.getElementById(id), h = s.querySelector('h2, h3, summary');
            const r = h.getBoundingClientRect(), n = document.querySelector('nav').getBoundingClientRect();
            return {top: r.top, bottom: r.bottom, nav: n.bottom, height: window.innerHeight};
        }""", href[1:])
        assert box["top"] >= box["nav"] - 1 and box["bottom"] <= box["height"], (href, box)


#: Fills that carry no identity (legend markers' white fill, a marker without a score, a ring's empty fill).
NEUTRAL = {"white", "#ffffff", "#d0d0d0", "rgba(0,0,0,0)", "#333", "#444"}


def _figure_colours(page) -> list[dict]:
    """Per figure: every trace's name and colours, and the subplot titles' text and colour."""
    return page.evaluate("""() => {
        const txt = document.createElement('textarea');
        const plain = s => { txt.innerHTML = s || ''; return txt.value; };
        return Array.from(document.querySelectorAll('.plotly-graph-div')).map(d => ({id: d.id,
            traces: d._fullData.map(t => ({name: plain(t.name), colours: [t.line && t.line.color,
                typeof (t.marker || {}).color === 'string' ? t.marker.color : null,
                t.marker && t.marker.line && t.marker.line.color].filter(c => typeof c === 'string')})),
            titles: (d._fullLayout.annotations || []).map(a => ({text: plain(a.text), colour: a.font.color}))}));
    }""")


def _same_colour_per_checkpoint(page) -> int:
    """Every trace (and subplot title) named after exactly one checkpoint is drawn in that checkpoint's colour,
    the colour of its swatch in the summary; returns how many traces were checked."""
    swatches = page.evaluate("""() => Array.from(document.querySelectorAll('#summary li[data-checkpoint]')).map(li =>
        [li.getAttribute('data-checkpoint'), getComputedStyle(li.querySelector('.swatch')).backgroundColor])""")
    to_hex = page.evaluate("""cs => cs.map(c => { const m = c.match(/\\d+/g).map(Number);
        return '#' + m.slice(0, 3).map(v => v.toString(16).padStart(2, '0')).join(''); })""",
                           [c for _, c in swatches])
    colours = {name: hx.lower() for (name, _), hx in zip(swatches, to_hex)}
    assert len(colours) >= 2 and len(set(colours.values())) == len(colours)
    checked = 0
    for fig in _figure_colours(page):
        for t in fig["traces"] + [{"name": a["text"], "colours": [a["colour"]]} for a in fig["titles"]]:
            owners = [n for n in colours if n in t["name"]]
            if len(owners) != 1 or not t["colours"]:
                continue
            assert {c.lower() for c in t["colours"]} - NEUTRAL == {colours[owners[0]]}, (fig["id"], t)
            checked += 1
    return checked


def test_one_colour_per_checkpoint_no_overflow_and_visible_headings_at_1280px(loaded):
    page, _, _ = loaded
    _render_all(page)
    assert _same_colour_per_checkpoint(page) >= 15
    _headings_visible_after_each_jump(page)
    _no_overflow(page)


def test_screenshot_of_the_first_screen_is_saved(loaded, tmp_path):
    page, _, _ = loaded
    out_dir = Path(os.environ.get("SIMCSE_SCREENSHOT_DIR") or tmp_path)
    out_dir.mkdir(parents=True, exist_ok=True)
    shot = out_dir / "report_first_screen.png"
    page.evaluate("window.scrollTo(0, 0)")
    page.screenshot(path=str(shot))
    assert shot.stat().st_size > 20_000 and shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def extended(browser, report_record, tiny_bert_dir, small_data_dir, tmp_path_factory):
    """The report with the Token level section (``report --tokens``) and the Comparison section
    (``report --compare-from``), as the CLI builds it (the documents in the record and, as before, the
    sections passed beside it: each is drawn once), opened like :func:`loaded`."""
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
    record = {**report_record, "comparison": cmp, "tokens": tokens}
    path = write_report(record, tmp_path_factory.mktemp("browser_ext") / "report.html", extra_blocks=blocks,
                        extra_sections=[*cmp_figs, *token_sections(tokens)])
    context, page, events = _open(browser, path)
    _render_all(page)
    yield page, path, events, cmp
    context.close()


def test_token_and_comparison_sections_draw_offline_and_the_movers_table_filters(extended):
    from reports.compare_page import movers_rows

    page, path, events, cmp = extended
    ids = page.evaluate("() => Array.from(document.querySelectorAll('.plotly-graph-div')).map(d => d.id)")
    for anchor in ("token-layers", "token-rogue", "token-spectrum", "token-frequency", "cmp-forest"):
        assert ids.count(f"fig-{anchor}") == 1  # each section once, though the CLI also passed it beside the record
    drawn = page.evaluate("""() => Array.from(document.querySelectorAll('.plotly-graph-div')).every(d =>
        d.querySelector('svg.main-svg').getBoundingClientRect().width > 300)""")
    assert drawn
    assert [m for m in events["console"] if m[0] in ("error", "pageerror")] == []
    assert events["requests"] == [path.as_uri()]
    page.click("#cmp-movers details > summary")
    rows = "#movers-table tbody tr"
    total = page.locator(rows).count()
    assert total == len(movers_rows(cmp)) > 0
    first = cmp["pairs"][0]["movers"][0]["sentence1"]
    page.fill("input.filter[data-table='movers-table']", first)
    visible = page.eval_on_selector_all(rows, "rs => rs.filter(r => r.style.display !== 'none').length")
    assert 1 <= visible < total or total == 1


def test_extended_page_keeps_one_colour_per_checkpoint_and_fits_1280px(extended, tmp_path):
    page, _, _, _ = extended
    assert _same_colour_per_checkpoint(page) >= 25  # report, comparison and token figures alike
    _headings_visible_after_each_jump(page)
    _no_overflow(page)
    out_dir = Path(os.environ.get("SIMCSE_SCREENSHOT_DIR") or tmp_path)
    out_dir.mkdir(parents=True, exist_ok=True)
    page.evaluate("document.getElementById('comparison').scrollIntoView()")
    page.screenshot(path=str(out_dir / "report_comparison_screen.png"))
