"""The HTML page of a training sweep (``simcse-analyze ablate …``), rendered from its summary document
(``trainers.sweeps.SweepSummary.to_dict()``) alone, never by re-running a model.

* a table: per point, mean ± std over seeds of the best STS-B dev Spearman, its step, ℓ_align and
  ℓ_uniform there, and their change from the first to the last evaluation;
* a summary first: the best point (mean ± std of the best STS-B dev over seeds) and where it ends in the
  align–uniform plane;
* every run's trajectory in the align–uniform plane, drawn as the paper and every other page draw it
  (ℓ_uniform on x, ℓ_align on y; :func:`reports.figures.align_uniform_plane`): one colour per point, a thin
  line per seed, the mean over seeds with markers coloured by STS-B dev, the shared start marked;
* STS-B dev, ℓ_align and ℓ_uniform against the training step (mean ± std band over seeds);
* where it came from, as on the comparison report (:mod:`reports.html`, same header, navigation and
  provenance cards): the command line, package versions, machine, and the data files with checksums;
* the settings, from the runs' own resolved configurations (``run.json``): the values all runs share in
  one table, those that differ (seed, the swept keys) per run, each run with the command that trains it
  again.

The page is built by :func:`reports.page.render_page` (provenance collapsed at the end); it opens offline;
every user-supplied string is HTML-escaped.
"""

from __future__ import annotations

import html
import json
import math
import os
from pathlib import Path
from typing import Any

from . import figures as F
from .collect import file_entries, provenance_entry
from .page import Section, data_files_table, provenance_cards, render_page, swatch


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
    """Every run's trajectory in the align–uniform plane (ℓ_uniform on x, ℓ_align on y, as SimCSE Fig. 2): a
    thin line per seed, the mean over seeds with its markers coloured by STS-B dev, the start as a star."""
    trajectories, start = [], None
    for i, p in enumerate(doc["points"]):
        for run in p["runs"]:
            t = [e for e in run["trajectory"] if e.get("alignment") is not None]
            if t and t[0]["step"] == 0 and start is None:
                start = t[0]
            trajectories.append({"label": f"{p['label']} seed {run['seed']}", "colour": F.colour(i), "thin": True,
                                 "points": t})
        trajectories.append({"label": p["label"], "colour": F.colour(i),
                             "points": [e for e in p["mean_trajectory"] if e.get("alignment") is not None]})
    return F.align_uniform_plane([], trajectories, start=start,
                                 title="Trajectories in the align–uniform plane (mean over seeds; thin: single seeds)",
                                 subtitle="ℓ_align on STS-B dev pairs with gold > 4, ℓ_uniform on STS-B dev sentences")


def step_figure(doc: dict[str, Any]):
    """STS-B dev, ℓ_align and ℓ_uniform against the step: mean over seeds with a ±1 std band."""
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    panels = (("stsb_spearman", "STS-B dev Spearman ×100"), ("alignment", "ℓ_align"), ("uniformity", "ℓ_uniform"))
    fig = make_subplots(rows=1, cols=3, subplot_titles=[t for _, t in panels])
    for i, p in enumerate(doc["points"]):
        color, name = F.colour(i), _esc(p["label"])
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
    F._base_layout(fig, "During training (mean over seeds, band = ±1 std)", 420)
    fig.update_xaxes(title_text="training step")
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
        mark = swatch(F.colour(i))
        for run in p["runs"]:
            settings = run.get("settings") or {}
            best = run.get("best_stsb_spearman")
            rows.append(
                f'<tr><td class="name">{mark}{_esc(p["label"])}</td>'
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
def _summary(doc: dict[str, Any]) -> str:
    """The best point by mean best STS-B dev, and every point's result and final geometry in one line."""
    def best(p: dict[str, Any]) -> float:
        m = (p["stats"].get("best_stsb_spearman") or {}).get("mean")
        return m if isinstance(m, (int, float)) and math.isfinite(m) else -math.inf

    order = sorted(range(len(doc["points"])), key=lambda i: -best(doc["points"][i]))
    items = []
    for rank, i in enumerate(order):
        p = doc["points"][i]
        s = p["stats"]
        items.append(f"<li>{swatch(F.colour(i))}{'<b>' if rank == 0 else ''}{_esc(p['label'])}"
                     f"{'</b>' if rank == 0 else ''}: best STS-B dev {_esc(_stat(s['best_stsb_spearman'], 2))} "
                     f"(step {_esc(_stat(s['best_step'], 0))}; {len(p['seeds'])} seed{'s' if len(p['seeds']) != 1 else ''}); "
                     f"there ℓ_align {_esc(_stat(s['alignment_at_best'], 3))}, ℓ_uniform "
                     f"{_esc(_stat(s['uniformity_at_best'], 3))}; from first to last evaluation Δℓ_align "
                     f"{_esc(_stat(s['alignment_change'], 3))}, Δℓ_uniform {_esc(_stat(s['uniformity_change'], 3))}</li>")
    return ('<div class="card"><h3>Points, best first (mean ± sample std over seeds)</h3>'
            f"<ul>{''.join(items)}</ul><p class=\"note\">Swept: {_esc(', '.join(doc.get('keys', [])))}. ℓ_align rising "
            "means positive pairs drift apart; ℓ_uniform falling means the space spreads out.</p></div>")


def render_sweep_page(doc: dict[str, Any], *, plotlyjs: str | None = None) -> str:
    """The full HTML page for a ``SweepSummary.to_dict()`` document (:func:`reports.page.render_page`):
    summary, results, figures, settings, runs, provenance."""
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
    sections = [
        Section("results", "Results", f'<div class="table-wrap">{summary_table(doc)}</div>' + "".join(notes),
                note=("Each row is the mean ± sample std over seeds; best is the evaluation with the highest STS-B "
                      "dev Spearman; Δ is last − first evaluation (ℓ_align rising means positive pairs drift apart)."),
                nav="Results"),
        Section("trajectories", "Trajectories in the align–uniform plane", figure=align_uniform_figure(doc),
                note="ℓ_uniform on x, ℓ_align on y, lower is better on both (SimCSE Fig. 2's axes).", nav="Figures"),
        Section("during-training", "During training", figure=step_figure(doc)),
        Section("settings", "Common settings", common_settings_table(doc), nav="Settings"),
        Section("runs-section", "Runs", runs_table(doc), nav="Runs"),
    ]
    created = provenance[-1].get("created", "") if provenance else ""
    subtitle = (f"{n_runs} run{'s' if n_runs != 1 else ''} · {len(doc['points'])} point"
                f"{'s' if len(doc['points']) != 1 else ''} · seed{'s' if len(seeds) != 1 else ''} "
                f"{', '.join(map(str, seeds))}"
                + (f" · generated {created} by simcse-analyze ablate" if created else ""))
    return render_page(title, subtitle, summary=_summary(doc), sections=sections,
                       provenance=f'<div class="grid">{provenance_cards(provenance)}{"".join(data_cards)}</div>',
                       plotlyjs=plotlyjs)


def write_sweep_page(doc: dict[str, Any], path: str | os.PathLike[str]) -> Path:
    """Render :func:`render_sweep_page` and write it atomically to ``path``."""
    from simcse_analysis.io_utils import write_output_text

    return write_output_text(path, render_sweep_page(doc))
