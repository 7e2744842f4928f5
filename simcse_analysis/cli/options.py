"""Options shared by several commands, so each keyword means the same everywhere."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

Models = Annotated[list[str], typer.Argument(help="Checkpoints: Hugging Face ids, aliases or directories.",
                                             show_default=False)]
DataDir = Annotated[Optional[Path], typer.Option(
    "--data-dir", help="Data directory (default: $SIMCSE_DATA, else ~/.cache/simcse-analysis/data).")]
Pooler = Annotated[Optional[str], typer.Option(
    "--pooler", help="cls | cls_before_pooler | avg | avg_first_last | avg_top2 (default: the checkpoint's own).")]
BatchSize = Annotated[int, typer.Option("--batch-size", min=1, help="Sentences per forward pass.")]
MaxLength = Annotated[Optional[int], typer.Option(
    "--max-length", min=1, help="Truncate inputs to this many tokens (default: the checkpoint's).")]
Device = Annotated[Optional[str], typer.Option("--device", help="cpu, cuda, cuda:1, mps (default: best available).")]
Dtype = Annotated[str, typer.Option("--dtype", help="fp32 | bf16 | fp16 for encoding.")]
CacheDir = Annotated[Optional[Path], typer.Option(
    "--cache-dir", help="Embedding cache (default: $SIMCSE_CACHE, else ~/.cache/simcse-analysis/embeddings).")]
NoCache = Annotated[bool, typer.Option("--no-cache", help="Neither read nor write the embedding cache.")]
TrustRemoteCode = Annotated[bool, typer.Option(
    "--trust-remote-code", help="Allow checkpoints that ship their own modelling code (runs that code).")]
JsonOut = Annotated[Optional[Path], typer.Option("--json", help="Also write every figure and its settings as JSON.")]
HtmlOut = Annotated[Optional[Path], typer.Option("--out", help="Write an interactive HTML report here.")]


def encoder_kwargs(*, pooler: str | None, max_length: int | None, device: str | None, dtype: str,
                   cache_dir: Path | None, no_cache: bool, trust_remote_code: bool) -> dict:
    """Keyword arguments for :func:`simcse_analysis.encoder.load_encoder` from the shared options."""
    return dict(pooler=pooler, max_length=max_length, device=device, dtype=dtype, cache_dir=cache_dir,
                use_cache=not no_cache, trust_remote_code=trust_remote_code)
