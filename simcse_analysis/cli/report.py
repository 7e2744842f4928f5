"""``simcse-analyze report``: one self-contained interactive HTML page comparing checkpoints.

``simcse-analyze report MODEL… --out reports/NAME.html`` evaluates (STS, 7 tasks + STS-B dev), analyses
(alignment/uniformity, spectra, anisotropy), maps (UMAP) and renders; ``--json FILE`` also saves the
record the page is drawn from, and ``--from-json FILE…`` rebuilds a page from saved records without
re-encoding (records and fresh ``MODEL`` arguments may be combined). A ``MODEL`` may be a training run
directory (its ``best/`` checkpoint is used and its ``trajectory.jsonl`` drawn).
"""

from __future__ import annotations

import shlex
import sys
from pathlib import Path
from typing import Annotated, Literal

import typer

from ..path_safety import data_inputs
from .help_format import examples
from .options import (
    DataDir,
    EncoderOptions,
    VariantName,
    announce,
    check_outputs,
    with_encoder_options,
    with_progress,
)

OptModels = Annotated[list[str] | None, typer.Argument(metavar="MODEL",
    help="Checkpoints: Hugging Face ids, aliases, checkpoint or training-run directories; MODEL@POOLER picks a "
         "pooler for one of them (optional with --from-json).", show_default=False)]
Out = Annotated[Path | None, typer.Option(
    "--out", metavar="FILE", help="Write the HTML report here (directories are created).")]
JsonRecord = Annotated[Path | None, typer.Option(
    "--json", metavar="FILE",
    help="Also write the report record (everything the page shows) as JSON, for --from-json.")]
FromJson = Annotated[list[Path] | None, typer.Option(
    "--from-json", metavar="FILE",
    help="Rebuild from a saved report record instead of re-encoding; repeatable (records are merged).")]
Umap = Annotated[bool, typer.Option("--umap/--no-umap", help="Draw the UMAP maps of the sentences.")]
UmapSentences = Annotated[int, typer.Option(
    "--umap-sentences", min=5, help="Sentences in each UMAP map (a seeded sample of this size).")]
UmapColour = Annotated[Literal["corpus", "split"], typer.Option(
    "--umap-colour", case_sensitive=False,
    help="corpus: STS test sentences coloured by their task | split: STS-B sentences by their split.")]
Seed = Annotated[int, typer.Option("--seed", help="Seed of the UMAP sample and fit and of the random pairs.")]
Splits = Annotated[str, typer.Option(
    "--splits", help="STS-B splits of the analysis protocol: comma-separated train, dev, test, or all.")]
Variant = Annotated[VariantName, typer.Option(
    "--variant", case_sensitive=False, help="senteval: the SentEval copy, as the paper; raw: the originals.")]
UniformityPairs = Annotated[int | None, typer.Option(
    "--uniformity-pairs", min=2, help="Estimate uniformity from this many random pairs (default: exact).")]
NoLayers = Annotated[bool, typer.Option("--no-layers", help="Skip the per-layer anisotropy.")]
LayerSentences = Annotated[int, typer.Option(
    "--layer-sentences", min=0, help="Per-layer anisotropy on a seeded sample of this many sentences (0: all).")]
Trajectory = Annotated[list[Path] | None, typer.Option(
    "--trajectory", metavar="PATH",
    help="A training run directory or trajectory.jsonl to draw in the align-uniform plane; "
         "repeatable (runs given as MODEL are picked up automatically).")]
Title = Annotated[str | None, typer.Option("--title", help="Page title.")]
Tokens = Annotated[bool, typer.Option(
    "--tokens", help="Add the Token level section: token analysis of the MODELs (see `simcse-analyze tokens`).")]
TokenSentences = Annotated[int, typer.Option(
    "--token-sentences", min=0, help="With --tokens: a seeded sample of this many STS-B sentences (0: all).")]
CompareFrom = Annotated[Path | None, typer.Option(
    "--compare-from", metavar="FILE",
    help="Add the Comparison section (verdicts, CKA, kNN overlap, the pairs that moved) from a saved "
         "`simcse-analyze compare --json` document; every checkpoint it compares must be on the page.")]
TokensFrom = Annotated[Path | None, typer.Option(
    "--tokens-from", metavar="FILE", help="Add the Token level section from a saved `simcse-analyze tokens --json` document "
                          "(with --tokens, the MODELs are analysed under its settings and added to it).")]


EXAMPLES = examples(
    "simcse-analyze report all-MiniLM-L6-v2 --data-dir ../shared/data --out out/minilm.html",
    "simcse-analyze report runs/unsup all-MiniLM-L6-v2@avg --out page.html --json page.json --tokens",
    "simcse-analyze report --from-json a.json --from-json b.json --out both.html   # no encoding",
    "simcse-analyze report runs/base runs/unsup --compare-from cmp.json --tokens-from tok.json --out page.html")


def register(app: typer.Typer) -> None:
    @app.command("report", rich_help_panel="Analysis", epilog=EXAMPLES,
                 short_help="The interactive HTML page: STS, geometry, layers, UMAP.")
    @with_progress("report")
    @with_encoder_options
    def report_cmd(
        models: OptModels = None,
        out: Out = None,
        json_out: JsonRecord = None,
        from_json: FromJson = None,
        umap: Umap = True,
        umap_sentences: UmapSentences = 3000,
        umap_colour: UmapColour = "corpus",
        seed: Seed = 0,
        splits: Splits = "train,dev,test",
        variant: Variant = "senteval",
        uniformity_pairs: UniformityPairs = None,
        no_layers: NoLayers = False,
        layer_sentences: LayerSentences = 2000,
        trajectory: Trajectory = None,
        title: Title = None,
        data_dir: DataDir = None,
        tokens: Tokens = False,
        token_sentences: TokenSentences = 2000,
        tokens_from: TokensFrom = None,
        compare_from: CompareFrom = None,
        *,
        encoder: EncoderOptions,
    ) -> None:
        """Interactive HTML report comparing checkpoints: STS table, align-uniform plane, spectra, anisotropy, UMAP."""
        from reports.collect import ReportSettings, merge_records, save_record
        from reports.result import (
            TokenRequest,
            analyze,
            check_comparison_models,
            load_analysis,
            model_identities,
            render_page,
        )
        from reports.umap_map import UMAPSettings

        from ..analysis import AnalysisSettings, parse_splits
        from ..comparison import load_comparison
        from ..errors import InputError
        from ..io_utils import write_output_text
        from ..sts_eval import STSResult
        from . import invocation
        from .sts import sts_table

        if out is None and json_out is None:
            raise InputError("nothing to write: give --out REPORT.html and/or --json RECORD.json")
        if not models and not from_json:
            raise InputError("nothing to report on: give MODEL names and/or --from-json RECORD.json")
        # ---- every input is read and checked before any encoding
        to_stderr = check_outputs(("--out", out), ("--json", json_out), reads=[
            *(("MODEL", m) for m in models or []), *(("--from-json", f) for f in from_json or []),
            *(("--trajectory", t) for t in trajectory or []), ("--compare-from", compare_from),
            ("--tokens-from", tokens_from), *data_inputs(data_dir)])
        records = [load_analysis(p).record for p in from_json or []]
        token_request = TokenRequest.prepare([(m, None) for m in models or []] if tokens else [],
                                             token_sentences or None, seed, tokens_from, data_dir)
        compare_doc = (load_comparison(compare_from).to_dict() if compare_from is not None
                       else next((r["comparison"] for r in records if r.get("comparison")), None))
        settings = None
        if models:
            settings = ReportSettings(
                analysis=AnalysisSettings(splits=parse_splits(splits), variant=variant,
                                          uniformity_pairs=uniformity_pairs, seed=seed, layers=not no_layers),
                umap=UMAPSettings(n_sentences=umap_sentences, seed=seed, colour=umap_colour) if umap else None,
                layer_sentences=layer_sentences or None)
        if compare_doc is not None:  # a comparison about checkpoints the page does not show: refused now
            shown = [*model_identities(models or [], encoder.pooler, trust_remote_code=encoder.trust_remote_code),
                     *(m for r in records for m in r["models"])]
            check_comparison_models(compare_doc, shown, f"--compare-from {compare_from}" if compare_from
                                    else "the comparison in the --from-json record")
        # ---- the work
        if models:
            argv = sys.argv[1:] if sys.argv[1:2] == ["report"] else ["report", *models]  # without main(): approximate
            command = invocation() or shlex.join(["simcse-analyze", *map(str, argv)])
            records.insert(0, analyze(
                models, settings=settings, data_dir=data_dir, batch_size=encoder.batch_size,
                trajectories=trajectory or [], encoder_kwargs=encoder.load_kwargs,
                command=command, title=title).record)
        record = merge_records(records, title=title)
        token_doc = (token_request.run(encoder_kwargs=encoder.load_kwargs, batch_size=encoder.batch_size)
                     if token_request is not None else next((r["tokens"] for r in records if r.get("tokens")), None))
        if token_doc is not None:
            record["tokens"] = token_doc
        if compare_doc is not None:
            record["comparison"] = compare_doc
        if not umap:
            record = {**record, "umap": None, "models": [{**m, "umap": None} for m in record["models"]]}
        typer.echo(sts_table([STSResult.from_dict({**m["sts_test"], "model": m["model"]}) for m in record["models"]]),
                   err=to_stderr)
        if json_out is not None:
            save_record(record, json_out)  # through io_utils.write_output_text
            announce(json_out, to_stderr=to_stderr)
        if out is not None:
            write_output_text(out, render_page(record))
            announce(out, to_stderr=to_stderr)
