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

:func:`token_page_sections` gives them as sections of a page (the report's Token level part, or
:func:`render_token_page`'s own page, built by :func:`reports.page.render_page`); :func:`token_sections`
as ``(anchor, heading, figure, note)`` tuples for the earlier ``render_report(extra_sections=...)`` interface.

Token analyses do not depend on the sentence pooler (only on the weights and the per-layer pooling, the
token mean or [CLS]), so results of the same weights with the same per-layer pooling (e.g. ``M@avg`` and
``M@avg_first_last``) are drawn once, named after all of them (:func:`grouped`). Each checkpoint keeps the
page's name and colour (:class:`reports.figures.Checkpoints`).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from . import figures as F
from .page import Section, render_page, swatch
from .page import e as _e


def _label(result: dict[str, Any]) -> str:
    """The result's page name (set by :func:`grouped`), else ``model [pooler]``."""
    return result.get("label") or F.checkpoint_name(result.get("model", {}))


def _colour(result: dict[str, Any], k: int) -> str:
    return result.get("colour") or F.colour(k)


def grouped(results: list[dict[str, Any]], cps: F.Checkpoints | None = None) -> list[dict[str, Any]]:
    """``results`` with each group of identical analyses (same weights = fingerprint, same per-layer pooling)
    kept once, labelled with the page names of all its checkpoints (``A = B``) and the first one's colour."""
    cps = cps if cps is not None else F.Checkpoints()
    groups: dict[tuple, list[tuple[int, dict[str, Any]]]] = {}
    for r in results:
        model = r.get("model") or {}
        i = cps.index(model)
        key = (model.get("fingerprint") or f"#{i}", r.get("layer_pooler"))
        groups.setdefault(key, []).append((i, r))
    out = []
    for members in groups.values():
        names = list(dict.fromkeys(cps.name(i) for i, _ in members))
        out.append({**members[0][1], "label": " = ".join(names), "colour": cps.colour(members[0][0]),
                    "members": [i for i, _ in members]})
    return out


def layer_curves(results: list[dict[str, Any]]) -> Any:
    """2 × 2 panels of Ethayarajh's per-layer measures; one colour per checkpoint."""
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    titles = [F.wrap_title(t, 60) for t in (
        "baseline: cosine of random tokens from different sentences", "self-similarity − baseline (dotted: raw)",
        "intra-sentence similarity − baseline (dotted: raw)",
        "maximum explainable variance (dotted: centred, as the reference code)")]
    fig = make_subplots(rows=2, cols=2, subplot_titles=titles, horizontal_spacing=0.08, vertical_spacing=0.16)
    panels = [((1, 1), "baseline", None), ((1, 2), "self_similarity_adjusted", "self_similarity"),
              ((2, 1), "intra_sentence_adjusted", "intra_sentence"), ((2, 2), "mev", "mev_centered")]
    for k, r in enumerate(results):
        name, c = F.esc(_label(r)), _colour(r, k)
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
    F._base_layout(fig, "Contextual anisotropy per layer (Ethayarajh 2019)", 720)
    fig.update_xaxes(title_text="layer (0 = embeddings)", dtick=1)
    return fig


def frequency_norm_scatter(results: list[dict[str, Any]]) -> Any:
    """Frequency (log x) vs norm per word piece (hover: token), and kNN distance per frequency bucket."""
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    fig = make_subplots(rows=1, cols=2, column_widths=[0.65, 0.35], horizontal_spacing=0.1,
                        subplot_titles=("embedding norm vs corpus frequency",
                                        F.wrap_title("mean distance to the 3 nearest tokens, by frequency rank", 40)))
    for k, r in enumerate(results):
        em, name, c = r["embedding_matrix"], F.esc(_label(r)), _colour(r, k)
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
    F._base_layout(fig, "Frequency and norm of the word pieces (Li et al. 2020)", 480, top=95)
    fig.update_layout(barmode="group")
    return fig


def rogue_bars(results: list[dict[str, Any]]) -> Any:
    """Top dimensions' share of the random-pair cosine at the last layer; dims carrying 50% per layer."""
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    fig = make_subplots(rows=1, cols=3, horizontal_spacing=0.07, subplot_titles=[F.wrap_title(t, 34) for t in (
        "last layer, tokens: share of the top dimensions", "last layer, sentences: share of the top dimensions",
        "dimensions carrying 50% (solid: tokens, dotted: sentences)")])
    for k, r in enumerate(results):
        name, c = F.esc(_label(r)), _colour(r, k)
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
    F._base_layout(fig, "Rogue dimensions (Timkey & van Schijndel 2021)", 440, top=100)
    fig.update_layout(barmode="group")
    return fig


def frequent_word_heatmaps(results: list[dict[str, Any]]) -> Any:
    """Self-similarity of the most frequent word types (rows) per layer (columns), one panel per checkpoint."""
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    fig = make_subplots(rows=1, cols=len(results),
                        subplot_titles=[F.wrap_title(_label(r), max(20, 130 // max(len(results), 1))) for r in results],
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
    F._base_layout(fig, "Self-similarity of the most frequent words",
                   160 + 22 * max((len(r.get("frequent_types") or []) for r in results), default=1), top=100)
    for k, (ann, r) in enumerate(zip(fig.layout.annotations, results)):
        ann.font = {"color": _colour(r, k), "size": 13}
    return fig


def token_page_sections(doc: dict[str, Any], cps: F.Checkpoints | None = None) -> list[Section]:
    """The Token level sections of ``doc`` (empty without results); the first carries the nav entry and
    links to the others."""
    results = grouped(doc.get("results") or [], cps)
    if not results:
        return []
    proto = doc.get("protocol", "")
    spectra = [{"label": _label(r), "colour": _colour(r, k),
                "uncentered": r["embedding_matrix"]["spectrum"]["uncentered"]["singular_values"],
                "centered": r["embedding_matrix"]["spectrum"]["centered"]["singular_values"]}
               for k, r in enumerate(results)]
    eranks = "; ".join(f"{_label(r)}: effective rank {r['embedding_matrix']['spectrum']['uncentered']['effective_rank']:.1f}"
                       f" (centred {r['embedding_matrix']['spectrum']['centered']['effective_rank']:.1f}), mean-vector "
                       f"share {r['embedding_matrix']['mean_vector_share']:.4f}" for r in results)
    parts = [
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
    merged = [r["label"] for r in results if " = " in r["label"]]
    toc = ('<p class="note">Token level: ' + " · ".join(f'<a href="#{a}">{_e(h.split(": ", 1)[1])}</a>'
                                                        for a, h, _, _ in parts) + ". "
           + (f"Identical weights with the same per-layer pooling are analysed once: {_e('; '.join(merged))}."
              if merged else "") + "</p>")
    return [Section(a, h, toc if i == 0 else "", figure=f, note=n, nav="Tokens" if i == 0 else None)
            for i, (a, h, f, n) in enumerate(parts)]


def token_sections(doc: dict[str, Any]) -> list[tuple[str, str, Any, str]]:
    """``[(anchor, heading, figure, note)]`` of the Token level part (empty without results)."""
    return [(s.anchor, s.heading, s.figure, s.note) for s in token_page_sections(doc)]


def _summary(results: list[dict[str, Any]]) -> str:
    items = []
    for k, r in enumerate(results):
        last = r["layers"][-1]
        items.append(
            f"<li>{swatch(_colour(r, k))}<b>{_e(_label(r))}</b>: at the last layer (layer {last['layer']}) two "
            f"unrelated tokens have cosine {last['baseline']:.3f}; a word's self-similarity is "
            f"{last['self_similarity_adjusted']:.3f} above that and its intra-sentence similarity "
            f"{last['intra_sentence_adjusted']:.3f}; {last['token_rogue']['dims_50']} of "
            f"{r['embedding_matrix'].get('dim') or 'the'} dimensions carry half of the random-pair cosine.</li>")
    return f'<div class="card"><h3>Token level, per checkpoint</h3><ul>{"".join(items)}</ul></div>'


def render_token_page(doc: dict[str, Any], *, plotlyjs: str | None = None) -> str:
    """A self-contained page of :func:`token_page_sections` with a summary and the provenance."""
    from .compare_page import document_provenance

    cps = F.Checkpoints()
    sections = token_page_sections(doc, cps)
    results = grouped(doc.get("results") or [], cps)
    models = [{**(r.get("model") or {}), "name": cps.name(i), "colour": cps.colour(i)}
              for r in doc.get("results") or [] for i in [cps.index(r.get("model") or {})]]
    data = doc.get("data") or {}
    provenance = document_provenance(doc, models, "Token analysis") + (
        f'<p class="note">Sentences: {_e(data.get("n_sentences", "?"))} from {_e(data.get("source", "?"))}'
        + (f'; files: {_e(", ".join(map(str, data.get("files") or [])))}' if data.get("files") else "") + ".</p>")
    return render_page("Token level", f"{len(results)} checkpoint(s) · {doc.get('protocol', '')}",
                       summary=_summary(results) if results else "<p>No results.</p>", sections=sections,
                       provenance=provenance, plotlyjs=plotlyjs)


def write_token_page(doc: dict[str, Any], path: str | os.PathLike[str]) -> Path:
    """Render :func:`render_token_page` and write it to ``path`` (:func:`~simcse_analysis.io_utils.write_output_text`)."""
    from simcse_analysis.io_utils import write_output_text

    return write_output_text(path, render_token_page(doc))
