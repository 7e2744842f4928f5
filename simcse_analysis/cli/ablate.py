"""``simcse-analyze ablate dropout|grid``: sweeps of unsupervised SimCSE runs, their table and report
(thin layer over ``trainers.sweeps``)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from ..io_utils import is_stdout
from .help_format import examples
from .options import JsonOut, check_outputs, with_progress, write_output
from .train import DEFAULTS, with_training_options

Model = Annotated[str | None, typer.Option(
    "--model", metavar="MODEL",
    help="Starting checkpoint of every run (required unless --collect).", show_default=False)]
TrainFiles = Annotated[list[Path] | None, typer.Option(
    "--train-file", metavar="FILE",
    help="Training sentences, one per line (repeatable; concatenated). Required unless --collect.",
    show_default=False)]
Out = Annotated[Path, typer.Option(
    "--out", metavar="DIR",
    help="Sweep directory: one run directory per (value, seed), sweep.json, summary.json, report.html.",
    show_default=False)]
Rates = Annotated[str | None, typer.Option(
    "--rates", help="Comma-separated dropout rates; 'fixed' = both views share one 0.1 mask ('fixed:RATE' for "
                    "another rate). The paper's Table 3: 0,0.01,0.05,0.1,0.15,0.2,0.5,fixed. Required unless "
                    "--collect (where it selects runs).", show_default=False)]
Grid = Annotated[list[str] | None, typer.Option(
    "--grid", help="KEY=V1,V2,… (repeatable; the runs are the cartesian product). Keys: dropout, temperature, "
                   "pooler, batch_size, learning_rate (lr), max_length, positive, two_encoders.",
    show_default=False)]
Seeds = Annotated[str | None, typer.Option(
    "--seeds", help="Comma-separated seeds; each value runs once per seed and the table shows mean ± std "
                    "(default: 42; with --collect: every seed found).", show_default=False)]
Positive = Annotated[str, typer.Option("--positive", help="Positive of every run: dropout (SimCSE), crop:K, "
                                                          "word_deletion:K, delete_one_word, synonym[:K], "
                                                          "mlm:K@MODEL or next[:K].")]
Dropout = Annotated[str | None, typer.Option(
    "--dropout", help="Dropout of every grid run (rate, 'fixed' or 'fixed:RATE'; default: the checkpoint's own) "
                      "unless the grid sweeps it.", show_default=False)]
DryRun = Annotated[bool, typer.Option("--dry-run", help="Print one `simcse-analyze train unsup …` command per run "
                                                        "(for a cluster scheduler) and train nothing.")]
Collect = Annotated[bool, typer.Option("--collect", help="Train nothing: read the finished run directories under "
                                                         "--out, print the table and write the report.")]
Report = Annotated[Path | None, typer.Option(
    "--report", metavar="FILE", help="HTML report path (default: OUT/report.html).",
    show_default=False)]


def _base_config(model: str | None, train_files: list[Path] | None, out: Path, collect: bool, **kw: Any):
    from trainers.config import TrainConfig, parse_dropout

    from ..errors import InputError

    if not collect:
        if not model:
            raise InputError("--model is required to run a sweep (or pass --collect to read finished runs)")
        if not train_files:
            raise InputError("--train-file is required to run a sweep (or pass --collect to read finished runs)")
    rate, fixed = parse_dropout(kw.pop("dropout", None))
    data_dir = kw.pop("data_dir")
    return TrainConfig(objective="unsup", model=model or "", train_files=[str(f) for f in train_files or []],
                       output_dir=str(out), dropout=rate, fixed_dropout_mask=fixed,
                       data_dir=str(data_dir) if data_dir is not None else None, **kw)


def _execute(kind: str, values_spec: Any, seeds: str | None, out: Path, *, dry_run: bool, collect: bool,
             show_progress: bool, report: Path | None, json_out: Path | None, base_kw: dict[str, Any]) -> None:
    from trainers import sweeps

    from ..errors import InputError

    if dry_run and collect:
        raise InputError("--dry-run and --collect exclude each other: plan runs, or read finished ones")
    to_stderr = check_outputs(("--json", json_out), ("--report", report), reads=[("--model", base_kw.get("model")), *(
        ("--train-file", f) for f in base_kw.get("train_files") or [])])
    seed_list = sweeps.parse_seeds(seeds) if seeds is not None else None
    base = _base_config(out=out, collect=collect, **base_kw)
    # the swept values: required to run; with --collect an optional selection of the runs found
    values: dict[str, list[str]] | None = None
    if kind == "dropout":
        if values_spec is not None:
            values = {"dropout": sweeps.parse_rates(values_spec)}
        elif not collect:
            raise InputError(f"--rates is required, e.g. --rates {sweeps.PAPER_RATES}")
    elif values_spec or not collect:
        values = sweeps.parse_grid(values_spec or [])

    if collect:
        results, skipped = sweeps.collect_runs([out])
        manifest = sweeps.load_manifest(out) or {}
        keys = ["dropout"] if kind == "dropout" else list(values or manifest.get("keys", []))
        summary = sweeps.summarize(results, kind=kind, keys=keys, values=values, seeds=seed_list, skipped=skipped)
        if not summary.points:
            raise InputError(f"--collect: none of the finished runs under {out} matches the requested values and "
                             "seeds; drop --rates/--grid/--seeds to see them all")
    else:
        plan = sweeps.plan_sweep(kind, base, values, seed_list or [base.seed], out)
        if dry_run:
            for command in plan.commands():
                typer.echo(command)
            return
        from .. import progress

        results = sweeps.run_sweep(plan, progress=show_progress, log=progress.say)
        summary = sweeps.summarize(results, kind=kind, keys=plan.keys, values=plan.values, seeds=plan.seeds)
    typer.echo(sweeps.format_summary(summary), err=to_stderr)
    for note in summary.skipped:
        typer.echo(f"skipped {note}", err=True)

    from reports.sweep_page import sweep_provenance, write_sweep_page

    from . import invocation

    summary.provenance.append(sweep_provenance(summary.common_settings, command=invocation()))
    doc = summary.to_dict()
    sweeps.write_summary(summary, out / sweeps.SUMMARY_FILE)
    page = write_sweep_page(doc, report or out / sweeps.REPORT_FILE)
    typer.echo(f"wrote {out / sweeps.SUMMARY_FILE}" + ("" if is_stdout(page) else f"\nwrote {page}"), err=to_stderr)
    if json_out is not None:
        import json

        write_output(json_out, json.dumps(doc, indent=2) + "\n", to_stderr=to_stderr)


def register(app: typer.Typer) -> None:
    ablate_app = typer.Typer(help="Ablation sweeps of unsupervised SimCSE: dropout rates (Table 3, Fig. 2) and "
                                  "grids over temperature, pooler, batch size, learning rate, positive, two encoders.",
                             no_args_is_help=True,
                             epilog=examples("simcse-analyze ablate dropout --help", "simcse-analyze ablate grid --help"))
    app.add_typer(ablate_app, name="ablate", rich_help_panel="Training",
                  short_help="Dropout sweeps (Table 3, Fig. 2) and grids of SimCSE runs.")

    @ablate_app.command("dropout", epilog=examples(
        "simcse-analyze ablate dropout --model M --train-file wiki.txt --out runs/drop --rates 0,0.05,0.1,0.2,fixed "
        "--seeds 1,2,3",
        "simcse-analyze ablate dropout --model M --train-file wiki.txt --out runs/dropout --rates 0,0.1 --dry-run",
        "simcse-analyze ablate dropout --out runs/dropout --collect   # table and page of the finished runs"))
    @with_progress("ablate dropout")
    @with_training_options
    def dropout_cmd(out: Out, model: Model = None, train_files: TrainFiles = None, rates: Rates = None,
                    seeds: Seeds = None, dry_run: DryRun = False, collect: Collect = False, report: Report = None,
                    json_out: JsonOut = None, positive: Positive = DEFAULTS["positive"], *,
                    training: dict[str, Any], show_progress: bool) -> None:
        """One unsupervised run per dropout rate (× seed): STS-B dev, ℓ_align, ℓ_uniform per rate and every run's
        trajectory in the align–uniform plane."""
        _execute("dropout", rates, seeds, out, dry_run=dry_run, collect=collect, show_progress=show_progress,
                 report=report,
                 json_out=json_out, base_kw={"model": model, "train_files": train_files, "positive": positive,
                                             **training})

    @ablate_app.command("grid", epilog=examples(
        "simcse-analyze ablate grid --model M --train-file wiki.txt --out runs/t --grid temperature=0.01,0.05,0.1",
        "simcse-analyze ablate grid --model M --train-file F --out t2 --grid positive=next,dropout "
        "--grid two_encoders=false,true",
        "simcse-analyze ablate grid --out t2 --collect --grid two_encoders=false"))
    @with_progress("ablate grid")
    @with_training_options
    def grid_cmd(out: Out, model: Model = None, train_files: TrainFiles = None, grid: Grid = None,
                 seeds: Seeds = None, dry_run: DryRun = False, collect: Collect = False, report: Report = None,
                 json_out: JsonOut = None, dropout: Dropout = None,
                 positive: Positive = DEFAULTS["positive"], *, training: dict[str, Any], show_progress: bool) -> None:
        """One unsupervised run per grid point (× seed), e.g. --grid temperature=0.05,0.1 --grid pooler=cls,avg."""
        _execute("grid", grid if grid or not collect else None, seeds, out, dry_run=dry_run, collect=collect,
                 show_progress=show_progress, report=report, json_out=json_out, base_kw={
                     "model": model, "train_files": train_files, "dropout": dropout, "positive": positive,
                     **training})
