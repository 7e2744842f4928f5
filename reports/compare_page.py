"""The comparison (``simcse-analyze compare``), as a page of its own (``compare --out F.html``) and as the
report's Comparison section (``report --compare-from``), rendered from ``ComparisonReport.to_dict()``.

Sections (:func:`comparison_sections`, in the one look of :mod:`reports.page`): the design in words, the
verdict table (Δ, simultaneous CI, adjusted p, verdict or why none), the alignment–uniformity reading per
checkpoint, STS Spearman per checkpoint with error bars, the Δ forest plot, the align–uniform
plane (ℓ_uniform on x, as everywhere) with CIs, one CKA heatmap (layer × layer) per checkpoint against the
baseline, the mutual kNN overlap, and, collapsed, the pairs whose predicted-similarity rank moved most:
the top :data:`MOVERS_PER_TASK` per task and checkpoint, each pair once, with its gold rank and whether
the move brought it closer to the gold ranking (*fixed*) or further from it (*broken*).

Every checkpoint keeps one name and one colour on a page (:class:`reports.figures.Checkpoints`): the
comparison's ``path@pooler`` labels are shown under the page's names. All user text is HTML-escaped.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

from . import figures as F
from .page import Section, provenance_cards, render_page, settings_table, swatch
from .page import e as _e
from .page import table as page_table

SPACE_METRICS = ("alignment", "uniformity")
#: Rows of the movers table per task and checkpoint.
MOVERS_PER_TASK = 10


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


#: Verdicts that mean "the simultaneous interval excludes 0".
SIGNIFICANT = frozenset({"better", "worse", "lower", "higher"})


def comparison_checkpoints(doc: dict[str, Any], cps: F.Checkpoints | None = None) -> dict[str, int]:
    """Each comparison label → its index among the page's checkpoints (registered in ``cps`` if new)."""
    cps = cps if cps is not None else F.Checkpoints()
    return {m["label"]: cps.index({**(m.get("model") or {}), "label": m["label"]}) for m in doc["models"]}


def renamed(doc: dict[str, Any], cps: F.Checkpoints) -> dict[str, Any]:
    """A copy of ``doc`` whose checkpoint labels are the page's names (verdict rows, pairs, models)."""
    idx = comparison_checkpoints(doc, cps)

    def name(label: str) -> str:
        return cps.name(idx[label]) if label in idx else label

    return {**doc, "models": [{**m, "label": name(m["label"])} for m in doc["models"]],
            "rows": [{**r, "baseline": name(r["baseline"]), "other": name(r["other"])} for r in doc["rows"]],
            "pairs": [{**p, "baseline": name(p["baseline"]), "other": name(p["other"])} for p in doc["pairs"]]}


def _colours(doc: dict[str, Any], cps: F.Checkpoints) -> dict[str, str]:
    """Page name → colour, for a :func:`renamed` document."""
    return {cps.name(i): cps.colour(i) for i in range(len(cps.names))}


def _figures(doc: dict[str, Any], cps: F.Checkpoints) -> list[tuple[str, str, Any, str]]:
    """``(anchor, heading, figure, note)`` of a :func:`renamed` document, in the page's colours."""
    figs: list[tuple[str, str, Any, str]] = []
    colours = _colours(doc, cps)
    models = doc["models"]
    tasks = [k for k in models[0]["scores"] if k not in SPACE_METRICS] if models else []
    level = 100 * (1 - float(doc["settings"].get("alpha", 0.05)))
    figs.append(("sts", "STS with error bars", F.sts_bars(
        [{"label": m["label"], "colour": colours.get(m["label"]), "scores": m["scores"]} for m in models], tasks,
        level=level), f"Spearman ×100 per task with {level:g}% bootstrap CIs over the pairs."))
    rows = [{"label": r["other"], "colour": colours.get(r["other"]), **{k: r[k] for k in ("metric", "delta", "low",
                                                                                          "high", "verdict")}}
            for r in doc["rows"] if r["metric"] not in SPACE_METRICS]
    if rows:
        base = doc["rows"][0]["baseline"]
        figs.append(("forest", "Differences", F.forest(rows, title=f"Δ Spearman ×100 against {base}"),
                     (f"{level:g}% simultaneous intervals per family (a verdict is an interval that excludes the "
                      "dotted line, Δ = 0).")))
    if models and all("alignment" in m["scores"] for m in models):
        points = []
        for m in models:
            a, u = m["scores"]["alignment"], m["scores"]["uniformity"]
            points.append({"label": m["label"], "colour": colours.get(m["label"]), "alignment": a["value"],
                           "uniformity": u["value"], "stsb_dev": None, "baseline": None,
                           "alignment_low": a.get("low"), "alignment_high": a.get("high"),
                           "uniformity_low": u.get("low"), "uniformity_high": u.get("high")})
        figs.append(("align-uniform", "Alignment and uniformity", F.align_uniform_plane(
            points, title=f"ℓ_align vs ℓ_uniform with {level:g}% CIs"),
            ("ℓ_uniform on x, ℓ_align on y, as in SimCSE Fig. 2: lower ℓ_align = closer positive pairs, lower "
             "ℓ_uniform = more uniform; read them together (a collapsed space has a low ℓ_align). Bars: "
             "per-checkpoint intervals.")))
    for i, p in enumerate(doc["pairs"]):
        if p.get("cka"):
            figs.append((f"cka-{i}", f"CKA: {p['other']}", F.cka_heatmap(p["cka"], p["baseline"], p["other"]),
                         ("Linear CKA between every layer of the baseline (rows) and of the other checkpoint "
                          "(columns); n/a = a constant layer (e.g. [CLS] at layer 0).")))
    return figs


def movers_rows(doc: dict[str, Any], per_task: int = MOVERS_PER_TASK) -> list[dict[str, Any]]:
    """The movers of every pair, each (checkpoint, task, sentence pair) once, the ``per_task`` largest |move|
    per task and checkpoint, each with ``fixed`` (its rank moved towards its gold rank) or ``broken``."""
    out = []
    for p in doc["pairs"]:
        seen: set[tuple[str, str, str]] = set()
        count: dict[str, int] = {}
        for m in sorted(p.get("movers", []), key=lambda m: -abs(m.get("move") or 0)):
            key = (m["task"], *sorted((m["sentence1"], m["sentence2"])))
            if key in seen or count.get(m["task"], 0) >= per_task:
                continue
            seen.add(key)
            count[m["task"]] = count.get(m["task"], 0) + 1
            gold_rank = m.get("gold_rank")
            effect = ""
            if isinstance(gold_rank, (int, float)):
                before, after = abs(m["rank_baseline"] - gold_rank), abs(m["rank_other"] - gold_rank)
                effect = "fixed" if after < before else ("broken" if after > before else "")
            out.append({"other": p["other"], **m, "effect": effect})
    return out


def movers_table(doc: dict[str, Any], colours: dict[str, str]) -> str:
    """The collapsed movers table of a :func:`renamed` document (sortable, filterable, text wraps)."""
    rows = []
    moved = movers_rows(doc)
    for m in moved:
        rows.append("<tr>" + "".join([
            f'<td class="name">{swatch(colours.get(m["other"], "#999"))}{_e(m["other"])}</td>',
            _td(_e(m["task"]) + (f'<br><small class="ci">{_e(m["subset"])}</small>' if m.get("subset") else "")),
            f'<td class="text">{_e(m["sentence1"])}</td>', f'<td class="text">{_e(m["sentence2"])}</td>',
            _td(_n(m["gold"]), m["gold"]), _td(_n(m.get("gold_rank"), ".0f"), m.get("gold_rank")),
            _td(_n(m["rank_baseline"], ".0f"), m["rank_baseline"]), _td(_n(m["rank_other"], ".0f"), m["rank_other"]),
            _td(_n(m["move"], "+.0f"), m["move"]),
            _td(f'{_n(m["cos_baseline"], ".3f")} → {_n(m["cos_other"], ".3f")}', m["cos_other"]),
            f'<td class="{m["effect"]}">{_e(m["effect"] or "–")}</td>']) + "</tr>")
    if not rows:
        return ""
    n_fixed, n_broken = (sum(m["effect"] == e for m in moved) for e in ("fixed", "broken"))
    table = page_table(["checkpoint", "task", "sentence 1", "sentence 2", "gold", "gold rank", "rank (baseline)",
                        "rank (other)", "move", "cos", "effect"], rows, table_id="movers-table", search=True,
                       caption=("Rank 1 = the most similar pair of its task (by predicted cosine, or by gold score for "
                                "the gold rank); move = rank under the other checkpoint − rank under the baseline. "
                                "<i>fixed</i>: the pair moved towards its gold rank; <i>broken</i>: away from it."))
    return (f'<details class="fold"><summary>The pairs that moved most: top {MOVERS_PER_TASK} per task and checkpoint '
            f"({len(rows)} pairs: {n_fixed} fixed, {n_broken} broken)</summary>{table}</details>")


def difference_items(doc: dict[str, Any], cps: F.Checkpoints) -> str:
    """The summary's list of significant differences: the rows whose simultaneous interval excludes 0."""
    from simcse_analysis.comparison import format_interval, upgrade_comparison
    from simcse_analysis.metrics.stats import format_p

    d = renamed(upgrade_comparison(doc), cps)
    colours = _colours(d, cps)
    alpha = float(doc.get("settings", {}).get("alpha", 0.05))
    rows = d["rows"]
    sig = [r for r in rows if r.get("verdict") in SIGNIFICANT]
    items = []
    for r in sig[:8]:
        spec = ".4f" if r["metric"] in SPACE_METRICS else ".2f"
        items.append(f"<li>{swatch(colours.get(r['other'], '#999'))}<b>{_e(r['other'])}</b> vs {_e(r['baseline'])}, "
                     f"{_e(r['metric'])}: Δ {_n(r['delta'], '+' + spec)} {_e(format_interval(r, spec))}, "
                     f"p (adj.) {_e(format_p(r.get('p_adjusted')))}: <b>{_e(r['verdict'])}</b></li>")
    more = f"<li>… and {len(sig) - 8} more in the verdict table</li>" if len(sig) > 8 else ""
    head = (f"<p>{len(sig)} of {len(rows)} paired differences have a {100 * (1 - alpha):g}% simultaneous interval "
            "that excludes 0" + (":" if sig else ".") + "</p>")
    return head + (f"<ul>{''.join(items)}{more}</ul>" if sig else "")


def comparison_sections(doc: dict[str, Any], cps: F.Checkpoints | None = None, *, prefix: str = "") -> list[Section]:
    """The comparison's sections: verdicts (the report's ``comparison`` anchor with ``prefix``, else
    ``verdicts``), figures, representational similarity, the collapsed movers; anchors after the first are
    prefixed with ``prefix``."""
    from simcse_analysis.comparison import upgrade_comparison

    cps = cps if cps is not None else F.Checkpoints()
    d = renamed(upgrade_comparison(doc), cps)
    colours = _colours(d, cps)
    base = d["rows"][0]["baseline"] if d["rows"] else (d["models"][0]["label"] if d["models"] else "-")
    level = 100 * (1 - float(d["settings"].get("alpha", 0.05)))
    design = f'<p class="note design">{_e(d["design"])}</p>' if d.get("design") else ""
    verdicts = ('<div id="verdicts">' + design
                + _table(["other", "metric", "baseline", "other", "Δ", f"{level:g}% simultaneous CI", "p (adj.)",
                          "verdict"], verdict_rows(d), "verdict-table")
                + geometry_rows(d)
                + "".join(f'<p class="note">{_e(n)}</p>' for n in d.get("notes", [])) + "</div>")
    first = (Section("comparison", f"Comparison with the baseline {base}", verdicts, nav="Comparison",
                     note=("Paired tests of every checkpoint against the baseline (simcse-analyze compare): "
                           "simultaneous intervals per family; a verdict is an interval that excludes 0 (the design "
                           "is stated above the verdict table)."))
             if prefix else Section("verdicts", f"Verdicts: every checkpoint against {base}", verdicts, nav="Verdicts"))
    out = [first]
    for i, (a, h, f, note) in enumerate(_figures(d, cps)):
        out.append(Section(prefix + a, h, figure=f, note=note, nav=None if (prefix or i) else "Figures"))
    knn = [p for p in d["pairs"] if p.get("knn_jaccard") is not None]
    if knn or any(p.get("cka_debiased_diagonal") for p in d["pairs"]):
        rows = [[f'<td class="name">{swatch(colours.get(p["other"], "#999"))}{_e(p["other"])}</td>',
                 _td(_n(p.get("knn_jaccard"), ".4f"), p.get("knn_jaccard")),
                 _td(", ".join(_n(v, ".3f") for v in (p.get("cka_debiased_diagonal") or [])))]
                for p in d["pairs"]]
        out.append(Section(prefix + "similarity", "Representational similarity to the baseline",
                           _table(["other", f"mutual kNN Jaccard@{_e(d['settings'].get('k'))}",
                                   "debiased CKA per layer (0 = embeddings)"], rows, "similarity-table"),
                           nav=None if prefix else "Similarity"))
    movers = movers_table(d, colours)
    if movers:
        out.append(Section(prefix + "movers", "The pairs that moved", movers, nav=None if prefix else "Movers"))
    return out


def comparison_report_parts(doc: dict[str, Any]) -> tuple[list[tuple[str, str, str]], list[tuple[str, str, Any, str]]]:
    """The comparison as ``extra_blocks`` / ``extra_sections`` of :func:`reports.html.render_report` (kept for
    callers of the earlier interface; a record that carries the document as ``record["comparison"]`` gets
    the same sections, in the page's names and colours, and these are then left out)."""
    sections = comparison_sections(doc, prefix="cmp-")
    blocks = [(s.anchor, s.nav or s.heading, f"<h2>{_e(s.heading)}</h2>{s.html}") for s in sections if s.figure is None]
    figs = [(s.anchor, f"Comparison: {s.heading}", s.figure, s.note) for s in sections if s.figure is not None]
    return blocks, figs


def _summary(doc: dict[str, Any], cps: F.Checkpoints) -> str:
    d = renamed(doc, cps)
    colours = _colours(d, cps)
    ranked = sorted(d["models"], key=lambda m: -((m["scores"].get("avg") or {}).get("value") or -1e9))
    level = 100 * (1 - float(doc.get("settings", {}).get("alpha", 0.05)))

    def avg(m: dict[str, Any]) -> str:
        a = m["scores"].get("avg") or {}
        return (f"<b>{_n(a.get('value'))}</b> <small class=\"ci\">[{_n(a.get('low'))}, {_n(a.get('high'))}] "
                f"{level:g}% CI</small>")

    sts = "".join(f"<li>{swatch(colours.get(m['label'], '#999'))}{'<b>' if i == 0 else ''}{_e(m['label'])}"
                  f"{'</b>' if i == 0 else ''}: STS avg {avg(m)}</li>" for i, m in enumerate(ranked))
    geometry = "".join(
        f"<li>{swatch(colours.get(m['label'], '#999'))}<b>{_e(m['label'])}</b>: "
        f"ℓ_align {_n(m['scores']['alignment'].get('value'), '.3f')} [{_n(m['scores']['alignment'].get('low'), '.3f')}, "
        f"{_n(m['scores']['alignment'].get('high'), '.3f')}], ℓ_uniform {_n(m['scores']['uniformity'].get('value'), '.3f')} "
        f"[{_n(m['scores']['uniformity'].get('low'), '.3f')}, {_n(m['scores']['uniformity'].get('high'), '.3f')}]</li>"
        for m in d["models"] if "alignment" in m["scores"] and "uniformity" in m["scores"])
    return ('<div class="grid"><div class="card"><h3>STS: Spearman ×100, mean over the tasks</h3>'
            f"<ul>{sts}</ul></div><div class=\"card\"><h3>Significant differences</h3>{difference_items(doc, cps)}</div>"
            + (f'<div class="card" style="grid-column:1/-1"><h3>Geometry: ℓ_align (lower = closer positive pairs) '
               f"and ℓ_uniform (lower = more uniform), read together</h3><ul>{geometry}</ul>"
               f"{geometry_rows(renamed(doc, cps))}</div>" if geometry else "") + "</div>")


def document_provenance(doc: dict[str, Any], models: list[dict[str, Any]], what: str) -> str:
    """Provenance of a page drawn from a ``compare`` / ``tokens`` document: the checkpoints it names (model,
    pooler, fingerprint, path), its settings, and how this page was built (date, command, packages, machine)."""
    from .collect import provenance_entry

    rows = []
    for m in models:
        fp = m.get("fingerprint") or ""
        rows.append(f'<tr><td class="name">{swatch(m.get("colour", "#999"))}{_e(m.get("name", ""))}</td>'
                    f"<td>{_e(m.get('pooler') or '–')}</td>"
                    f'<td class="mono" title="{_e(fp)}">{_e(fp[:16]) if fp else "–"}</td>'
                    f'<td class="mono text">{_e(m.get("path") or m.get("model") or "")}</td></tr>')
    checkpoints = ('<div class="table-wrap"><table class="plain"><thead><tr><th>checkpoint</th><th>pooler</th>'
                   f"<th>fingerprint (SHA-256)</th><th>path</th></tr></thead><tbody>{''.join(rows)}</tbody></table></div>")
    built = doc.get("provenance") or [provenance_entry()]
    return (checkpoints + f'<div class="grid">{provenance_cards(built)}<div class="card"><h3>{_e(what)} settings</h3>'
            + settings_table(doc.get("settings") or {}) + "</div></div>")


def render_compare_page(doc: dict[str, Any], *, plotlyjs: str | None = None) -> str:
    """The full self-contained page for a ``ComparisonReport.to_dict()`` document."""
    cps = F.Checkpoints()
    sections = comparison_sections(doc, cps)
    base = doc["rows"][0]["baseline"] if doc["rows"] else "-"
    idx = comparison_checkpoints(doc, cps)
    models = [{**(m.get("model") or {}), "name": cps.name(idx[m["label"]]), "colour": cps.colour(idx[m["label"]])}
              for m in doc["models"]]
    subtitle = (f"baseline {cps.name(idx[base]) if base in idx else base}; {len(doc['models']) - 1} checkpoint(s) "
                "compared against it")
    return render_page("Checkpoint comparison", subtitle, summary=_summary(doc, cps), sections=sections,
                       provenance=document_provenance(doc, models, "Comparison"), plotlyjs=plotlyjs)


def write_compare_page(doc: dict[str, Any], path: str | os.PathLike[str]) -> Path:
    """Render :func:`render_compare_page` and write it to ``path`` (:func:`~simcse_analysis.io_utils.write_output_text`)."""
    from simcse_analysis.io_utils import write_output_text

    return write_output_text(path, render_compare_page(doc))
