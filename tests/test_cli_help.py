"""``--help`` pages: the fast path in ``main`` prints exactly what typer would, without heavy imports."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Annotated

import pytest
import typer.main
from typer.testing import CliRunner

from simcse_analysis.cli import _help_text, app
from simcse_analysis.cli.options import EncoderOptions, with_encoder_options


def _command_paths() -> list[list[str]]:
    group = typer.main.get_command(app)
    paths: list[list[str]] = [[]]
    for name, cmd in sorted(group.commands.items()):
        paths.append([name])
        for sub in sorted(getattr(cmd, "commands", {}) or {}):
            paths.append([name, sub])
    return paths


PATHS = _command_paths()


def test_every_command_is_covered() -> None:
    flat = {" ".join(p) for p in PATHS}
    assert {"", "eval", "align-uniform", "report", "train", "train unsup", "train sup", "ablate dropout"} <= flat


@pytest.mark.parametrize("path", PATHS, ids=lambda p: " ".join(p) or "top")
def test_help_page_matches_typer(path: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    ours = _help_text([*path, "--help"])
    assert ours is not None and "Usage: simcse-analyze" in ours
    # typer's own path: parse the arguments, process the --help flag, print the page
    try:
        typer.main.get_command(app).main([*path, "--help"], prog_name="simcse-analyze", standalone_mode=False)
    except SystemExit as e:  # older typer/click exit here, newer ones return
        assert e.code == 0
    typer_page = capsys.readouterr().out
    assert ours.rstrip("\n") == typer_page.rstrip("\n")


@pytest.mark.parametrize("args", [[], ["eval"], ["nosuch", "--help"], ["eval", "--pooler", "avg", "--help"],
                                  ["--help", "eval"]])
def test_fast_path_declines_other_invocations(args: list[str]) -> None:
    assert _help_text(args) is None


def test_help_imports_no_heavy_library() -> None:
    code = ("import sys\nfrom simcse_analysis.cli import main\n"
            "try:\n    main(['train', 'unsup', '--help'])\nexcept SystemExit as e:\n    code = e.code\n"
            "import json\nprint(json.dumps([code] + sorted(m for m in ('torch', 'transformers', 'pydantic', "
            "'numpy', 'plotly') if m in sys.modules)))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    result = json.loads(out.strip().splitlines()[-1])
    assert result == [0], result


def test_shared_encoder_options_reach_the_command() -> None:
    seen: list[tuple[str, int, EncoderOptions]] = []
    demo = typer.Typer()

    @demo.command()
    @with_encoder_options
    def run(name: str, k: int = 1, *, encoder: EncoderOptions) -> None:
        seen.append((name, k, encoder))

    result = CliRunner().invoke(demo, ["x", "--k", "3", "--pooler", "avg", "--batch-size", "7", "--no-cache",
                                       "--dtype", "bf16", "--max-length", "32"])
    assert result.exit_code == 0, result.output
    name, k, enc = seen[0]
    assert (name, k) == ("x", 3)
    assert enc == EncoderOptions(pooler="avg", batch_size=7, max_length=32, dtype="bf16", no_cache=True)
    assert enc.load_kwargs == {"pooler": "avg", "max_length": 32, "device": None, "dtype": "bf16",
                               "cache_dir": None, "use_cache": False, "trust_remote_code": False}
    assert CliRunner().invoke(demo, ["x"]).exit_code == 0 and seen[1][2] == EncoderOptions()


# ------------------------------------------------------------------ value names (metavars) on the help pages
_PYTHON_TYPE_NAMES = ("str", "int", "float", "bool", "Path", "list", "None")


def _command(path: list[str]):
    group = typer.main.get_command(app)
    ctx = group.context_class(group, info_name="simcse-analyze")
    cmd = group
    for name in path:
        cmd = cmd.commands[name]
        ctx = cmd.context_class(cmd, info_name=name, parent=ctx)
    return cmd, ctx


@pytest.mark.parametrize("path", [p for p in PATHS if p], ids=lambda p: " ".join(p))
def test_help_names_values_the_conventional_way(path: list[str]) -> None:
    """Every option value and argument is named FILE, DIR, MODEL, INTEGER RANGE, TEXT … — never a Python
    type (``<list[Path]>``, ``<int range>``, ``<str>``) nor typer's braces (``{model}``)."""
    from simcse_analysis.cli.help_format import CONVENTIONAL_METAVARS

    cmd, ctx = _command(path)
    if getattr(cmd, "commands", None):
        return  # a group: its page lists commands, no values
    usage = _help_text([*path, "--help"]).splitlines()[0]
    assert "<" not in usage and "{" not in usage, usage
    for param in cmd.get_params(ctx):
        record = param.get_help_record(ctx)
        if record is None:
            continue
        column = record[0]
        assert "<" not in column and "{" not in column and "[" not in column.replace("[OPTIONS]", ""), column
        words = set(column.replace("/", " ").replace("...", " ").split())
        assert not words & set(_PYTHON_TYPE_NAMES), column
        if param.param_type_name == "argument":
            value = column.removesuffix("...")
        elif getattr(param, "is_flag", False):
            continue
        else:
            value = column.split(" ", 1)[1] if " " in column else ""
        assert value in CONVENTIONAL_METAVARS, f"{' '.join(path)}: {column!r}"


def test_required_and_repeatable_arguments_in_the_usage_line() -> None:
    assert _help_text(["whiten", "--help"]).splitlines()[0] == "Usage: simcse-analyze whiten [OPTIONS] MODEL"
    assert _help_text(["report", "--help"]).splitlines()[0] == "Usage: simcse-analyze report [OPTIONS] [MODEL]..."
    page = _help_text(["train", "unsup", "--help"])
    for text in ("--train-file FILE", "--out DIR", "--model MODEL", "--batch-size INTEGER RANGE",
                 "--temperature FLOAT", "--seed INTEGER", "--positive TEXT", "--data-dir DIR"):
        assert text in page, text


def test_conventional_metavar_of_each_type() -> None:
    """The names follow click's: a bounded number is a RANGE, a path (or list of paths) PATH."""
    from simcse_analysis.cli.help_format import ReadableCommand

    demo = typer.Typer(add_completion=False)

    @demo.command(cls=ReadableCommand)
    def run(a: Annotated[int, typer.Option(min=1)] = 1, b: float = 0.5, c: str = "x",
            d: Annotated[list[Path] | None, typer.Option()] = None, e: Annotated[float, typer.Option(max=1)] = 0.0,
            f: int = 0, g: Annotated[Path | None, typer.Option(metavar="DIR")] = None) -> None:
        pass

    cmd = typer.main.get_command(demo)
    names = {p.name: p.metavar for p in cmd.params}
    assert names == {"a": "INTEGER RANGE", "b": "FLOAT", "c": "TEXT", "d": "PATH", "e": "FLOAT RANGE",
                     "f": "INTEGER", "g": "DIR"}
