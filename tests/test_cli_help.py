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
        choices = _choices(param)
        plain = column.replace(f"[{'|'.join(choices)}]", "") if choices else column
        assert "<" not in column and "{" not in column and "[" not in plain.replace("[OPTIONS]", ""), column
        words = set(plain.replace("/", " ").replace("...", " ").split())
        assert not words & set(_PYTHON_TYPE_NAMES), column
        if param.param_type_name == "argument":
            value = column.removesuffix("...")
        elif getattr(param, "is_flag", False):
            continue
        else:
            value = column.split(" ", 1)[1] if " " in column else ""
        assert value in CONVENTIONAL_METAVARS or (choices and value == f"[{'|'.join(choices)}]"), \
            f"{' '.join(path)}: {column!r}"


def _choices(param) -> list[str] | None:
    """The names a choice option accepts (``None`` for any other parameter)."""
    desc = getattr(param, "type_descriptor", None)
    if desc is None or not desc.is_choice or desc.choices is None:
        return None
    return [str(getattr(c, "value", c)) for c in desc.choices]


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


# ------------------------------------------------------------------ what every help page offers (issue 24, item 9)
LEAVES = [p for p in PATHS if p and not getattr(_command(p)[0], "commands", None)]


@pytest.mark.parametrize("path", LEAVES, ids=lambda p: " ".join(p))
def test_every_command_shows_examples_of_itself(path: list[str]) -> None:
    page = _help_text([*path, "--help"])
    assert "Examples:" in page, " ".join(path)
    examples = page.split("Examples:", 1)[1].strip().splitlines()
    assert len(examples) >= 2
    assert all(line.strip().startswith(("simcse-analyze ", "torchrun ")) for line in examples), examples
    assert any(line.strip().startswith("simcse-analyze " + " ".join(path) + " ") for line in examples), examples
    assert all(len(line.strip()) <= 120 for line in examples)  # printed as written, not re-wrapped


@pytest.mark.parametrize("path", LEAVES, ids=lambda p: " ".join(p))
def test_every_command_takes_one_progress_flag(path: list[str]) -> None:
    """--no-progress everywhere; the older --quiet is accepted but hidden."""
    cmd, ctx = _command(path)
    options = {o: p for p in cmd.get_params(ctx) for o in getattr(p, "opts", [])}
    assert "--no-progress" in options and not options["--no-progress"].hidden
    assert "--quiet" in options and options["--quiet"].hidden
    page = _help_text([*path, "--help"])
    assert "--no-progress" in page and "--quiet" not in page


def test_top_level_help_groups_commands_with_whole_descriptions() -> None:
    from simcse_analysis.cli.help_format import SECTIONS

    page = _help_text(["--help"])
    headings = [line.rstrip(":") for line in page.splitlines() if line.endswith(":") and not line.startswith(" ")]
    assert headings == ["Options", *SECTIONS.values()]
    listed = [line.split()[0] for line in page.split("Analysis commands:", 1)[1].split("Examples:")[0].splitlines()
              if line.startswith("  ") and line.strip()]
    top = {p[0] for p in PATHS if len(p) == 1}
    assert sorted(listed) == sorted(top)  # every command once, in a section
    for line in page.splitlines():
        if line.startswith("  ") and line.split() and line.split()[0] in top:
            assert not line.endswith(("...", "et al.", "(")), line  # not cut mid-sentence
    assert "--version" in page


def test_version_prints_the_package_version(run_cli) -> None:
    from simcse_analysis.version import __version__

    code, out, err = run_cli("--version")
    assert code == 0 and out.strip() == f"simcse-analyze {__version__}" and err == ""
    result = CliRunner().invoke(app, ["--version"])
    assert result.exit_code == 0 and __version__ in result.output


@pytest.mark.parametrize("option", ["--pooler", "--dtype", "--split", "--variant", "--aggregation", "--units",
                                    "--umap-colour", "--precision", "--select-on", "--cross-process-gradient"])
def test_options_with_a_few_values_are_choices(option: str) -> None:
    found = 0
    for path in LEAVES:
        cmd, ctx = _command(path)
        for param in cmd.get_params(ctx):
            if option in getattr(param, "opts", []):
                found += 1
                assert _choices(param), f"{' '.join(path)} {option} is not a choice"
                assert f"{option} [" in _help_text([*path, "--help"])
    assert found


def test_a_bad_choice_is_one_error_line(run_cli, tmp_path) -> None:
    code, out, err = run_cli("eval", tmp_path / "m", "--split", "validate")
    assert code == 2 and out == "" and len(err.strip().splitlines()) == 1
    assert err.startswith("error: ") and "--split" in err and "'test', 'dev', 'train'" in err


def test_no_visible_option_name_means_two_things() -> None:
    """--alpha is compare's significance level; align-uniform's exponent is --align-alpha (--alpha hidden)."""
    helps: dict[str, set[str]] = {}
    for path in LEAVES:
        cmd, ctx = _command(path)
        for param in cmd.get_params(ctx):
            if not getattr(param, "hidden", False) and "--alpha" in getattr(param, "opts", []):
                helps.setdefault("--alpha", set()).add(param.help)
    assert len(helps["--alpha"]) == 1 and "level" in next(iter(helps["--alpha"])).lower()
    cmd, ctx = _command(["align-uniform"])
    opts = {o: p for p in cmd.get_params(ctx) for o in p.opts}
    assert "exponent" in opts["--align-alpha"].help and opts["--alpha"].hidden


def test_abtt_corpus_help_names_what_it_fits() -> None:
    cmd, ctx = _command(["abtt"])
    corpus = next(p for p in cmd.get_params(ctx) if "--corpus" in p.opts)
    assert "whitening" not in corpus.help and "principal directions" in corpus.help
