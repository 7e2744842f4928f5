"""``simcse-analyze abtt`` and ``simcse-analyze flow``: post-processing baselines as checkpoints (thin layers
over ``trainers.abtt.abtt_checkpoint`` and ``trainers.flow.flow_checkpoint``)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from .options import EncoderOptions, JsonOut, with_encoder_options
from .whiten import Corpus, MaxSentences, Overwrite, Seed

Model = Annotated[str, typer.Argument(help="Base checkpoint: Hugging Face id, alias or directory.",
                                      show_default=False)]
Out = Annotated[Path, typer.Option("--out", help="Directory of the post-processed checkpoint (new or empty).",
                                   show_default=False)]
Directions = Annotated[int | None, typer.Option(
    "--n-directions", min=1, help="Principal directions D to remove (default: round(d/100), at least 1).",
    show_default=False)]


def _write_json(json_out: Path | None, result: Any) -> None:
    if json_out is not None:
        from ..io_utils import atomic_write_text

        atomic_write_text(Path(json_out), json.dumps(result.to_dict(), indent=2) + "\n")
        typer.echo(f"wrote {json_out}")


def register(app: typer.Typer) -> None:
    @app.command("abtt")
    @with_encoder_options
    def abtt_cmd(model: Model, corpus: Corpus, out: Out, n_directions: Directions = None,
                 max_sentences: MaxSentences = None, seed: Seed = 0, overwrite: Overwrite = False,
                 json_out: JsonOut = None, *, encoder: EncoderOptions) -> None:
        """All-but-the-top (Mu & Viswanath 2018): subtract the corpus mean and project out its top D principal
        directions; writes a checkpoint that applies it when encoding (usable by every command)."""
        from trainers.abtt import abtt_checkpoint

        r = abtt_checkpoint(model, corpus, out, n_directions=n_directions, max_sentences=max_sentences, seed=seed,
                            batch_size=encoder.batch_size, overwrite=overwrite, encoder_kwargs=encoder.load_kwargs,
                            log=lambda msg: typer.echo(msg, err=True))
        shares = ", ".join(f"{100 * v:.1f}%" for v in r.details["removed_variance_share"])
        typer.echo(f"all-but-the-top on {r.base_model} ({r.pooler}), {r.n_sentences} sentences: removed the mean "
                   f"and {r.details['n_directions']} of {r.dim} directions (variance shares {shares})")
        typer.echo(f"wrote {r.output_dir}")
        _write_json(json_out, r)
