"""``simcse-analyze whiten``: the BERT-whitening baseline as a checkpoint (thin layer over
``trainers.whitening.whiten_checkpoint``)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from .help_format import examples
from .options import (
    EncoderOptions,
    JsonOut,
    check_outputs,
    with_encoder_options,
    with_progress,
    write_record,
)

Model = Annotated[str, typer.Argument(
    metavar="MODEL", help="Checkpoint to whiten: Hugging Face id, alias or directory.",
    show_default=False)]
Corpus = Annotated[list[Path], typer.Option(
    "--corpus", metavar="FILE",
    help="Sentences to fit the whitening on, one per line (repeatable; files are concatenated).",
    show_default=False)]
Out = Annotated[Path, typer.Option(
    "--out", metavar="DIR", help="Directory of the whitened checkpoint (new or empty).",
    show_default=False)]
Components = Annotated[int | None, typer.Option(
    "--n-components", min=1, help="Keep the first K whitened components. Default: every direction the corpus "
                                  "embeddings span, i.e. their numerical rank (variance above 1e-8 of the largest), "
                                  "which is below the dimension where the encoder has constant or dependent "
                                  "dimensions: 381 of 384 for all-MiniLM-L6-v2 mean-pooled. Su et al. also use "
                                  "256.", show_default=False)]
MaxSentences = Annotated[int | None, typer.Option(
    "--max-sentences", min=1, help="Fit on a uniform random sample of this many corpus sentences.",
    show_default=False)]
Seed = Annotated[int, typer.Option("--seed", help="Seed of the --max-sentences sample.")]
Overwrite = Annotated[bool, typer.Option("--overwrite", help="Replace a non-empty --out.")]


def register(app: typer.Typer) -> None:
    @app.command("whiten", rich_help_panel="Baselines",
                 short_help="BERT-whitening (Su et al. 2021) as a checkpoint.", epilog=examples(
                     "simcse-analyze whiten all-MiniLM-L6-v2 --corpus wiki1m_for_simcse.head.txt "
                     "--out runs/minilm-whitened",
                     "simcse-analyze whiten bert-base-uncased --pooler avg_first_last --corpus wiki.txt --out runs/w256 "
                     "--n-components 256",
                     "simcse-analyze eval runs/minilm-whitened   # use it like any checkpoint"))
    @with_progress("whiten")
    @with_encoder_options
    def whiten_cmd(
        model: Model,
        corpus: Corpus,
        out: Out,
        n_components: Components = None,
        max_sentences: MaxSentences = None,
        seed: Seed = 0,
        overwrite: Overwrite = False,
        json_out: JsonOut = None,
        *,
        encoder: EncoderOptions,
    ) -> None:
        """BERT-whitening (Su et al. 2021): fit x ↦ (x − μ)·U·diag(1/√s)[:, :K] on corpus embeddings and write a
        checkpoint that applies it when encoding (usable by eval, align-uniform, anisotropy, …)."""
        from trainers.whitening import whiten_checkpoint

        to_stderr = check_outputs(("--json", json_out), reads=[("MODEL", model), *(("--corpus", c) for c in corpus)],
                                  dirs=[("--out", out)])
        result = whiten_checkpoint(model, corpus, out, n_components=n_components, max_sentences=max_sentences,
                                   seed=seed, batch_size=encoder.batch_size, overwrite=overwrite,
                                   encoder_kwargs=encoder.load_kwargs,
                                   log=lambda msg: typer.echo(msg, err=True))
        rule = (f" (the {result.rank} directions the corpus embeddings span; --n-components K to choose)"
                if n_components is None else "")
        typer.echo(f"whitened {result.base_model} ({result.pooler}) on {result.n_sentences} sentences: "
                   f"{result.dim} → {result.n_components} dimensions{rule}, "
                   f"{100 * result.explained_variance:.1f}% of the variance kept", err=to_stderr)
        typer.echo(f"wrote {result.output_dir}"
                   + ("" if result.sentence_transformers else " (no sentence-transformers modules for this pooler)"),
                   err=to_stderr)
        write_record(json_out, result, to_stderr=to_stderr)
