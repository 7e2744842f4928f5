"""Options shared by several commands, so each keyword means the same everywhere."""

from __future__ import annotations

import functools
import inspect
import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

import typer

from ..io_utils import check_writable, is_stdout, write_output_text
from ..path_safety import check_apart
from ..pooling import POOLERS

#: The choices of the options that take one of a few names (help shows ``[a|b|c]``, click checks the value).
PoolerName = Literal[POOLERS]  # type: ignore[valid-type]  # Literal["cls", "cls_before_pooler", …]
DtypeName = Literal["fp32", "bf16", "fp16"]
SplitName = Literal["test", "dev", "train"]
VariantName = Literal["senteval", "raw"]
AggregationName = Literal["all", "mean", "wmean"]

Models = Annotated[list[str], typer.Argument(
    metavar="MODEL", help="Checkpoints: Hugging Face ids, aliases, checkpoint or training-run directories; "
                          "MODEL@POOLER picks the pooler of one (e.g. all-MiniLM-L6-v2@avg).",
    show_default=False)]
DataDir = Annotated[Path | None, typer.Option(
    "--data-dir", metavar="DIR",
    help="Data directory (default: $SIMCSE_DATA, else ~/.cache/simcse-analysis/data).")]
Pooler = Annotated[PoolerName | None, typer.Option(
    "--pooler", case_sensitive=False, show_default=False,
    help="How a sentence vector is read off the model (README, 'Poolers'; default: the checkpoint's own). "
         "MODEL@POOLER sets it for one checkpoint.")]
BatchSize = Annotated[int, typer.Option("--batch-size", min=1, help="Sentences per forward pass.")]
MaxLength = Annotated[int | None, typer.Option(
    "--max-length", min=1, help="Truncate inputs to this many tokens (default: the checkpoint's).")]
Device = Annotated[str | None, typer.Option("--device", help="cpu, cuda, cuda:1, mps (default: best available).")]
Dtype = Annotated[DtypeName, typer.Option(
    "--dtype", case_sensitive=False, help="Precision of the encoding forward pass (fp16 needs a GPU: on the CPU it "
                                          "runs slower than fp32 and is refused; use bf16 there).")]
CacheDir = Annotated[Path | None, typer.Option(
    "--cache-dir", metavar="DIR",
    help="Embedding cache (default: $SIMCSE_CACHE, else ~/.cache/simcse-analysis/embeddings).")]
NoCache = Annotated[bool, typer.Option("--no-cache", help="Neither read nor write the embedding cache.")]
TrustRemoteCode = Annotated[bool, typer.Option(
    "--trust-remote-code", help="Allow checkpoints that ship their own modelling code (runs that code).")]
JsonOut = Annotated[Path | None, typer.Option(
    "--json", metavar="FILE", help="Also write every figure and its settings as JSON ('-': standard output).")]
HtmlOut = Annotated[Path | None, typer.Option(
    "--out", metavar="FILE", help="Write an interactive HTML report here.")]


NoProgress = Annotated[bool, typer.Option(
    "--no-progress", help="No progress bars or stage lines on standard error (results and errors still print).")]
QuietAlias = Annotated[bool, typer.Option("--quiet", hidden=True, help="Same as --no-progress (older name).")]


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


@dataclass(frozen=True)
class SharedOption:
    """One option several commands share: parameter ``name``, its Typer ``annotation`` and ``default``;
    ``key`` renames it in the bundle the command receives (default: ``name``)."""

    name: str
    annotation: Any
    default: Any
    key: str | None = None


def shared_options(options: list[SharedOption], into: str,
                   build: Callable[[dict[str, Any]], Any] = dict) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Decorator giving a command ``options``; the command receives them as one keyword ``into``
    (``build({key: value})``).

    Typer reads a command's options from its signature, so the wrapper advertises ``fn``'s own
    parameters (minus ``into``) followed by the shared ones, and folds the latter back when called.
    """

    def decorate(fn: Callable[..., Any]) -> Callable[..., Any]:
        own = [p for p in inspect.signature(fn, eval_str=True).parameters.values() if p.name != into]
        shared = [inspect.Parameter(o.name, inspect.Parameter.KEYWORD_ONLY, annotation=o.annotation,
                                    default=o.default) for o in options]

        @functools.wraps(fn)
        def command(*args: Any, **kwargs: Any) -> Any:
            bundle = build({o.key or o.name: kwargs.pop(o.name) for o in options if o.name in kwargs})
            return fn(*args, **{into: bundle}, **kwargs)

        params = own + shared  # a name in both raises here, at import time
        command.__signature__ = inspect.Signature(params)  # type: ignore[attr-defined]
        command.__annotations__ = {p.name: p.annotation for p in params}
        return command

    return decorate


_ENCODER_DEFAULTS = EncoderOptions()
#: Give a command ``--pooler`` … ``--trust-remote-code``; it receives them as ``encoder: EncoderOptions``.
with_encoder_options = shared_options(
    [SharedOption(name, annotation, getattr(_ENCODER_DEFAULTS, name)) for name, annotation in (
        ("pooler", Pooler), ("batch_size", BatchSize), ("max_length", MaxLength), ("device", Device),
        ("dtype", Dtype), ("cache_dir", CacheDir), ("no_cache", NoCache), ("trust_remote_code", TrustRemoteCode))],
    "encoder", lambda values: EncoderOptions(**values))


def with_progress(title: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Give a command ``--no-progress`` (hidden alias ``--quiet``) and run it inside one progress job named
    ``title`` (:mod:`simcse_analysis.progress`: the library's loops report their stages to it, on standard
    error). A command that declares a keyword-only ``show_progress: bool`` also receives the flag."""

    def decorate(fn: Callable[..., Any]) -> Callable[..., Any]:
        params = inspect.signature(fn, eval_str=True).parameters
        takes = "show_progress" in params

        @functools.wraps(fn)
        def run(*args: Any, show_progress: bool, **kwargs: Any) -> Any:
            from .. import progress

            with progress.job(title, enabled=show_progress):
                return fn(*args, **({"show_progress": show_progress} if takes else {}), **kwargs)

        own = [p for p in params.values() if p.name != "show_progress"]
        run.__signature__ = inspect.Signature(  # type: ignore[attr-defined]
            [*own, inspect.Parameter("show_progress", inspect.Parameter.KEYWORD_ONLY, annotation=bool)])
        return shared_options([SharedOption("no_progress", NoProgress, False), SharedOption("quiet", QuietAlias, False)],
                              "show_progress", lambda v: not (v.get("no_progress") or v.get("quiet")))(run)

    return decorate


# ------------------------------------------------------------------------------------------ outputs
def check_outputs(*targets: Path | None | tuple[str, Path | None], reads: Iterable[tuple[str, Any]] = (),
                  dirs: Iterable[tuple[str, Any]] = ()) -> bool:
    """Fail before any work if an output file (``--json``, ``--out``; a path or ``(option, path)``) cannot be
    written, or if an output is, contains or lies inside an input (``reads``: ``(option, path or MODEL)``) or
    another output (the files and the output directories ``dirs``), see
    :func:`~simcse_analysis.path_safety.check_apart`. Returns whether an output file is standard output (``-``),
    in which case the human-readable table goes to standard error."""
    files = [t if isinstance(t, tuple) else ("output", t) for t in targets]
    check_apart([*files, *dirs], reads)
    for _, t in files:
        if t is not None:
            check_writable(t)
    return any(is_stdout(t) for _, t in files if t is not None)


def write_output(path: Path, text: str, *, to_stderr: bool = False) -> None:
    """Write an output file the user named (:func:`~simcse_analysis.io_utils.write_output_text`: ``-`` is
    standard output, devices and pipes are written through, other files atomically) and say so."""
    write_output_text(path, text)
    announce(path, to_stderr=to_stderr)


def write_record(path: Path | None, record: Any, *, to_stderr: bool = False) -> None:
    """``--json PATH``: write ``record.to_dict()`` as indented JSON with :func:`write_output` (nothing when
    the option was not given)."""
    if path is not None:
        write_output(path, json.dumps(record.to_dict(), indent=2) + "\n", to_stderr=to_stderr)


def announce(path: Path, *, to_stderr: bool = False) -> None:
    """``wrote PATH`` after an output was written (nothing for ``-``: the output itself is on stdout)."""
    if not is_stdout(path):
        typer.echo(f"wrote {path}", err=to_stderr)
