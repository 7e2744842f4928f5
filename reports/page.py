"""The one page renderer: every HTML page of the project (the report, ``compare --out``, ``tokens --out``,
``ablate``'s sweep page, ``align-uniform`` / ``spectrum`` / ``anisotropy --out``) is built by
:func:`render_page`, in one look:

1. a header (title, one line of context) and a one-line sticky navigation whose jumps land below it
   (``scroll-margin-top``);
2. the **summary** (``#summary``), the first thing on the page: the answer in a few sentences;
3. the sections (:class:`Section`: a heading, a note, trusted HTML such as tables, and at most one figure);
4. the provenance (what produced the page), collapsed, at the end.

Figures are drawn lazily. Each section's figure is stored as JSON in an inert ``<script
type="application/json">`` block at the end of the page and drawn by ``Plotly.newPlot`` when its box (whose
height is reserved, so nothing moves) comes within 400 px of the viewport; printing asks for all of them (the
``beforeprint`` event; best effort, as the drawing is asynchronous).
plotly.js itself (the copy that ships with the plotly Python package) is embedded once, gzip-compressed
and base64-encoded (4.8 MB → 2.0 MB), and unpacked with the browser's ``DecompressionStream`` after the
text and tables have painted. Nothing is fetched from the network, so a page works offline and as a
single file. ``window.simcseRenderAll()`` draws every figure at once and resolves when they are drawn.

Safety: every piece of user text is HTML-escaped by the callers (:func:`e`); the figure JSON comes from
``plotly.io.to_json``, which writes ``<``, ``>`` and ``/`` as ``\\u003c`` …, so no text can close a script
block (:func:`check_scripts` counts the blocks this module writes).
"""

from __future__ import annotations

import base64
import functools
import gzip
import html
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

#: Plotly config of every figure: no logo link, PNG export at 2x, resize with the page.
PLOT_CONFIG = {"displaylogo": False, "responsive": True, "toImageButtonOptions": {"scale": 2}}
#: Height of a figure box whose layout states none (plotly's default).
DEFAULT_FIGURE_HEIGHT = 450


def e(x: Any) -> str:
    """HTML-escape ``x`` (quotes too: safe in attributes)."""
    return html.escape(str(x), quote=True)


def num(x: Any, spec: str = ".2f", missing: str = "–") -> str:
    """``x`` formatted with ``spec``, or ``missing`` for None / NaN / non-numbers."""
    return format(x, spec) if isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x) else missing


def swatch(colour: str) -> str:
    """A small square of ``colour`` (the checkpoint's colour in every figure of the page)."""
    return f'<span class="swatch" style="background:{e(colour)}"></span>'


@dataclass
class Section:
    """One section of a page.

    ``html``: trusted HTML (tables, lists) shown under the heading and ``note``; ``figure``: a plotly figure
    drawn below it (lazily); ``nav``: the navigation label (``None``: the section is reached by scrolling or
    from the section of the same ``group`` before it); ``level``: 2 for a top-level section, 3 for a
    sub-section (a figure of a group).
    """

    anchor: str
    heading: str
    html: str = ""
    figure: Any = None
    note: str = ""
    nav: str | None = None
    level: int = 2


# ----------------------------------------------------------------------------------------- style
CSS = """
:root{--fg:#1f2328;--muted:#59636e;--line:#d1d9e0;--bg:#f6f8fa;--accent:#0969da;--nav:40px}
*{box-sizing:border-box}
html{scroll-padding-top:calc(var(--nav) + 8px)}
body{font:14px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:var(--fg);margin:0;background:#fff}
header{background:#0b3d91;color:#fff;padding:14px 32px 12px}
header h1{margin:0;font-size:21px;font-weight:600;line-height:1.3}
header p{margin:2px 0 0;opacity:.9;font-size:13px}
nav{position:sticky;top:0;z-index:10;height:var(--nav);background:#fff;border-bottom:1px solid var(--line);
  padding:0 32px;display:flex;align-items:center;gap:18px;font-size:13px;white-space:nowrap;overflow-x:auto}
nav a{color:var(--accent);text-decoration:none}nav a:hover{text-decoration:underline}
main{max-width:1280px;margin:0 auto;padding:4px 32px 48px}
section{margin:22px 0;scroll-margin-top:calc(var(--nav) + 8px)}
h2{font-size:19px;font-weight:600;margin:0 0 8px;padding-bottom:4px;border-bottom:1px solid var(--line)}
h3.sub{font-size:15px;font-weight:600;margin:0 0 4px}
.note{color:var(--muted);margin:4px 0 8px;max-width:110ch}
.grid{display:grid;grid-template-columns:repeat(auto-fit,minmax(280px,1fr));gap:8px 24px}
.card{background:var(--bg);border:1px solid var(--line);border-radius:6px;padding:10px 14px;min-width:0}
.card h3{font-size:12px;margin:0 0 6px;color:var(--muted);text-transform:uppercase;letter-spacing:.04em}
#summary .grid{grid-template-columns:repeat(auto-fit,minmax(460px,1fr))}
#summary .card p,#summary .card li{margin:2px 0}
#summary ul{margin:0;padding-left:0;list-style:none}
.lead{font-size:16px;margin:0 0 4px}
code,.mono{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;font-size:12px}
pre.cmd{white-space:pre-wrap;word-break:break-all;margin:0}
.table-wrap{overflow-x:auto;max-width:100%}
table{border-collapse:collapse;margin:6px 0 4px;font-variant-numeric:tabular-nums;width:100%}
caption{caption-side:bottom;text-align:left;color:var(--muted);font-size:12px;padding-top:4px}
th,td{padding:5px 9px;border-bottom:1px solid var(--line);text-align:right;white-space:nowrap}
th{background:var(--bg);font-weight:600;white-space:normal;vertical-align:bottom}
th:first-child,td:first-child,table.plain td,table.plain th{text-align:left}
td.text{white-space:normal;text-align:left;min-width:14em;max-width:34em;overflow-wrap:anywhere}
table.sortable th{cursor:pointer;user-select:none}
table.sortable th:hover{background:#eaeef2}
table.sortable th[aria-sort=ascending]::after{content:" ▲";font-size:10px}
table.sortable th[aria-sort=descending]::after{content:" ▼";font-size:10px}
tbody tr:hover{background:#f3f6fa}
td.best{font-weight:700}
tr.reference td{color:var(--muted);font-style:italic}
td.name{white-space:normal;min-width:200px;overflow-wrap:anywhere}
small.ci{color:var(--muted)}
.swatch{display:inline-block;width:10px;height:10px;border-radius:2px;margin-right:7px;vertical-align:baseline}
.badge{display:inline-block;font-size:11px;background:#fff8c5;border:1px solid #d4a72c;border-radius:10px;
  padding:0 7px;margin-left:6px;color:#633c01}
.better,.fixed{color:#1a7f37;font-weight:600}.worse,.broken{color:#b42318;font-weight:600}.undefined{color:#8a6d00}
details>summary{cursor:pointer;color:var(--accent)}
details.fold>summary{font-size:15px;font-weight:600;margin:6px 0}
section.fold>details>summary h2{display:inline;border:0}
input.filter{padding:4px 8px;width:24em;max-width:100%;margin:4px 0}
.figure{border:1px solid var(--line);border-radius:6px;padding:6px;margin-top:6px;position:relative}
.figure .plotly-graph-div{width:100%}
.figure .pending{position:absolute;top:45%;left:0;right:0;text-align:center;color:var(--muted)}
footer{color:var(--muted);font-size:12px;border-top:1px solid var(--line);padding:12px 32px}
"""

# Sortable tables (click or Enter on a header; data-v holds numeric keys) and row filters.
SORT_JS = """
(function(){
  function key(cell){
    var v = cell.getAttribute("data-v");
    if (v === null) return [0, (cell.getAttribute("data-v-text") || cell.textContent).trim().toLowerCase()];
    if (v === "") return [1, 0];
    return [0, parseFloat(v)];
  }
  function sortBy(table, th, col){
    var asc = th.getAttribute("aria-sort") !== "ascending";
    Array.prototype.forEach.call(table.tHead.rows[0].cells, function(h){ h.removeAttribute("aria-sort"); });
    th.setAttribute("aria-sort", asc ? "ascending" : "descending");
    var body = table.tBodies[0];
    var rows = Array.prototype.slice.call(body.rows);
    rows.sort(function(a, b){
      var x = key(a.cells[col]), y = key(b.cells[col]);
      if (x[0] !== y[0]) return x[0] - y[0];
      var c = (typeof x[1] === "number") ? x[1] - y[1] : (x[1] < y[1] ? -1 : (x[1] > y[1] ? 1 : 0));
      return asc ? c : -c;
    });
    rows.forEach(function(r){ body.appendChild(r); });
  }
  Array.prototype.forEach.call(document.querySelectorAll("table.sortable"), function(table){
    Array.prototype.forEach.call(table.tHead.rows[0].cells, function(th, col){
      th.tabIndex = 0;
      th.addEventListener("click", function(){ sortBy(table, th, col); });
      th.addEventListener("keydown", function(e){
        if (e.key === "Enter" || e.key === " "){ e.preventDefault(); sortBy(table, th, col); }
      });
    });
  });
  Array.prototype.forEach.call(document.querySelectorAll("input.filter"), function(box){
    box.addEventListener("input", function(){
      var q = box.value.toLowerCase(), table = document.getElementById(box.getAttribute("data-table"));
      Array.prototype.forEach.call(table.tBodies[0].rows, function(r){
        r.style.display = r.textContent.toLowerCase().indexOf(q) >= 0 ? "" : "none"; });
    });
  });
})();
"""

# Unpack plotly.js, then draw each figure when its box nears the viewport (or all of them on request).
FIGURE_JS = """
(function(){
  var boxes = Array.prototype.slice.call(document.querySelectorAll("div.plotly-graph-div[data-figure]"));
  var drawn = {}, waiting = [], ready = null;
  function draw(div){
    if (drawn[div.id]) return drawn[div.id];
    drawn[div.id] = ready.then(function(){
      var spec = JSON.parse(document.getElementById(div.getAttribute("data-figure")).textContent);
      return Plotly.newPlot(div, spec.data, spec.layout, spec.config);
    }).then(function(){
      var p = div.parentNode.querySelector(".pending"); if (p) p.remove();
    });
    return drawn[div.id];
  }
  function unpack(){
    var blob = document.getElementById("plotly-js-gz");
    if (!blob || typeof DecompressionStream === "undefined") {
      boxes.forEach(function(div){ var p = div.parentNode.querySelector(".pending");
        if (p) p.textContent = "This browser cannot unpack the embedded plotly.js (DecompressionStream: " +
          "Chrome/Edge 80+, Firefox 113+, Safari 16.4+)."; });
      return new Promise(function(){});
    }
    var bin = atob(blob.textContent), bytes = new Uint8Array(bin.length);
    for (var i = 0; i < bin.length; i++) bytes[i] = bin.charCodeAt(i);
    var stream = new Blob([bytes]).stream().pipeThrough(new DecompressionStream("gzip"));
    return new Response(stream).text().then(function(code){
      var s = document.createElement("script"); s.textContent = code; document.head.appendChild(s);
    });
  }
  ready = boxes.length ? new Promise(function(resolve){ setTimeout(resolve, 0); }).then(unpack) : Promise.resolve();
  window.simcseRenderAll = function(){ return Promise.all(boxes.map(draw)); };
  window.addEventListener("beforeprint", function(){ window.simcseRenderAll(); });
  if ("IntersectionObserver" in window) {
    var seen = new IntersectionObserver(function(entries){
      entries.forEach(function(en){ if (en.isIntersecting){ seen.unobserve(en.target); draw(en.target); } });
    }, {rootMargin: "400px 0px"});
    boxes.forEach(function(div){ seen.observe(div); });
  } else { window.simcseRenderAll(); }
})();
"""


@functools.lru_cache(maxsize=2)
def packed_plotlyjs(source: str | None = None) -> str:
    """plotly.js (``source``, else the copy bundled with the plotly Python package) gzip-compressed (no
    timestamp, so the same bytes every time) and base64-encoded, for :data:`FIGURE_JS` to unpack."""
    if source is None:
        from plotly.offline import get_plotlyjs

        source = get_plotlyjs()
    return base64.b64encode(gzip.compress(source.encode("utf-8"), compresslevel=9, mtime=0)).decode("ascii")


def unpack_plotlyjs(page: str) -> str:
    """The plotly.js source embedded in ``page`` (the inverse of :func:`packed_plotlyjs`; for tests and tools)."""
    m = re.search(r'<script id="plotly-js-gz" type="application/octet-stream">([^<]*)</script>', page)
    if m is None:
        raise ValueError("no embedded plotly.js in this page")
    return gzip.decompress(base64.b64decode(m.group(1))).decode("utf-8")


def figure_json(page: str, anchor: str) -> dict[str, Any]:
    """The figure (``{"data", "layout", "config"}``) drawn in the box ``fig-ANCHOR`` of ``page``."""
    import json

    m = re.search(rf'<script type="application/json" id="figdata-{re.escape(anchor)}">(.*?)</script>', page, re.DOTALL)
    if m is None:
        raise KeyError(f"no figure fig-{anchor} in this page")
    return json.loads(m.group(1))


def _figure_parts(anchor: str, fig: Any) -> tuple[str, str]:
    """(the box where the figure is drawn, its JSON block). The box reserves the figure's height."""
    import plotly.io as pio

    d = fig.to_plotly_json()
    spec = pio.to_json({"data": d["data"], "layout": d["layout"], "config": PLOT_CONFIG}, validate=False)
    height = fig.layout.height or DEFAULT_FIGURE_HEIGHT
    box = (f'<div class="figure"><div id="fig-{e(anchor)}" class="plotly-graph-div" data-figure="figdata-{e(anchor)}" '
           f'style="height:{int(height)}px"></div><div class="pending">drawing the figure…</div></div>')
    return box, f'<script type="application/json" id="figdata-{e(anchor)}">{spec}</script>'


def _section_html(s: Section) -> tuple[str, str]:
    """(the section's HTML, its figure's JSON block or "")."""
    box, data = _figure_parts(s.anchor, s.figure) if s.figure is not None else ("", "")
    tag = "h2" if s.level <= 2 else 'h3 class="sub"'
    return (f'<section id="{e(s.anchor)}"><{tag}>{e(s.heading)}</{tag.split()[0]}>'
            + (f'<p class="note">{e(s.note)}</p>' if s.note else "") + s.html + box + "</section>"), data


def render_page(title: str, subtitle: str, *, summary: str, sections: Sequence[Section], provenance: str,
                plotlyjs: str | None = None) -> str:
    """A page in the one look (module docstring). ``summary`` and ``provenance`` are trusted HTML; the
    navigation lists the sections with a ``nav`` label (Summary first, Provenance last); labels must be
    unique. ``plotlyjs`` overrides the bundled plotly.js (tests)."""
    anchors = [s.anchor for s in sections]
    if len(set(anchors)) != len(anchors) or {"summary", "provenance"} & set(anchors):
        raise ValueError(f"section anchors must be unique and not summary/provenance: {anchors}")
    nav = [("summary", "Summary")] + [(s.anchor, s.nav) for s in sections if s.nav] + [("provenance", "Provenance")]
    labels = [n for _, n in nav]
    if len(set(labels)) != len(labels):
        raise ValueError(f"navigation labels must be unique: {labels}")
    parts = [_section_html(s) for s in sections]
    data = [d for _, d in parts if d]
    body = (
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
        "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
        f"<title>{e(title)}</title><style>{CSS}</style></head><body>\n"
        f"<header><h1>{e(title)}</h1><p>{e(subtitle)}</p></header>\n"
        "<nav>" + "".join(f'<a href="#{e(a)}">{e(n)}</a>' for a, n in nav) + "</nav>\n<main>\n"
        f'<section id="summary"><h2>Summary</h2>{summary}</section>\n'
        + "\n".join(h for h, _ in parts)
        + '\n<section id="provenance" class="fold"><details><summary><h2>Provenance: what produced this page</h2>'
        f"</summary>{provenance}</details></section>\n</main>\n"
        "<footer>Self-contained page: plotly.js is embedded (compressed); nothing is fetched from the network. "
        "Figures are drawn as they scroll into view.</footer>\n"
        + "\n".join(data)
        + ('\n<script id="plotly-js-gz" type="application/octet-stream">' + packed_plotlyjs(plotlyjs) + "</script>"
           if data else "")
        + f"\n<script>{SORT_JS}{FIGURE_JS if data else ''}</script>\n</body></html>\n")
    check_scripts(body, expected=len(data) + (2 if data else 1))
    return body


def check_scripts(page: str, expected: int) -> None:
    """Guard: the page holds exactly the script blocks we wrote (text can never open or close one)."""
    opened = len(re.findall(r"<script\b", page, flags=re.IGNORECASE))
    closed = len(re.findall(r"</script\s*>", page, flags=re.IGNORECASE))
    if opened != expected or closed != expected:
        raise RuntimeError(f"page has {opened} <script> / {closed} </script> tags, expected {expected}: "
                           "unescaped text reached the page")


# ----------------------------------------------------------------------------------------- blocks
def provenance_cards(provenance: Sequence[dict[str, Any]]) -> str:
    """One card per provenance entry (``reports.collect.provenance_entry``): date, command line, data
    directory, machine, package versions."""
    cards = []
    for p in provenance:
        pk = ", ".join(f"{e(n)} {e(v)}" for n, v in (p.get("packages") or {}).items())
        m = p.get("machine") or {}
        machine = ", ".join(e(x) for x in (m.get("platform"), m.get("cpu"),
                                            f"{m['cores']} cores" if m.get("cores") else None,
                                            f"accelerator: {m['accelerator']}" if m.get("accelerator") else None)
                            if x)
        cards.append(f'<div class="card"><h3>Built {e(p.get("created", "?"))}</h3>'
                     f'<pre class="cmd mono">{e(p.get("command", ""))}</pre>'
                     + (f'<p class="note">data: <span class="mono">{e(p["data_dir"])}</span></p>'
                        if p.get("data_dir") else "")
                     + (f'<p class="note">machine: {machine}</p>' if machine else "")
                     + f'<p class="note">{pk}</p></div>')
    return "".join(cards)


def data_files_table(files: Sequence[dict[str, Any]]) -> str:
    """Path, size in bytes (and rows, for training files that record them) and SHA-256 of each file (the
    full hash on hover)."""
    with_rows = any(f.get("rows") is not None for f in files)

    def count(x: Any) -> str:
        return "–" if x is None else format(x, ",")

    rows = "".join(
        f'<tr><td class="mono">{e(f["path"])}</td><td>{count(f.get("bytes"))}</td>'
        + (f'<td>{count(f.get("rows"))}</td>' if with_rows else "")
        + f'<td class="mono" title="{e(f.get("sha256", ""))}">{e(f.get("sha256", "")[:16])}</td></tr>'
        for f in files)
    return ('<table class="plain"><thead><tr><th>file</th><th>bytes</th>' + ("<th>rows</th>" if with_rows else "")
            + f"<th>SHA-256</th></tr></thead><tbody>{rows}</tbody></table>")


def table(headers: Sequence[tuple[str, str]] | Sequence[str], rows: Sequence[str], *, table_id: str | None = None,
          caption: str = "", sortable: bool = True, search: bool = False, cls: str = "") -> str:
    """A table; ``headers``: labels or (label, tooltip); ``rows``: pre-rendered ``<tr>`` strings;
    ``caption`` is trusted HTML. ``search`` adds a filter box (needs ``table_id``)."""
    head = "".join(f'<th scope="col" title="{e(h[1])}">{e(h[0])}</th>' if isinstance(h, tuple)
                   else f'<th scope="col">{e(h)}</th>' for h in headers)
    classes = " ".join(c for c in ("sortable" if sortable else "", cls) if c)
    box = (f'<input type="search" class="filter" data-table="{e(table_id)}" placeholder="filter rows…" '
           'aria-label="filter rows">' if search and table_id else "")
    return (f'{box}<div class="table-wrap"><table' + (f' class="{classes}"' if classes else "")
            + (f' id="{e(table_id)}"' if table_id else "") + ">"
            + (f"<caption>{caption}</caption>" if caption else "")
            + f"<thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table></div>")


def td(text: str, value: Any = None, cls: str = "") -> str:
    """A cell of trusted ``text``; a finite numeric ``value`` becomes its sort key (``data-v``)."""
    key = (f' data-v="{float(value)!r}"' if isinstance(value, (int, float)) and not isinstance(value, bool)
           and math.isfinite(value) else "")
    return f"<td{key}" + (f' class="{cls}"' if cls else "") + f">{text}</td>"


def settings_table(settings: dict[str, Any], caption: str = "") -> str:
    """Key–value rows of a document's settings (values escaped)."""
    rows = [f"<tr><td><code>{e(k)}</code></td><td class=\"mono text\">{e(v)}</td></tr>" for k, v in settings.items()]
    return table(["setting", "value"], rows, caption=caption, sortable=False, cls="plain")
