"""``simcse-analyze ablate``: dry-run commands that really run, --collect, the report, and bad input (exit 2)."""

from __future__ import annotations

import json
import shlex

import pytest


def _common(model, corpus, data_dir) -> list[str]:
    return ["--model", str(model), "--train-file", str(corpus), "--batch-size", "16", "--max-steps", "1",
            "--eval-steps", "1", "--data-dir", str(data_dir), "--quiet"]


def test_dry_run_prints_one_train_command_per_run_and_writes_nothing(tmp_path, run_cli, tiny_trainer_bert,
                                                                     tiny_corpus, small_data_dir):
    out = tmp_path / "sweep"
    code, stdout, err = run_cli("ablate", "dropout", "--out", out, "--rates", "0,0.1,fixed", "--seeds", "1,2",
                                "--dry-run", *_common(tiny_trainer_bert, tiny_corpus, small_data_dir))
    assert code == 0, err
    lines = stdout.strip().splitlines()
    assert len(lines) == 6 and all(line.startswith("simcse-analyze train unsup ") for line in lines)
    args = [shlex.split(line) for line in lines]
    assert [(a[a.index("--dropout") + 1], a[a.index("--seed") + 1]) for a in args] == [
        ("0", "1"), ("0", "2"), ("0.1", "1"), ("0.1", "2"), ("fixed:0.1", "1"), ("fixed:0.1", "2")]
    assert not out.exists()


def test_dry_run_commands_produce_runs_that_collect_reads(tmp_path, run_cli, tiny_trainer_bert, tiny_corpus,
                                                          small_data_dir):
    out = tmp_path / "sweep"
    code, stdout, err = run_cli("ablate", "dropout", "--out", out, "--rates", "0.1,fixed", "--dry-run",
                                *_common(tiny_trainer_bert, tiny_corpus, small_data_dir))
    assert code == 0, err
    for line in stdout.strip().splitlines():  # what a cluster job would run
        code, _, err = run_cli(*shlex.split(line)[1:])
        assert code == 0, err
    code, stdout, err = run_cli("ablate", "dropout", "--out", out, "--collect")
    assert code == 0, err
    rows = [line.split() for line in stdout.splitlines() if line.startswith(("0.1 ", "fixed:0.1 "))]
    assert [r[0] for r in rows] == ["0.1", "fixed:0.1"]
    summary = json.loads((out / "summary.json").read_text())
    assert [p["settings"]["dropout"] for p in summary["points"]] == ["0.1", "fixed:0.1"]
    page = (out / "report.html").read_text()
    assert "Dropout ablation" in page and "ℓ_align @best" in page and page.count('<script type="application/json" id="figdata-') == 2


def test_grid_sweep_runs_every_point_and_reports_it(tmp_path, run_cli, tiny_trainer_bert, tiny_corpus,
                                                    small_data_dir):
    out = tmp_path / "grid"
    code, _stdout, err = run_cli("ablate", "grid", "--out", out, "--grid", "temperature=0.05,0.5",
                                "--no-eval-at-start", "--json", tmp_path / "g.json",
                                *_common(tiny_trainer_bert, tiny_corpus, small_data_dir))
    assert code == 0, err
    doc = json.loads((tmp_path / "g.json").read_text())
    assert [p["settings"] for p in doc["points"]] == [{"temperature": "0.05"}, {"temperature": "0.5"}]
    assert [len(p["runs"]) for p in doc["points"]] == [1, 1]
    for p in doc["points"]:
        run = json.loads((out / f"temperature={p['settings']['temperature']}" / "seed-42" / "run.json").read_text())
        assert run["config"]["temperature"] == float(p["settings"]["temperature"]) and run["status"] == "finished"
    assert (out / "sweep.json").is_file() and (out / "report.html").is_file()


@pytest.mark.parametrize("args, needle", [
    (["dropout", "--rates", "0,0.1,lots"], "unknown rate 'lots'"),
    (["dropout", "--rates", "0.1,0.10"], "listed twice"),
    (["dropout", "--rates", ","], "lists no values"),
    (["dropout"], "--rates is required"),
    (["dropout", "--rates", "0.1", "--seeds", "1,x"], "--seeds"),
    (["grid", "--grid", "temperature="], "zero runs"),
    (["grid"], "zero runs"),
    (["grid", "--grid", "warmup=1,2"], "unknown setting"),
    (["grid", "--grid", "positive=shuffle"], "unknown positive view"),
    (["dropout", "--rates", "0.1,fixed", "--positive", "crop:0.1"], "fixed dropout mask needs --positive dropout"),
])
def test_bad_sweep_specifications_exit_2_and_write_nothing(tmp_path, run_cli, tiny_trainer_bert, tiny_corpus,
                                                           small_data_dir, args, needle):
    out = tmp_path / "sweep"
    code, _stdout, err = run_cli("ablate", *args, "--out", out, *_common(tiny_trainer_bert, tiny_corpus,
                                                                          small_data_dir))
    assert code == 2
    assert err.startswith("error:") and needle in err and "Traceback" not in err
    assert not out.exists()


def test_running_without_a_model_exits_2(tmp_path, run_cli, tiny_corpus):
    code, _, err = run_cli("ablate", "dropout", "--out", tmp_path / "s", "--rates", "0.1", "--train-file",
                           tiny_corpus)
    assert code == 2 and "--model is required" in err


@pytest.mark.parametrize("kind", ["dropout", "grid"])
def test_collect_without_finished_runs_exits_2(tmp_path, run_cli, kind):
    empty = tmp_path / "empty"
    (empty / "dropout=0.1" / "seed-1").mkdir(parents=True)
    code, _, err = run_cli("ablate", kind, "--out", empty, "--collect")
    assert code == 2 and "no finished training run" in err
    code, _, err = run_cli("ablate", kind, "--out", tmp_path / "absent", "--collect")
    assert code == 2 and "not a directory" in err
    assert not (empty / "summary.json").exists() and not (empty / "report.html").exists()


def test_collect_and_dry_run_together_exit_2(tmp_path, run_cli):
    code, _, err = run_cli("ablate", "dropout", "--out", tmp_path, "--rates", "0.1", "--collect", "--dry-run")
    assert code == 2 and "exclude each other" in err
