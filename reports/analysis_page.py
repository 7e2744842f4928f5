"""The page of one embedding analysis (``simcse-analyze align-uniform | spectrum | anisotropy … --out F.html``).

Rendered from the JSON document of :class:`simcse_analysis.analysis.AnalysisReport` alone (never by
re-running a model), by the one page renderer (:mod:`reports.page`) with the report's figure helpers
(:mod:`reports.figures`): a summary first, the table, the figures, the settings and data at the end.

- ``align_uniform``: the align–uniform plane (ℓ_uniform on x, as SimCSE Fig. 2), with a table;
- ``spectrum``: normalised singular values (log scale), uncentred and centred, with a summary table;
- ``anisotropy``: cosine of STS-B pairs by gold-score bin (SimCSE Fig. G.1), per-layer random-pair
  cosine and IsoScore against an isotropic Gaussian of the same shape, a summary table with the
  reference values (the Gaussian, the checkpoint's own layer 0) and a one-line reading per checkpoint
  (:mod:`reports.reading`).
"""

from __future__ import annotations

import html
import math
import os
from pathlib import Path
from typing import Any

from simcse_analysis.metrics.anisotropy import PARTITION_ISOTROPY_CONVENTION

from . import figures as F
from . import reading as R
from .page import Section, render_page, settings_table, swatch

_TITLES = {"align_uniform": "Alignment and uniformity", "spectrum": "Singular-value spectrum",
           "anisotropy": "Anisotropy"}


def _esc(x: Any) -> str:
    return html.escape(str(x), quote=True)


def _num(x: Any, spec: str = ".4f") -> str:
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return "n/a"
    return format(x, spec) if isinstance(x, (int, float)) else _esc(x)


def _names(doc: dict[str, Any]) -> list[str]:
    """One page name per result (``model [pooler]``), unique."""
    cps = F.Checkpoints()
    names = []
    for r in doc["results"]:
        name = F.checkpoint_name(r.get("model", {}))
        while name in cps.names:
            name += " #2"
        cps.add(name, {})
        names.append(name)
    return names


def _name_cell(names: list[str], k: int) -> str:
    return f'<td class="name">{swatch(F.colour(k))}{_esc(names[k])}</td>'


def _table(headers: list[str], rows: list[list[str]]) -> str:
    """A table whose first cell of each row is pre-rendered (``<td>…</td>``); other cells are escaped text."""
    head = "".join(f"<th>{_esc(h)}</th>" for h in headers)
    body = "".join("<tr>" + r[0] + "".join(f"<td>{c}</td>" for c in r[1:]) + "</tr>" for r in rows)
    return f'<div class="table-wrap"><table class="sortable"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></div>'


def _align_uniform(doc: dict[str, Any], names: list[str]) -> tuple[list[tuple[str, str, Any, str]], str, str]:
    points = [{"label": names[k], "alignment": r["alignment"], "uniformity": r["uniformity"], "stsb_dev": None,
               "baseline": None, "colour": F.colour(k), "alignment_stderr": r.get("alignment_stderr"),
               "uniformity_stderr": r.get("uniformity_stderr")} for k, r in enumerate(doc["results"])]
    fig = F.align_uniform_plane(points, title="ℓ_align vs ℓ_uniform (lower is better for both; bars: 95% CI)")
    rows = [[_name_cell(names, k), _num(r["alignment"]), _num(r["uniformity"]),
             "exact" if r.get("uniformity_stderr") is None else f"se {_num(r['uniformity_stderr'])}",
             _num(r["n_positive_pairs"], "d"), _num(r["n_sentences"], "d")] for k, r in enumerate(doc["results"])]
    summary = "".join(f"<li>{swatch(F.colour(k))}<b>{_esc(names[k])}</b>: ℓ_align {_num(r['alignment'], '.3f')}, "
                      f"ℓ_uniform {_num(r['uniformity'], '.3f')}</li>" for k, r in enumerate(doc["results"]))
    return ([("align-uniform", "The align–uniform plane", fig, "ℓ_uniform on x, ℓ_align on y, as in SimCSE Fig. 2.")],
            _table(["model", "ℓ_align", "ℓ_uniform", "uniformity", "positive pairs", "sentences"], rows),
            f"<ul>{summary}</ul>")


def _spectrum(doc: dict[str, Any], names: list[str]) -> tuple[list[tuple[str, str, Any, str]], str, str]:
    fig = F.spectra_chart([{"label": names[k], "colour": F.colour(k),
                            "uncentered": r["uncentered"]["singular_values"],
                            "centered": r["centered"]["singular_values"]} for k, r in enumerate(doc["results"])],
                          title="Singular values of the sentence-embedding matrix (normalised to max 1)")
    rows = []
    for k, r in enumerate(doc["results"]):
        for key in ("uncentered", "centered"):
            sp = r[key]
            ev = sp["explained_variance_top_k"]
            rows.append([_name_cell(names, k), key, _num(sp["effective_rank"], ".2f"), _num(sp["stable_rank"], ".3f"),
                         _esc(", ".join(f"top{k}: {v:.3f}" for k, v in ev.items())),
                         _num(sp["condition_number"], ".4g"), _num(sp["numerical_rank"], "d")])
    summary = "".join(
        f"<li>{swatch(F.colour(k))}<b>{_esc(names[k])}</b>: effective rank {_num(r['centered']['effective_rank'], '.1f')} "
        f"(centred; uncentred {_num(r['uncentered']['effective_rank'], '.1f')}), numerical rank "
        f"{_num(r['centered']['numerical_rank'], 'd')}</li>" for k, r in enumerate(doc["results"]))
    return ([("spectrum", "Spectrum", fig, "σ_k/σ_1; solid: uncentred, dashed: centred.")],
            _table(["model", "matrix", "effective rank", "stable rank", "explained variance", "condition number",
                    "numerical rank"], rows), f"<ul>{summary}</ul>")


def _anisotropy(doc: dict[str, Any], names: list[str]) -> tuple[list[tuple[str, str, Any, str]], str, str]:
    results = doc["results"]
    figs = [("cosine-bins", "Cosine similarity by gold rating (SimCSE Fig. G.1)",
             F.cosine_density_panels([{"label": names[k], "colour": F.colour(k), "bins": r["score_bins"]}
                                      for k, r in enumerate(results)]),
             "Density of the cosine of STS-B pairs, grouped by their gold rating.")]
    layered = [(k, r) for k, r in enumerate(results) if r.get("layers")]
    if layered:
        refs = {}
        for _, r in layered:
            ref = R.reference_for(next((s for s in r["layers"] if s), {}) or {})
            if ref is not None:
                refs[(ref["n"], ref["dim"])] = {"label": f"isotropic Gaussian, n = {ref['n']:,}, d = {ref['dim']}", **ref}
        lines = [{"label": names[k], "colour": F.colour(k), "layer_pooler": r.get("layer_pooler"),
                  "random_pair_cosine": [s and s["random_pair_cosine"] for s in r["layers"]],
                  "isoscore": [s and s["isoscore"] for s in r["layers"]]} for k, r in layered]
        figs.append(("layers", "Anisotropy across layers", F.layer_anisotropy(lines, references=list(refs.values())),
                     ("Every hidden layer pooled like the checkpoint; layer 0 is the embedding layer; grey: an "
                      "isotropic Gaussian of the same shape.")))
    rows, readings = [], []
    for k, r in enumerate(results):
        s = r["summary"]
        ref = R.reference_for(s)
        layer0 = (r.get("layers") or [None])[0]
        cells = [_num(s["random_pair_cosine"]) + f" ± {_num(s['random_pair_cosine_stderr'])}",
                 _num(s["mean_cosine_all_pairs"]), _num(s["isoscore"]), _num(s["partition_isotropy"], ".3g"),
                 _num(s.get("log_partition_isotropy"), ".1f"), _num(s["mean_norm"], ".3f"),
                 _num(s["first_pc_variance_share"])]
        rows.append([_name_cell(names, k), *cells])
        if layer0:
            rows.append([f'<td class="name">{swatch(F.colour(k))}{_esc(names[k])}: layer 0</td>',
                         _num(layer0["random_pair_cosine"]), _num(layer0.get("mean_cosine_all_pairs")),
                         _num(layer0.get("isoscore")), _num(layer0.get("partition_isotropy"), ".3g"),
                         _num(layer0.get("log_partition_isotropy"), ".1f"), _num(layer0.get("mean_norm"), ".3f"),
                         _num(layer0.get("first_pc_variance_share"))])
        if ref:
            rows.append([f'<td class="name">{_esc(R.REFERENCE_LABEL)} (n = {ref["n"]:,}, d = {ref["dim"]})</td>',
                         _num(ref["random_pair_cosine"]), _num(ref["mean_cosine_all_pairs"]), _num(ref["isoscore"]),
                         _num(ref["partition_isotropy"], ".3g"), _num(ref["log_partition_isotropy"], ".1f"), "–",
                         _num(ref["first_pc_variance_share"])])
        readings.append(f"<li>{swatch(F.colour(k))}<b>{_esc(names[k])}</b>: "
                        f"{_esc(R.anisotropy_reading(s, ref, layer0))}</li>")
    table = _table(["model", "random-pair cosine", "all-pairs cosine", "IsoScore", "I(W)", "log I(W)", "mean norm",
                    "PC1 variance share"], rows) + (
        f'<p class="note">{_esc(R.READING_NOTE)}</p><p class="note">{_esc(PARTITION_ISOTROPY_CONVENTION)}</p>')
    return figs, table, f"<ul>{''.join(readings)}</ul>"


_SECTIONS = {"align_uniform": _align_uniform, "spectrum": _spectrum, "anisotropy": _anisotropy}


def render_analysis_page(document: dict[str, Any], *, plotlyjs: str | None = None) -> str:
    """The full page for an ``AnalysisReport.to_dict()`` document."""
    kind = document.get("analysis")
    if kind not in _SECTIONS:
        raise ValueError(f"unknown analysis {kind!r}")
    names = _names(document)
    figs, table, summary = _SECTIONS[kind](document, names)
    sections = [Section("numbers", "Numbers", table, note=f"Protocol: {document.get('protocol', '')}", nav="Numbers")]
    sections += [Section(a, h, figure=f, note=n, nav="Figures" if i == 0 else None)
                 for i, (a, h, f, n) in enumerate(figs)]
    provenance = (f'<div class="grid"><div class="card"><h3>Settings</h3>{settings_table(document.get("settings", {}))}'
                  f'</div><div class="card"><h3>Data</h3>{settings_table(document.get("data", {}))}</div></div>')
    title = _TITLES[kind]
    return render_page(title, f"{len(names)} checkpoint(s) · {document.get('protocol', '')}",
                       summary=f'<div class="card">{summary}</div>', sections=sections, provenance=provenance,
                       plotlyjs=plotlyjs)


def write_analysis_page(document: dict[str, Any], path: str | os.PathLike[str]) -> Path:
    """Render :func:`render_analysis_page` and write it to ``path`` (:func:`~simcse_analysis.io_utils.write_output_text`)."""
    from simcse_analysis.io_utils import write_output_text

    return write_output_text(path, render_analysis_page(document))
