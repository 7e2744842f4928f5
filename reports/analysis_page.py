"""A first self-contained HTML page for one embedding analysis (``simcse-analyze … --out FILE.html``).

Rendered from the JSON document of :class:`simcse_analysis.analysis.AnalysisReport` alone (never by
re-running a model). plotly.js is inlined once, so the file opens offline. Every piece of user text
(model names, paths, labels) is HTML-escaped, in the page and in the figures' labels.

- ``align_uniform``: ℓ_align vs ℓ_uniform, one point per model (SimCSE Fig. 2 style), with a table;
- ``spectrum``: normalised singular values (log scale), uncentred and centred, with a summary table;
- ``anisotropy``: cosine of STS-B pairs by gold-score bin (box plots, SimCSE Fig. G.1), per-layer
  random-pair cosine and IsoScore, and a summary table.
"""

from __future__ import annotations

import html
import math
import os
from pathlib import Path
from typing import Any

from simcse_analysis.metrics.anisotropy import PARTITION_ISOTROPY_CONVENTION

_TITLES = {"align_uniform": "Alignment and uniformity", "spectrum": "Singular-value spectrum",
           "anisotropy": "Anisotropy"}


def _esc(x: Any) -> str:
    return html.escape(str(x), quote=True)


def _num(x: Any, spec: str = ".4f") -> str:
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return "n/a"
    return format(x, spec) if isinstance(x, (int, float)) else _esc(x)


def _model_label(result: dict[str, Any]) -> str:
    m = result.get("model", {})
    pooler = m.get("pooler")
    return _esc(f"{m.get('model')} ({pooler})" if pooler else m.get("model"))


def _table(headers: list[str], rows: list[list[str]]) -> str:
    """An HTML table; cells must already be escaped/formatted."""
    head = "".join(f"<th>{_esc(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in r) + "</tr>" for r in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _align_uniform(doc: dict[str, Any]) -> tuple[list[Any], str]:
    import plotly.graph_objects as go

    fig = go.Figure()
    for r in doc["results"]:
        se, a_se = r.get("uniformity_stderr"), r.get("alignment_stderr")
        fig.add_trace(go.Scatter(  # error bars: 95% normal intervals, ±1.96 se
            x=[r["alignment"]], y=[r["uniformity"]], mode="markers+text", name=_model_label(r),
            text=[_model_label(r)], textposition="top center", marker={"size": 12},
            error_y=None if se is None else {"type": "data", "array": [1.96 * se], "visible": True},
            error_x=None if a_se is None else {"type": "data", "array": [1.96 * a_se], "visible": True}))
    fig.update_layout(title="ℓ_align vs ℓ_uniform (lower is better for both; bars: 95% CI)",
                      xaxis_title="ℓ_align  (positive pairs)", yaxis_title="ℓ_uniform  (all sentence pairs)")
    rows = [[_model_label(r), _num(r["alignment"]), _num(r["uniformity"]),
             "exact" if r.get("uniformity_stderr") is None else f"se {_num(r['uniformity_stderr'])}",
             _num(r["n_positive_pairs"], "d"), _num(r["n_sentences"], "d")] for r in doc["results"]]
    return [fig], _table(["model", "ℓ_align", "ℓ_uniform", "uniformity", "positive pairs", "sentences"], rows)


def _spectrum(doc: dict[str, Any]) -> tuple[list[Any], str]:
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    fig = make_subplots(rows=1, cols=2, subplot_titles=("uncentred", "centred"))
    for r in doc["results"]:
        for col, key in ((1, "uncentered"), (2, "centered")):
            s = r[key]["singular_values"]
            fig.add_trace(go.Scatter(x=list(range(1, len(s) + 1)), y=s, mode="lines", name=_model_label(r),
                                     legendgroup=_model_label(r), showlegend=col == 1), row=1, col=col)
    fig.update_yaxes(type="log", title_text="σ_k / σ_1")
    fig.update_xaxes(title_text="index k")
    fig.update_layout(title="Singular values of the sentence-embedding matrix (normalised to max 1)")
    rows = []
    for r in doc["results"]:
        for key in ("uncentered", "centered"):
            sp = r[key]
            ev = sp["explained_variance_top_k"]
            rows.append([_model_label(r), key, _num(sp["effective_rank"], ".2f"), _num(sp["stable_rank"], ".3f"),
                         _esc(", ".join(f"top{k}: {v:.3f}" for k, v in ev.items())),
                         _num(sp["condition_number"], ".4g"), _num(sp["numerical_rank"], "d")])
    return [fig], _table(["model", "matrix", "effective rank", "stable rank", "explained variance",
                          "condition number", "numerical rank"], rows)


def _anisotropy(doc: dict[str, Any]) -> tuple[list[Any], str]:
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    box = go.Figure()
    for r in doc["results"]:
        xs, ys = [], []
        for b in r["score_bins"]:
            xs += [_esc(b["label"])] * len(b["cosines"])
            ys += b["cosines"]
        box.add_trace(go.Box(x=xs, y=ys, name=_model_label(r), boxpoints=False))
    box.update_layout(boxmode="group", title="Cosine similarity of STS-B pairs by gold score",
                      xaxis_title="gold score bin", yaxis_title="cosine similarity")
    figs = [box]
    layered = [r for r in doc["results"] if r.get("layers")]
    if layered:
        lay = make_subplots(rows=1, cols=2, subplot_titles=("random-pair cosine", "IsoScore"))
        for r in layered:
            idx = list(range(len(r["layers"])))
            name = _esc(f"{r['model'].get('model')} ({r.get('layer_pooler')} per layer)")
            lay.add_trace(go.Scatter(x=idx, y=[s["random_pair_cosine"] for s in r["layers"]], mode="lines+markers",
                                     name=name, legendgroup=name), row=1, col=1)
            lay.add_trace(go.Scatter(x=idx, y=[s["isoscore"] for s in r["layers"]], mode="lines+markers",
                                     name=name, legendgroup=name, showlegend=False), row=1, col=2)
        lay.update_xaxes(title_text="layer (0 = embeddings)")
        lay.update_layout(title="Anisotropy across layers")
        figs.append(lay)
    rows = [[_model_label(r), f"{_num(s['random_pair_cosine'])} ± {_num(s['random_pair_cosine_stderr'])}",
             _num(s["mean_cosine_all_pairs"]), _num(s["isoscore"]), _num(s["partition_isotropy"], ".3g"),
             _num(s.get("log_partition_isotropy"), ".1f"), _num(s["mean_norm"], ".3f"),
             _num(s["first_pc_variance_share"])]
            for r in doc["results"] for s in [r["summary"]]]
    return figs, _table(["model", "random-pair cosine", "all-pairs cosine", "IsoScore", "I(W)", "log I(W)",
                         "mean norm", "PC1 variance share"], rows) + (
        f'<p class="protocol">{_esc(PARTITION_ISOTROPY_CONVENTION)}</p>')


_SECTIONS = {"align_uniform": _align_uniform, "spectrum": _spectrum, "anisotropy": _anisotropy}

_CSS = """body{font-family:system-ui,sans-serif;margin:2em auto;max-width:1100px;color:#222}
table{border-collapse:collapse;margin:1em 0}th,td{border:1px solid #ccc;padding:4px 8px;text-align:right}
th:first-child,td:first-child{text-align:left}code{background:#f4f4f4;padding:1px 4px}.protocol{color:#444}"""


def render_analysis_page(document: dict[str, Any]) -> str:
    """The full HTML page (plotly.js inlined once) for an ``AnalysisReport.to_dict()`` document."""
    import plotly.io as pio

    kind = document.get("analysis")
    if kind not in _SECTIONS:
        raise ValueError(f"unknown analysis {kind!r}")
    figs, table = _SECTIONS[kind](document)
    parts = [pio.to_html(f, full_html=False, include_plotlyjs=(i == 0)) for i, f in enumerate(figs)]
    settings = document.get("settings", {})
    settings_rows = "".join(f"<tr><td>{_esc(k)}</td><td>{_esc(v)}</td></tr>" for k, v in settings.items())
    data = document.get("data", {})
    data_rows = "".join(f"<tr><td>{_esc(k)}</td><td>{_esc(v)}</td></tr>" for k, v in data.items())
    title = _TITLES[kind]
    return (f"<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{_esc(title)}</title>"
            f"<style>{_CSS}</style></head><body>\n<h1>{_esc(title)}</h1>\n"
            f"<p class=\"protocol\"><b>Protocol:</b> {_esc(document.get('protocol', ''))}</p>\n"
            f"{table}\n" + "\n".join(parts) +
            f"\n<h2>Settings</h2><table>{settings_rows}</table>\n<h2>Data</h2><table>{data_rows}</table>\n"
            "</body></html>\n")


def write_analysis_page(document: dict[str, Any], path: str | os.PathLike[str]) -> Path:
    """Render :func:`render_analysis_page` and write it to ``path`` (:func:`~simcse_analysis.io_utils.write_output_text`)."""
    from simcse_analysis.io_utils import write_output_text

    return write_output_text(path, render_analysis_page(document))
