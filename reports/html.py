"""One self-contained, offline HTML page comparing checkpoints, rendered from a report record.

The page (see :mod:`reports.collect` for the record) holds:

- a header saying what produced it: checkpoints with fingerprints, poolers, dimensions and baseline
  marks; data files with checksums; the command line; package versions; the date;
- sortable tables (a few lines of inline JavaScript): the STS table (7 tasks + avg, STS-B dev) and the
  isotropy scalars;
- the figures of :mod:`reports.figures`.

Offline and safe: plotly.js is inlined once (no CDN, no request leaves the page); every piece of text
is HTML-escaped (sentences and model names in figures too, see :func:`reports.figures.esc`); the figure
JSON plotly embeds escapes ``<``, ``>`` and ``/`` as ``\\u003c`` … so a ``</script>`` inside a sentence
cannot end the script block (:func:`render_report` checks this).
"""

from __future__ import annotations

import html
import math
import os
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from simcse_analysis.errors import InputError
from simcse_analysis.io_utils import write_output_text
from simcse_analysis.metrics.anisotropy import PARTITION_ISOTROPY_CONVENTION

from . import figures as F
from .collect import display_label

STS_COLUMNS: tuple[tuple[str, str], ...] = (
    ("STS12", "STS12"), ("STS13", "STS13"), ("STS14", "STS14"), ("STS15", "STS15"), ("STS16", "STS16"),
    ("STSBenchmark", "STS-B"), ("SICKRelatedness", "SICK-R"), ("avg", "Avg."))

#: Plotly config of every figure: no logo link, PNG export at 2x, resize with the page.
PLOT_CONFIG = {"displaylogo": False, "responsive": True, "toImageButtonOptions": {"scale": 2}}


def _e(x: Any) -> str:
    return html.escape(str(x), quote=True)


def _num(x: Any, spec: str) -> str:
    return format(x, spec) if isinstance(x, (int, float)) and math.isfinite(x) else "–"


def _cell(x: Any, spec: str = ".2f", cls: str = "") -> str:
    """A numeric table cell; ``data-v`` carries the sort key (empty: missing, sorts last)."""
    ok = isinstance(x, (int, float)) and math.isfinite(x)
    attr = f' class="{cls}"' if cls else ""
    return f'<td data-v="{repr(float(x)) if ok else ""}"{attr}>{_num(x, spec)}</td>'


def _with_ci(cell: str, ci: dict[str, Any] | None) -> str:
    """``cell`` with its 95% bootstrap interval under the value (when the result carries one)."""
    if not ci or ci.get("low") is None or ci.get("high") is None:
        return cell
    return cell[:-len("</td>")] + f'<br><small class="ci">[{_num(ci["low"], ".1f")}, {_num(ci["high"], ".1f")}]</small></td>'


def _swatch(colour: str) -> str:
    return f'<span class="swatch" style="background:{_e(colour)}"></span>'


def _best(values: Sequence[Any], higher: bool) -> Any:
    ok = [v for v in values if isinstance(v, (int, float)) and math.isfinite(v)]
    if len(ok) < 2:
        return None
    return max(ok) if higher else min(ok)


def _sortable(headers: Sequence[tuple[str, str]], rows: Sequence[str], caption: str, table_id: str) -> str:
    """``headers``: (label, tooltip). Rows are pre-rendered ``<tr>`` strings."""
    head = "".join(f'<th scope="col" title="{_e(tip)}">{_e(h)}</th>' for h, tip in headers)
    return (f'<div class="table-wrap"><table class="sortable" id="{table_id}"><caption>{caption}</caption>'
            f"<thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table></div>")


def _model_cell(m: dict[str, Any], k: int) -> str:
    badge = f' <span class="badge">baseline: {_e(m["baseline"])}</span>' if m.get("baseline") else ""
    return f'<td class="name" data-v-text="{_e(m["label"])}">{_swatch(F.colour(k))}{_e(m["label"])}{badge}</td>'


# ----------------------------------------------------------------------------------------- tables
def sts_table(record: dict[str, Any]) -> str:
    """Spearman ×100 per STS task (test), their average, and STS-B dev; best per column in bold."""
    models = record["models"]
    cols = [[m["sts_test"]["scores"].get(key) for m in models] for key, _ in STS_COLUMNS]
    dev = [m["sts_dev"]["scores"].get("STSBenchmark") for m in models]
    best = [_best(c, higher=True) for c in [*cols, dev]]
    rows = []
    for k, m in enumerate(models):
        values = [c[k] for c in cols] + [dev[k]]
        cis = [(m["sts_test"].get("intervals") or {}).get(key) for key, _ in STS_COLUMNS] + [
            (m["sts_dev"].get("intervals") or {}).get("STSBenchmark")]
        cells = "".join(_with_ci(_cell(v, ".2f", "best" if (b is not None and v == b) else ""), ci)
                        for v, b, ci in zip(values, best, cis))
        rows.append(f"<tr>{_model_cell(m, k)}{cells}</tr>")
    headers = [("Model", "checkpoint [pooler]")] + [(short, f"{key}: Spearman ×100 of cosine, test set")
                                                   for key, short in STS_COLUMNS[:-1]]
    headers += [("Avg.", "mean of the 7 tasks"), ("STS-B dev", "STS Benchmark dev split: Spearman ×100")]
    a = models[0]["sts_test"] if models else {}
    caption = (f"STS: Spearman ×100 of cosine similarity (test sets; {_e(a.get('variant', ''))} data, "
               f"“{_e(a.get('aggregation', ''))}” aggregation over STS12–16 sub-datasets; under each value its 95% bootstrap CI over the pairs, when "
               "computed). Click a column to sort.")
    return _sortable(headers, rows, caption, "sts-table")


def isotropy_table(record: dict[str, Any]) -> str:
    """Alignment/uniformity (both protocols) and anisotropy scalars; best per column in bold, except ℓ_align
    and ℓ_uniform (neither is better alone)."""
    models = record["models"]
    spec = [  # (header, tooltip, getter, format, higher is better or None)
        # ℓ_align and ℓ_uniform are read together, never bolded alone: a collapsed space has the lowest ℓ_align
        ("ℓ_align", ("alignment on positive pairs (analysis protocol); lower = positive pairs closer; read with "
                     "ℓ_uniform (a collapsed space has a low ℓ_align and a high ℓ_uniform)"),
         lambda m: m["align_uniform"]["alignment"], ".4f", None),
        ("ℓ_uniform", ("uniformity over all distinct sentences (analysis protocol); lower = more uniform; read "
                       "with ℓ_align"), lambda m: m["align_uniform"]["uniformity"], ".4f", None),
        ("ℓ_align dev", "alignment, STS-B dev (the trainer's protocol)",
         lambda m: m["dev_align_uniform"]["alignment"], ".4f", None),
        ("ℓ_uniform dev", "uniformity, STS-B dev (the trainer's protocol)",
         lambda m: m["dev_align_uniform"]["uniformity"], ".4f", None),
        ("rand. cos", "mean cosine of random sentence pairs (Ethayarajh 2019); lower = less anisotropic",
         lambda m: m["anisotropy"]["summary"]["random_pair_cosine"], ".4f", False),
        ("IsoScore", "IsoScore (1 = isotropic)", lambda m: m["anisotropy"]["summary"]["isoscore"], ".4f", True),
        ("I(W)", ("partition-function isotropy, Mu & Viswanath 2018 (1 = isotropic); both signs of each "
                  "eigenvector, see the note below the table"),
         lambda m: m["anisotropy"]["summary"]["partition_isotropy"], ".3g", True),
        ("log I(W)", "natural log of I(W) (0 = isotropic), finite where I(W) underflows to 0",
         lambda m: m["anisotropy"]["summary"]["log_partition_isotropy"], ".1f", True),
        ("PC1 share", "variance share of the first principal component",
         lambda m: m["anisotropy"]["summary"]["first_pc_variance_share"], ".4f", False),
        ("eff. rank", "effective rank of the centred embedding matrix (Roy & Vetterli 2007)",
         lambda m: m["spectrum"]["centered"]["effective_rank"], ".1f", True),
        ("mean norm", "mean L2 norm of the embeddings", lambda m: m["anisotropy"]["summary"]["mean_norm"], ".3f",
         None),
        ("dim", "embedding dimension", lambda m: m.get("dim"), "d", None),
    ]

    def get(fn: Any, m: dict[str, Any]) -> Any:
        try:
            return fn(m)
        except (KeyError, TypeError):
            return None

    values = [[get(s[2], m) for m in models] for s in spec]
    best = [(_best(v, s[4]) if s[4] is not None else None) for v, s in zip(values, spec)]
    rows = []
    for k, m in enumerate(models):
        cells = "".join(_cell(values[c][k], spec[c][3], "best" if (best[c] is not None and values[c][k] == best[c])
                              else "") for c in range(len(spec)))
        rows.append(f"<tr>{_model_cell(m, k)}{cells}</tr>")
    headers = [("Model", "checkpoint [pooler]")] + [(s[0], s[1]) for s in spec]
    caption = ("Isotropy and alignment–uniformity scalars (best per column in bold where the column has a "
               "direction; ℓ_align and ℓ_uniform are read together, so neither is bolded alone). "
               f"Protocol: {_e(record['data'].get('protocol', ''))}. {_e(PARTITION_ISOTROPY_CONVENTION)}")
    return _sortable(headers, rows, caption, "isotropy-table")


# ----------------------------------------------------------------------------------------- figures
def _resolved(spectrum: dict[str, Any]) -> list[float]:
    """The normalised singular values down to the numerical rank (the rest are rounding noise)."""
    values = spectrum["singular_values"]
    rank = spectrum.get("numerical_rank")
    return values[:rank] if isinstance(rank, int) and rank > 0 else values


def build_figures(record: dict[str, Any]) -> list[tuple[str, str, Any, str]]:
    """``[(anchor, heading, figure, note)]`` for the record, in page order (empty sections left out)."""
    models = record["models"]
    labels = [display_label(m) for m in models]
    out: list[tuple[str, str, Any, str]] = []
    points = [{"label": labels[k], "alignment": m["align_uniform"]["alignment"],
               "uniformity": m["align_uniform"]["uniformity"], "stsb_dev": m["sts_dev"]["scores"].get("STSBenchmark"),
               "baseline": m.get("baseline"), "colour": F.colour(k), "text": m["label"],
               "alignment_stderr": m["align_uniform"].get("alignment_stderr"),
               "uniformity_stderr": m["align_uniform"].get("uniformity_stderr")}
              for k, m in enumerate(models)]
    out.append(("align-uniform", "Alignment and uniformity (SimCSE Fig. 2)",
                F.align_uniform_plane(points, title="ℓ_align vs ℓ_uniform, coloured by STS-B dev Spearman"),
                ("Lower is better on both axes. Diamonds mark baselines; marker fill is STS-B dev Spearman ×100. "
                f"Protocol: {record['data'].get('protocol', '')}")))
    trajs = record.get("trajectories") or []
    if trajs:
        dev_points = [{**p, "alignment": m["dev_align_uniform"]["alignment"],
                       "uniformity": m["dev_align_uniform"]["uniformity"]} for p, m in zip(points, models)]
        paths = [{"label": t["label"] if t.get("model") is None else labels[t["model"]],
                  "colour": F.colour(t["model"]) if t.get("model") is not None else F.PALETTE[-1 - (i % 3)],
                  "points": t["points"]} for i, t in enumerate(trajs)]
        protocol = models[0]["dev_align_uniform"].get("protocol", "STS-B dev") if models else "STS-B dev"
        out.append(("trajectories", "Training trajectories",
                    F.align_uniform_plane(dev_points, paths, title="Training paths through the align–uniform plane"),
                    ("Each path is one training run's trajectory.jsonl (hover: step); the ring marks its last "
                     "evaluation. Checkpoints are measured with the same protocol as the paths: "
                     f"{protocol}.")))
    out.append(("spectra", "Singular-value spectra",
                F.spectra_chart([{"label": labels[k], "colour": F.colour(k),
                                  "uncentered": _resolved(m["spectrum"]["uncentered"]),
                                  "centered": _resolved(m["spectrum"]["centered"])}
                                 for k, m in enumerate(models)]),
                ("σ_k/σ_1 of the sentence-embedding matrix; solid: uncentred, dashed: centred. A faster decay "
                 "means the embeddings occupy fewer directions. Values below the method's resolution "
                 "(beyond the numerical rank) are not drawn.")))
    out.append(("cosine-bins", "Cosine similarity by gold rating (SimCSE Fig. G.1)",
                F.cosine_density_panels([{"label": labels[k], "bins": m["anisotropy"]["score_bins"]}
                                         for k, m in enumerate(models)]),
                ("Density of the cosine similarity of STS-B pairs, grouped by their gold rating. A good space "
                "separates the groups and uses the whole range of cosine values.")))
    out.append(("random-pairs", "Cosine of random sentence pairs",
                F.random_pair_histograms([{"label": labels[k], "colour": F.colour(k), **m["random_pairs"]}
                                          for k, m in enumerate(models)]),
                "Anisotropic spaces put random pairs at high cosine (dotted lines: means)."))
    layered = [(k, m) for k, m in enumerate(models) if m["anisotropy"].get("layers")]
    if layered:
        # the same weights pooled per layer the same way give the same curves (e.g. avg and avg_first_last):
        # one line, named after all of them
        groups: dict[tuple, list[int]] = {}
        for k, m in layered:
            a = m["anisotropy"]
            key = (m.get("fingerprint") or f"#{k}", a.get("layer_pooler"), a.get("layer_sentences"))
            groups.setdefault(key, []).append(k)
        lines = []
        for ks in groups.values():
            a = models[ks[0]]["anisotropy"]
            lines.append({"label": " = ".join(labels[k] for k in ks), "colour": F.colour(ks[0]),
                          "layer_pooler": a.get("layer_pooler"),
                          "random_pair_cosine": [s and s["random_pair_cosine"] for s in a["layers"]],
                          "isoscore": [s and s["isoscore"] for s in a["layers"]]})
        sampled = sorted({m["anisotropy"].get("layer_sentences") for _, m in layered} - {None})
        seed = (record.get("settings") or {}).get("analysis", {}).get("seed", "?")
        notes = [f"{labels[k]}: {m['layers_note']}" for k, m in enumerate(models) if m.get("layers_note")]
        out.append(("layers", "Anisotropy across layers", F.layer_anisotropy(lines),
                    "Every hidden layer pooled like the checkpoint (token mean, or the [CLS] vector for CLS "
                    "poolers); layer 0 is the embedding layer"
                    + (f"; summaries on {', '.join(f'{n:,}' for n in sampled)} sampled sentences (seed {seed})"
                       if sampled else "") + ". " + " ".join(notes)))
    um = record.get("umap")
    panels = [(k, m) for k, m in enumerate(models) if m.get("umap")]
    if um and panels:
        colour_title = "gold rating" if um.get("colour") == "bin" else "corpus"
        settings = (record.get("settings") or {}).get("umap") or {}
        out.append(("umap", "UMAP maps of the sentences",
                    F.umap_panels([{"label": labels[k], **m["umap"]} for k, m in panels], um["sentences"],
                                  um["categories"], um["category_order"], colour_title=colour_title),
                    (f"{len(um['sentences']):,} sentences (seeded sample, seed {settings.get('seed', '?')}); one "
                    f"independent UMAP fit per checkpoint (cosine, {settings.get('n_neighbors', '?')} neighbours), so "
                    "positions do not correspond across panels. Hover a point to read its sentence.")))
    return out


# ----------------------------------------------------------------------------------------- page
_CSS = """
:root{--fg:#1f2328;--muted:#59636e;--line:#d1d9e0;--bg:#f6f8fa;--accent:#0969da}
*{box-sizing:border-box}
body{font:14px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:var(--fg);margin:0;background:#fff}
header{background:linear-gradient(135deg,#0b3d91,#1565c0);color:#fff;padding:22px 32px 18px}
header h1{margin:0 0 4px;font-size:24px;font-weight:600}
header p{margin:0;opacity:.9}
nav{position:sticky;top:0;z-index:10;background:#fff;border-bottom:1px solid var(--line);padding:8px 32px;
  display:flex;gap:16px;flex-wrap:wrap;font-size:13px}
nav a{color:var(--accent);text-decoration:none}nav a:hover{text-decoration:underline}
main{max-width:1280px;margin:0 auto;padding:8px 32px 48px}
section{margin:28px 0}
h2{font-size:19px;font-weight:600;margin:0 0 8px;padding-bottom:4px;border-bottom:1px solid var(--line)}
.note{color:var(--muted);margin:4px 0 8px}
.grid{display:grid;grid-template-columns:repeat(auto-fit,minmax(280px,1fr));gap:8px 24px}
.card{background:var(--bg);border:1px solid var(--line);border-radius:6px;padding:10px 14px}
.card h3{font-size:13px;margin:0 0 6px;color:var(--muted);text-transform:uppercase;letter-spacing:.04em}
code,.mono{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;font-size:12px}
pre.cmd{white-space:pre-wrap;word-break:break-all;margin:0}
.table-wrap{overflow-x:auto}
table{border-collapse:collapse;margin:6px 0 4px;font-variant-numeric:tabular-nums;width:100%}
caption{caption-side:bottom;text-align:left;color:var(--muted);font-size:12px;padding-top:4px}
th,td{padding:5px 9px;border-bottom:1px solid var(--line);text-align:right;white-space:nowrap}
th{background:var(--bg);font-weight:600;white-space:normal;vertical-align:bottom}
th:first-child,td:first-child,table.plain td,table.plain th{text-align:left}
table.sortable th{cursor:pointer;user-select:none}
table.sortable th:hover{background:#eaeef2}
table.sortable th[aria-sort=ascending]::after{content:" ▲";font-size:10px}
table.sortable th[aria-sort=descending]::after{content:" ▼";font-size:10px}
tbody tr:hover{background:#f3f6fa}
td.best{font-weight:700}
#sts-table th{white-space:nowrap}
td.name{white-space:normal;min-width:220px}
.swatch{display:inline-block;width:10px;height:10px;border-radius:2px;margin-right:7px;vertical-align:baseline}
.badge{display:inline-block;font-size:11px;background:#fff8c5;border:1px solid #d4a72c;border-radius:10px;
  padding:0 7px;margin-left:6px;color:#633c01}
details summary{cursor:pointer;color:var(--accent)}
.figure{border:1px solid var(--line);border-radius:6px;padding:6px;margin-top:6px}
footer{color:var(--muted);font-size:12px;border-top:1px solid var(--line);padding:12px 32px}
"""

_SORT_JS = """
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


def provenance_cards(provenance: Sequence[dict[str, Any]]) -> str:
    """One card per provenance entry (``reports.collect.provenance_entry``): date, command line, data
    directory, machine, package versions."""
    cards = []
    for p in provenance:
        pk = ", ".join(f"{_e(n)} {_e(v)}" for n, v in (p.get("packages") or {}).items())
        m = p.get("machine") or {}
        machine = ", ".join(_e(x) for x in (m.get("platform"), m.get("cpu"),
                                            f"{m['cores']} cores" if m.get("cores") else None,
                                            f"accelerator: {m['accelerator']}" if m.get("accelerator") else None)
                            if x)
        cards.append(f'<div class="card"><h3>Built {_e(p.get("created", "?"))}</h3>'
                     f'<pre class="cmd mono">{_e(p.get("command", ""))}</pre>'
                     + (f'<p class="note">data: <span class="mono">{_e(p["data_dir"])}</span></p>'
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
        f'<tr><td class="mono">{_e(f["path"])}</td><td>{count(f.get("bytes"))}</td>'
        + (f'<td>{count(f.get("rows"))}</td>' if with_rows else "")
        + f'<td class="mono" title="{_e(f.get("sha256", ""))}">{_e(f.get("sha256", "")[:16])}</td></tr>'
        for f in files)
    return ('<table class="plain"><thead><tr><th>file</th><th>bytes</th>' + ("<th>rows</th>" if with_rows else "")
            + f"<th>SHA-256</th></tr></thead><tbody>{rows}</tbody></table>")


def _header(record: dict[str, Any]) -> str:
    models = record["models"]
    rows = []
    for k, m in enumerate(models):
        fp = m.get("fingerprint") or ""
        meta = m.get("checkpoint_metadata") or {}
        extra = ", ".join(f"{_e(a)}: {_e(b)}" for a, b in meta.items() if a not in ("pooler",))
        rows.append(
            f"<tr><td>{_swatch(F.colour(k))}{_e(m['label'])}"
            + (f' <span class="badge">baseline: {_e(m["baseline"])}</span>' if m.get("baseline") else "")
            + f"</td><td>{_e(m.get('pooler') or '–')}</td><td>{_e(m.get('dim') or '–')}</td>"
            f'<td class="mono" title="{_e(fp)}">{_e(fp[:16]) if fp else "–"}</td>'
            f'<td class="mono">{_e(m.get("path") or m.get("model"))}</td><td>{extra}</td></tr>')
    checkpoints = ("<table class=\"plain\"><thead><tr><th>checkpoint</th><th>pooler</th><th>dim</th>"
                   "<th>fingerprint (SHA-256)</th><th>path</th><th>metadata</th></tr></thead>"
                   f"<tbody>{''.join(rows)}</tbody></table>")
    files = record["data"].get("files", [])
    proto = record["data"].get("protocol_data") or {}
    return (
        '<section id="provenance"><h2>What produced this report</h2>'
        f'<div class="table-wrap">{checkpoints}</div>'
        f'<div class="grid">{provenance_cards(record.get("provenance") or [])}'
        f'<div class="card"><h3>Data</h3><p>{_e(record["data"].get("protocol", ""))}</p>'
        f'<details><summary>{len(files)} data files ({_e(proto.get("task", "STS"))} protocol + STS test sets)</summary>'
        f"{data_files_table(files)}</details></div></div></section>")


def render_page(title: str, subtitle: str, nav: Sequence[tuple[str, str]], main: str, *, n_figures: int,
                plotlyjs: str | None = None) -> str:
    """A page in the report's look: header (``title``, ``subtitle``), sticky navigation (``(anchor, name)``),
    ``main`` (trusted HTML holding ``n_figures`` plotly divs made with ``include_plotlyjs=False``), plotly.js
    inlined once (``plotlyjs`` overrides the bundled copy), sortable tables."""
    from plotly.offline import get_plotlyjs

    js = plotlyjs if plotlyjs is not None else get_plotlyjs()
    js = re.sub(r"</(script)", r"<\\/\1", js, flags=re.IGNORECASE)
    head = ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
            f"<title>{_e(title)}</title><style>{_CSS}</style>\n<script>")
    body = (
        "</script>\n</head><body>\n"
        f"<header><h1>{_e(title)}</h1><p>{_e(subtitle)}</p></header>\n"
        "<nav>" + "".join(f'<a href="#{a}">{_e(n)}</a>' for a, n in nav) + "</nav>\n<main>\n"
        + main
        + "\n</main>\n<footer>Self-contained page: plotly.js is embedded; nothing is fetched from the network."
        "</footer>\n"
        f"<script>{_SORT_JS}</script>\n</body></html>\n")
    _check_scripts(head + body, expected=2 + n_figures)  # plotly.js's own source is not ours to police
    return head + js + body


def render_report(record: dict[str, Any], *, plotlyjs: str | None = None,
                  extra_sections: Sequence[tuple[str, str, Any, str]] = (),
                  extra_blocks: Sequence[tuple[str, str, str]] = ()) -> str:
    """The full page for a report record. plotly.js is inlined once (``plotlyjs`` overrides the bundled copy);
    ``extra_blocks`` (``(anchor, nav label, html)``: pre-escaped HTML, e.g. the comparison tables of
    :func:`reports.compare_page.comparison_report_parts`) follow the isotropy table, then ``extra_sections``
    (``(anchor, heading, figure, note)``, e.g. :func:`reports.token_page.token_sections`) after the figures."""
    import plotly.io as pio

    models = record["models"]
    if not models:
        raise InputError("the report record holds no checkpoints")
    title = record.get("title") or f"Sentence-embedding comparison of {len(models)} checkpoint" + (
        "s" if len(models) != 1 else "")
    figs = build_figures(record) + list(extra_sections)
    sections = []
    for anchor, heading, fig, note in figs:
        div = pio.to_html(fig, full_html=False, include_plotlyjs=False, div_id=f"fig-{anchor}",
                          config=PLOT_CONFIG, default_width="100%")
        sections.append(f'<section id="{anchor}"><h2>{_e(heading)}</h2>'
                        + (f'<p class="note">{_e(note)}</p>' if note else "")
                        + f'<div class="figure">{div}</div></section>')
    nav = [("provenance", "Provenance"), ("sts", "STS table"), ("isotropy", "Isotropy")] + [
        (a, label) for a, label, _ in extra_blocks] + [(a, h.split(" (")[0]) for a, h, _, _ in figs]
    created = (record.get("provenance") or [{}])[-1].get("created", "")
    main = (
        _header(record)
        + f'\n<section id="sts"><h2>STS results</h2>{sts_table(record)}</section>\n'
        + f'<section id="isotropy"><h2>Isotropy and alignment–uniformity</h2>{isotropy_table(record)}'
        + ("".join(f'<p class="note">{_e(m["label"])}: {_e(m["layers_note"])}</p>' for m in models
                   if m.get("layers_note")) if not any(a == "layers" for a, _, _, _ in figs) else "")
        + "</section>\n"
        + "".join(block + "\n" for _, _, block in extra_blocks)
        + "\n".join(sections))
    subtitle = (f"{len(models)} checkpoint{'s' if len(models) != 1 else ''} · generated {created} by "
                "simcse-analyze report")
    return render_page(title, subtitle, nav, main, n_figures=len(figs), plotlyjs=plotlyjs)


def _check_scripts(page: str, expected: int) -> None:
    """Guard: the page holds exactly the script blocks we wrote (text can never open or close one)."""
    opened = len(re.findall(r"<script\b", page, flags=re.IGNORECASE))
    closed = len(re.findall(r"</script\s*>", page, flags=re.IGNORECASE))
    if opened != expected or closed != expected:
        raise RuntimeError(f"report page has {opened} <script> / {closed} </script> tags, expected {expected}: "
                           "unescaped text reached the page")


# ----------------------------------------------------------------------------------------- writing
def write_report(record: dict[str, Any], path: str | os.PathLike[str],
                 extra_sections: Sequence[tuple[str, str, Any, str]] = (),
                 extra_blocks: Sequence[tuple[str, str, str]] = ()) -> Path:
    """Render :func:`render_report` and write it atomically to ``path``."""
    return write_output_text(path, render_report(record, extra_sections=extra_sections, extra_blocks=extra_blocks))
