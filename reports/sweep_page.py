"""The HTML page of a training sweep (``simcse-analyze ablate …``), rendered from its summary document
(``trainers.sweeps.SweepSummary.to_dict()``) alone, never by re-running a model.

* a table: per point, mean ± std over seeds of the best STS-B dev Spearman, its step, ℓ_align and
  ℓ_uniform there, and their change from the first to the last evaluation;
* every run's trajectory in the ℓ_align–ℓ_uniform plane (SimCSE Fig. 2): one colour per point, a thin
  line per seed, a thick line for the mean over seeds, the shared start marked;
* STS-B dev, ℓ_align and ℓ_uniform against the training step (mean ± std band over seeds).

plotly.js is inlined once, so the file opens offline; every user-supplied string is HTML-escaped.
"""

from __future__ import annotations

import html
import math
import os
from pathlib import Path
from typing import Any

_PALETTE = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22",
            "#17becf")

_CSS = """body{font-family:system-ui,sans-serif;margin:2em auto;max-width:1100px;color:#222}
table{border-collapse:collapse;margin:1em 0}th,td{border:1px solid #ccc;padding:4px 8px;text-align:right}
th:first-child,td:first-child{text-align:left}code{background:#f4f4f4;padding:1px 4px}.note{color:#555}"""


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
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"


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


def render_sweep_page(doc: dict[str, Any]) -> str:
    """The full HTML page for a ``SweepSummary.to_dict()`` document."""
    import plotly.io as pio

    figs = [align_uniform_figure(doc), step_figure(doc)]
    parts = [pio.to_html(f, full_html=False, include_plotlyjs=(i == 0)) for i, f in enumerate(figs)]
    title = "Dropout ablation" if doc.get("kind") == "dropout" else "Training sweep"
    notes = []
    if doc.get("missing"):
        notes.append(f"<p class=\"note\">Not finished (left out): {_esc('; '.join(doc['missing']))}</p>")
    if doc.get("skipped"):
        notes.append(f"<p class=\"note\">Skipped run directories: {_esc('; '.join(doc['skipped']))}</p>")
    base = doc.get("base_config") or {}
    settings = "".join(f"<tr><td>{_esc(k)}</td><td>{_esc(v)}</td></tr>" for k, v in sorted(base.items())
                       if k not in ("output_dir", "extra"))
    return (f"<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{_esc(title)}</title>"
            f"<style>{_CSS}</style></head><body>\n<h1>{_esc(title)}</h1>\n"
            f"<p class=\"note\">Swept: {_esc(', '.join(doc.get('keys', [])))}. Each row is the mean ± sample std over "
            "seeds; <i>best</i> is the evaluation with the highest STS-B dev Spearman; Δ is last − first evaluation "
            "(ℓ_align rising means positive pairs drift apart).</p>\n"
            f"{summary_table(doc)}\n" + "".join(notes) + "\n".join(parts) +
            f"\n<h2>Common settings</h2><table>{settings}</table>\n</body></html>\n")


def write_sweep_page(doc: dict[str, Any], path: str | os.PathLike[str]) -> Path:
    """Render :func:`render_sweep_page` and write it atomically to ``path``."""
    from simcse_analysis.io_utils import write_output_text

    return write_output_text(path, render_sweep_page(doc))
