"""Options shared by several commands, so each keyword means the same everywhere."""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import typer

Models = Annotated[list[str], typer.Argument(help="Checkpoints: Hugging Face ids, aliases or directories.",
                                             show_default=False)]
DataDir = Annotated[Path | None, typer.Option(
    "--data-dir", help="Data directory (default: $SIMCSE_DATA, else ~/.cache/simcse-analysis/data).")]
Pooler = Annotated[str | None, typer.Option(
    "--pooler", help="cls | cls_before_pooler | avg | avg_first_last | avg_top2 (default: the checkpoint's own).")]
BatchSize = Annotated[int, typer.Option("--batch-size", min=1, help="Sentences per forward pass.")]
MaxLength = Annotated[int | None, typer.Option(
    "--max-length", min=1, help="Truncate inputs to this many tokens (default: the checkpoint's).")]
Device = Annotated[str | None, typer.Option("--device", help="cpu, cuda, cuda:1, mps (default: best available).")]
Dtype = Annotated[str, typer.Option("--dtype", help="fp32 | bf16 | fp16 for encoding.")]
CacheDir = Annotated[Path | None, typer.Option(
    "--cache-dir", help="Embedding cache (default: $SIMCSE_CACHE, else ~/.cache/simcse-analysis/embeddings).")]
NoCache = Annotated[bool, typer.Option("--no-cache", help="Neither read nor write the embedding cache.")]
TrustRemoteCode = Annotated[bool, typer.Option(
    "--trust-remote-code", help="Allow checkpoints that ship their own modelling code (runs that code).")]
JsonOut = Annotated[Path | None, typer.Option("--json", help="Also write every figure and its settings as JSON.")]
HtmlOut = Annotated[Path | None, typer.Option("--out", help="Write an interactive HTML report here.")]


@dataclass(frozen=True)
class EncoderOptions:
    """The encoding options every checkpoint-reading command shares (``--pooler`` … ``--trust-remote-code``)."""

    pooler: str | None = None
    batch_size: int = 64
    max_length: int | None = None
    device: str | None = None
    dtype: str = "fp32"
    cache_dir: Path | None = None
    no_cache: bool = False
    trust_remote_code: bool = False

    @property
    def load_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for :func:`simcse_analysis.encoder.load_encoder` (batch size is per call)."""
        return {"pooler": self.pooler, "max_length": self.max_length, "device": self.device, "dtype": self.dtype,
                "cache_dir": self.cache_dir, "use_cache": not self.no_cache,
                "trust_remote_code": self.trust_remote_code}


# (name, annotation) of the options behind EncoderOptions, in the order --help lists them
_ENCODER_OPTIONS: list[tuple[str, Any]] = [
    ("pooler", Pooler), ("batch_size", BatchSize), ("max_length", MaxLength), ("device", Device),
    ("dtype", Dtype), ("cache_dir", CacheDir), ("no_cache", NoCache), ("trust_remote_code", TrustRemoteCode),
]


def with_encoder_options(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Give a command the shared encoding options; it receives them as ``encoder: EncoderOptions``.

    Typer reads a command's options from its signature, so the wrapper advertises ``fn``'s own
    parameters (minus ``encoder``) followed by the shared ones, and folds the latter back into one
    :class:`EncoderOptions` when called.
    """
    own = [p for p in inspect.signature(fn, eval_str=True).parameters.values() if p.name != "encoder"]
    defaults = EncoderOptions()
    shared = [inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, annotation=annotation,
                                default=getattr(defaults, name)) for name, annotation in _ENCODER_OPTIONS]

    @functools.wraps(fn)
    def command(*args: Any, **kwargs: Any) -> Any:
        options = EncoderOptions(**{name: kwargs.pop(name) for name, _ in _ENCODER_OPTIONS if name in kwargs})
        return fn(*args, encoder=options, **kwargs)

    params = own + shared
    command.__signature__ = inspect.Signature(params)  # type: ignore[attr-defined]
    command.__annotations__ = {p.name: p.annotation for p in params}
    return command
