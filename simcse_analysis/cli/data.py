"""``simcse-analyze data``: what evaluation/training data is present, and fetching what is missing."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ..path_safety import check_apart
from .help_format import examples
from .options import DataDir, with_progress

Download = Annotated[bool, typer.Option("--download", help="Fetch missing data from the public URLs.")]
Only = Annotated[str | None, typer.Option(
    "--only", help="Comma-separated resources to fetch: sts12..sts16, stsb, sick_train, sick_trial, "
                   "sick_test_annotated, senteval, wiki1m, nli, wordnet (default: all missing).")]
BaseUrl = Annotated[str | None, typer.Option("--base-url", help="Fetch every file from this mirror URL.")]
Manifest = Annotated[Path | None, typer.Option(
    "--manifest", metavar="FILE",
    help="JSON overrides: {\"base_url\": …, \"resources\": {name: {\"url\": …, \"sha256\": …}}}.")]
Force = Annotated[bool, typer.Option("--force", help="Fetch even resources that are already present.")]


def _corpora_rows(root: Path) -> list[list[object]]:
    """Training corpora present under unsup/ and nli/, plus the SimCSE ones if absent."""
    from ..corpora import read_pair_corpus, read_text_corpus
    from ..errors import InputError

    rows: list[list[object]] = []
    expected = {"unsup/wiki1m_for_simcse.txt", "nli/nli_for_simcse.csv"}
    found = sorted({*(root.glob("unsup/*.txt")), *(root.glob("nli/*.csv"))})
    for p in found:
        rel = p.relative_to(root).as_posix()
        expected.discard(rel)
        try:
            n = len(read_pair_corpus(p)) if p.suffix == ".csv" else len(read_text_corpus(p))
            rows.append([rel, n, "ok"])
        except InputError as e:
            rows.append([rel, "-", f"malformed: {e}"])
    rows += [[rel, "-", "missing"] for rel in sorted(expected)]
    return rows


def register(app: typer.Typer) -> None:
    @app.command("data", rich_help_panel="Data",
                 short_help="What data is present (pairs per task); fetch what is missing.", epilog=examples(
                     "simcse-analyze data --data-dir ../shared/data",
                     "simcse-analyze data --download --only stsb,sick_test_annotated,senteval",
                     "simcse-analyze data --download --base-url https://mirror.example/simcse/"))
    @with_progress("data")
    def data_cmd(
        data_dir: DataDir = None,
        download: Download = False,
        only: Only = None,
        base_url: BaseUrl = None,
        manifest: Manifest = None,
        force: Force = False,
        *,
        show_progress: bool,
    ) -> None:
        """Report the STS tasks (per variant and split, with scored-pair counts) and training corpora present."""
        from ..datadir import resolve_data_dir
        from ..download import fetch_missing, load_manifest, missing_resources, select_resources
        from ..errors import InputError
        from ..sts_data import data_status
        from ..tables import format_table

        resources = load_manifest(manifest, base_url)
        selected = select_resources(only, resources)
        if download:
            root = resolve_data_dir(data_dir, must_exist=False)
            check_apart([(f"--download {r.name} →", root / rel) for r in selected for rel in r.expects],
                        [("--manifest", manifest)])  # a fetched file must not replace the manifest being read
            for rep in fetch_missing(root, selected, force=force, progress=show_progress):
                check = "verified" if rep.verified else "not verified: no known checksum"
                typer.echo(f"fetched {rep.name}: {len(rep.files)} file(s), sha256 {rep.sha256} ({check})")
        else:
            root = resolve_data_dir(data_dir)

        typer.echo(f"data directory: {root}")
        status = data_status(root)
        rows = [[s.task, s.variant, s.split, "-" if s.pairs is None else s.pairs,
                 s.status + (f"; {s.detail}" if s.status == "ok" and s.detail else "")] for s in status]
        typer.echo(format_table(["task", "variant", "split", "pairs", "status"], rows,
                                right=[False, False, False, True, False]))
        typer.echo("")
        typer.echo(format_table(["training corpus", "rows", "status"], _corpora_rows(root),
                                right=[False, True, False]))
        missing = [r.name for r in missing_resources(root, resources)]
        if missing:
            typer.echo(f"\nmissing: {', '.join(missing)} (fetch with `simcse-analyze data --download"
                       f"{' --only ' + ','.join(missing) if len(missing) < len(resources) else ''}`)")
        bad = [s for s in status if s.status == "malformed"]
        if bad:
            raise InputError(f"{len(bad)} STS data file set(s) malformed; first: {bad[0].detail}")
