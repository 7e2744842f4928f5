"""The import contract in pyproject.toml (cli > trainers | reports > core, no cycles) holds, and breaks on a
violating import with a message naming it."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LINT = Path(sys.executable).with_name("lint-imports")

pytestmark = pytest.mark.skipif(not LINT.exists(), reason="import-linter is not installed (pip install -e '.[dev]')")


def _lint(root: Path) -> subprocess.CompletedProcess[str]:
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(root)}
    return subprocess.run([str(LINT), "--no-logo", "--no-cache"], cwd=root, env=env,
                          capture_output=True, text=True, timeout=300, check=False)


def _copy_tree(tmp_path: Path) -> Path:
    dst = tmp_path / "repo"
    dst.mkdir()
    shutil.copy(ROOT / "pyproject.toml", dst)
    for pkg in ("simcse_analysis", "trainers", "reports"):
        shutil.copytree(ROOT / pkg, dst / pkg, ignore=shutil.ignore_patterns("__pycache__"))
    return dst


def test_contract_is_kept_on_the_project():
    r = _lint(ROOT)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "0 broken" in r.stdout


@pytest.mark.parametrize("module, line, names", [
    ("simcse_analysis/metrics/spectrum.py", "import simcse_analysis.cli.sts", "simcse_analysis.cli.sts"),
    ("trainers/sweeps.py", "import simcse_analysis.cli.options", "simcse_analysis.cli.options"),
    ("simcse_analysis/analysis.py", "import trainers.config", "trainers.config"),
    ("reports/figures.py", "import trainers.rundir", "trainers.rundir"),
    ("trainers/config.py", "import reports.figures", "reports.figures"),
    ("reports/figures.py", "import reports.html", ".figures -> .html"),  # html imports figures: a cycle
    # the package namespace is the notebook facade (it may reach trainers/reports); no module may use it
    ("simcse_analysis/analysis.py", "from simcse_analysis import train", "simcse_analysis.analysis -> simcse_analysis"),
    ("reports/figures.py", "import simcse_analysis", "reports.figures -> simcse_analysis"),
])
def test_a_violating_import_breaks_the_contract(tmp_path, module, line, names):
    repo = _copy_tree(tmp_path)
    target = repo / module
    target.write_text(target.read_text() + f"\n{line}  # deliberate violation\n")
    r = _lint(repo)
    assert r.returncode != 0
    assert "BROKEN" in r.stdout and names in r.stdout, r.stdout
