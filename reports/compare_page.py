"""The comparison page (``simcse-analyze compare … --out F.html``), rendered from ``ComparisonReport.to_dict()``.

Sections (:func:`comparison_section` returns them as HTML plus plotly figures, so a larger page can embed
them): the design in words, the verdict table (Δ, simultaneous CI, adjusted p, verdict or why none), the
alignment–uniformity reading per checkpoint, STS Spearman per checkpoint with 95% error
bars, the Δ forest plot, alignment–uniformity with 95% error bars, one CKA heatmap (layer × layer) per
checkpoint against the baseline, the mutual kNN overlap, and a sortable, searchable table of the pairs
whose predicted-similarity rank moved most. plotly.js is inlined once; all user text is HTML-escaped.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

from .html import _SORT_JS, _e

SPACE_METRICS = ("alignment", "uniformity")


def _n(x: Any, spec: str = ".2f") -> str:
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return "n/a"
    return format(x, spec) if isinstance(x, (int, float)) else _e(x)


def _table(headers: list[str], rows: list[list[str]], table_id: str, *, search: bool = False) -> str:
    """A sortable table (click a header); cells are pre-escaped; ``data-v`` holds the numeric sort key."""
    head = "".join(f'<th scope="col" tabindex="0">{_e(h)}</th>' for h in headers)
    body = "".join("<tr>" + "".join(rows_cell for rows_cell in r) + "</tr>" for r in rows)
    box = (f'<input type="search" class="filter" data-table="{table_id}" placeholder="search sentences, tasks…" '
           'aria-label="filter rows">' if search else "")
    return (f'{box}<div class="table-wrap"><table class="sortable" id="{table_id}"><thead><tr>{head}</tr></thead>'
            f"<tbody>{body}</tbody></table></div>")


def _td(text: str, value: Any = None) -> str:
    key = f' data-v="{value}"' if isinstance(value, (int, float)) and math.isfinite(value) else ""
    return f"<td{key}>{text}</td>"


def verdict_rows(doc: dict[str, Any]) -> list[list[str]]:
    """The verdict table's cells: Δ with its simultaneous interval (printed on the side of 0 its verdict
    reads), the adjusted p-value (never ``0``: below 1e-16 it reads ``< 1e-16``) and the verdict or the
    reason there is none."""
    from simcse_analysis.comparison import format_delta, format_interval, verdict_text
    from simcse_analysis.metrics.stats import format_p

    rows = []
    for r in doc["rows"]:
        spec = ".4f" if r["metric"] in SPACE_METRICS else ".2f"
        cls = {"better": "better", "worse": "worse", "no verdict": "undefined"}.get(r["verdict"], "")
        rows.append([_td(_e(r["other"])), _td(_e(r["metric"])), _td(_n(r["baseline_value"], spec), r["baseline_value"]),
                     _td(_n(r["other_value"], spec), r["other_value"]),
                     _td(_e(format_delta(r["delta"], "+" + spec)), r["delta"]),
                     _td(_e(format_interval(r, spec)), r["low"]),
                     _td(_e(format_p(r.get("p_adjusted"))), r.get("p_adjusted")),
                     f'<td class="{cls}">{_e(verdict_text(r))}</td>'])
    return rows


def geometry_rows(doc: dict[str, Any]) -> str:
    """One line per checkpoint: its ℓ_align and ℓ_uniform verdicts read together (neither is better alone)."""
    lines = [f"<li><b>{_e(p['other'])}</b> vs the baseline: {_e(p['geometry'])}</li>"
             for p in doc["pairs"] if p.get("geometry")]
    return f'<ul class="geometry">{"".join(lines)}</ul>' if lines else ""


def _gap(a: Any, b: Any) -> float | None:
    """``a − b`` for an error bar, None (no bar) where either is missing (a row without a verdict)."""
    ok = all(isinstance(x, (int, float)) and math.isfinite(x) for x in (a, b))
    return a - b if ok else None


def _figures(doc: dict[str, Any]) -> list[tuple[str, str, Any]]:
    import plotly.graph_objects as go

    figs: list[tuple[str, str, Any]] = []
    models = doc["models"]
    tasks = [k for k in models[0]["scores"] if k not in SPACE_METRICS] if models else []
    sts = go.Figure()
    for m in models:
        s = m["scores"]
        sts.add_trace(go.Bar(
            x=tasks, y=[s[t]["value"] for t in tasks], name=_e(m["label"]),
            error_y={"type": "data", "symmetric": False, "array": [_gap(s[t]["high"], s[t]["value"]) for t in tasks],
                     "arrayminus": [_gap(s[t]["value"], s[t]["low"]) for t in tasks]}))
    level = 100 * (1 - float(doc["settings"].get("alpha", 0.05)))
    sts.update_layout(barmode="group", title=f"STS Spearman ×100 with {level:g}% bootstrap CIs",
                      yaxis_title="Spearman ×100")
    figs.append(("sts", "STS with error bars", sts))

    forest = go.Figure()
    for other in dict.fromkeys(r["other"] for r in doc["rows"]):
        rs = [r for r in doc["rows"] if r["other"] == other and r["metric"] not in SPACE_METRICS]
        forest.add_trace(go.Scatter(
            x=[r["delta"] for r in rs], y=[r["metric"] for r in rs], mode="markers", name=_e(other),
            error_x={"type": "data", "symmetric": False, "array": [_gap(r["high"], r["delta"]) for r in rs],
                     "arrayminus": [_gap(r["delta"], r["low"]) for r in rs]}))
    forest.add_vline(x=0, line_dash="dot")
    forest.update_layout(title=f"Δ Spearman ×100 against the baseline ({level:g}% simultaneous intervals per family)",
                         xaxis_title="Δ")
    figs.append(("forest", "Differences", forest))

    if all("alignment" in m["scores"] for m in models):
        au = go.Figure()
        for m in models:
            a, u = m["scores"]["alignment"], m["scores"]["uniformity"]
            au.add_trace(go.Scatter(
                x=[a["value"]], y=[u["value"]], mode="markers+text", name=_e(m["label"]), text=[_e(m["label"])],
                textposition="top center", marker={"size": 12},
                error_x={"type": "data", "symmetric": False, "array": [_gap(a["high"], a["value"])],
                         "arrayminus": [_gap(a["value"], a["low"])]},
                error_y={"type": "data", "symmetric": False, "array": [_gap(u["high"], u["value"])],
                         "arrayminus": [_gap(u["value"], u["low"])]}))
        au.update_layout(title=f"ℓ_align vs ℓ_uniform with {level:g}% CIs (lower is better for both)",
                         xaxis_title="ℓ_align", yaxis_title="ℓ_uniform")
        figs.append(("align-uniform", "Alignment and uniformity", au))

    for i, p in enumerate(doc["pairs"]):
        if not p.get("cka"):
            continue
        z = p["cka"]
        hm = go.Figure(go.Heatmap(z=z, x=list(range(len(z[0]))), y=list(range(len(z))), zmin=0, zmax=1,
                                  colorscale="Viridis", text=[["n/a" if v is None else f"{v:.3f}" for v in row] for row in z],
                                  texttemplate="%{text}", colorbar={"title": "CKA"}))
        hm.update_layout(title=(f"Linear CKA: layers of {_e(p['baseline'])} (rows) vs {_e(p['other'])} (columns); "
                                "n/a = a constant layer (e.g. [CLS] at layer 0)"),
                         xaxis_title=f"layer of {_e(p['other'])} (0 = embeddings)",
                         yaxis_title=f"layer of {_e(p['baseline'])}")
        figs.append((f"cka-{i}", "CKA heatmap", hm))
    return figs


def comparison_section(doc: dict[str, Any]) -> tuple[str, list[tuple[str, str, Any]]]:
    """HTML of the verdict, kNN and movers tables, and the ``(anchor, heading, figure)`` list, for ``doc``
    (a version-1 document is read through :func:`~simcse_analysis.comparison.upgrade_comparison`)."""
    from simcse_analysis.comparison import upgrade_comparison

    doc = upgrade_comparison(doc)
    level = 100 * (1 - float(doc["settings"].get("alpha", 0.05)))
    design = f'<p class="note design">{_e(doc["design"])}</p>' if doc.get("design") else ""
    parts = ['<section id="verdicts"><h2>Verdicts</h2>', design,
             _table(["other", "metric", "baseline", "other", "Δ", f"{level:g}% simultaneous CI", "p (adj.)",
                     "verdict"], verdict_rows(doc), "verdict-table"),
             geometry_rows(doc),
             "".join(f'<p class="note">{_e(n)}</p>' for n in doc.get("notes", [])), "</section>"]
    knn = [p for p in doc["pairs"] if p.get("knn_jaccard") is not None]
    if knn or any(p.get("cka_debiased_diagonal") for p in doc["pairs"]):
        rows = [[_td(_e(p["other"])), _td(_n(p.get("knn_jaccard"), ".4f"), p.get("knn_jaccard")),
                 _td(", ".join(_n(v, ".3f") for v in (p.get("cka_debiased_diagonal") or [])))]
                for p in doc["pairs"]]
        parts += ['<section id="similarity"><h2>Representational similarity to the baseline</h2>',
                  _table(["other", f"mutual kNN Jaccard@{_e(doc['settings'].get('k'))}",
                          "debiased CKA per layer (0 = embeddings)"], rows, "similarity-table"), "</section>"]
    movers = [(p["other"], m) for p in doc["pairs"] for m in p.get("movers", [])]
    if movers:
        rows = [[_td(_e(o)), _td(_e(m["task"])), _td(_e(m.get("subset", ""))), _td(_e(m["sentence1"])),
                 _td(_e(m["sentence2"])), _td(_n(m["gold"]), m["gold"]),
                 _td(_n(m["rank_baseline"], ".0f"), m["rank_baseline"]), _td(_n(m["rank_other"], ".0f"), m["rank_other"]),
                 _td(_n(m["move"], "+.0f"), m["move"]), _td(_n(m["cos_baseline"], ".3f"), m["cos_baseline"]),
                 _td(_n(m["cos_other"], ".3f"), m["cos_other"])] for o, m in movers]
        parts += [('<section id="movers"><h2>The pairs that moved</h2><p class="note">Rank 1 = most similar pair '
                   "of its task by predicted cosine; move = rank under the other checkpoint − rank under the "
                   "baseline. Click a header to sort; type to filter.</p>"),
                  _table(["other", "task", "subset", "sentence 1", "sentence 2", "gold", "rank (baseline)",
                          "rank (other)", "move", "cos (baseline)", "cos (other)"], rows, "movers-table", search=True),
                  "</section>"]
    return "\n".join(parts), _figures(doc)


def comparison_report_parts(doc: dict[str, Any]) -> tuple[list[tuple[str, str, str]], list[tuple[str, str, Any, str]]]:
    """The comparison as a section of the main report (``report --compare-from``): ``extra_blocks`` (the
    verdict, similarity and movers tables) and ``extra_sections`` (the figures, anchors prefixed ``cmp-``)
    of :func:`reports.html.render_report`."""
    tables, figs = comparison_section(doc)
    base = doc["rows"][0]["baseline"] if doc["rows"] else "-"
    intro = (f'<section id="comparison"><h2>Comparison with the baseline {_e(base)}</h2><p class="note">Paired '
             "tests of every checkpoint against the baseline (simcse-analyze compare): simultaneous intervals per "
             "family; a verdict is an interval that excludes 0 (the design is stated above the verdict table).</p></section>")
    return ([("comparison", "Comparison", intro + tables)],
            [(f"cmp-{a}", f"Comparison: {h}", f, "") for a, h, f in figs])


_CSS = """body{font-family:system-ui,sans-serif;margin:2em auto;max-width:1200px;color:#222}
table{border-collapse:collapse;margin:1em 0;font-size:14px}th,td{border:1px solid #ccc;padding:4px 8px}
th{cursor:pointer;background:#f6f6f6}td[data-v]{text-align:right}.better{color:#1a7f37;font-weight:600}
.worse{color:#b42318;font-weight:600}.undefined{color:#8a6d00}.note{color:#555}.table-wrap{overflow-x:auto}
input.filter{padding:4px 8px;width:24em}"""



def render_compare_page(doc: dict[str, Any]) -> str:
    """The full self-contained page for a ``ComparisonReport.to_dict()`` document."""
    import plotly.io as pio

    tables, figs = comparison_section(doc)
    divs = [f'<section id="{a}"><h2>{_e(h)}</h2>'
            + pio.to_html(f, full_html=False, include_plotlyjs=(i == 0), div_id=f"fig-{a}") + "</section>"
            for i, (a, h, f) in enumerate(figs)]
    base = doc["rows"][0]["baseline"] if doc["rows"] else "-"
    settings = "".join(f"<tr><td>{_e(k)}</td><td>{_e(v)}</td></tr>" for k, v in doc.get("settings", {}).items())
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>Checkpoint comparison</title>"
            f"<style>{_CSS}</style></head><body>\n<h1>Checkpoint comparison</h1>\n"
            f"<p>baseline: <b>{_e(base)}</b>; {len(doc['models']) - 1} checkpoint(s) compared against it.</p>\n"
            + tables + "\n" + "\n".join(divs)
            + f"\n<h2>Settings</h2><table>{settings}</table>\n<script>{_SORT_JS}</script>\n</body></html>\n")


def write_compare_page(doc: dict[str, Any], path: str | os.PathLike[str]) -> Path:
    """Render :func:`render_compare_page` and write it to ``path`` (:func:`~simcse_analysis.io_utils.write_output_text`)."""
    from simcse_analysis.io_utils import write_output_text

    return write_output_text(path, render_compare_page(doc))
