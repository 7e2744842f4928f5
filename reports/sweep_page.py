"""The HTML page of a training sweep (``simcse-analyze ablate …``), rendered from its summary document
(``trainers.sweeps.SweepSummary.to_dict()``) alone, never by re-running a model.

* a table: per point, mean ± std over seeds of the best STS-B dev Spearman, its step, ℓ_align and
  ℓ_uniform there, and their change from the first to the last evaluation;
* every run's trajectory in the ℓ_align–ℓ_uniform plane (SimCSE Fig. 2): one colour per point, a thin
  line per seed, a thick line for the mean over seeds, the shared start marked;
* STS-B dev, ℓ_align and ℓ_uniform against the training step (mean ± std band over seeds);
* where it came from, as on the comparison report (:mod:`reports.html`, same header, navigation and
  provenance cards): the command line, package versions, machine, and the data files with checksums;
* the settings, from the runs' own resolved configurations (``run.json``): the values all runs share in
  one table, those that differ (seed, the swept keys) per run, each run with the command that trains it
  again.

plotly.js is inlined once, so the file opens offline; every user-supplied string is HTML-escaped.
"""

from __future__ import annotations

import html
import json
import math
import os
from pathlib import Path
from typing import Any

from .collect import file_entries, provenance_entry
from .html import PLOT_CONFIG, data_files_table, provenance_cards, render_page

_PALETTE = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22",
            "#17becf")


def _esc(x: Any) -> str:
    return html.escape(str(x), quote=True)


def _stat(s: dict[str, Any] | None, digits: int) -> str:
    if not s or s.get("mean") is None or not math.isfinite(s["mean"]):
        return "n/a"
    text = f"{s['mean']:.{digits}f}"
    return text + (f" ± {s['std']:.{digits}f}" if s.get("std") is not None else "")


def _rgba(color: str, alpha: float) -> str:
    r, g, b = (int(color[i:i + 2], 16) for i in (1, 3, 5))
    return f"rgba({r},{g},{b},{alpha})"


def summary_table(doc: dict[str, Any]) -> str:
    """HTML table of the sweep (cells escaped)."""
    keys = doc["keys"]
    heads = [*keys, "seeds", "STS-B dev (best)", "best step", "ℓ_align @best", "ℓ_uniform @best", "Δℓ_align",
             "Δℓ_uniform"]
    rows = []
    for p in doc["points"]:
        s = p["stats"]
        cells = [*(p["settings"].get(k, "") for k in keys), ", ".join(str(x) for x in p["seeds"]),
                 _stat(s["best_stsb_spearman"], 2), _stat(s["best_step"], 0), _stat(s["alignment_at_best"], 4),
                 _stat(s["uniformity_at_best"], 4), _stat(s["alignment_change"], 4),
                 _stat(s["uniformity_change"], 4)]
        rows.append("<tr>" + "".join(f"<td>{_esc(c)}</td>" for c in cells) + "</tr>")
    head = "".join(f"<th>{_esc(h)}</th>" for h in heads)
    return (f'<table class="sortable" id="sweep-table"><thead><tr>{head}</tr></thead>'
            f"<tbody>{''.join(rows)}</tbody></table>")


def align_uniform_figure(doc: dict[str, Any]):
    """Every run's (ℓ_align, ℓ_uniform) trajectory; the mean over seeds in bold (SimCSE Fig. 2)."""
    import plotly.graph_objects as go

    fig = go.Figure()
    start = None
    for i, p in enumerate(doc["points"]):
        color, name = _PALETTE[i % len(_PALETTE)], _esc(p["label"])
        for run in p["runs"]:
            t = [e for e in run["trajectory"] if e.get("alignment") is not None]
            if t and t[0]["step"] == 0 and start is None:
                start = t[0]
            fig.add_trace(go.Scatter(
                x=[e["alignment"] for e in t], y=[e["uniformity"] for e in t], mode="lines+markers",
                line={"color": _rgba(color, 0.35), "width": 1}, marker={"size": 4, "color": _rgba(color, 0.35)},
                name=f"{name} seed {run['seed']}", legendgroup=name, showlegend=False,
                text=[f"{name}, seed {run['seed']}, step {e['step']}, STS-B dev {e['stsb_spearman']:.2f}"
                      for e in t], hoverinfo="text"))
        m = [e for e in p["mean_trajectory"] if e.get("alignment") is not None]
        fig.add_trace(go.Scatter(
            x=[e["alignment"] for e in m], y=[e["uniformity"] for e in m], mode="lines+markers",
            line={"color": color, "width": 3},
            marker={"size": [7] * (len(m) - 1) + [14], "color": color,
                    "symbol": ["circle"] * (len(m) - 1) + ["diamond"]},
            name=name, legendgroup=name,
            text=[f"{name} (mean of {e['n']}), step {e['step']}, STS-B dev {e['stsb_spearman']:.2f}" for e in m],
            hoverinfo="text"))
    if start is not None:
        fig.add_trace(go.Scatter(x=[start["alignment"]], y=[start["uniformity"]], mode="markers+text",
                                 marker={"size": 14, "color": "black", "symbol": "star"}, text=["start"],
                                 textposition="bottom center", name="before training"))
    fig.update_layout(title="Trajectories in the ℓ_align–ℓ_uniform plane (lower is better for both; "
                            "◆ = last evaluation, thin = single seeds)",
                      xaxis_title="ℓ_align (STS-B dev pairs with gold > 4)",
                      yaxis_title="ℓ_uniform (STS-B dev sentences)", height=600)
    return fig


def step_figure(doc: dict[str, Any]):
    """STS-B dev, ℓ_align and ℓ_uniform against the step: mean over seeds with a ±1 std band."""
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    panels = (("stsb_spearman", "STS-B dev Spearman ×100"), ("alignment", "ℓ_align"), ("uniformity", "ℓ_uniform"))
    fig = make_subplots(rows=1, cols=3, subplot_titles=[t for _, t in panels])
    for i, p in enumerate(doc["points"]):
        color, name = _PALETTE[i % len(_PALETTE)], _esc(p["label"])
        m = [e for e in p["mean_trajectory"] if e.get("stsb_spearman") is not None]
        steps = [e["step"] for e in m]
        for col, (key, _) in enumerate(panels, start=1):
            mean = [e[key] for e in m]
            std = [e.get(f"{key}_std") or 0.0 for e in m]
            if any(std):
                fig.add_trace(go.Scatter(x=steps + steps[::-1], y=[a + b for a, b in zip(mean, std)]
                                         + [a - b for a, b in zip(mean, std)][::-1], fill="toself",
                                         fillcolor=_rgba(color, 0.15), line={"width": 0}, hoverinfo="skip",
                                         legendgroup=name, showlegend=False), row=1, col=col)
            fig.add_trace(go.Scatter(x=steps, y=mean, mode="lines+markers", line={"color": color}, name=name,
                                     legendgroup=name, showlegend=col == 1), row=1, col=col)
    fig.update_xaxes(title_text="training step")
    fig.update_layout(title="During training (mean over seeds, band = ±1 std)", height=420)
    return fig


# ----------------------------------------------------------------------------------------- settings
#: What a setting left as ``None`` in a run's resolved configuration means (the trainer fills in every other).
_UNSET = {"max_steps": "not set (the epochs decide)", "dropout": "the checkpoint's own",
          "device": "best available", "data_dir": "default ($SIMCSE_DATA, else ~/.cache/simcse-analysis/data)"}


def setting_text(name: str, value: Any) -> str:
    """A setting as the page prints it: floats exactly (``repr``: ``3e-05``), booleans ``true``/``false``,
    lists comma-separated, ``None`` as what it means for that setting (never the word "None")."""
    if value is None:
        return _UNSET.get(name, "not set")
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, (list, tuple)):
        return ", ".join(setting_text(name, v) for v in value) or "none"
    if isinstance(value, dict):
        return json.dumps(value, sort_keys=True)
    return str(value)


def _cell(name: str, value: Any) -> str:
    return f'<td data-setting="{_esc(name)}" class="mono">{_esc(setting_text(name, value))}</td>'


def common_settings_table(doc: dict[str, Any]) -> str:
    """Every setting all runs resolved to the same value (from their ``run.json``), one row each."""
    common = doc.get("common_settings") or {}
    rows = "".join(f'<tr><th scope="row"><code>{_esc(k)}</code></th>{_cell(k, v)}</tr>' for k, v in common.items())
    return (f'<div class="table-wrap"><table class="plain" id="common-settings"><caption>The resolved configuration '
            "each run recorded in its run.json (paper defaults filled in); settings that differ between runs are "
            f"in the table of runs.</caption><tbody>{rows}</tbody></table></div>")


def runs_table(doc: dict[str, Any]) -> str:
    """One row per run: its point, the settings that differ between runs, where it lives, its best STS-B
    dev, and the command that reproduces it."""
    varying = list(doc.get("varying_settings") or [])
    heads = "".join(f"<th><code>{_esc(k)}</code></th>" for k in varying)
    rows = []
    for i, p in enumerate(doc["points"]):
        swatch = f'<span class="swatch" style="background:{_PALETTE[i % len(_PALETTE)]}"></span>'
        for run in p["runs"]:
            settings = run.get("settings") or {}
            best = run.get("best_stsb_spearman")
            rows.append(
                f'<tr><td class="name">{swatch}{_esc(p["label"])}</td>'
                + "".join(_cell(k, settings.get(k)) for k in varying)
                + f'<td class="mono">{_esc(run.get("output_dir", ""))}</td>'
                + f"<td>{_esc(run.get('steps', ''))}</td>"
                + f"<td>{'n/a' if best is None else format(best, '.2f')}</td>"
                + f'<td class="command"><pre class="cmd mono">{_esc(run.get("command", ""))}</pre></td></tr>')
    return (f'<div class="table-wrap"><table class="plain" id="runs"><caption>Each command trains its run again: '
            "as printed it reuses the finished run in its directory; with another --out it trains the same run "
            "afresh (same settings, seed and data, so the same trajectory on the same software and machine)."
            f"</caption><thead><tr><th>point</th>{heads}<th>run directory</th><th>steps</th>"
            f"<th>STS-B dev (best)</th><th>command</th></tr></thead><tbody>{''.join(rows)}</tbody></table></div>")


def sweep_provenance(common_settings: dict[str, Any], command: str | None = None) -> dict[str, Any]:
    """A provenance entry for the sweep page (``reports.collect.provenance_entry``: date, command line,
    packages, machine) plus ``eval_files``: the STS-B files the runs evaluated on, checksummed now, when
    the runs share one data directory that is readable here (else ``eval_note`` says why not)."""
    from simcse_analysis.datadir import resolve_data_dir
    from simcse_analysis.errors import InputError
    from simcse_analysis.sts_data import load_sts

    entry = provenance_entry(command, common_settings.get("data_dir"))
    splits = ["dev", *str(common_settings.get("align_uniform_splits") or "dev").split(",")]
    try:
        root = resolve_data_dir(common_settings.get("data_dir"))
        paths = [f for split in dict.fromkeys(splits) for sub in load_sts("STSBenchmark", root, split)
                 for f in sub.files]
        entry["eval_files"] = file_entries(paths, root)
    except InputError as e:
        entry["eval_note"] = f"evaluation data not checksummed: {e}"
    return entry


# ----------------------------------------------------------------------------------------- page
def render_sweep_page(doc: dict[str, Any], *, plotlyjs: str | None = None) -> str:
    """The full HTML page for a ``SweepSummary.to_dict()`` document, in the look of the comparison report
    (:func:`reports.html.render_page`): provenance, results, figures, settings, runs."""
    import plotly.io as pio

    figs = [("trajectories", "Trajectories in the ℓ_align–ℓ_uniform plane (SimCSE Fig. 2)",
             align_uniform_figure(doc)), ("during-training", "During training", step_figure(doc))]
    figure_sections = "".join(
        f'<section id="{a}"><h2>{_esc(h)}</h2><div class="figure">'
        + pio.to_html(f, full_html=False, include_plotlyjs=False, div_id=f"fig-{a}", config=PLOT_CONFIG,
                      default_width="100%") + "</div></section>\n" for a, h, f in figs)
    title = "Dropout ablation" if doc.get("kind") == "dropout" else "Training sweep"
    notes = []
    if doc.get("missing"):
        notes.append(f"<p class=\"note\">Not finished (left out): {_esc('; '.join(doc['missing']))}</p>")
    if doc.get("skipped"):
        notes.append(f"<p class=\"note\">Skipped run directories: {_esc('; '.join(doc['skipped']))}</p>")
    provenance = doc.get("provenance") or []
    files = doc.get("data_files") or []
    data_cards = [f'<div class="card"><h3>Training data</h3><p>as each run recorded it</p>{data_files_table(files)}'
                  + "</div>"]
    for p in provenance:
        if p.get("eval_files"):
            data_cards.append('<div class="card"><h3>Evaluation data (STS-B)</h3><p>checksummed when this page was '
                              f'built</p>{data_files_table(p["eval_files"])}</div>')
        elif p.get("eval_note"):
            data_cards.append(f'<div class="card"><h3>Evaluation data</h3><p class="note">{_esc(p["eval_note"])}</p>'
                              "</div>")
    n_runs = sum(len(p["runs"]) for p in doc["points"])
    seeds = sorted({s for p in doc["points"] for s in p["seeds"]})
    main = (
        '<section id="provenance"><h2>What produced this page</h2>'
        f'<div class="grid">{provenance_cards(provenance)}{"".join(data_cards)}</div></section>\n'
        f'<section id="results"><h2>Results</h2><p class="note">Swept: {_esc(", ".join(doc.get("keys", [])))}. '
        "Each row is the mean ± sample std over seeds; <i>best</i> is the evaluation with the highest STS-B dev "
        "Spearman; Δ is last − first evaluation (ℓ_align rising means positive pairs drift apart).</p>"
        f'<div class="table-wrap">{summary_table(doc)}</div>' + "".join(notes) + "</section>\n"
        + figure_sections
        + f'<section id="settings"><h2>Common settings</h2>{common_settings_table(doc)}</section>\n'
        + f'<section id="runs-section"><h2>Runs</h2>{runs_table(doc)}</section>')
    nav = [("provenance", "Provenance"), ("results", "Results"), ("trajectories", "Trajectories"),
           ("during-training", "During training"), ("settings", "Common settings"), ("runs-section", "Runs")]
    created = provenance[-1].get("created", "") if provenance else ""
    subtitle = (f"{n_runs} run{'s' if n_runs != 1 else ''} · {len(doc['points'])} point"
                f"{'s' if len(doc['points']) != 1 else ''} · seed{'s' if len(seeds) != 1 else ''} "
                f"{', '.join(map(str, seeds))}"
                + (f" · generated {created} by simcse-analyze ablate" if created else ""))
    return render_page(title, subtitle, nav, main, n_figures=len(figs), plotlyjs=plotlyjs)


def write_sweep_page(doc: dict[str, Any], path: str | os.PathLike[str]) -> Path:
    """Render :func:`render_sweep_page` and write it atomically to ``path``."""
    from simcse_analysis.io_utils import write_output_text

    return write_output_text(path, render_sweep_page(doc))
