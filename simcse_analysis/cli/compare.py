"""``simcse-analyze compare A B [C …]``: is checkpoint B really better than A? (paired tests, CIs, CKA, movers)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Annotated, Any

import typer

from ..path_safety import data_inputs
from .help_format import examples
from .options import (
    DataDir,
    EncoderOptions,
    HtmlOut,
    JsonOut,
    announce,
    check_outputs,
    with_encoder_options,
    with_progress,
    write_output,
)
from .sts import Aggregation, Split, Tasks, Variant

Checkpoints = Annotated[list[str], typer.Argument(
    metavar="MODEL", help="Checkpoints (first = baseline): hub ids, aliases or directories, optionally NAME@POOLER "
         "(e.g. all-MiniLM-L6-v2@avg), or scores files written by --save-scores.", show_default=False)]
Resamples = Annotated[int, typer.Option(
    "--resamples", help="Bootstrap resamples of each checkpoint's Spearman CIs (100 to 100,000; the verdicts use "
                        "no resampling).")]
Seed = Annotated[int, typer.Option("--seed", help="Seed of the bootstrap resampling.")]
Alpha = Annotated[float, typer.Option(
    "--alpha", help="Family-wise level: each family's intervals hold jointly with probability 1 - alpha; a verdict "
                    "is an interval that excludes 0.")]
Family = Annotated[str, typer.Option(
    "--family", help="Multiplicity family: 'comparison' (one per checkpoint against the baseline: adding a "
                     "checkpoint changes no other verdict) or 'table' (every row at once).")]
K = Annotated[int, typer.Option("--k", help="Neighbours per sentence for the mutual kNN overlap (Jaccard@k).")]
Movers = Annotated[int, typer.Option("--movers", help="Pairs per task listed as the ones whose rank moved most.")]
NoLayers = Annotated[bool, typer.Option("--no-layers", help="Skip the layer-by-layer CKA (no hidden states).")]
NoSpace = Annotated[bool, typer.Option(
    "--no-embedding-space", help="STS only: skip alignment, uniformity, kNN overlap and CKA on the STS-B sentences.")]
SaveScores = Annotated[Path | None, typer.Option(
    "--save-scores", metavar="DIR", help="Write each checkpoint's scores (predictions, alignment terms, uniformity rows) "
                          "to DIR/<n>.json, to compare again later without encoding.")]


def _f(x: float | None, spec: str = ".2f") -> str:
    return "n/a" if x is None or not math.isfinite(x) else format(x, spec)


def verdict_table(report: Any) -> str:
    """Terminal table: one row per (checkpoint, metric) with Δ, its simultaneous CI, adjusted p and the verdict;
    then the alignment–uniformity reading per checkpoint and the design in words."""
    from ..comparison import SPACE_METRICS, format_delta, format_interval, verdict_text
    from ..metrics.stats import format_p
    from ..tables import format_table

    rows = []
    for r in report.rows:
        spec = ".2f" if r.metric not in SPACE_METRICS else ".4f"
        rows.append([r.other, r.metric, _f(r.baseline_value, spec), _f(r.other_value, spec),
                     format_delta(r.delta, "+" + spec), format_interval(r, spec), format_p(r.p_adjusted),
                     verdict_text(r)])
    level = 100 * (1 - float(report.settings.get("alpha", 0.05)))
    head = ["other", "metric", "baseline", "other", "delta", f"{level:g}% simult. CI", "p (adj.)", "verdict"]
    lines = [f"baseline: {report.rows[0].baseline}" if report.rows else "baseline: -",
             format_table(head, rows, right=[False, False, True, True, True, True, True, False])]
    lines += [f"geometry ({p.other} vs baseline): {p.geometry}" for p in report.pairs if p.geometry]
    if report.design:
        lines.append(f"design: {report.design}")
    lines += [f"note: {n}" for n in report.notes]
    for p in report.pairs:
        if p.cka is not None:
            diag = ", ".join(_f(p.cka[i][i], ".3f") for i in range(min(len(p.cka), len(p.cka[0]))))
            lines.append(f"CKA diagonal (layer i of baseline vs layer i of {p.other}; 0 = embeddings): {diag}")
        if p.knn_jaccard is not None:
            lines.append(f"mutual kNN Jaccard@{report.settings.get('k')} ({p.other} vs baseline): {p.knn_jaccard:.4f}")
    return "\n".join(lines)


EXAMPLES = examples(
    "simcse-analyze compare all-MiniLM-L6-v2@avg all-MiniLM-L6-v2@cls_before_pooler --out cmp.html",
    "simcse-analyze compare runs/base runs/unsup-0.1 runs/unsup-0.2 --json cmp.json --save-scores scores/",
    "simcse-analyze compare scores/0.json scores/1.json --out cmp.html   # from saved scores: no encoding")


def register(app: typer.Typer) -> None:
    @app.command("compare", rich_help_panel="Analysis", epilog=EXAMPLES,
                 short_help="Is B really better than A? Paired tests, CIs, CKA, movers.")
    @with_progress("compare")
    @with_encoder_options
    def compare_cmd(
        checkpoints: Checkpoints,
        tasks: Tasks = None,
        split: Split = "test",
        variant: Variant = "senteval",
        aggregation: Aggregation = "all",
        resamples: Resamples = 1000,
        seed: Seed = 0,
        alpha: Alpha = 0.05,
        family: Family = "comparison",
        k: K = 10,
        movers: Movers = 25,
        no_layers: NoLayers = False,
        no_embedding_space: NoSpace = False,
        save_scores: SaveScores = None,
        json_out: JsonOut = None,
        html_out: HtmlOut = None,
        data_dir: DataDir = None,
        *,
        encoder: EncoderOptions,
    ) -> None:
        """Paired comparison of checkpoints against the first: simultaneous CIs and verdicts, CKA, kNN, movers."""
        from ..comparison import CompareSettings, compare

        settings = CompareSettings(tasks=None if tasks is None else tuple(tasks.split(",")), split=split,
                                   variant=variant, aggregation=aggregation, resamples=resamples, seed=seed,
                                   alpha=alpha, k=k, movers=movers, layers=not no_layers,
                                   embedding_space=not no_embedding_space, family=family)
        to_stderr = check_outputs(("--json", json_out), ("--out", html_out), reads=[  # fail before any encoding
            *(("MODEL", c) for c in checkpoints), *data_inputs(data_dir)], dirs=[("--save-scores", save_scores)])
        report = compare(checkpoints, settings, data_dir=data_dir, encoder_kwargs=encoder.load_kwargs,
                         batch_size=encoder.batch_size, save_scores=save_scores)
        typer.echo(verdict_table(report), err=to_stderr)
        if json_out is not None:
            write_output(json_out, report.to_json(), to_stderr=to_stderr)
        if html_out is not None:
            from reports.compare_page import write_compare_page

            write_compare_page(report.to_dict(), html_out)
            announce(html_out, to_stderr=to_stderr)
