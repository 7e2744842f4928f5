"""``simcse-analyze standardize``: z-score every embedding dimension, as a checkpoint (thin layer over
``trainers.standardize.standardize_checkpoint``)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from .help_format import examples
from .options import EncoderOptions, JsonOut, check_outputs, with_encoder_options, with_progress, write_record
from .whiten import MaxSentences, Overwrite, Seed

Model = Annotated[str, typer.Argument(metavar="MODEL", help="Checkpoint to standardise: Hugging Face id, alias or directory.",
                                      show_default=False)]
Corpus = Annotated[list[Path], typer.Option(
    "--corpus", metavar="FILE", help="Sentences to fit the mean and standard deviation on, one per line (repeatable).",
    show_default=False)]
Out = Annotated[Path, typer.Option("--out", metavar="DIR", help="Directory of the standardised checkpoint (new or empty).",
                                   show_default=False)]


def register(app: typer.Typer) -> None:
    @app.command("standardize", rich_help_panel="Baselines",
                 short_help="z-scored dimensions (Timkey & van Schijndel 2021).", epilog=examples(
                     "simcse-analyze standardize all-MiniLM-L6-v2 --corpus ../shared/data/unsup/"
                     "wiki1m_for_simcse.head.txt --out runs/minilm-z",
                     "simcse-analyze tokens runs/minilm-z --out z-tokens.html   # use it like any checkpoint"))
    @with_progress("standardize")
    @with_encoder_options
    def standardize_cmd(
        model: Model,
        corpus: Corpus,
        out: Out,
        max_sentences: MaxSentences = None,
        seed: Seed = 0,
        overwrite: Overwrite = False,
        json_out: JsonOut = None,
        *,
        encoder: EncoderOptions,
    ) -> None:
        """Standardise the sentence embeddings (Timkey & van Schijndel 2021): fit z = (x − μ)/σ per dimension on
        corpus embeddings and write a checkpoint that applies it when encoding (usable by eval, report, …)."""
        from trainers.standardize import standardize_checkpoint

        to_stderr = check_outputs(("--json", json_out), reads=[("MODEL", model), *(("--corpus", c) for c in corpus)],
                                  dirs=[("--out", out)])
        result = standardize_checkpoint(model, corpus, out, max_sentences=max_sentences, seed=seed,
                                        batch_size=encoder.batch_size, overwrite=overwrite,
                                        encoder_kwargs=encoder.load_kwargs, log=lambda msg: typer.echo(msg, err=True))
        typer.echo(f"standardised {result.base_model} ({result.pooler}) on {result.n_sentences} sentences: "
                   f"{result.dim} dimensions, σ from {result.std_min:.4g} to {result.std_max:.4g}"
                   + (f"; {len(result.dead_dims)} dead on the corpus (σ ≤ 1e-4 of the largest: centred, not scaled): "
                      f"{', '.join(map(str, result.dead_dims))}" if result.dead_dims else ""), err=to_stderr)
        typer.echo(f"wrote {result.output_dir}"
                   + ("" if result.sentence_transformers else " (no sentence-transformers modules for this pooler)"),
                   err=to_stderr)
        write_record(json_out, result, to_stderr=to_stderr)
