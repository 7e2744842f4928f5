"""The "Token level" figures and page, rendered from a token-analysis document
(:class:`simcse_analysis.token_analysis.TokenReport` ``.to_dict()``), never from models.

- :func:`layer_curves` — Ethayarajh (2019) Figs. 1–4 side by side: baseline anisotropy (cosine of random
  tokens from different sentences), self-similarity and intra-sentence similarity adjusted for it
  (solid; raw dotted), and the maximum explainable variance, per layer and checkpoint;
- :func:`frequency_norm_scatter` — corpus frequency (log x) vs embedding norm of each word piece (hover:
  the token), with the kNN distance per frequency bucket beside it (Li et al. 2020);
- :func:`frequent_word_heatmaps` — self-similarity of the most frequent words per layer;
- :func:`rogue_bars` — the largest per-dimension contributions to the random-pair cosine at the last layer
  (tokens and sentences), and per layer the number of dimensions carrying 50% of it (Timkey & van
  Schijndel 2021);
- the token-embedding spectrum reuses :func:`reports.figures.spectra_chart`.

:func:`token_sections` gives them as report sections (``render_report(..., extra_sections=...)``);
:func:`render_token_page` a standalone self-contained page (plotly.js inlined once, text escaped).
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

from . import figures as F
from .html import _CSS, PLOT_CONFIG, _check_scripts, _e


def _label(result: dict[str, Any]) -> str:
    m = result.get("model", {})
    return f"{m.get('model')} ({m.get('pooler')})" if m.get("pooler") else str(m.get("model"))


def layer_curves(results: list[dict[str, Any]]) -> Any:
    """2 × 2 panels of Ethayarajh's per-layer measures; one colour per checkpoint."""
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    titles = ("baseline: cosine of random tokens from different sentences",
              "self-similarity − baseline (dotted: raw)", "intra-sentence similarity − baseline (dotted: raw)",
              "maximum explainable variance (dotted: centred, as the reference code)")
    fig = make_subplots(rows=2, cols=2, subplot_titles=titles, horizontal_spacing=0.08, vertical_spacing=0.14)
    panels = [((1, 1), "baseline", None), ((1, 2), "self_similarity_adjusted", "self_similarity"),
              ((2, 1), "intra_sentence_adjusted", "intra_sentence"), ((2, 2), "mev", "mev_centered")]
    for k, r in enumerate(results):
        name, c = F.esc(_label(r)), F.colour(k)
        xs = [lay["layer"] for lay in r["layers"]]
        for n, ((row, col), key, dotted) in enumerate(panels):
            for j, (kk, dash) in enumerate(((key, "solid"), (dotted, "dot"))):
                if kk is None:
                    continue
                fig.add_trace(go.Scatter(
                    x=xs, y=[lay[kk] for lay in r["layers"]], mode="lines+markers", name=name, legendgroup=name,
                    showlegend=n == 0 and j == 0, line={"color": c, "dash": dash, "width": 2}, marker={"size": 6},
                    hovertemplate=f"<b>{F.tmpl(_label(r))}</b><br>layer %{{x}}<br>{kk.replace('_', ' ')} "
                                  "%{y:.4f}<extra></extra>"), row=row, col=col)
    fig.update_xaxes(title_text="layer (0 = embeddings)", dtick=1)
    fig.update_layout(height=720, margin={"t": 60, "l": 50, "r": 20, "b": 40}, legend={"orientation": "h", "y": -0.1},
                      font={"size": 12})
    return fig


def frequency_norm_scatter(results: list[dict[str, Any]]) -> Any:
    """Frequency (log x) vs norm per word piece (hover: token), and kNN distance per frequency bucket."""
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    fig = make_subplots(rows=1, cols=2, column_widths=[0.65, 0.35], horizontal_spacing=0.1,
                        subplot_titles=("embedding norm vs corpus frequency",
                                        "mean distance to the 3 nearest tokens, by frequency rank"))
    for k, r in enumerate(results):
        em, name, c = r["embedding_matrix"], F.esc(_label(r)), F.colour(k)
        rho = em.get("spearman_frequency_norm")
        fig.add_trace(go.Scatter(
            x=em["counts"], y=em["norms"], mode="markers", name=name + (f" (ρ = {rho:.3f})" if rho is not None else ""),
            legendgroup=name, text=[F.esc(t) for t in em["tokens"]], marker={"color": c, "size": 4, "opacity": 0.5},
            hovertemplate="<b>%{text}</b><br>count %{x}<br>norm %{y:.3f}<extra>" + F.tmpl(_label(r)) + "</extra>"),
            row=1, col=1)
        buckets = em["buckets"]
        fig.add_trace(go.Bar(x=[F.esc(b["label"]) for b in buckets], y=[b["mean_knn_distance"] for b in buckets],
                             name=name, legendgroup=name, showlegend=False, marker={"color": c},
                             customdata=[b["n"] for b in buckets],
                             hovertemplate="rank %{x}<br>kNN distance %{y:.3f}<br>%{customdata} tokens<extra>"
                                           + F.tmpl(_label(r)) + "</extra>"), row=1, col=2)
    fig.update_xaxes(type="log", title_text="count in the analysed sentences", row=1, col=1)
    fig.update_yaxes(title_text="‖e‖₂", row=1, col=1)
    fig.update_xaxes(title_text="frequency rank bucket", row=1, col=2)
    fig.update_layout(height=480, barmode="group", margin={"t": 60, "l": 50, "r": 20, "b": 40},
                      legend={"orientation": "h", "y": -0.2}, font={"size": 12})
    return fig


def rogue_bars(results: list[dict[str, Any]]) -> Any:
    """Top dimensions' share of the random-pair cosine at the last layer; dims carrying 50% per layer."""
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    fig = make_subplots(rows=1, cols=3, horizontal_spacing=0.07,
                        subplot_titles=("last layer, tokens: share of the top dimensions",
                                        "last layer, sentences: share of the top dimensions",
                                        "dimensions carrying 50% (solid: tokens, dotted: sentences)"))
    for k, r in enumerate(results):
        name, c = F.esc(_label(r)), F.colour(k)
        last = r["layers"][-1]
        for col, key in ((1, "token_rogue"), (2, "sentence_rogue")):
            top = [t for t in last[key]["top"] if t.get("share") is not None]
            fig.add_trace(go.Bar(x=[f"#{i + 1}" for i in range(len(top))], y=[t["share"] for t in top], name=name,
                                 legendgroup=name, showlegend=col == 1, marker={"color": c},
                                 customdata=[t["dim"] for t in top],
                                 hovertemplate="dimension %{customdata}<br>share %{y:.3f}<extra>"
                                               + F.tmpl(_label(r)) + "</extra>"), row=1, col=col)
        xs = [lay["layer"] for lay in r["layers"]]
        for key, dash in (("token_rogue", "solid"), ("sentence_rogue", "dot")):
            fig.add_trace(go.Scatter(x=xs, y=[lay[key]["dims_50"] for lay in r["layers"]], mode="lines+markers",
                                     name=name, legendgroup=name, showlegend=False,
                                     line={"color": c, "dash": dash, "width": 2},
                                     hovertemplate=f"layer %{{x}}<br>{key.split('_')[0]}s: %{{y}} dims carry 50%"
                                                   f"<extra>{F.tmpl(_label(r))}</extra>"), row=1, col=3)
    fig.update_yaxes(title_text="share of E[cos]", row=1, col=1)
    fig.update_yaxes(type="log", title_text="dimensions", row=1, col=3)
    fig.update_xaxes(title_text="rank", row=1, col=1)
    fig.update_xaxes(title_text="rank", row=1, col=2)
    fig.update_xaxes(title_text="layer", dtick=1, row=1, col=3)
    fig.update_layout(height=440, barmode="group", margin={"t": 60, "l": 50, "r": 20, "b": 40},
                      legend={"orientation": "h", "y": -0.2}, font={"size": 12})
    return fig


def frequent_word_heatmaps(results: list[dict[str, Any]]) -> Any:
    """Self-similarity of the most frequent word types (rows) per layer (columns), one panel per checkpoint."""
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    fig = make_subplots(rows=1, cols=len(results), subplot_titles=[F.esc(_label(r)) for r in results],
                        horizontal_spacing=0.08)
    for k, r in enumerate(results):
        words = r.get("frequent_types") or []
        fig.add_trace(go.Heatmap(
            z=[w["self_similarity"] for w in words], x=[lay["layer"] for lay in r["layers"]],
            y=[F.esc(f"{w['type']} ({w['count']:,})") for w in words], zmin=0, zmax=1, colorscale="Viridis",
            showscale=k == 0, colorbar={"title": "self-sim"},
            hovertemplate="%{y}<br>layer %{x}<br>self-similarity %{z:.3f}<extra>" + F.tmpl(_label(r)) + "</extra>"),
            row=1, col=k + 1)
        fig.update_yaxes(autorange="reversed", row=1, col=k + 1)
    fig.update_xaxes(title_text="layer", dtick=1)
    fig.update_layout(height=160 + 22 * max((len(r.get("frequent_types") or []) for r in results), default=1),
                      margin={"t": 60, "l": 50, "r": 20, "b": 40}, font={"size": 12})
    return fig


def token_sections(doc: dict[str, Any]) -> list[tuple[str, str, Any, str]]:
    """``[(anchor, heading, figure, note)]`` of the Token level part (empty without results)."""
    results = doc.get("results") or []
    if not results:
        return []
    proto = doc.get("protocol", "")
    spectra = [{"label": _label(r), "colour": F.colour(k),
                "uncentered": r["embedding_matrix"]["spectrum"]["uncentered"]["singular_values"],
                "centered": r["embedding_matrix"]["spectrum"]["centered"]["singular_values"]}
               for k, r in enumerate(results)]
    eranks = "; ".join(f"{_label(r)}: effective rank {r['embedding_matrix']['spectrum']['uncentered']['effective_rank']:.1f}"
                       f" (centred {r['embedding_matrix']['spectrum']['centered']['effective_rank']:.1f}), mean-vector "
                       f"share {r['embedding_matrix']['mean_vector_share']:.4f}" for r in results)
    return [
        ("token-layers", "Token level: contextual anisotropy per layer (Ethayarajh 2019)", layer_curves(results),
         ("Lower self-similarity = more context-specific representations; the baseline is what two unrelated "
         f"tokens share, so the adjusted curves subtract it. Protocol: {proto}")),
        ("token-words", "Token level: self-similarity of the most frequent words", frequent_word_heatmaps(results),
         ("Ethayarajh found stopwords among the most context-specific words (lowest self-similarity) in upper layers; "
         "rows are the most frequent word types (count in brackets), columns the layers.")),
        ("token-rogue", "Token level: rogue dimensions (Timkey & van Schijndel 2021)", rogue_bars(results),
         ("Each dimension's contribution E[u_k v_k] to the expected cosine of random pairs, as a share of it: "
         "a few dimensions carrying most of it means cosine similarity is dominated by them.")),
        ("token-spectrum", "Token level: spectrum of the token-embedding matrix",
         F.spectra_chart(spectra, title="Singular values of the input token-embedding matrix"), eranks + "."),
        ("token-frequency", "Token level: frequency vs norm (Li et al. 2020)", frequency_norm_scatter(results),
         ("Each point is a word piece seen in the analysed sentences (the most frequent ones; hover for the token). "
         "ρ: Spearman correlation of frequency and norm over all seen pieces.")),
    ]


def render_token_page(doc: dict[str, Any], *, plotlyjs: str | None = None) -> str:
    """A self-contained page of :func:`token_sections` (plotly.js inlined once)."""
    import plotly.io as pio
    from plotly.offline import get_plotlyjs

    sections = token_sections(doc)
    parts = []
    for anchor, heading, fig, note in sections:
        div = pio.to_html(fig, full_html=False, include_plotlyjs=False, div_id=f"fig-{anchor}", config=PLOT_CONFIG,
                          default_width="100%")
        parts.append(f'<section id="{anchor}"><h2>{_e(heading)}</h2><p class="note">{_e(note)}</p>'
                     f'<div class="figure">{div}</div></section>')
    rows = "".join(f"<tr><td>{_e(k)}</td><td>{_e(v)}</td></tr>" for k, v in (doc.get("settings") or {}).items())
    js = re.sub(r"</(script)", r"<\\/\1", plotlyjs if plotlyjs is not None else get_plotlyjs(), flags=re.IGNORECASE)
    head = ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
            f"<title>Token level</title><style>{_CSS}</style>\n<script>")
    body = ("</script>\n</head><body>\n<header><h1>Token level</h1>"
            f"<p>{len(doc.get('results') or [])} checkpoint(s) · {_e(doc.get('protocol', ''))}</p></header>\n<main>\n"
            + "\n".join(parts)
            + f'\n<section id="settings"><h2>Settings</h2><table class="plain">{rows}</table></section>\n</main>\n'
            "<footer>Self-contained page: plotly.js is embedded; nothing is fetched from the network.</footer>\n"
            "</body></html>\n")
    _check_scripts(head + body, expected=1 + len(sections))
    return head + js + body


def write_token_page(doc: dict[str, Any], path: str | os.PathLike[str]) -> Path:
    """Render :func:`render_token_page` and write it to ``path`` (:func:`~simcse_analysis.io_utils.write_output_text`)."""
    from simcse_analysis.io_utils import write_output_text

    return write_output_text(path, render_token_page(doc))
