"""``simcse-analyze cache``: what the cache holds (size per kind and checkpoint), ``prune`` by age, size or
checkpoint, and ``clear`` (thin layer over :mod:`simcse_analysis.cache_inventory`)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from .help_format import examples
from .options import check_outputs, with_progress, write_output

DryRun = Annotated[bool, typer.Option("--dry-run", help="List what would be removed; remove nothing.")]
CacheDir = Annotated[Path | None, typer.Option(
    "--cache-dir", metavar="DIR", help="The cache (default: $SIMCSE_CACHE, else ~/.cache/simcse-analysis/embeddings).")]
JsonOut = Annotated[Path | None, typer.Option(
    "--json", metavar="FILE", help="Also write the listing, one entry per unit, as JSON ('-': standard output).")]


def _root(cache_dir: Path | None) -> Path:
    from ..cache import default_cache_dir

    return cache_dir if cache_dir is not None else default_cache_dir()


def _table(units: list, root: Path) -> str:
    from ..cache_inventory import format_size, summary_rows
    from ..tables import format_table

    if not units:
        return f"the cache {root} is empty"
    table = format_table(["kind", "checkpoint", "pooler", "holds", "size", "last used"], summary_rows(units),
                         right=[False, False, False, True, True, True])
    return f"cache {root}: {format_size(sum(u.bytes for u in units))} in {len(units)} unit(s)\n{table}"


def register(app: typer.Typer) -> None:
    cache_app = typer.Typer(help="Show, prune or clear the cache: embeddings (pooled and per layer), token analyses "
                                 "and UMAP maps.", invoke_without_command=True, epilog=examples(
                                     "simcse-analyze cache", "simcse-analyze cache --json cache.json"))
    app.add_typer(cache_app, name="cache", rich_help_panel="Data",
                  short_help="Size of the cache per kind and checkpoint; prune or clear it.")

    @cache_app.callback()
    def show(ctx: typer.Context, cache_dir: CacheDir = None, json_out: JsonOut = None) -> None:
        """Size of the cache per kind (embeddings, layers, tokens, umap), checkpoint and pooler, with the last use
        of each (run without a sub-command)."""
        if ctx.invoked_subcommand is not None:
            return
        import json

        from ..cache_inventory import inventory

        to_stderr = check_outputs(json_out)
        root = _root(cache_dir)
        units = inventory(root)
        typer.echo(_table(units, root), err=to_stderr)
        if json_out is not None:
            doc = {"root": str(root), "bytes": sum(u.bytes for u in units), "units": [u.to_dict() for u in units]}
            write_output(json_out, json.dumps(doc, indent=1) + "\n", to_stderr=to_stderr)

    @cache_app.command("prune", epilog=examples(
        "simcse-analyze cache prune --older-than 30d",
        "simcse-analyze cache prune --max-size 2GB --dry-run",
        "simcse-analyze cache prune --checkpoint runs/old-run --kind embeddings"))
    @with_progress("cache prune")
    def prune(
        older_than: Annotated[str | None, typer.Option(
            "--older-than", help="Remove what was last used longer ago than this: 30d, 12h, 2w, 90m.",
            show_default=False)] = None,
        max_size: Annotated[str | None, typer.Option(
            "--max-size", help="Then remove the least recently used until the cache is at most this big: 500MB, "
                               "2GB, 1.5GiB.", show_default=False)] = None,
        checkpoint: Annotated[list[str] | None, typer.Option(
            "--checkpoint", metavar="MODEL", help="Only what was cached for this checkpoint (its weights, or the "
                                                  "name or directory it was given as; repeatable).",
            show_default=False)] = None,
        kind: Annotated[list[str] | None, typer.Option(
            "--kind", help="Only this kind (repeatable): embeddings (pooled vectors), layers (per-layer stacks), "
                           "tokens (token analyses), umap (maps).", show_default=False)] = None,
        dry_run: DryRun = False,
        cache_dir: CacheDir = None,
    ) -> None:
        """Remove part of the cache: by last use (--older-than), down to a size (--max-size, least recently used
        first), by checkpoint or kind. With only --checkpoint/--kind, everything they select is removed."""
        from ..cache_inventory import format_size, inventory, parse_age, parse_size, remove, select
        from ..errors import InputError

        if older_than is None and max_size is None and not checkpoint and not kind:
            raise InputError("cache prune needs --older-than, --max-size, --checkpoint or --kind (to remove "
                             "everything: simcse-analyze cache clear)")
        age = parse_age(older_than) if older_than is not None else None
        size = parse_size(max_size) if max_size is not None else None
        root = _root(cache_dir)
        units = inventory(root)
        chosen = select(units, older_than=age, max_size=size, checkpoints=checkpoint or [], kinds=kind or [])
        freed = sum(u.bytes for u in chosen) if dry_run else remove(chosen)
        verb = "would remove" if dry_run else "removed"
        typer.echo(f"{verb} {len(chosen)} of {len(units)} unit(s), {format_size(freed)}; "
                   f"{format_size(sum(u.bytes for u in units) - freed)} left in {root}")
        if chosen:
            typer.echo(_table(chosen, root).split("\n", 1)[1])

    @cache_app.command("clear", epilog=examples(
        "simcse-analyze cache clear --yes", "simcse-analyze cache clear --cache-dir /scratch/simcse-cache --yes"))
    @with_progress("cache clear")
    def clear(yes: Annotated[bool, typer.Option("--yes", help="Do not ask for confirmation.")] = False,
              cache_dir: CacheDir = None) -> None:
        """Remove everything the cache holds (embeddings, layers, token analyses, UMAP maps); other files under
        the directory are left alone."""
        from ..cache_inventory import format_size, inventory, remove
        from ..errors import InputError

        root = _root(cache_dir)
        units = inventory(root)
        if not units:
            typer.echo(f"the cache {root} is empty")
            return
        total = format_size(sum(u.bytes for u in units))
        if not yes:
            if not sys.stdin.isatty():
                raise InputError(f"cache clear would remove {len(units)} unit(s), {total}, from {root}: pass --yes")
            typer.confirm(f"remove {len(units)} unit(s), {total}, from {root}?", abort=True)
        typer.echo(f"removed {len(units)} unit(s), {format_size(remove(units))}, from {root}")
