"""The baseline-comparison recipe: its table script reads a report record; the shell recipe is valid bash."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def _model(label: str, baseline: str | None, objective: str | None, avg: float, iso: float) -> dict:
    return {"label": label, "pooler": "avg", "baseline": baseline,
            "checkpoint_metadata": {"objective": objective} if objective else {},
            "sts_test": {"scores": {"avg": avg}}, "align_uniform": {"alignment": 0.25, "uniformity": -2.5},
            "anisotropy": {"summary": {"isoscore": iso}}}


def test_table_lists_every_checkpoint_with_its_kind_and_figures(tmp_path):
    record = {"models": [_model("all-MiniLM-L6-v2", None, None, 78.123, 0.1), _model("flow", "flow", None, 80.0, 0.9),
                         _model("sbert", None, "sbert_nli", 81.5, None)]}
    f = tmp_path / "report.json"
    f.write_text(json.dumps(record))
    out = subprocess.run([sys.executable, str(REPO / "recipes" / "baseline_table.py"), str(f)], capture_output=True,
                         text=True, check=True, cwd=REPO).stdout
    lines = out.strip().splitlines()
    assert "STS avg" in lines[0] and "IsoScore" in lines[0]
    body = [line for line in lines if line.startswith(("all-MiniLM", "flow", "sbert"))]
    assert len(body) == 3
    assert "base" in body[0] and "78.12" in body[0] and "0.2500" in body[0] and "-2.5000" in body[0]
    assert "flow" in body[1] and "0.9000" in body[1]
    assert "sbert_nli" in body[2] and "n/a" in body[2]


def test_recipe_is_valid_bash():
    subprocess.run(["bash", "-n", str(REPO / "recipes" / "compare_baselines.sh")], check=True)
