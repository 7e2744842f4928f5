"""Plotly figure builders for the comparison report, from plain result dicts (never from models).

Every builder takes JSON-able dicts (as stored by :mod:`reports.collect`) and returns a
``plotly.graph_objects.Figure``. Text that came from users or data (model names, sentences, bin
labels) is HTML-escaped with :func:`esc` before it reaches plotly, because plotly renders a subset of
HTML in labels and hover text; plotly decodes the entities back, so ``<script>`` shows as text.

Figures (SimCSE, Gao et al. 2021, numbering):

- :func:`align_uniform_plane` — ℓ_uniform (x) vs ℓ_align (y), one marker per checkpoint coloured by
  STS-B dev Spearman ×100, training trajectories as paths with the step on hover (Fig. 2);
- :func:`spectra_chart` — normalised singular values ``σ_k / σ_1`` of every checkpoint, log y (Fig. F.1);
- :func:`cosine_density_panels` — cosine of STS-B pairs by gold-rating bin, one panel per checkpoint
  (Fig. G.1, drawn as one-sided violins = kernel densities);
- :func:`random_pair_histograms` — density of the cosine of random sentence pairs per checkpoint;
- :func:`layer_anisotropy` — random-pair cosine and IsoScore per hidden layer;
- :func:`umap_panels` — a 2-D UMAP map of the sentences per checkpoint, coloured by a category.
"""

from __future__ import annotations

import html
import itertools
import math
import textwrap
from collections.abc import Sequence
from typing import Any

#: Categorical colours, one per checkpoint in report order (Plotly's default qualitative palette).
PALETTE: tuple[str, ...] = ("#636EFA", "#EF553B", "#00CC96", "#AB63FA", "#FFA15A", "#19D3F3", "#FF6692",
                            "#B6E880", "#FF97FF", "#FECB52")
#: Colours of ordered categories (gold-rating bins: low = red … high = blue).
BIN_COLOURS: tuple[str, ...] = ("#b2182b", "#ef8a62", "#c9b230", "#67a9cf", "#2166ac")
#: Continuous scale of STS-B dev Spearman ×100 in the align–uniform plane.
SPEARMAN_SCALE = "Viridis"
#: Fill of a checkpoint marker without an STS-B dev score.
NO_SCORE = "#d0d0d0"

_FONT = {"family": "system-ui, -apple-system, Segoe UI, Roboto, sans-serif", "size": 13}


def esc(text: Any) -> str:
    """Escape ``&``, ``<``, ``>`` for plotly labels and hover text (plotly decodes exactly these back;
    quotes are harmless there and plotly would show ``&quot;`` literally)."""
    return html.escape(str(text), quote=False)


def tmpl(text: Any) -> str:
    """:func:`esc` for text placed inside a plotly ``hovertemplate`` (``%`` too, so ``%{…}`` stays literal)."""
    return esc(text).replace("%", "&#37;")


def colour(i: int) -> str:
    """Categorical colour of the ``i``-th checkpoint."""
    return PALETTE[i % len(PALETTE)]


def _finite(x: Any) -> bool:
    return isinstance(x, (int, float)) and math.isfinite(x)


def _fmt(x: Any, spec: str = ".4f") -> str:
    return format(x, spec) if _finite(x) else "n/a"


def _hover_sentence(text: str, width: int = 80) -> str:
    """Escaped sentence wrapped at ``width`` characters with ``<br>`` (plotly's line break)."""
    return "<br>".join(esc(line) for line in textwrap.wrap(text, width) or [""])


def short(text: str, limit: int = 48) -> str:
    """``text`` cut to ``limit`` characters by an ellipsis in the middle, keeping the end (where the pooler
    and baseline are named); for in-plot labels and subplot titles (legend and hover show it whole)."""
    if len(text) <= limit:
        return text
    head = max(1, (limit - 1) // 3)
    return text[:head] + "…" + text[len(text) - (limit - 1 - head):]


def _legend_rows(names: Sequence[str], width: int = 1150) -> int:
    """Rows a horizontal legend of ``names`` needs at ``width`` px (≈ 7 px a character + 45 px a symbol)."""
    rows, used = 1, 0
    for n in names:
        w = 7 * len(n) + 45
        if used and used + w > width:
            rows, used = rows + 1, 0
        used += w
    return rows


def _base_layout(fig: Any, title: str, height: int, legend_title: str | None = None) -> None:
    """Title top left; legend in rows under the plot (its height added to the figure's)."""
    names = [t.name or "" for t in fig.data if t.showlegend is not False and t.name]
    seen = list(dict.fromkeys(names))
    legend_px = 26 * _legend_rows(seen) + 10 if seen else 0
    fig.update_layout(title={"text": esc(title), "x": 0.0, "xanchor": "left", "font": {"size": 16}},
                      font=_FONT, height=height + legend_px, template="plotly_white",
                      margin={"l": 65, "r": 30, "t": 75, "b": 60 + legend_px}, hoverlabel={"align": "left"},
                      legend={"itemsizing": "constant", "orientation": "h", "yref": "container", "y": 0,
                              "yanchor": "bottom", "x": 0, "xanchor": "left",
                              **({"title": {"text": esc(legend_title)}} if legend_title else {})})


def _grid(n: int, max_cols: int = 3) -> tuple[int, int]:
    cols = max(1, min(n, max_cols))
    return math.ceil(n / cols), cols


# ------------------------------------------------------------------------------- align–uniform
def align_uniform_plane(points: Sequence[dict[str, Any]], trajectories: Sequence[dict[str, Any]] = (), *,
                        title: str = "Alignment vs uniformity", subtitle: str | None = None) -> Any:
    """ℓ_uniform on x, ℓ_align on y (lower is better for both), as in SimCSE Fig. 2.

    ``points``: ``{"label", "alignment", "uniformity", "stsb_dev" (Spearman ×100 or None), "baseline"
    (str or None), "colour" (optional), "text" (optional shorter in-plot label), "alignment_stderr" /
    "uniformity_stderr" (optional: 95% error bars, ±1.96 se)}`` — one marker each, coloured by ``stsb_dev`` on a shared scale;
    baselines are drawn as diamonds. ``trajectories``: ``{"label", "colour" (optional), "points": [{"step",
    "alignment", "uniformity", "stsb_spearman"}]}`` — a path per training run, markers coloured by the
    same scale, the step on hover, the last step marked with a ring.
    """
    import plotly.graph_objects as go

    scores = [p.get("stsb_dev") for p in points] + [s.get("stsb_spearman") for t in trajectories
                                                    for s in t["points"]]
    finite = [s for s in scores if _finite(s)]
    cmin, cmax = (min(finite), max(finite)) if finite else (0.0, 100.0)
    if cmax - cmin < 1e-9:
        cmin, cmax = cmin - 1.0, cmax + 1.0
    fig = go.Figure()
    # Score-coloured traces stay out of the legend (plotly.js cannot draw a coloraxis colour there); a
    # data-less proxy trace per checkpoint/run carries the legend entry in its identity colour instead.
    for k, t in enumerate(trajectories):
        pts = [s for s in t["points"] if _finite(s.get("alignment")) and _finite(s.get("uniformity"))]
        if not pts:
            continue
        line_colour = t.get("colour") or colour(k)
        group = esc(f"{t['label']} (training)")
        fig.add_trace(go.Scatter(
            x=[s["uniformity"] for s in pts], y=[s["alignment"] for s in pts], mode="lines+markers",
            name=group, legendgroup=group, showlegend=False, line={"color": line_colour, "width": 1.5},
            # a step without a score gets NaN: plotly draws it without a fill colour
            marker={"size": 7, "color": [s["stsb_spearman"] if _finite(s.get("stsb_spearman")) else math.nan
                                         for s in pts], "coloraxis": "coloraxis",
                    "line": {"width": 0.5, "color": "#333"}},
            customdata=[[s["step"], _fmt(s.get("stsb_spearman"), ".2f")] for s in pts],
            hovertemplate=(f"<b>{tmpl(t['label'])}</b><br>step %{{customdata[0]}}<br>ℓ_align %{{y:.4f}}"
                           "<br>ℓ_uniform %{x:.4f}<br>STS-B dev %{customdata[1]}<extra></extra>")))
        last = pts[-1]
        fig.add_trace(go.Scatter(x=[last["uniformity"]], y=[last["alignment"]], mode="markers", showlegend=False,
                                 legendgroup=group, hoverinfo="skip",
                                 marker={"size": 15, "color": "rgba(0,0,0,0)",
                                         "line": {"width": 2, "color": line_colour}}))
        fig.add_trace(_legend_proxy(group, "lines+markers", "circle", line_colour))
    for k, p in enumerate(points):
        if not (_finite(p.get("alignment")) and _finite(p.get("uniformity"))):
            continue
        score = p.get("stsb_dev")
        base = p.get("baseline")
        edge = p.get("colour") or colour(k)
        symbol = "diamond" if base else "circle"
        fig.add_trace(go.Scatter(
            x=[p["uniformity"]], y=[p["alignment"]], mode="markers+text", name=esc(p["label"]),
            legendgroup=esc(p["label"]), showlegend=False,
            text=[esc(short(p.get("text") or p["label"], 32))], textposition="top center", textfont={"size": 11}, cliponaxis=False,
            marker={"size": 16, "symbol": symbol, "line": {"width": 2, "color": edge},
                    **({"color": [score], "coloraxis": "coloraxis"} if _finite(score) else {"color": NO_SCORE})},
            # 95% intervals (±1.96 se) when the point carries standard errors
            error_x=({"type": "data", "array": [1.96 * p["uniformity_stderr"]], "color": edge}
                     if _finite(p.get("uniformity_stderr")) else None),
            error_y=({"type": "data", "array": [1.96 * p["alignment_stderr"]], "color": edge}
                     if _finite(p.get("alignment_stderr")) else None),
            hovertemplate=(f"<b>{tmpl(p['label'])}</b>" + (f"<br>baseline: {tmpl(base)}" if base else "")
                           + f"<br>ℓ_align %{{y:.4f}}<br>ℓ_uniform %{{x:.4f}}<br>STS-B dev {_fmt(score, '.2f')}"
                           "<extra></extra>")))
        fig.add_trace(_legend_proxy(esc(p["label"]), "markers", symbol, edge))
    _base_layout(fig, title, 520)
    fig.update_layout(coloraxis={"colorscale": SPEARMAN_SCALE, "cmin": cmin, "cmax": cmax,
                                 "colorbar": {"title": {"text": "STS-B dev<br>Spearman ×100"}, "len": 0.8}})
    xs = [v for t in fig.data for v in (t.x or ()) if _finite(v)]
    ys = [v for t in fig.data for v in (t.y or ()) if _finite(v)]
    fig.update_xaxes(title_text="ℓ_uniform  (lower = more uniform)", range=_padded(xs, 0.12))
    fig.update_yaxes(title_text="ℓ_align  (lower = better aligned)", range=_padded(ys, 0.15))
    if subtitle:
        fig.add_annotation(text=esc(subtitle), xref="paper", yref="paper", x=0, y=1.06, showarrow=False,
                           xanchor="left", font={"size": 11, "color": "#555"})
    return fig


def _padded(values: Sequence[float], frac: float) -> list[float] | None:
    """``[min, max]`` of ``values`` widened by ``frac`` of the span on each side (room for labels)."""
    if not values:
        return None
    lo, hi = min(values), max(values)
    pad = max((hi - lo) * frac, 1e-3 * max(abs(lo), abs(hi), 1e-3))
    return [lo - pad, hi + pad]


def _legend_proxy(name: str, mode: str, symbol: str, edge: str) -> Any:
    """A trace without data that only draws a legend entry (white fill, ``edge``-coloured outline)."""
    import plotly.graph_objects as go

    return go.Scatter(x=[None], y=[None], mode=mode, name=name, legendgroup=name, hoverinfo="skip",
                      line={"color": edge, "width": 1.5},
                      marker={"size": 12, "symbol": symbol, "color": "white", "line": {"width": 2, "color": edge}})


# ------------------------------------------------------------------------------- spectra
def spectra_chart(spectra: Sequence[dict[str, Any]], *, title: str = "Singular-value spectra") -> Any:
    """``σ_k / σ_1`` against ``k`` on a log y axis; uncentred solid, centred dashed.

    ``spectra``: ``{"label", "colour" (optional), "uncentered": [σ…], "centered": [σ…]}`` (either may be
    missing); values are the normalised singular values (max 1) in descending order.
    """
    import plotly.graph_objects as go

    fig = go.Figure()
    for k, s in enumerate(spectra):
        c = s.get("colour") or colour(k)
        for key, dash, suffix in (("uncentered", "solid", "uncentred"), ("centered", "dash", "centred")):
            values = s.get(key)
            if not values:
                continue
            ys = [v if (_finite(v) and v > 0) else None for v in values]  # log axis: drop zeros
            fig.add_trace(go.Scatter(
                x=list(range(1, len(ys) + 1)), y=ys, mode="lines", name=esc(f"{s['label']} — {suffix}"),
                legendgroup=esc(s["label"]), line={"color": c, "dash": dash, "width": 2},
                hovertemplate=f"<b>{tmpl(s['label'])}</b> ({suffix})<br>k = %{{x}}<br>σ_k/σ_1 = %{{y:.3g}}"
                              "<extra></extra>"))
    _base_layout(fig, title, 460)
    fig.update_yaxes(type="log", title_text="σ_k / σ_1", exponentformat="power")
    fig.update_xaxes(title_text="index k")
    return fig


# ------------------------------------------------------------------------------- cosine by gold bin
def cosine_density_panels(models: Sequence[dict[str, Any]], *,
                          title: str = "Cosine similarity of STS-B pairs by gold rating") -> Any:
    """One panel per checkpoint; y = gold-rating bin, x = cosine; a one-sided violin (density) per bin.

    ``models``: ``{"label", "bins": [{"label", "cosines": [...], "n", "mean"}]}``. All panels share the
    x axis so that spreads compare across checkpoints (SimCSE Fig. G.1).
    """
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    rows, cols = _grid(len(models))
    fig = make_subplots(rows=rows, cols=cols, shared_xaxes="all", shared_yaxes="all",
                        subplot_titles=[esc(short(m["label"])) for m in models], horizontal_spacing=0.04,
                        vertical_spacing=0.12 if rows > 1 else 0.1)
    bin_labels = [b["label"] for b in models[0]["bins"]] if models else []
    for k, m in enumerate(models):
        r, c = divmod(k, cols)
        for j, b in enumerate(m["bins"]):
            cos = [round(v, 4) for v in b.get("cosines") or []]
            if not cos:
                continue
            fig.add_trace(go.Violin(
                x=cos, y=[esc(b["label"])] * len(cos), orientation="h", side="positive", width=1.8,
                points=False, spanmode="hard", meanline={"visible": True}, line={"width": 1},
                fillcolor=BIN_COLOURS[j % len(BIN_COLOURS)], opacity=0.75,
                line_color="#333", name=esc(b["label"]), legendgroup=esc(b["label"]), showlegend=False,
                hoveron="violins", scalegroup=f"m{k}",
                hovertemplate=(f"<b>{tmpl(m['label'])}</b><br>gold {tmpl(b['label'])}: n = {b.get('n', len(cos))}, "
                               f"mean cosine {_fmt(b.get('mean'), '.3f')}<extra></extra>")),
                row=r + 1, col=c + 1)
    _base_layout(fig, title, 330 * rows + 60)
    fig.update_layout(violingap=0, violinmode="overlay")
    fig.update_yaxes(categoryorder="array", categoryarray=[esc(lab) for lab in bin_labels])
    fig.update_yaxes(title_text="gold rating", col=1)
    fig.update_xaxes(title_text="cosine similarity", row=rows)
    return fig


# ------------------------------------------------------------------------------- random pairs
def random_pair_histograms(models: Sequence[dict[str, Any]], *,
                           title: str = "Cosine similarity of random sentence pairs") -> Any:
    """Density histograms (step lines) of random-pair cosines, one per checkpoint, with the mean marked.

    ``models``: ``{"label", "colour" (optional), "edges": [B+1], "counts": [B], "mean"}``; the density of
    bin ``b`` is ``counts[b] / (Σ counts · width_b)``.
    """
    import plotly.graph_objects as go

    fig = go.Figure()
    for k, m in enumerate(models):
        c = m.get("colour") or colour(k)
        edges, counts = m["edges"], m["counts"]
        total = sum(counts) or 1
        dens = [n / (total * (hi - lo)) for n, lo, hi in zip(counts, edges[:-1], edges[1:])]
        centres = [(lo + hi) / 2 for lo, hi in itertools.pairwise(edges)]
        fig.add_trace(go.Scatter(
            x=centres, y=dens, mode="lines", line={"shape": "hvh", "color": c, "width": 2}, fill="tozeroy",
            fillcolor=_rgba(c, 0.12), name=esc(m["label"]), legendgroup=esc(m["label"]),
            customdata=counts,
            hovertemplate=f"<b>{tmpl(m['label'])}</b><br>cosine %{{x:.3f}}<br>density %{{y:.3f}}"
                          "<br>pairs %{customdata}<extra></extra>"))
        if _finite(m.get("mean")):
            fig.add_vline(x=m["mean"], line={"color": c, "dash": "dot", "width": 1.5})
    _base_layout(fig, title, 420)
    fig.update_xaxes(title_text="cosine similarity", range=_occupied_range(models))
    fig.update_yaxes(title_text="density")
    return fig


def _occupied_range(models: Sequence[dict[str, Any]], pad: float = 0.05) -> list[float]:
    """x range covering every non-empty bin of every histogram, padded, within [−1, 1]."""
    lo, hi = 1.0, -1.0
    for m in models:
        for n, a, b in zip(m["counts"], m["edges"][:-1], m["edges"][1:]):
            if n:
                lo, hi = min(lo, a), max(hi, b)
    if lo >= hi:
        return [-1.0, 1.0]
    span = hi - lo
    return [max(-1.0, lo - pad * span - 0.02), min(1.0, hi + pad * span + 0.02)]


def _rgba(hex_colour: str, alpha: float) -> str:
    h = hex_colour.lstrip("#")
    r, g, b = (int(h[i:i + 2], 16) for i in (0, 2, 4))
    return f"rgba({r},{g},{b},{alpha})"


# ------------------------------------------------------------------------------- layers
def layer_anisotropy(models: Sequence[dict[str, Any]], *, title: str = "Anisotropy across layers") -> Any:
    """Random-pair cosine (left) and IsoScore (right) per layer; layer 0 = the embedding layer.

    ``models``: ``{"label", "colour" (optional), "layer_pooler", "random_pair_cosine": [...],
    "isoscore": [...]}``.
    """
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    fig = make_subplots(rows=1, cols=2, subplot_titles=("random-pair cosine (higher = more anisotropic)",
                                                        "IsoScore (1 = isotropic)"), horizontal_spacing=0.09)
    for k, m in enumerate(models):
        c = m.get("colour") or colour(k)
        name = esc(f"{m['label']} ({m.get('layer_pooler')} per layer)")
        for col, key in ((1, "random_pair_cosine"), (2, "isoscore")):
            ys = m[key]
            fig.add_trace(go.Scatter(
                x=list(range(len(ys))), y=ys, mode="lines+markers", name=name, legendgroup=name,
                showlegend=col == 1, line={"color": c, "width": 2}, marker={"size": 7},
                hovertemplate=f"<b>{tmpl(m['label'])}</b><br>layer %{{x}}<br>{key.replace('_', ' ')} %{{y:.4f}}"
                              "<extra></extra>"), row=1, col=col)
    _base_layout(fig, title, 430)
    fig.update_xaxes(title_text="layer (0 = embeddings)", dtick=1)
    return fig


# ------------------------------------------------------------------------------- UMAP
def umap_panels(panels: Sequence[dict[str, Any]], sentences: Sequence[str], categories: Sequence[str],
                category_order: Sequence[str], *, colour_title: str = "gold rating",
                title: str = "UMAP of sentence embeddings") -> Any:
    """One scatter panel per checkpoint of the same sentences; colour = category, hover = the sentence.

    ``panels``: ``{"label", "x": [...], "y": [...]}`` with point ``i`` the map position of
    ``sentences[i]`` (category ``categories[i]``). Coordinates of different checkpoints are unrelated
    (each map is its own UMAP fit), so panels share no axes. Drawn as SVG (no WebGL needed).
    """
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    rows, cols = _grid(len(panels))
    fig = make_subplots(rows=rows, cols=cols, subplot_titles=[esc(short(p["label"])) for p in panels],
                        horizontal_spacing=0.03, vertical_spacing=0.08 if rows > 1 else 0.1)
    hover = [_hover_sentence(s) for s in sentences]
    by_cat: dict[str, list[int]] = {c: [] for c in category_order}
    for i, c in enumerate(categories):
        by_cat.setdefault(c, []).append(i)
    ordered = [c for c in by_cat if by_cat[c]]
    cat_colours = BIN_COLOURS if len(ordered) <= len(BIN_COLOURS) and colour_title == "gold rating" else PALETTE
    for k, p in enumerate(panels):
        r, c = divmod(k, cols)
        for j, cat in enumerate(ordered):
            idx = by_cat[cat]
            fig.add_trace(go.Scatter(
                x=[p["x"][i] for i in idx], y=[p["y"][i] for i in idx], mode="markers",
                marker={"size": 4, "color": cat_colours[j % len(cat_colours)], "opacity": 0.75},
                name=esc(cat), legendgroup=esc(cat), showlegend=k == 0,
                customdata=[hover[i] for i in idx],
                hovertemplate=f"%{{customdata}}<extra>{tmpl(colour_title)} {tmpl(cat)}</extra>"),
                row=r + 1, col=c + 1)
    _base_layout(fig, title, 420 * rows + 40, legend_title=colour_title)
    frame = {"showticklabels": False, "showgrid": False, "zeroline": False, "showline": True, "mirror": True,
             "linecolor": "#d1d9e0"}
    fig.update_xaxes(**frame)
    fig.update_yaxes(**frame)
    fig.update_layout(hovermode="closest")
    return fig
