"""``--help`` pages: the fast path in ``main`` prints exactly what typer would, without heavy imports."""

from __future__ import annotations

import json
import subprocess
import sys

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
