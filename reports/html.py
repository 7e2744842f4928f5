"""The report page (``simcse-analyze report``): one self-contained, offline HTML page comparing checkpoints,
rendered from a report record (:mod:`reports.collect`) by the one page renderer (:mod:`reports.page`).

In page order:

- the **summary**: the best STS average with its 95% CI, the significant differences (from the
  comparison document when the record carries one), and the geometry of every checkpoint in one
  sentence (alignment/uniformity and the anisotropy reading of :mod:`reports.reading`);
- the STS table and the geometry tables (sortable), with the anisotropy reference values (an isotropic
  Gaussian of the same shape, the checkpoint's own layer 0) and one reading per checkpoint;
- the figures of :mod:`reports.figures`, one colour and one name per checkpoint on every figure;
- the comparison section (``record["comparison"]``, :mod:`reports.compare_page`) and the token section
  (``record["tokens"]``, :mod:`reports.token_page`) when the record carries them;
- the provenance, collapsed: checkpoints with fingerprints, data files with checksums, command line,
  package versions, machine, date.

Every piece of text is HTML-escaped (sentences and model names in figures too, see
:func:`reports.figures.esc`); :func:`reports.page.render_page` checks that no text opened a script block.
"""

from __future__ import annotations

import html
import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from simcse_analysis.errors import InputError
from simcse_analysis.io_utils import write_output_text
from simcse_analysis.metrics.anisotropy import PARTITION_ISOTROPY_CONVENTION

from . import figures as F
from . import reading as R
from .page import PLOT_CONFIG, Section, check_scripts, data_files_table, provenance_cards, render_page, swatch

STS_COLUMNS: tuple[tuple[str, str], ...] = (
    ("STS12", "STS12"), ("STS13", "STS13"), ("STS14", "STS14"), ("STS15", "STS15"), ("STS16", "STS16"),
    ("STSBenchmark", "STS-B"), ("SICKRelatedness", "SICK-R"), ("avg", "Avg."))

__all__ = ["PLOT_CONFIG", "build_figures", "data_files_table", "isotropy_table", "provenance_cards", "render_report",
           "sts_table", "write_report"]


def _e(x: Any) -> str:
    return html.escape(str(x), quote=True)


def _num(x: Any, spec: str) -> str:
    return format(x, spec) if isinstance(x, (int, float)) and math.isfinite(x) else "–"


def _cell(x: Any, spec: str = ".2f", cls: str = "") -> str:
    """A numeric table cell; ``data-v`` carries the sort key (empty: missing, sorts last)."""
    ok = isinstance(x, (int, float)) and math.isfinite(x)
    attr = f' class="{cls}"' if cls else ""
    return f'<td data-v="{repr(float(x)) if ok else ""}"{attr}>{_num(x, spec)}</td>'


def _with_ci(cell: str, ci: dict[str, Any] | None) -> str:
    """``cell`` with its 95% bootstrap interval under the value (when the result carries one)."""
    if not ci or ci.get("low") is None or ci.get("high") is None:
        return cell
    return cell[:-len("</td>")] + f'<br><small class="ci">[{_num(ci["low"], ".1f")}, {_num(ci["high"], ".1f")}]</small></td>'


_swatch = swatch


def _best(values: Sequence[Any], higher: bool) -> Any:
    ok = [v for v in values if isinstance(v, (int, float)) and math.isfinite(v)]
    if len(ok) < 2:
        return None
    return max(ok) if higher else min(ok)


def _sortable(headers: Sequence[tuple[str, str]], rows: Sequence[str], caption: str, table_id: str) -> str:
    """``headers``: (label, tooltip). Rows are pre-rendered ``<tr>`` strings."""
    head = "".join(f'<th scope="col" title="{_e(tip)}">{_e(h)}</th>' for h, tip in headers)
    return (f'<div class="table-wrap"><table class="sortable" id="{table_id}"><caption>{caption}</caption>'
            f"<thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table></div>")


def _model_cell(m: dict[str, Any], k: int) -> str:
    badge = f' <span class="badge">baseline: {_e(m["baseline"])}</span>' if m.get("baseline") else ""
    return f'<td class="name" data-v-text="{_e(m["label"])}">{_swatch(F.colour(k))}{_e(m["label"])}{badge}</td>'


# ----------------------------------------------------------------------------------------- tables
def sts_table(record: dict[str, Any]) -> str:
    """Spearman ×100 per STS task (test), their average, and STS-B dev; best per column in bold."""
    models = record["models"]
    cols = [[m["sts_test"]["scores"].get(key) for m in models] for key, _ in STS_COLUMNS]
    dev = [m["sts_dev"]["scores"].get("STSBenchmark") for m in models]
    best = [_best(c, higher=True) for c in [*cols, dev]]
    rows = []
    for k, m in enumerate(models):
        values = [c[k] for c in cols] + [dev[k]]
        cis = [(m["sts_test"].get("intervals") or {}).get(key) for key, _ in STS_COLUMNS] + [
            (m["sts_dev"].get("intervals") or {}).get("STSBenchmark")]
        cells = "".join(_with_ci(_cell(v, ".2f", "best" if (b is not None and v == b) else ""), ci)
                        for v, b, ci in zip(values, best, cis))
        rows.append(f"<tr>{_model_cell(m, k)}{cells}</tr>")
    headers = [("Model", "checkpoint [pooler]")] + [(short, f"{key}: Spearman ×100 of cosine, test set")
                                                   for key, short in STS_COLUMNS[:-1]]
    headers += [("Avg.", "mean of the 7 tasks"), ("STS-B dev", "STS Benchmark dev split: Spearman ×100")]
    a = models[0]["sts_test"] if models else {}
    caption = (f"STS: Spearman ×100 of cosine similarity (test sets; {_e(a.get('variant', ''))} data, "
               f"“{_e(a.get('aggregation', ''))}” aggregation over STS12–16 sub-datasets; under each value its 95% bootstrap CI over the pairs, when "
               "computed). Click a column to sort.")
    return _sortable(headers, rows, caption, "sts-table")


def isotropy_table(record: dict[str, Any]) -> str:
    """Alignment/uniformity (both protocols) and anisotropy scalars; best per column in bold, except ℓ_align
    and ℓ_uniform (neither is better alone)."""
    models = record["models"]
    spec = [  # (header, tooltip, getter, format, higher is better or None)
        # ℓ_align and ℓ_uniform are read together, never bolded alone: a collapsed space has the lowest ℓ_align
        ("ℓ_align", ("alignment on positive pairs (analysis protocol); lower = positive pairs closer; read with "
                     "ℓ_uniform (a collapsed space has a low ℓ_align and a high ℓ_uniform)"),
         lambda m: m["align_uniform"]["alignment"], ".4f", None),
        ("ℓ_uniform", ("uniformity over all distinct sentences (analysis protocol); lower = more uniform; read "
                       "with ℓ_align"), lambda m: m["align_uniform"]["uniformity"], ".4f", None),
        ("ℓ_align dev", "alignment, STS-B dev (the trainer's protocol)",
         lambda m: m["dev_align_uniform"]["alignment"], ".4f", None),
        ("ℓ_uniform dev", "uniformity, STS-B dev (the trainer's protocol)",
         lambda m: m["dev_align_uniform"]["uniformity"], ".4f", None),
        ("rand. cos", "mean cosine of random sentence pairs (Ethayarajh 2019); lower = less anisotropic",
         lambda m: m["anisotropy"]["summary"]["random_pair_cosine"], ".4f", False),
        ("IsoScore", "IsoScore (1 = isotropic)", lambda m: m["anisotropy"]["summary"]["isoscore"], ".4f", True),
        ("I(W)", ("partition-function isotropy, Mu & Viswanath 2018 (1 = isotropic); both signs of each "
                  "eigenvector, see the note below the table"),
         lambda m: m["anisotropy"]["summary"]["partition_isotropy"], ".3g", True),
        ("log I(W)", "natural log of I(W) (0 = isotropic), finite where I(W) underflows to 0",
         lambda m: m["anisotropy"]["summary"]["log_partition_isotropy"], ".1f", True),
        ("PC1 share", "variance share of the first principal component",
         lambda m: m["anisotropy"]["summary"]["first_pc_variance_share"], ".4f", False),
        ("eff. rank", "effective rank of the centred embedding matrix (Roy & Vetterli 2007)",
         lambda m: m["spectrum"]["centered"]["effective_rank"], ".1f", True),
        ("mean norm", "mean L2 norm of the embeddings", lambda m: m["anisotropy"]["summary"]["mean_norm"], ".3f",
         None),
        ("dim", "embedding dimension", lambda m: m.get("dim"), "d", None),
    ]

    def get(fn: Any, m: dict[str, Any]) -> Any:
        try:
            return fn(m)
        except (KeyError, TypeError):
            return None

    values = [[get(s[2], m) for m in models] for s in spec]
    best = [(_best(v, s[4]) if s[4] is not None else None) for v, s in zip(values, spec)]
    rows = []
    for k, m in enumerate(models):
        cells = "".join(_cell(values[c][k], spec[c][3], "best" if (best[c] is not None and values[c][k] == best[c])
                              else "") for c in range(len(spec)))
        rows.append(f"<tr>{_model_cell(m, k)}{cells}</tr>")
    headers = [("Model", "checkpoint [pooler]")] + [(s[0], s[1]) for s in spec]
    caption = ("Isotropy and alignment–uniformity scalars (best per column in bold where the column has a "
               "direction; ℓ_align and ℓ_uniform are read together, so neither is bolded alone). "
               f"Protocol: {_e(record['data'].get('protocol', ''))}. {_e(PARTITION_ISOTROPY_CONVENTION)}")
    return _sortable(headers, rows, caption, "isotropy-table")


# ----------------------------------------------------------------------------------------- figures
def _resolved(spectrum: dict[str, Any]) -> list[float]:
    """The normalised singular values down to the numerical rank (the rest are rounding noise)."""
    values = spectrum["singular_values"]
    rank = spectrum.get("numerical_rank")
    return values[:rank] if isinstance(rank, int) and rank > 0 else values


def build_figures(record: dict[str, Any]) -> list[tuple[str, str, Any, str]]:
    """``[(anchor, heading, figure, note)]`` for the record, in page order (empty sections left out). Each
    checkpoint is named by its ``label`` and drawn in :func:`reports.figures.colour` of its index."""
    models = record["models"]
    labels = [m["label"] for m in models]
    out: list[tuple[str, str, Any, str]] = []
    points = [{"label": labels[k], "alignment": m["align_uniform"]["alignment"],
               "uniformity": m["align_uniform"]["uniformity"], "stsb_dev": m["sts_dev"]["scores"].get("STSBenchmark"),
               "baseline": m.get("baseline"), "colour": F.colour(k), "text": m["label"],
               "alignment_stderr": m["align_uniform"].get("alignment_stderr"),
               "uniformity_stderr": m["align_uniform"].get("uniformity_stderr")}
              for k, m in enumerate(models)]
    out.append(("align-uniform", "Alignment and uniformity (SimCSE Fig. 2)",
                F.align_uniform_plane(points, title="ℓ_align vs ℓ_uniform, coloured by STS-B dev Spearman"),
                ("Lower is better on both axes; bars: 95% intervals where estimated. Diamonds mark baselines; "
                 f"marker fill is STS-B dev Spearman ×100. Protocol: {record['data'].get('protocol', '')}")))
    trajs = record.get("trajectories") or []
    if trajs:
        dev_points = [{**p, "alignment": m["dev_align_uniform"]["alignment"],
                       "uniformity": m["dev_align_uniform"]["uniformity"], "alignment_stderr": None,
                       "uniformity_stderr": None} for p, m in zip(points, models)]
        paths = [{"label": t["label"] if t.get("model") is None else labels[t["model"]],
                  "colour": F.colour(t["model"] if t.get("model") is not None else len(models) + i),
                  "points": t["points"]} for i, t in enumerate(trajs)]
        protocol = models[0]["dev_align_uniform"].get("protocol", "STS-B dev") if models else "STS-B dev"
        out.append(("trajectories", "Training trajectories",
                    F.align_uniform_plane(dev_points, paths, title="Training paths through the align–uniform plane"),
                    ("Each path is one training run's trajectory.jsonl (hover: step); the ring marks its last "
                     "evaluation. Checkpoints are measured with the same protocol as the paths: "
                     f"{protocol}.")))
    out.append(("spectra", "Singular-value spectra",
                F.spectra_chart([{"label": labels[k], "colour": F.colour(k),
                                  "uncentered": _resolved(m["spectrum"]["uncentered"]),
                                  "centered": _resolved(m["spectrum"]["centered"])}
                                 for k, m in enumerate(models)]),
                ("σ_k/σ_1 of the sentence-embedding matrix; solid: uncentred, dashed: centred. A faster decay "
                 "means the embeddings occupy fewer directions. Values below the method's resolution "
                 "(beyond the numerical rank) are not drawn.")))
    out.append(("cosine-bins", "Cosine similarity by gold rating (SimCSE Fig. G.1)",
                F.cosine_density_panels([{"label": labels[k], "colour": F.colour(k),
                                          "bins": m["anisotropy"]["score_bins"]} for k, m in enumerate(models)]),
                ("Density of the cosine similarity of STS-B pairs, grouped by their gold rating. A good space "
                "separates the groups and uses the whole range of cosine values.")))
    out.append(("random-pairs", "Cosine of random sentence pairs",
                F.random_pair_histograms([{"label": labels[k], "colour": F.colour(k), **m["random_pairs"]}
                                          for k, m in enumerate(models)]),
                "Anisotropic spaces put random pairs at high cosine (dotted lines: means)."))
    layered = [(k, m) for k, m in enumerate(models) if m["anisotropy"].get("layers")]
    if layered:
        # the same weights pooled per layer the same way give the same curves (e.g. avg and avg_first_last):
        # one line, named after all of them
        groups: dict[tuple, list[int]] = {}
        for k, m in layered:
            a = m["anisotropy"]
            key = (m.get("fingerprint") or f"#{k}", a.get("layer_pooler"), a.get("layer_sentences"))
            groups.setdefault(key, []).append(k)
        lines = []
        for ks in groups.values():
            a = models[ks[0]]["anisotropy"]
            lines.append({"label": " = ".join(labels[k] for k in ks), "colour": F.colour(ks[0]),
                          "layer_pooler": a.get("layer_pooler"),
                          "random_pair_cosine": [s and s["random_pair_cosine"] for s in a["layers"]],
                          "isoscore": [s and s["isoscore"] for s in a["layers"]]})
        sampled = sorted({m["anisotropy"].get("layer_sentences") for _, m in layered} - {None})
        seed = (record.get("settings") or {}).get("analysis", {}).get("seed", "?")
        notes = [f"{labels[k]}: {m['layers_note']}" for k, m in enumerate(models) if m.get("layers_note")]
        refs = _layer_references(models, [k for k, _ in layered])
        out.append(("layers", "Anisotropy across layers", F.layer_anisotropy(lines, references=refs),
                    "Every hidden layer pooled like the checkpoint (token mean, or the [CLS] vector for CLS "
                    "poolers); layer 0 is the embedding layer"
                    + (f"; summaries on {', '.join(f'{n:,}' for n in sampled)} sampled sentences (seed {seed})"
                       if sampled else "") + "; grey: an isotropic Gaussian of the same shape. " + " ".join(notes)))
    um = record.get("umap")
    panels = [(k, m) for k, m in enumerate(models) if m.get("umap")]
    if um and panels:
        colour_title = {"bin": "gold rating", "corpus": "STS task", "split": "STS-B split"}.get(um.get("colour"),
                                                                                            "category")
        settings = (record.get("settings") or {}).get("umap") or {}
        aligned = um.get("fit") == "aligned"
        fit = ("fitted jointly: each checkpoint's map starts from the first one's layout and is rotated onto it "
               "(orthogonal Procrustes over the shared sentences), so a sentence sits in comparable places "
               "across panels when the spaces agree" if aligned else
               "one independent UMAP fit per checkpoint, so positions do not correspond across panels")
        caution = (" Colour: the mean gold rating of the pairs a sentence appears in (a property of its pairs, "
                   "not of the sentence; rebuild the record to colour by task)." if um.get("colour") == "bin" else "")
        out.append(("umap", "UMAP maps of the sentences",
                    F.umap_panels([{"label": labels[k], "colour": F.colour(k), **m["umap"]} for k, m in panels],
                                  um["sentences"], um["categories"], um["category_order"], colour_title=colour_title,
                                  aligned=aligned),
                    (f"{len(um['sentences']):,} sentences (seeded sample, seed {settings.get('seed', '?')}), coloured "
                     f"by {colour_title}; {fit} (cosine, {settings.get('n_neighbors', '?')} neighbours). Hover a "
                     "point to read its sentence." + caution)))
    return out


def _layer_references(models: Sequence[dict[str, Any]], ks: Sequence[int]) -> list[dict[str, Any]]:
    """Gaussian references of the per-layer summaries' shapes (one per distinct shape)."""
    out: dict[tuple, dict[str, Any]] = {}
    for k in ks:
        layer = next((s for s in models[k]["anisotropy"]["layers"] if s), None)
        ref = R.reference_for(layer) if layer else None
        if ref is not None:
            key = (ref["n"], ref["dim"])
            out.setdefault(key, {"label": f"isotropic Gaussian, n = {ref['n']:,}, d = {ref['dim']}", **ref})
    return list(out.values())


# ----------------------------------------------------------------------------------------- geometry
def model_reference(m: dict[str, Any]) -> dict[str, Any] | None:
    """The isotropic Gaussian reference of checkpoint ``m``'s anisotropy summary (stored by
    :func:`reports.collect.collect_report`; computed here for records that lack it)."""
    an = m.get("anisotropy") or {}
    return an.get("isotropic_reference") or R.reference_for(an.get("summary") or {})


def _layer0(m: dict[str, Any]) -> dict[str, Any] | None:
    layers = (m.get("anisotropy") or {}).get("layers") or []
    return layers[0] if layers and layers[0] else None


def model_reading(m: dict[str, Any]) -> str:
    """The one-line anisotropy reading of checkpoint ``m`` (:func:`reports.reading.anisotropy_reading`)."""
    summary = (m.get("anisotropy") or {}).get("summary") or {}
    eff = ((m.get("spectrum") or {}).get("centered") or {}).get("effective_rank")
    return R.anisotropy_reading(summary, model_reference(m), _layer0(m), eff)


def reference_table(record: dict[str, Any]) -> str:
    """Each checkpoint's anisotropy numbers beside its layer 0 and the Gaussian of its shape, and its reading."""
    rows = []
    seen: set[tuple[int, int]] = set()
    cols = ("random_pair_cosine", "mean_cosine_all_pairs", "isoscore", "first_pc_variance_share",
            "effective_rank", "log_partition_isotropy")
    specs = (".4f", ".4f", ".3f", ".4f", ".1f", ".1f")

    def cells(values: dict[str, Any]) -> str:
        return "".join(_cell(values.get(c), spec) for c, spec in zip(cols, specs))

    for k, m in enumerate(record["models"]):
        s = dict((m.get("anisotropy") or {}).get("summary") or {})
        s["effective_rank"] = ((m.get("spectrum") or {}).get("centered") or {}).get("effective_rank")
        rows.append(f'<tr>{_model_cell(m, k)}<td class="text">final embeddings, n = {_num(s.get("n_points"), ",")}'
                    f"</td>{cells(s)}</tr>")
        l0 = _layer0(m)
        if l0:
            rows.append(f'<tr class="reference"><td class="name">{_swatch(F.colour(k))}{_e(m["label"])}</td>'
                        f'<td class="text">layer 0 (embedding layer), n = {_num(l0.get("n_points"), ",")}</td>'
                        f"{cells(l0)}</tr>")
        ref = model_reference(m)
        if ref and (ref["n"], ref["dim"]) not in seen:
            seen.add((ref["n"], ref["dim"]))
            rows.append(f'<tr class="reference"><td class="name">{_e(R.REFERENCE_LABEL)}</td>'
                        f'<td class="text">n = {ref["n"]:,}, d = {ref["dim"]}, seed {ref["seed"]}</td>{cells(ref)}</tr>')
    headers = [("Model", "checkpoint [pooler]"), ("embeddings", "which vectors"),
               ("rand. cos", "mean cosine of random pairs: a common direction"),
               ("all-pairs cos", "mean cosine over all pairs"), ("IsoScore", "1 = isotropic spread"),
               ("PC1 share", "variance share of the first principal component"),
               ("eff. rank", "effective rank of the centred matrix (final embeddings and the reference only)"),
               ("log I(W)", "log partition isotropy; 0 = isotropic")]
    readings = "".join(f"<li>{_swatch(F.colour(k))}<b>{_e(m['label'])}</b>: {_e(model_reading(m))}</li>"
                       for k, m in enumerate(record["models"]))
    return (f'<ul class="readings">{readings}</ul>'
            + _sortable(headers, rows, _e(R.READING_NOTE), "reference-table"))


# ----------------------------------------------------------------------------------------- page
def provenance_html(record: dict[str, Any]) -> str:
    """The provenance block: checkpoints (pooler, dimension, fingerprint, path, metadata), how the page was
    built (command line, packages, machine, date), and the data files with checksums."""
    rows = []
    for k, m in enumerate(record["models"]):
        fp = m.get("fingerprint") or ""
        meta = m.get("checkpoint_metadata") or {}
        extra = ", ".join(f"{_e(a)}: {_e(b)}" for a, b in meta.items() if a not in ("pooler",))
        rows.append(
            f'<tr><td class="name">{_swatch(F.colour(k))}{_e(m["label"])}'
            + (f' <span class="badge">baseline: {_e(m["baseline"])}</span>' if m.get("baseline") else "")
            + f"</td><td>{_e(m.get('pooler') or '–')}</td><td>{_e(m.get('dim') or '–')}</td>"
            f'<td class="mono" title="{_e(fp)}">{_e(fp[:16]) if fp else "–"}</td>'
            f'<td class="mono text">{_e(m.get("path") or m.get("model"))}</td><td class="text">{extra}</td></tr>')
    checkpoints = ("<table class=\"plain\"><thead><tr><th>checkpoint</th><th>pooler</th><th>dim</th>"
                   "<th>fingerprint (SHA-256)</th><th>path</th><th>metadata</th></tr></thead>"
                   f"<tbody>{''.join(rows)}</tbody></table>")
    files = record["data"].get("files", [])
    proto = record["data"].get("protocol_data") or {}
    return (f'<div class="table-wrap">{checkpoints}</div>'
            f'<div class="grid">{provenance_cards(record.get("provenance") or [])}'
            f'<div class="card"><h3>Data</h3><p>{_e(record["data"].get("protocol", ""))}</p>'
            f'<details><summary>{len(files)} data files ({_e(proto.get("task", "STS"))} protocol + STS test sets)'
            f"</summary>{data_files_table(files)}</details></div></div>")


def page_checkpoints(record: dict[str, Any]) -> F.Checkpoints:
    """The page's checkpoints: the record's models, in order, under their labels (index = colour)."""
    cps = F.Checkpoints()
    for m in record["models"]:
        cps.add(m["label"], {"model": m.get("model"), "path": m.get("path"), "pooler": m.get("pooler"),
                             "fingerprint": m.get("fingerprint")})
    return cps


# ----------------------------------------------------------------------------------------- summary
def _avg_with_ci(m: dict[str, Any]) -> tuple[Any, str]:
    avg = m["sts_test"]["scores"].get("avg")
    ci = (m["sts_test"].get("intervals") or {}).get("avg") or {}
    text = f"<b>{_num(avg, '.2f')}</b>"
    if ci.get("low") is not None and ci.get("high") is not None:
        text += f' <small class="ci">[{_num(ci["low"], ".2f")}, {_num(ci["high"], ".2f")}] 95% CI</small>'
    return avg, text


def report_summary(record: dict[str, Any], comparison: dict[str, Any] | None, cps: F.Checkpoints) -> str:
    """The summary: best STS average (with its CI) and the others, significant differences, the geometry
    of each checkpoint in one sentence."""
    from .compare_page import difference_items

    models = record["models"]
    ranked = sorted(range(len(models)), key=lambda k: -(models[k]["sts_test"]["scores"].get("avg") or -1e9))
    best = ranked[0]
    _, best_text = _avg_with_ci(models[best])
    lead = f'<p class="lead">{_swatch(F.colour(best))}<b>{_e(models[best]["label"])}</b>: STS avg {best_text}</p>'
    others = "".join(f"<li>{_swatch(F.colour(k))}{_e(models[k]['label'])}: {_avg_with_ci(models[k])[1]}</li>"
                     for k in ranked[1:])
    dev = models[best]["sts_dev"]["scores"].get("STSBenchmark")
    sts = ('<div class="card"><h3>STS: Spearman ×100, mean of the 7 test sets</h3>' + lead
           + (f"<ul>{others}</ul>" if others else "")
           + f'<p class="note">STS-B dev of the best: {_num(dev, ".2f")}. '
           + ("Best of the checkpoints by the mean; see the differences for whether it is significantly better."
              if len(models) > 1 else "") + "</p></div>")
    if comparison is not None:
        diff = difference_items(comparison, cps)
    elif len(models) > 1:
        b, r = models[ranked[0]], models[ranked[1]]
        cb = (b["sts_test"].get("intervals") or {}).get("avg") or {}
        cr = (r["sts_test"].get("intervals") or {}).get("avg") or {}
        overlap = ""
        if None not in (cb.get("low"), cb.get("high"), cr.get("low"), cr.get("high")):
            apart = cb["low"] > cr["high"] or cr["low"] > cb["high"]
            overlap = (f" The unpaired 95% CIs of the best and the runner-up {'do not overlap' if apart else 'overlap'}"
                       " (not a test of the difference).")
        diff = ("<p>No paired test on this page: run <code>simcse-analyze compare</code> and add "
                f"<code>--compare-from FILE</code> for paired Δ with simultaneous (Šidák) intervals and adjusted p-values.{_e(overlap)}</p>")
    else:
        diff = "<p>One checkpoint: nothing to compare.</p>"
    differences = f'<div class="card"><h3>Significant differences</h3>{diff}</div>'
    geometry = "".join(
        f"<li data-checkpoint=\"{_e(m['label'])}\">{_swatch(F.colour(k))}<b>{_e(m['label'])}</b>: ℓ_align {_num(m['align_uniform'].get('alignment'), '.3f')}, "
        f"ℓ_uniform {_num(m['align_uniform'].get('uniformity'), '.3f')}. {_e(_short_reading(m))}</li>"
        for k, m in enumerate(models))
    return (f'<div class="grid">{sts}{differences}<div class="card" style="grid-column:1/-1"><h3>Geometry</h3>'
            f'<ul>{geometry}</ul><p class="note">Lower ℓ_align and ℓ_uniform are better (Wang &amp; Isola 2020). '
            'Anisotropy readings against an isotropic Gaussian of the same shape: see '
            '<a href="#geometry">Geometry</a>.</p></div></div>')


def _short_reading(m: dict[str, Any]) -> str:
    """The headline of the anisotropy reading with its two key numbers."""
    summary = (m.get("anisotropy") or {}).get("summary") or {}
    return R.anisotropy_headline(summary, model_reference(m))


# ----------------------------------------------------------------------------------------- page
def report_sections(record: dict[str, Any], cps: F.Checkpoints, *, comparison: dict[str, Any] | None = None,
                    tokens: dict[str, Any] | None = None) -> list[Section]:
    """The report's sections after the summary, in page order."""
    from .compare_page import comparison_sections
    from .token_page import token_page_sections

    models = record["models"]
    layers_notes = ("".join(f'<p class="note">{_e(m["label"])}: {_e(m["layers_note"])}</p>' for m in models
                            if m.get("layers_note")))
    figs = build_figures(record)
    toc = " · ".join(f'<a href="#{a}">{_e(h.split(" (")[0])}</a>' for a, h, _, _ in figs)
    sections = [
        Section("sts", "STS results", sts_table(record), nav="STS"),
        Section("geometry", "Geometry: alignment, uniformity, anisotropy",
                isotropy_table(record) + "<h3 class=\"sub\">Is the space anisotropic?</h3>" + reference_table(record)
                + layers_notes, nav="Geometry"),
    ]
    for i, (anchor, heading, fig, note) in enumerate(figs):
        sections.append(Section(anchor, heading, f'<p class="note">Figures: {toc}</p>' if i == 0 else "",
                                figure=fig, note=note, nav="Figures" if i == 0 else None))
    if comparison is not None:
        sections += comparison_sections(comparison, cps, prefix="cmp-")
    if tokens is not None:
        sections += token_page_sections(tokens, cps)
    return sections


def render_report(record: dict[str, Any], *, plotlyjs: str | None = None,
                  extra_sections: Sequence[tuple[str, str, Any, str]] = (),
                  extra_blocks: Sequence[tuple[str, str, str]] = ()) -> str:
    """The full page for a report record (module docstring).

    The comparison and token sections are drawn from the record's own ``comparison`` / ``tokens`` documents,
    with the page's names and colours. ``extra_blocks`` (``(anchor, nav label, html)``, trusted HTML) and
    ``extra_sections`` (``(anchor, heading, figure, note)``) are appended after them; those whose anchor the
    record's documents already produced (e.g. :func:`reports.compare_page.comparison_report_parts` of the
    record's own comparison) are left out, so passing both draws each section once. ``plotlyjs`` overrides the
    bundled plotly.js."""
    models = record["models"]
    if not models:
        raise InputError("the report record holds no checkpoints")
    title = record.get("title") or f"Sentence-embedding comparison of {len(models)} checkpoint" + (
        "s" if len(models) != 1 else "")
    cps = page_checkpoints(record)
    comparison, tokens = record.get("comparison"), record.get("tokens")
    sections = report_sections(record, cps, comparison=comparison, tokens=tokens)
    have = {s.anchor for s in sections}
    navs = {s.nav for s in sections}
    for anchor, label, block in extra_blocks:
        if anchor not in have:
            sections.append(Section(anchor, label, block, nav=label if label not in navs else None))
            have.add(anchor)
    for anchor, heading, fig, note in extra_sections:
        if anchor not in have:
            sections.append(Section(anchor, heading, figure=fig, note=note))
            have.add(anchor)
    created = (record.get("provenance") or [{}])[-1].get("created", "")
    subtitle = (f"{len(models)} checkpoint{'s' if len(models) != 1 else ''} · generated {created} by "
                "simcse-analyze report")
    return render_page(title, subtitle, summary=report_summary(record, comparison, cps), sections=sections,
                       provenance=provenance_html(record), plotlyjs=plotlyjs)


_check_scripts = check_scripts


# ----------------------------------------------------------------------------------------- writing
def write_report(record: dict[str, Any], path: str | os.PathLike[str],
                 extra_sections: Sequence[tuple[str, str, Any, str]] = (),
                 extra_blocks: Sequence[tuple[str, str, str]] = ()) -> Path:
    """Render :func:`render_report` and write it atomically to ``path``."""
    return write_output_text(path, render_report(record, extra_sections=extra_sections, extra_blocks=extra_blocks))
