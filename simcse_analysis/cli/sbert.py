"""``simcse-analyze train sbert``: SBERT's NLI classification objective (thin layer over ``trainers.sbert``)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from .help_format import examples
from .options import DataDir, Device, JsonOut, check_outputs, with_progress, write_record
from .train import Model

TrainFiles = Annotated[list[Path], typer.Option(
    "--train-file", metavar="PATH", help="Labelled NLI pairs (repeatable): a SentEval SNLI directory (s1/s2/labels.SPLIT) or a "
                         "CSV/TSV with premise, hypothesis and label columns.", show_default=False)]
Out = Annotated[Path, typer.Option("--out", metavar="DIR", help="Checkpoint directory to write (new or empty; pooler avg).",
                                   show_default=False)]


def register(app: typer.Typer) -> None:
    """Add ``sbert`` to the ``train`` group (registered before, by :mod:`simcse_analysis.cli.train`)."""
    from trainers.config import SBERTConfig

    train_app = next(g.typer_instance for g in app.registered_groups if g.name == "train")
    d = SBERTConfig("", [], "")

    @train_app.command("sbert", epilog=examples(
        "simcse-analyze train sbert --model bert-base-uncased --train-file ../shared/data/nli/snli-senteval "
        "--out runs/sbert",
        "simcse-analyze train sbert --model M --train-file snli.tsv --train-file mnli.tsv --out runs/sbert "
        "--max-steps 2000"))
    @with_progress("train sbert")
    def sbert(model: Model, train_files: TrainFiles, out: Out,
              batch_size: Annotated[int, typer.Option("--batch-size", min=1, help="Pairs per step.")] = d.batch_size,
              lr: Annotated[float, typer.Option("--lr", help="Peak learning rate (AdamW).")] = d.learning_rate,
              epochs: Annotated[float, typer.Option("--epochs", help="Epochs.")] = d.epochs,
              max_steps: Annotated[int | None, typer.Option("--max-steps", min=1, help="Stop after this many steps "
                                                            "(overrides --epochs).")] = d.max_steps,
              warmup_ratio: Annotated[float, typer.Option("--warmup-ratio", help="Linear warm-up share of the "
                                                          "steps.")] = d.warmup_ratio,
              max_length: Annotated[int, typer.Option("--max-length", min=1, help="Truncate training texts to this "
                                                      "many tokens.")] = d.max_length,
              seed: Annotated[int, typer.Option("--seed", help="Seed of the classifier, data order and dropout.")]
              = d.seed,
              device: Device = None, data_dir: DataDir = None,
              overwrite: Annotated[bool, typer.Option("--overwrite", help="Replace a non-empty --out.")] = False,
              json_out: JsonOut = None, *, show_progress: bool) -> None:
        """SBERT-NLI (Reimers & Gurevych 2019): softmax over (u, v, |u − v|), 3 labels, mean pooling; the encoder
        is saved with pooler avg and its STS-B / SICK-R dev scores before and after."""
        from trainers.sbert import SBERTConfig, train_sbert

        to_stderr = check_outputs(("--json", json_out), reads=[("--model", model), *(  # fail before any training
            ("--train-file", f) for f in train_files)], dirs=[("--out", out)])
        cfg = SBERTConfig(model=model, train_files=[str(f) for f in train_files], output_dir=str(out),
                          batch_size=batch_size, learning_rate=lr, epochs=epochs, max_steps=max_steps,
                          warmup_ratio=warmup_ratio, max_length=max_length, seed=seed, device=device,
                          data_dir=str(data_dir) if data_dir is not None else None)
        from .. import progress

        r = train_sbert(cfg, overwrite=overwrite, progress=show_progress, log=progress.say)
        dev = (lambda m: "n/a" if m is None else f"STS-B dev {m['stsb_spearman']:.2f}, SICK-R dev "
               f"{m['sickr_spearman']:.2f}")
        typer.echo(f"{r.steps} steps on {r.rows} pairs in {r.train_time_s / 60:.1f} min, train accuracy "
                   f"{100 * r.train_accuracy:.1f}%\nstart: {dev(r.dev_start)}\nend:   {dev(r.dev_end)}", err=to_stderr)
        typer.echo(f"wrote {r.output_dir}", err=to_stderr)
        write_record(json_out, r, to_stderr=to_stderr)
