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
- :func:`umap_panels` — a 2-D UMAP map of the sentences per checkpoint, coloured by a category;
- :func:`sts_bars` — Spearman ×100 per task and checkpoint with CIs; :func:`forest` — paired differences
  against a baseline with CIs; :func:`cka_heatmap` — linear CKA between the layers of two checkpoints.

One visual language: every builder lays its figure out with :func:`_base_layout` (one template,
:func:`template`: plotly_white, one font, :data:`PALETTE` as colorway); a checkpoint's colour is its
index on the page (:class:`Checkpoints` gives every document's checkpoints one name and one colour);
the align–uniform plane has ℓ_uniform on x and ℓ_align on y everywhere, as the paper draws it.
"""

from __future__ import annotations

import functools
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
#: Colours of unordered sentence categories (UMAP: STS task or split), kept apart from the checkpoint colours.
CATEGORY_COLOURS: tuple[str, ...] = ("#1b9e77", "#d95f02", "#7570b3", "#e7298a", "#66a61e", "#e6ab02", "#a6761d",
                                     "#666666")
#: Colour of reference values (an isotropic Gaussian of the same shape) in every figure.
REFERENCE_COLOUR = "#6e7781"
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


class Checkpoints:
    """The checkpoints of one page, each with one name and one colour, whichever document mentions it.

    A report record, a comparison document and a token-analysis document each name checkpoints their own
    way (``path [pooler]``, ``path@pooler``, ``path (pooler)``). :meth:`add` registers a checkpoint under its
    page name; :meth:`index` finds the entry of a document's model description (``{"model", "pooler",
    "fingerprint", "path"}``): the same model name or path under the same pooler, else the same weights
    (fingerprint) under the same pooler; an unknown one is added under :func:`checkpoint_name`. The
    colour of entry ``i`` is :func:`colour` ``(i)``.
    """

    def __init__(self) -> None:
        self.names: list[str] = []
        self._keys: list[set[tuple[str, str, str]]] = []

    @staticmethod
    def _keys_of(model: dict[str, Any]) -> set[tuple[str, str, str]]:
        pooler = str(model.get("pooler") or "")
        keys = {("fp", str(model["fingerprint"]), pooler)} if model.get("fingerprint") else set()
        keys |= {("name", str(model[k]), pooler) for k in ("model", "path") if model.get(k)}
        return keys

    def add(self, name: str, model: dict[str, Any]) -> int:
        """Register ``model`` (a model description) under ``name``; its index."""
        self.names.append(name)
        self._keys.append(self._keys_of(model))
        return len(self.names) - 1

    def find(self, model: dict[str, Any]) -> int | None:
        """The index of ``model``'s entry, or ``None``: same name and pooler first, then same fingerprint."""
        keys = self._keys_of(model)
        for kind in ("name", "fp"):
            wanted = {k for k in keys if k[0] == kind}
            for i, have in enumerate(self._keys):
                if wanted & have:
                    return i
        return None

    def index(self, model: dict[str, Any]) -> int:
        """:meth:`find`, registering an unknown model under :func:`checkpoint_name`."""
        i = self.find(model)
        return i if i is not None else self.add(checkpoint_name(model), model)

    def name(self, i: int) -> str:
        return self.names[i]

    def colour(self, i: int) -> str:
        return colour(i)


def checkpoint_name(model: dict[str, Any]) -> str:
    """``name [pooler]`` of a model description (the report's label format); a path shows its last two parts."""
    name = str(model.get("model") or model.get("path") or "?")
    parts = [p for p in name.replace("\\", "/").split("/") if p]
    short_name = "/".join(parts[-2:]) if len(parts) > 2 else name
    return f"{short_name} [{model['pooler']}]" if model.get("pooler") else short_name


def wrap_title(text: str, width: int) -> str:
    """``text`` escaped and wrapped at ``width`` characters with ``<br>`` (subplot titles: never cut)."""
    return "<br>".join(esc(line) for line in textwrap.wrap(str(text), width) or [""])


@functools.lru_cache(maxsize=1)
def template() -> Any:
    """The one plotly template of every figure: plotly_white, the page's font, :data:`PALETTE` as colorway."""
    import plotly.graph_objects as go
    import plotly.io as pio

    t = go.layout.Template(pio.templates["plotly_white"])
    t.layout.font = _FONT
    t.layout.colorway = list(PALETTE)
    return t


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


def _base_layout(fig: Any, title: str, height: int, legend_title: str | None = None, *, top: int = 75) -> None:
    """The one layout: :func:`template`, title top left, legend in rows under the plot (its height added to
    the figure's); ``top``: the top margin (more for two-line subplot titles)."""
    names = [t.name or "" for t in fig.data if t.showlegend is not False and t.name]
    seen = list(dict.fromkeys(names))
    legend_px = 26 * _legend_rows(seen) + 10 if seen else 0
    fig.update_layout(title={"text": esc(title), "x": 0.0, "xanchor": "left", "font": {"size": 16}},
                      font=_FONT, height=height + legend_px, template=template(),
                      margin={"l": 65, "r": 30, "t": top, "b": 60 + legend_px}, hoverlabel={"align": "left"},
                      legend={"itemsizing": "constant", "orientation": "h", "yref": "container", "y": 0,
                              "yanchor": "bottom", "x": 0, "xanchor": "left",
                              **({"title": {"text": esc(legend_title)}} if legend_title else {})})


def _grid(n: int, max_cols: int = 3) -> tuple[int, int]:
    cols = max(1, min(n, max_cols))
    return math.ceil(n / cols), cols


# ------------------------------------------------------------------------------- align–uniform
def align_uniform_plane(points: Sequence[dict[str, Any]], trajectories: Sequence[dict[str, Any]] = (), *,
                        title: str = "Alignment vs uniformity", subtitle: str | None = None,
                        start: dict[str, Any] | None = None) -> Any:
    """ℓ_uniform on x, ℓ_align on y (lower is better for both), as in SimCSE Fig. 2 — on every page.

    ``points``: ``{"label", "alignment", "uniformity", "stsb_dev" (Spearman ×100 or None), "baseline"
    (str or None), "colour" (optional), "text" (optional shorter in-plot label), and optional intervals:
    "alignment_low" / "alignment_high" (and the same for uniformity), else "alignment_stderr" /
    "uniformity_stderr" (95% error bars, ±1.96 se)}`` — one marker each, coloured by ``stsb_dev`` on a shared
    scale; baselines are drawn as diamonds. ``trajectories``: ``{"label", "colour" (optional), "thin"
    (optional: a faint path without markers or legend entry, e.g. one seed of a sweep point), "points":
    [{"step", "alignment", "uniformity", "stsb_spearman"}]}`` — a path per training run, markers coloured by
    the same scale, the step on hover, the last step marked with a ring. ``start``: ``{"alignment",
    "uniformity"}`` of the model before training (a star). The axes span every point with its error bars.
    """
    import plotly.graph_objects as go

    scores = [p.get("stsb_dev") for p in points] + [s.get("stsb_spearman") for t in trajectories
                                                    if not t.get("thin") for s in t["points"]]
    finite = [s for s in scores if _finite(s)]
    cmin, cmax = (min(finite), max(finite)) if finite else (0.0, 100.0)
    if cmax - cmin < 1e-9:
        cmin, cmax = cmin - 1.0, cmax + 1.0
    fig = go.Figure()
    xs: list[float] = []
    ys: list[float] = []
    # Score-coloured traces stay out of the legend (plotly.js cannot draw a coloraxis colour there); a
    # data-less proxy trace per checkpoint/run carries the legend entry in its identity colour instead.
    for k, t in enumerate(trajectories):
        pts = [s for s in t["points"] if _finite(s.get("alignment")) and _finite(s.get("uniformity"))]
        if not pts:
            continue
        line_colour = t.get("colour") or colour(k)
        xs += [s["uniformity"] for s in pts]
        ys += [s["alignment"] for s in pts]
        custom = [[s["step"], _fmt(s.get("stsb_spearman"), ".2f")] for s in pts]
        hover = (f"<b>{tmpl(t['label'])}</b><br>step %{{customdata[0]}}<br>ℓ_align %{{y:.4f}}"
                 "<br>ℓ_uniform %{x:.4f}<br>STS-B dev %{customdata[1]}<extra></extra>")
        if t.get("thin"):
            fig.add_trace(go.Scatter(x=[s["uniformity"] for s in pts], y=[s["alignment"] for s in pts], mode="lines",
                                     name=esc(t["label"]), showlegend=False, opacity=0.45,
                                     line={"color": line_colour, "width": 1}, customdata=custom, hovertemplate=hover))
            continue
        group = esc(f"{t['label']} (training)")
        fig.add_trace(go.Scatter(
            x=[s["uniformity"] for s in pts], y=[s["alignment"] for s in pts], mode="lines+markers",
            name=group, legendgroup=group, showlegend=False, line={"color": line_colour, "width": 1.5},
            # a step without a score gets NaN: plotly draws it without a fill colour
            marker={"size": 7, "color": [s["stsb_spearman"] if _finite(s.get("stsb_spearman")) else math.nan
                                         for s in pts], "coloraxis": "coloraxis",
                    "line": {"width": 0.5, "color": "#333"}},
            customdata=custom, hovertemplate=hover))
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
        ex, ey = _error_bar(p, "uniformity", edge), _error_bar(p, "alignment", edge)
        for bar, value, out in ((ex, p["uniformity"], xs), (ey, p["alignment"], ys)):
            out.append(value)
            if bar is not None:
                out += [value + bar["array"][0], value - bar["arrayminus"][0]]
        fig.add_trace(go.Scatter(
            x=[p["uniformity"]], y=[p["alignment"]], mode="markers+text", name=esc(p["label"]),
            legendgroup=esc(p["label"]), showlegend=False,
            text=[esc(short(p.get("text") or p["label"], 32))], textposition="top center", textfont={"size": 11},
            cliponaxis=False,
            marker={"size": 16, "symbol": symbol, "line": {"width": 2, "color": edge},
                    **({"color": [score], "coloraxis": "coloraxis"} if _finite(score) else {"color": NO_SCORE})},
            error_x=ex, error_y=ey,
            hovertemplate=(f"<b>{tmpl(p['label'])}</b>" + (f"<br>baseline: {tmpl(base)}" if base else "")
                           + f"<br>ℓ_align %{{y:.4f}}<br>ℓ_uniform %{{x:.4f}}<br>STS-B dev {_fmt(score, '.2f')}"
                           "<extra></extra>")))
        fig.add_trace(_legend_proxy(esc(p["label"]), "markers", symbol, edge))
    if start is not None and _finite(start.get("alignment")) and _finite(start.get("uniformity")):
        xs.append(start["uniformity"])
        ys.append(start["alignment"])
        fig.add_trace(go.Scatter(x=[start["uniformity"]], y=[start["alignment"]], mode="markers",
                                 marker={"size": 14, "color": "#1f2328", "symbol": "star"}, name="before training",
                                 hovertemplate="before training<br>ℓ_align %{y:.4f}<br>ℓ_uniform %{x:.4f}"
                                               "<extra></extra>"))
    _base_layout(fig, title, 520)
    fig.update_layout(coloraxis={"colorscale": SPEARMAN_SCALE, "cmin": cmin, "cmax": cmax,
                                 "showscale": len(set(finite)) > 1,  # one score: the hover says it, no scale
                                 "colorbar": {"title": {"text": "STS-B dev<br>Spearman ×100"}, "len": 0.8}})
    fig.update_xaxes(title_text="ℓ_uniform  (lower = more uniform)", range=axis_range(xs, 0.12))
    fig.update_yaxes(title_text="ℓ_align  (lower = better aligned)", range=axis_range(ys, 0.15, top=0.12))
    if subtitle:
        fig.add_annotation(text=esc(subtitle), xref="paper", yref="paper", x=0, y=1.06, showarrow=False,
                           xanchor="left", font={"size": 11, "color": "#555"})
    return fig


def _error_bar(p: dict[str, Any], key: str, edge: str) -> dict[str, Any] | None:
    """Plotly error bar of ``p[key]``: its interval ``key_low``–``key_high``, else ±1.96 ``key_stderr``."""
    v, lo, hi = p[key], p.get(f"{key}_low"), p.get(f"{key}_high")
    if _finite(lo) and _finite(hi):
        return {"type": "data", "symmetric": False, "array": [max(hi - v, 0.0)], "arrayminus": [max(v - lo, 0.0)],
                "color": edge}
    se = p.get(f"{key}_stderr")
    if _finite(se):
        return {"type": "data", "symmetric": False, "array": [1.96 * se], "arrayminus": [1.96 * se], "color": edge}
    return None


def axis_range(values: Sequence[float], frac: float, *, top: float = 0.0, min_rel: float = 0.05,
               min_abs: float = 1e-3) -> list[float] | None:
    """``[lo, hi]`` spanning ``values`` (points and their error-bar ends), widened by ``frac`` of the span on
    each side (``top`` more above, room for labels), and at least ``min_rel`` × the largest magnitude (or
    ``min_abs``) on each side, so one point is shown in a sensible window rather than a ±0.0005 one."""
    vals = [v for v in values if _finite(v)]
    if not vals:
        return None
    lo, hi = min(vals), max(vals)
    pad = max((hi - lo) * frac, min_rel * max(abs(lo), abs(hi)), min_abs)
    return [lo - pad, hi + pad + (hi - lo) * top + (pad if top else 0.0)]


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

    ``models``: ``{"label", "colour" (optional), "bins": [{"label", "cosines": [...], "n", "mean"}]}``. All
    panels share the x axis so that spreads compare across checkpoints (SimCSE Fig. G.1); each panel's title
    is the checkpoint's name in its colour.
    """
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    rows, cols = _grid(len(models))
    fig = make_subplots(rows=rows, cols=cols, shared_xaxes="all", shared_yaxes="all",
                        subplot_titles=_panel_titles(models, cols), horizontal_spacing=0.04,
                        vertical_spacing=0.14 if rows > 1 else 0.1)
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
    _base_layout(fig, title, 330 * rows + 60, top=95)
    _colour_titles(fig, models)
    fig.update_layout(violingap=0, violinmode="overlay")
    fig.update_yaxes(categoryorder="array", categoryarray=[esc(lab) for lab in bin_labels])
    fig.update_yaxes(title_text="gold rating", col=1)
    fig.update_xaxes(title_text="cosine similarity", row=rows)
    return fig


def _panel_titles(models: Sequence[dict[str, Any]], cols: int) -> list[str]:
    """Checkpoint names as subplot titles, wrapped (never cut) to the panel width."""
    width = max(24, int(150 / cols))
    return [wrap_title(m["label"], width) for m in models]


def _colour_titles(fig: Any, models: Sequence[dict[str, Any]]) -> None:
    """Subplot titles (the first ``len(models)`` annotations) in their checkpoint's colour."""
    for k, (ann, m) in enumerate(zip(fig.layout.annotations, models)):
        ann.font = {"color": m.get("colour") or colour(k), "size": 13}


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
def layer_anisotropy(models: Sequence[dict[str, Any]], *, title: str = "Anisotropy across layers",
                     references: Sequence[dict[str, Any]] = ()) -> Any:
    """Random-pair cosine (left) and IsoScore (right) per layer; layer 0 = the embedding layer.

    ``models``: ``{"label", "colour" (optional), "layer_pooler", "random_pair_cosine": [...],
    "isoscore": [...]}`` — one colour per checkpoint in both panels. ``references``: ``{"label",
    "random_pair_cosine", "isoscore"}``, e.g. an isotropic Gaussian of the same shape, drawn as grey dashed
    horizontal lines in both panels.
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
                showlegend=col == 1, line={"color": c, "width": 2}, marker={"size": 7, "color": c},
                hovertemplate=f"<b>{tmpl(m['label'])}</b><br>layer %{{x}}<br>{key.replace('_', ' ')} %{{y:.4f}}"
                              "<extra></extra>"), row=1, col=col)
    n_layers = max((len(m["random_pair_cosine"]) for m in models), default=1)
    for j, ref in enumerate(references):
        name = esc(ref["label"])
        for col, key in ((1, "random_pair_cosine"), (2, "isoscore")):
            if not _finite(ref.get(key)):
                continue
            fig.add_trace(go.Scatter(
                x=[0, max(n_layers - 1, 1)], y=[ref[key]] * 2, mode="lines", name=name, legendgroup=name,
                showlegend=col == 1, line={"color": REFERENCE_COLOUR, "dash": ("dash", "dot")[j % 2], "width": 1.5},
                hovertemplate=f"{tmpl(ref['label'])}<br>{key.replace('_', ' ')} %{{y:.4f}}<extra></extra>"),
                row=1, col=col)
    _base_layout(fig, title, 430)
    fig.update_xaxes(title_text="layer (0 = embeddings)", dtick=1)
    return fig


# ------------------------------------------------------------------------------- UMAP
def umap_panels(panels: Sequence[dict[str, Any]], sentences: Sequence[str], categories: Sequence[str],
                category_order: Sequence[str], *, colour_title: str = "STS task", aligned: bool = False,
                title: str = "UMAP of sentence embeddings") -> Any:
    """One scatter panel per checkpoint of the same sentences; colour = the sentence's category, hover = the
    sentence.

    ``panels``: ``{"label", "colour" (optional, the panel title's), "x": [...], "y": [...]}`` with point ``i``
    the map position of ``sentences[i]`` (category ``categories[i]``). ``aligned``: the maps were fitted
    jointly (:func:`reports.umap_map.umap_maps`), so the panels share their axes; otherwise each is its own
    fit and the panels share nothing. Category colours (:data:`CATEGORY_COLOURS`) are not checkpoint colours;
    an ordered gold-rating category (records of an older release) gets :data:`BIN_COLOURS`. Drawn as SVG.
    """
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    rows, cols = _grid(len(panels))
    fig = make_subplots(rows=rows, cols=cols, subplot_titles=_panel_titles(panels, cols),
                        shared_xaxes="all" if aligned else False, shared_yaxes="all" if aligned else False,
                        horizontal_spacing=0.03, vertical_spacing=0.1)
    hover = [_hover_sentence(s) for s in sentences]
    by_cat: dict[str, list[int]] = {c: [] for c in category_order}
    for i, c in enumerate(categories):
        by_cat.setdefault(c, []).append(i)
    ordered = [c for c in by_cat if by_cat[c]]
    cat_colours = BIN_COLOURS if colour_title == "gold rating" and len(ordered) <= len(BIN_COLOURS) else CATEGORY_COLOURS
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
    _base_layout(fig, title, 420 * rows + 40, legend_title=colour_title, top=95)
    _colour_titles(fig, panels)
    frame = {"showticklabels": False, "showgrid": False, "zeroline": False, "showline": True, "mirror": True,
             "linecolor": "#d1d9e0"}
    fig.update_xaxes(**frame)
    fig.update_yaxes(**frame)
    fig.update_layout(hovermode="closest")
    return fig


# ------------------------------------------------------------------------------- comparison
def sts_bars(models: Sequence[dict[str, Any]], tasks: Sequence[str], *, level: float = 95.0,
             title: str | None = None) -> Any:
    """Spearman ×100 per task, one bar per checkpoint in its colour, with its CI as an error bar.

    ``models``: ``{"label", "colour" (optional), "scores": {task: {"value", "low", "high"}}}``.
    """
    import plotly.graph_objects as go

    fig = go.Figure()
    for k, m in enumerate(models):
        s, c = m["scores"], m.get("colour") or colour(k)
        vals = [s.get(t, {}).get("value") for t in tasks]
        fig.add_trace(go.Bar(
            x=[esc(t) for t in tasks], y=vals, name=esc(m["label"]), marker={"color": c},
            error_y={"type": "data", "symmetric": False, "color": "#444",
                     "array": [_gap(s.get(t, {}).get("high"), v) for t, v in zip(tasks, vals)],
                     "arrayminus": [_gap(v, s.get(t, {}).get("low")) for t, v in zip(tasks, vals)]},
            hovertemplate=f"<b>{tmpl(m['label'])}</b><br>%{{x}}: %{{y:.2f}}<extra></extra>"))
    _base_layout(fig, title or f"STS Spearman ×100 with {level:g}% bootstrap CIs", 440)
    lows = [v.get("low") for m in models for v in m["scores"].values() if isinstance(v, dict)]
    highs = [v.get("high") for m in models for v in m["scores"].values() if isinstance(v, dict)]
    fig.update_layout(barmode="group")
    rng = axis_range([*lows, *highs], 0.1, min_rel=0.0, min_abs=1.0)
    fig.update_yaxes(title_text="Spearman ×100", range=[max(0.0, rng[0]) if rng else 0, rng[1]] if rng else None)
    return fig


def _gap(a: Any, b: Any) -> float | None:
    return max(a - b, 0.0) if _finite(a) and _finite(b) else None


def forest(rows: Sequence[dict[str, Any]], *, title: str = "Differences against the baseline",
           xaxis: str = "Δ Spearman ×100 (other − baseline)") -> Any:
    """Paired differences with CIs: one row per metric (y), one marker per checkpoint in its colour.

    ``rows``: ``{"label" (the checkpoint compared with the baseline), "colour" (optional), "metric",
    "delta", "low", "high", "verdict" (optional)}``; a dotted line marks Δ = 0.
    """
    import plotly.graph_objects as go

    fig = go.Figure()
    labels = list(dict.fromkeys(r["label"] for r in rows))
    metrics = list(dict.fromkeys(r["metric"] for r in rows))
    for k, label in enumerate(labels):
        rs = [r for r in rows if r["label"] == label]
        c = rs[0].get("colour") or colour(k)
        fig.add_trace(go.Scatter(
            x=[r["delta"] for r in rs], y=[esc(r["metric"]) for r in rs], mode="markers", name=esc(label),
            orientation="h",  # grouped side by side along the categorical y axis (scattermode="group")
            marker={"color": c, "size": 10, "symbol": "diamond"},
            error_x={"type": "data", "symmetric": False, "color": c,
                     "array": [_gap(r.get("high"), r["delta"]) for r in rs],
                     "arrayminus": [_gap(r["delta"], r.get("low")) for r in rs]},
            customdata=[[_fmt(r.get("low"), ".2f"), _fmt(r.get("high"), ".2f"), esc(r.get("verdict") or "")]
                        for r in rs],
            hovertemplate=(f"<b>{tmpl(label)}</b><br>%{{y}}: Δ %{{x:+.2f}} [%{{customdata[0]}}, %{{customdata[1]}}]"
                           "<br>%{customdata[2]}<extra></extra>")))
    fig.add_vline(x=0, line={"dash": "dot", "color": "#444"})
    _base_layout(fig, title, 120 + 34 * len(metrics))
    fig.update_yaxes(categoryorder="array", categoryarray=[esc(m) for m in metrics][::-1])
    fig.update_xaxes(title_text=xaxis, zeroline=False)
    fig.update_layout(scattermode="group")
    return fig


def cka_heatmap(z: Sequence[Sequence[float | None]], baseline: str, other: str) -> Any:
    """Linear CKA between every layer of ``baseline`` (rows) and of ``other`` (columns); ``None`` = n/a."""
    import plotly.graph_objects as go

    fig = go.Figure(go.Heatmap(
        z=z, x=list(range(len(z[0]))), y=list(range(len(z))), zmin=0, zmax=1, colorscale="Viridis",
        text=[["n/a" if v is None else f"{v:.2f}" for v in row] for row in z], texttemplate="%{text}",
        colorbar={"title": {"text": "CKA"}},
        hovertemplate=(f"layer %{{y}} of {tmpl(baseline)}<br>layer %{{x}} of {tmpl(other)}<br>CKA %{{z:.3f}}"
                       "<extra></extra>")))
    _base_layout(fig, f"Linear CKA: layers of {baseline} (rows) vs {other} (columns)", max(340, 140 + 30 * len(z)))
    fig.update_xaxes(title_text="layer of the other checkpoint (0 = embeddings)", dtick=1)
    fig.update_yaxes(title_text="layer of the baseline", dtick=1)
    return fig
