"""``simcse-analyze abtt`` and ``simcse-analyze flow``: post-processing baselines as checkpoints (thin layers
over ``trainers.abtt.abtt_checkpoint`` and ``trainers.flow.flow_checkpoint``)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from .help_format import examples
from .options import (
    DataDir,
    EncoderOptions,
    JsonOut,
    check_outputs,
    with_encoder_options,
    with_progress,
    write_record,
)
from .whiten import MaxSentences, Overwrite, Seed

Model = Annotated[str, typer.Argument(metavar="MODEL", help="Base checkpoint: Hugging Face id, alias or directory.",
                                      show_default=False)]
Out = Annotated[Path, typer.Option("--out", metavar="DIR",
                                   help="Directory of the post-processed checkpoint (new or empty).",
                                   show_default=False)]
AbttCorpus = Annotated[list[Path], typer.Option(
    "--corpus", metavar="FILE",
    help="Sentences to fit the mean and the top principal directions on, one per line (repeatable; files are "
         "concatenated).", show_default=False)]
Directions = Annotated[int | None, typer.Option(
    "--n-directions", min=1, help="Principal directions D to remove (default: round(d/100), at least 1).",
    show_default=False)]
Projection = Annotated[str, typer.Option(
    "--projection",
    help="centred | raw: remove the top directions from the centred vector x − μ (the default: an orthogonal "
         "projection) or from the raw x, as Mu & Viswanath's Algorithm 1 is written (then a constant −μ·U·Uᵀ "
         "remains). Recorded in the checkpoint's metadata.")]
AbttCorpus = Annotated[list[Path], typer.Option(
    "--corpus", metavar="FILE",
    help="Sentences to fit the mean and the principal directions on, one per line (repeatable; files are "
         "concatenated).", show_default=False)]


def register(app: typer.Typer) -> None:
    @app.command("abtt", rich_help_panel="Baselines",
                 short_help="All-but-the-top (Mu & Viswanath 2018) as a checkpoint.", epilog=examples(
                     "simcse-analyze abtt all-MiniLM-L6-v2 --corpus ../shared/data/unsup/wiki1m_for_simcse.head.txt "
                     "--out runs/minilm-abtt",
                     "simcse-analyze abtt bert-base-uncased --pooler avg --corpus wiki.txt --out runs/abtt7 "
                     "--n-directions 7"))
    @with_progress("abtt")
    @with_encoder_options
    def abtt_cmd(model: Model, corpus: AbttCorpus, out: Out, n_directions: Directions = None,
                 projection: Projection = "centred", max_sentences: MaxSentences = None, seed: Seed = 0,
                 overwrite: Overwrite = False, json_out: JsonOut = None, *, encoder: EncoderOptions) -> None:
        """All-but-the-top (Mu & Viswanath 2018): subtract the corpus mean and project out its top D principal
        directions (from the centred vector by default; --projection raw as the paper's Algorithm 1 is written);
        writes a checkpoint that applies it when encoding (usable by every command)."""
        from trainers.abtt import abtt_checkpoint

        to_stderr = check_outputs(("--json", json_out), reads=[("MODEL", model), *(("--corpus", c) for c in corpus)],
                                  dirs=[("--out", out)])  # fail before any encoding
        r = abtt_checkpoint(model, corpus, out, n_directions=n_directions, projection=projection,
                            max_sentences=max_sentences, seed=seed, batch_size=encoder.batch_size,
                            overwrite=overwrite, encoder_kwargs=encoder.load_kwargs,
                            log=lambda msg: typer.echo(msg, err=True))
        shares = ", ".join(f"{100 * v:.1f}%" for v in r.details["removed_variance_share"])
        typer.echo(f"all-but-the-top on {r.base_model} ({r.pooler}), {r.n_sentences} sentences: removed the mean "
                   f"and {r.details['n_directions']} of {r.dim} directions (variance shares {shares}), projected "
                   f"from the {'centred' if projection == 'centred' else 'raw'} vector", err=to_stderr)
        typer.echo(f"wrote {r.output_dir}", err=to_stderr)
        write_record(json_out, r, to_stderr=to_stderr)

    from trainers.flow_settings import FlowSettings

    fd = FlowSettings()

    @app.command("flow", rich_help_panel="Baselines",
                 short_help="BERT-flow (Li et al. 2020) as a checkpoint.", epilog=examples(
                     "simcse-analyze flow all-MiniLM-L6-v2 --corpus ../shared/data/unsup/wiki1m_for_simcse.head.txt "
                     "--out runs/minilm-flow",
                     "simcse-analyze flow bert-base-uncased --pooler avg_emb_last --target --out runs/flow-target   "
                     "# the paper's variant"))
    @with_progress("flow")
    @with_encoder_options
    def flow_cmd(model: Model, out: Out, corpus: Annotated[list[Path] | None, typer.Option(
                     "--corpus", metavar="FILE", help="Sentences to fit the flow on, one per line (repeatable; default use: the "
                                      "unsupervised training corpus).", show_default=False)] = None,
                 target: Annotated[bool, typer.Option(
                     "--target", help="The paper's 'target' variant: fit on the 7 STS test sets' sentences (sees "
                                      "the evaluation data; labelled so in the checkpoint).")] = False,
                 blocks: Annotated[int, typer.Option("--blocks", min=1, help="Flow blocks (ActNorm, invertible "
                                                     "linear, affine coupling).")] = fd.blocks,
                 hidden: Annotated[int | None, typer.Option("--hidden", min=1, help="Coupling MLP width (default: "
                                                            "the number of directions the flow models: the "
                                                            "embedding dimension less its null directions).",
                                                            show_default=False)] = None,
                 epochs: Annotated[float, typer.Option("--epochs", help="Passes over the corpus.")] = fd.epochs,
                 lr: Annotated[float, typer.Option("--lr", help="Adam learning rate.")] = fd.learning_rate,
                 flow_batch_size: Annotated[int, typer.Option("--flow-batch-size", min=1, help="Embeddings per "
                                                              "optimiser step.")] = fd.batch_size,
                 max_sentences: MaxSentences = None, seed: Seed = 0, data_dir: DataDir = None,
                 overwrite: Overwrite = False, json_out: JsonOut = None, *, encoder: EncoderOptions,
                 show_progress: bool) -> None:
        """BERT-flow (Li et al. 2020): fit a Glow-style normalising flow (normflows) by maximum likelihood on the
        frozen embeddings of a corpus, after projecting out the directions the corpus does not span (e.g.
        constant dimensions); writes a checkpoint whose encodings are the flow's latent, and reports how far
        that latent is from a standard normal."""
        from trainers.flow import flow_checkpoint

        if not corpus and not target:
            from ..errors import InputError

            raise InputError("no corpus given: pass --corpus FILE (one sentence per line), or --target to fit on "
                             "the STS test sentences")
        to_stderr = check_outputs(("--json", json_out), reads=[("MODEL", model), *(  # fail before any encoding
            ("--corpus", c) for c in corpus or [])], dirs=[("--out", out)])
        settings = FlowSettings(blocks=blocks, hidden=hidden, epochs=epochs, learning_rate=lr,
                                batch_size=flow_batch_size, seed=seed)
        r = flow_checkpoint(model, corpus or [], out, settings=settings, target=target, data_dir=data_dir,
                            max_sentences=max_sentences, seed=seed, batch_size=encoder.batch_size,
                            overwrite=overwrite, encoder_kwargs=encoder.load_kwargs, progress=show_progress,
                            log=lambda msg: typer.echo(msg, err=True))
        from ..metrics.normality import NormalityFit

        d = r.details
        if d["null_dims"]:
            const = d["constant_dims"]
            which = f" (constant dimension(s) {', '.join(map(str, const))})" if len(const) == d["null_dims"] else ""
            typer.echo(f"projected out {d['null_dims']} of {r.dim} directions the corpus does not span{which}; "
                       f"the flow models the other {d['nll_dims']}", err=to_stderr)
        typer.echo(f"BERT-flow ({d['variant']}) on {r.base_model} ({r.pooler}), {r.n_sentences} sentences: "
                   f"{d['steps']} steps in {d['fit_time_s']:.1f} s, negative log-likelihood "
                   f"{d['nll_per_dim_start']:.3f} → {d['nll_per_dim_end']:.3f} nats/dim", err=to_stderr)
        if d.get("latent"):
            typer.echo(f"latent on the fitting corpus: {NormalityFit(**d['latent']).describe()}", err=to_stderr)
        typer.echo(f"wrote {r.output_dir}", err=to_stderr)
        write_record(json_out, r, to_stderr=to_stderr)
