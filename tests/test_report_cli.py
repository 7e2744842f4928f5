"""``simcse-analyze report``: end to end on tiny checkpoints, rebuilding from JSON, and bad input (exit 2)."""

from __future__ import annotations

import json

import pytest


@pytest.fixture()
def no_model_loading(monkeypatch):
    """Make any attempt to load a checkpoint fail the test (proves a path never encodes)."""
    from simcse_analysis import encoder

    def refuse(*args, **kwargs):
        raise AssertionError("a checkpoint was loaded")

    monkeypatch.setattr(encoder, "load_encoder", refuse)


def test_report_writes_page_and_record_and_rebuilds_the_same_page_from_json(
        run_cli, tiny_bert_dir, report_models, small_data_dir, tmp_path, monkeypatch):
    out, rec = tmp_path / "new" / "r.html", tmp_path / "r.json"
    code, stdout, err = run_cli("report", tiny_bert_dir, f"{report_models['wide']}@avg_first_last", "--no-umap",
                                "--pooler", "avg", "--data-dir", small_data_dir, "--out", out, "--json", rec)
    assert code == 0, err
    assert "STSBenchmark" in stdout and f"wrote {out}" in stdout
    record = json.loads(rec.read_text(encoding="utf-8"))
    assert [m["dim"] for m in record["models"]] == [32, 48]
    assert record["umap"] is None and all(m["umap"] is None for m in record["models"])
    prov = record["provenance"][0]  # the command that ran (not the test runner's argv) and the machine
    assert prov["command"].startswith(f"simcse-analyze report {tiny_bert_dir} ") and prov["machine"]["cores"] >= 1

    from simcse_analysis import encoder

    monkeypatch.setattr(encoder, "load_encoder", lambda *a, **k: pytest.fail("--from-json loaded a model"))
    code, _, err = run_cli("report", "--from-json", rec, "--out", tmp_path / "again.html")
    assert code == 0, err
    assert (tmp_path / "again.html").read_text(encoding="utf-8") == out.read_text(encoding="utf-8")


def test_umap_per_checkpoint_handles_different_widths_and_colours_by_corpus(
        run_cli, tiny_bert_dir, report_models, small_data_dir, tmp_path):
    rec = tmp_path / "r.json"
    code, _, err = run_cli("report", tiny_bert_dir, report_models["wide"], "--pooler", "avg", "--umap-colour",
                           "corpus", "--umap-sentences", "60", "--seed", "3", "--layer-sentences", "40",
                           "--data-dir", small_data_dir, "--json", rec)
    assert code == 0, err
    record = json.loads(rec.read_text(encoding="utf-8"))
    um = record["umap"]
    assert len(um["sentences"]) == 60 and um["colour"] == "corpus"
    assert set(um["categories"]) <= set(um["category_order"]) and len(set(um["categories"])) > 3
    assert [len(m["umap"]["x"]) for m in record["models"]] == [60, 60]
    assert [m["dim"] for m in record["models"]] == [32, 48]
    assert record["settings"]["umap"]["seed"] == 3 and record["settings"]["layer_sentences"] == 40
    assert {s["n_points"] for m in record["models"] for s in m["anisotropy"]["layers"]} == {40}


def test_unreadable_json_is_exit_2_naming_the_file(run_cli, tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text('{"schema": "simcse-analysis/report", "version": 1,')
    out = tmp_path / "r.html"
    code, _, err = run_cli("report", "--from-json", bad, "--out", out)
    assert code == 2
    assert err.startswith("error: ") and str(bad) in err and "not valid JSON" in err
    assert "Traceback" not in err and not out.exists()


def test_unwritable_output_fails_before_any_model_loads(run_cli, tmp_path, no_model_loading, small_data_dir):
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("x")
    code, _, err = run_cli("report", "some-model", "--data-dir", small_data_dir, "--out", blocker / "r.html")
    assert code == 2 and "cannot write" in err and str(blocker) in err


def test_output_that_is_a_directory_is_exit_2(run_cli, tmp_path, no_model_loading):
    code, _, err = run_cli("report", "some-model", "--out", tmp_path)
    assert code == 2 and "is a directory" in err


@pytest.mark.parametrize("args, message", [
    (["some-model"], "nothing to write"),
    (["--out", "x.html"], "nothing to report on"),
    (["m", "--json", "r.json", "--umap-colour", "rainbow"], "--umap-colour"),
])
def test_incomplete_invocations_are_exit_2(run_cli, tmp_path, monkeypatch, no_model_loading, small_data_dir,
                                           args, message):
    monkeypatch.chdir(tmp_path)
    code, _, err = run_cli("report", *args, "--data-dir", small_data_dir)
    assert code == 2 and message in err
