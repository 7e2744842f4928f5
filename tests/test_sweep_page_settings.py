"""The sweep page tells the truth about its runs: settings from each run's run.json, the values all runs
share in one table, those that differ (seed, swept key) per run, provenance, and a command per run that
trains the same trajectory again (tiny random BERT, 2 steps per run)."""

from __future__ import annotations

import contextlib
import html
import io
import json
import re
import shlex
from pathlib import Path

import pytest

from reports.sweep_page import setting_text


def _cli(*args: object) -> tuple[int, str, str]:
    from simcse_analysis.cli import main

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            main([str(a) for a in args])
            code = 0
        except SystemExit as e:
            code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
    return code, out.getvalue(), err.getvalue()


def _common(model: Path, corpus: Path, data_dir: Path) -> list[str]:
    # no --lr, --epochs, --dropout: the trainer resolves them (paper defaults, the checkpoint's own rate)
    return ["--model", model, "--train-file", corpus, "--batch-size", "16", "--max-steps", "2", "--eval-steps", "1",
            "--data-dir", data_dir, "--quiet"]


def _sweep(tmp_path_factory, name: str, *args: object) -> Path:
    out = tmp_path_factory.mktemp("sweep-page") / name
    code, _, err = _cli("ablate", name, "--out", out, *args)
    assert code == 0, err
    return out


@pytest.fixture(scope="module")
def dropout_sweep(tmp_path_factory, tiny_trainer_bert, tiny_corpus, small_data_dir) -> Path:
    """The issue's case: one rate, two seeds other than the default 42."""
    return _sweep(tmp_path_factory, "dropout", "--rates", "0.1", "--seeds", "1,2",
                  *_common(tiny_trainer_bert, tiny_corpus, small_data_dir))


@pytest.fixture(scope="module")
def grid_sweep(tmp_path_factory, tiny_trainer_bert, tiny_corpus, small_data_dir) -> Path:
    """A grid that does not sweep the dropout: every run keeps the checkpoint's own rate (None in its config)."""
    return _sweep(tmp_path_factory, "grid", "--grid", "temperature=0.05,0.1", "--seeds", "3",
                  *_common(tiny_trainer_bert, tiny_corpus, small_data_dir))


def _runs(out: Path) -> list[dict]:
    return [json.loads(p.read_text()) for p in sorted(out.glob("*/seed-*/run.json"))]


def _settings_cells(page: str, table_id: str) -> list[tuple[str, str]]:
    """``(setting, shown text)`` of every settings cell of the table ``table_id``, in page order."""
    table = re.search(rf'<table[^>]*id="{table_id}".*?</table>', page, flags=re.DOTALL)
    assert table, table_id
    return [(k, html.unescape(v)) for k, v in
            re.findall(r'<td data-setting="([^"]+)"[^>]*>([^<]*)</td>', table.group(0))]


def _resolved(run: dict) -> dict:
    """What a run used for each setting, from its run.json alone (``None`` only for settings left unset)."""
    values = {k: v for k, v in run["config"].items() if k not in ("output_dir", "extra")}
    for k, v in run.get("resolved", {}).items():
        if values.get(k) is None:
            values[k] = v
    return values


def assert_settings_are_the_runs_own(page: str, runs: list[dict]) -> None:
    """No settings cell says ``None``, and every cell shows what the runs' run.json holds for it."""
    common = dict(_settings_cells(page, "common-settings"))
    per_run = _settings_cells(page, "runs")
    assert common and per_run
    for key, text in [*common.items(), *per_run]:
        assert text != "None" and "None" not in text.split(", "), (key, text)
    resolved = [_resolved(r) for r in runs]
    for key, text in common.items():
        if key == "model_fingerprint":
            assert {r["base_model"]["fingerprint"] for r in runs} == {text}
            continue
        values = {json.dumps(v[key], sort_keys=True) for v in resolved}
        assert len(values) == 1, f"{key} differs between runs but is listed as common"
        assert text == setting_text(key, resolved[0][key]), key
        if resolved[0][key] is not None:  # a value the runs resolved is shown as that value
            assert text == setting_text(key, json.loads(values.pop())), key
    varying = sorted({k for k, _ in per_run})
    for key in varying:
        shown = sorted(t for k, t in per_run if k == key)
        assert shown == sorted(setting_text(key, v[key]) for v in resolved), key


def test_two_seed_sweep_page_lists_each_runs_resolved_settings(dropout_sweep, small_data_dir):
    page = (dropout_sweep / "report.html").read_text()
    runs = _runs(dropout_sweep)
    assert len(runs) == 2 and sorted(r["config"]["seed"] for r in runs) == [1, 2]
    common = dict(_settings_cells(page, "common-settings"))
    # the report: the page said seed 42 and batch_size/learning_rate/dropout/epochs/data_dir None
    assert "seed" not in common
    assert sorted(t for k, t in _settings_cells(page, "runs") if k == "seed") == ["1", "2"]
    assert common["batch_size"] == "16" and common["learning_rate"] == "3e-05" and common["epochs"] == "1.0"
    assert common["dropout"] == "0.1" and common["max_steps"] == "2" and common["mlp_only_train"] == "true"
    assert Path(common["data_dir"]) == Path(small_data_dir)
    assert common["device"] == "cpu"
    assert_settings_are_the_runs_own(page, runs)


def test_checkpoint_dropout_is_shown_as_the_rate_the_runs_used(grid_sweep, tiny_trainer_bert):
    page = (grid_sweep / "report.html").read_text()
    runs = _runs(grid_sweep)
    assert all(r["config"]["dropout"] is None for r in runs)  # not set: the checkpoint's own rate
    model_rate = json.loads((Path(tiny_trainer_bert) / "config.json").read_text())["hidden_dropout_prob"]
    assert dict(_settings_cells(page, "common-settings"))["dropout"] == repr(float(model_rate))
    assert sorted(t for k, t in _settings_cells(page, "runs") if k == "temperature") == ["0.05", "0.1"]
    assert_settings_are_the_runs_own(page, runs)


def test_the_settings_check_catches_a_none_cell(dropout_sweep):
    """The check above fails on the page the issue describes (a resolved value shown as None)."""
    page = (dropout_sweep / "report.html").read_text()
    broken = re.sub(r'(<td data-setting="batch_size"[^>]*>)16(</td>)', r"\1None\2", page)
    assert broken != page
    with pytest.raises(AssertionError):
        assert_settings_are_the_runs_own(broken, _runs(dropout_sweep))


def test_page_has_the_reports_provenance_and_look(dropout_sweep):
    page = (dropout_sweep / "report.html").read_text()
    summary = json.loads((dropout_sweep / "summary.json").read_text())
    prov = summary["provenance"][-1]
    assert shlex.split(prov["command"])[:5] == ["simcse-analyze", "ablate", "dropout", "--out", str(dropout_sweep)]
    assert {"python", "numpy"} <= set(prov["packages"]) and prov["machine"]["cores"] >= 1
    assert "<header><h1>Dropout ablation</h1>" in page and "<nav>" in page and 'id="provenance"' in page
    assert "machine: " in page and html.escape(prov["machine"]["platform"]) in page
    train = summary["data_files"]
    assert len(train) == 1 and train[0]["sha256"] == _runs(dropout_sweep)[0]["data"][0]["sha256"]
    assert train[0]["sha256"][:16] in page
    evaluated = prov["eval_files"]  # STS-B dev, checksummed when the page was built
    assert evaluated and all(len(f["sha256"]) == 64 for f in evaluated) and evaluated[0]["sha256"][:16] in page
    # 2 figures (inert JSON, drawn lazily), plotly.js once (compressed), the page's script
    assert page.count('<script type="application/json" id="figdata-') == 2 and page.count("<script") == 4
    main = page[page.index("<main>"):]
    assert main.index('id="summary"') < main.index('id="results"') < main.index('id="provenance"')


def test_a_rows_printed_command_trains_the_same_trajectory(dropout_sweep, tmp_path):
    page = (dropout_sweep / "report.html").read_text()
    commands = [html.unescape(c) for c in re.findall(r'<pre class="cmd mono">([^<]*)</pre>', page)]
    commands = [c for c in commands if c.startswith("simcse-analyze train ")]
    assert len(commands) == 2
    args = shlex.split(next(c for c in commands if "--seed 2" in c))
    original = Path(args[args.index("--out") + 1])
    args[args.index("--out") + 1] = str(tmp_path / "again")
    code, _, err = _cli(*args[1:])
    assert code == 0, err

    def trajectory(d: Path) -> list[dict]:
        return [json.loads(line) for line in (d / "trajectory.jsonl").read_text().splitlines()]

    before, after = trajectory(original), trajectory(tmp_path / "again")
    assert [e["step"] for e in after] == [0, 1, 2]
    for a, b in zip(before, after, strict=True):
        for key in ("step", "loss", "stsb_spearman", "alignment", "uniformity"):
            assert b[key] == (None if a[key] is None else pytest.approx(a[key], rel=1e-5, abs=1e-7)), (key, a)
    again = json.loads((tmp_path / "again" / "run.json").read_text())["config"]
    assert {**again, "output_dir": None} == {**json.loads((original / "run.json").read_text())["config"],
                                             "output_dir": None}
