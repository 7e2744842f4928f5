"""``simcse-analyze encode`` (sentences → a sharded embedding store) and ``simcse-analyze uniformity``
(uniformity of every row of a store, exact within a budget of pairs, else sampled with its standard error).

``torchrun --nproc-per-node K -m simcse_analysis encode …`` (or ``accelerate launch``) splits the shards
over K processes; the store is the one a single process writes.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from .help_format import examples
from .options import EncoderOptions, JsonOut, check_outputs, with_encoder_options, with_progress, write_output

Model = Annotated[str, typer.Argument(metavar="MODEL", help="Checkpoint: Hugging Face id, alias or directory.", show_default=False)]
SentenceFiles = Annotated[list[Path], typer.Option(
    "--sentences", metavar="FILE", help="UTF-8 text file(s), one sentence per line; row i of the store is line i (files in order).",
    show_default=False)]
StoreOut = Annotated[Path, typer.Option("--out", metavar="DIR", help="Store directory (created; an unfinished one is resumed).",
                                        show_default=False)]
Fp16 = Annotated[bool, typer.Option("--fp16", help="Store the vectors as float16 (half the disk; recorded).")]
ShardRows = Annotated[int, typer.Option("--shard-rows", min=1, help="Sentences per shard file.")]
StoreArg = Annotated[Path, typer.Argument(metavar="PATH", help="An embedding store directory or an (N, d) .npy file.",
                                          show_default=False)]
Temperature = Annotated[float, typer.Option("--t", help="Uniformity temperature t.")]
Budget = Annotated[float, typer.Option(
    "--budget", min=2, help="Kernel evaluations allowed: exact over all N(N-1)/2 pairs if they fit, else this "
                            "many random pairs with a standard error (1e10 ~ exact up to N = 141k).")]
Seed = Annotated[int, typer.Option("--seed", help="Seed of the sampled pairs.")]
Device = Annotated[str | None, typer.Option("--device", help="cpu, cuda, cuda:1, mps (default: cpu).")]
NoVerify = Annotated[bool, typer.Option(
    "--no-verify", help="Skip checking every shard against its .sha256 (one full read of the store; rows are "
                        "still checked finite).")]


def register(app: typer.Typer) -> None:
    @app.command("encode", rich_help_panel="Data",
                 short_help="Encode sentence files into a sharded embedding store.", epilog=examples(
                     "simcse-analyze encode all-MiniLM-L6-v2 --sentences wiki1m.txt --out runs/wiki.store",
                     "torchrun --nproc-per-node 4 -m simcse_analysis encode M --sentences wiki1m.txt "
                     "--out runs/wiki.store",
                     "simcse-analyze spectrum --embeddings runs/wiki.store   # any analysis reads a store"))
    @with_progress("encode")
    @with_encoder_options
    def encode_cmd(model: Model, sentences: SentenceFiles, out: StoreOut, fp16: Fp16 = False,
                   shard_rows: ShardRows = 16_384, *, encoder: EncoderOptions, show_progress: bool) -> None:
        """Encode sentence files into a sharded embedding store (resumable; multi-process under torchrun)."""
        from ..store import dist_info, encode_corpus

        summary = encode_corpus(model, sentences, out, precision="float16" if fp16 else "float32",
                                shard_rows=shard_rows, batch_size=encoder.batch_size,
                                encoder_kwargs=encoder.load_kwargs, progress=show_progress)
        if dist_info()[0] == 0:
            typer.echo(f"wrote {out}: {summary.n:,} sentences in {summary.n_shards} shards "
                       f"({summary.encoded_shards} encoded now, {summary.skipped_shards} already complete"
                       + (f", {summary.world_size} processes" if summary.world_size > 1 else "") + ")")

    @app.command("uniformity", rich_help_panel="Analysis",
                 short_help="Uniformity of a whole embedding store (exact or ± SE).", epilog=examples(
                     "simcse-analyze uniformity runs/wiki.store",
                     "simcse-analyze uniformity runs/wiki.store --budget 1e8 --seed 1 --device cuda --json u.json"))
    @with_progress("uniformity")
    def uniformity_cmd(store: StoreArg, t: Temperature = 2.0, budget: Budget = 1e10, seed: Seed = 0,
                       device: Device = None, no_verify: NoVerify = False, json_out: JsonOut = None) -> None:
        """Uniformity of every row of an embedding store (streamed): exact within --budget, else sampled ± SE."""
        from ..store import corpus_uniformity

        to_stderr = check_outputs(("--json", json_out), reads=[("PATH", store)])
        r = corpus_uniformity(store, t=t, budget_pairs=int(budget), seed=seed, device=device, verify=not no_verify)
        se = "" if r["stderr"] is None else f" ± {r['stderr']:.6f} (sampled, seed {r['seed']})"
        typer.echo(f"uniformity (t = {r['t']:g}) of {r['n_points']:,} vectors: {r['uniformity']:.6f}{se}; "
                   f"{r['method']}, {r['pairs_evaluated']:,} pairs evaluated on {r['device']}", err=to_stderr)
        if json_out is not None:
            write_output(json_out, json.dumps(r, indent=1) + "\n", to_stderr=to_stderr)
