"""`simcse-analyze data` and `simcse-analyze eval`: tables, JSON output and bad input."""

from __future__ import annotations

import json
import shutil

import pytest

from simcse_analysis.sts_data import TASKS


def one_line_error(err: str) -> bool:
    return err.startswith("error: ") and err.strip().count("\n") == 0


def table_rows(out: str) -> set[tuple[str, ...]]:
    return {tuple(line.split()) for line in out.splitlines()}


@pytest.fixture()
def small_copy(tmp_path, small_data_dir):
    dst = tmp_path / "data"
    shutil.copytree(small_data_dir, dst)
    return dst


# ------------------------------------------------------------------------------- data
def test_data_reports_every_task_variant_and_split_with_counts(run_cli, data_dir):
    code, out, err = run_cli("data", "--data-dir", data_dir)
    assert code == 0, err
    rows = table_rows(out)
    for row in [("STS12", "senteval", "test", "3108", "ok"), ("STS16", "raw", "test", "1186", "ok"),
                ("STSBenchmark", "senteval", "train", "5749", "ok"), ("STSBenchmark", "raw", "test", "1379", "ok"),
                ("SICKRelatedness", "raw", "dev", "500", "ok")]:
        assert row in rows
    assert any(r[:5] == ("SICKRelatedness", "senteval", "test", "4927", "ok;") and "raw" in r for r in rows)
    assert ("nli/snli_devtest_triplets.csv", "6503", "ok") in rows
    assert ("unsup/wiki1m_for_simcse.txt", "-", "missing") in rows


def test_data_marks_missing_files_and_names_what_to_fetch(run_cli, small_copy):
    (small_copy / "sts/sts14/raw/STS.gs.images.txt").unlink()
    code, out, err = run_cli("data", "--data-dir", small_copy)
    assert code == 0, err
    rows = table_rows(out)
    assert ("STS14", "raw", "test", "-", "missing") in rows
    assert ("STS14", "senteval", "test", "120", "ok") in rows
    assert "missing: sts14," in out


def test_data_on_malformed_file_prints_the_table_then_exits_2(run_cli, small_copy):
    (small_copy / "sts/stsb/sts-dev.csv").write_text("not\ta\tvalid\trow\n", encoding="utf-8")
    code, out, err = run_cli("data", "--data-dir", small_copy)
    assert code == 2
    assert ("STSBenchmark", "raw", "dev", "-", "malformed") in table_rows(out)
    assert one_line_error(err) and "sts-dev.csv line 1" in err


def test_data_on_missing_directory_exits_2(run_cli, tmp_path):
    code, out, err = run_cli("data", "--data-dir", tmp_path / "absent")
    assert code == 2 and one_line_error(err) and "absent" in err and out == ""


def test_data_download_with_unknown_resource_exits_2(run_cli, tmp_path):
    code, _, err = run_cli("data", "--download", "--only", "sts99", "--data-dir", tmp_path)
    assert code == 2 and one_line_error(err) and "sts99" in err


# ------------------------------------------------------------------------------- eval
def test_eval_prints_one_row_per_model_and_writes_json(run_cli, tiny_bert_dir, small_data_dir, tmp_path):
    from simcse_analysis.encoder import load_encoder
    from simcse_analysis.sts_eval import evaluate_sts

    out_json = tmp_path / "res" / "sts.json"
    code, out, err = run_cli("eval", tiny_bert_dir, "--pooler", "avg", "--data-dir", small_data_dir,
                             "--json", out_json, "--batch-size", "16")
    assert code == 0, err
    doc = json.loads(out_json.read_text())
    [entry] = doc["results"]
    assert list(entry["scores"]) == list(TASKS) + ["avg"]
    assert (entry["pooler"], entry["split"], entry["variant"], entry["aggregation"]) == (
        "avg", "test", "senteval", "all")
    expected = evaluate_sts(load_encoder(tiny_bert_dir, pooler="avg"), data_dir=small_data_dir)
    assert entry["scores"] == pytest.approx(expected.scores)
    lines = out.splitlines()
    assert lines[0].split() == ["model", "pooler", *TASKS, "avg"]
    assert lines[2].split()[1:] == ["avg", *(f"{expected.scores[t]:.2f}" for t in TASKS), f"{expected.scores['avg']:.2f}"]


def test_eval_aggregations_change_only_the_semeval_tasks(run_cli, tiny_bert_dir, small_data_dir, tmp_path):
    scores = {}
    for agg in ("all", "mean"):
        path = tmp_path / f"{agg}.json"
        code, _, err = run_cli("eval", tiny_bert_dir, "--tasks", "STS12,sts-b", "--aggregation", agg,
                               "--data-dir", small_data_dir, "--json", path)
        assert code == 0, err
        scores[agg] = json.loads(path.read_text())["results"][0]["scores"]
    assert scores["all"]["STSBenchmark"] == pytest.approx(scores["mean"]["STSBenchmark"])
    assert scores["all"]["STS12"] != pytest.approx(scores["mean"]["STS12"])


def test_eval_on_dev_split_covers_stsb_and_sick(run_cli, tiny_bert_dir, small_data_dir):
    code, out, err = run_cli("eval", tiny_bert_dir, "--split", "dev", "--variant", "raw",
                             "--data-dir", small_data_dir)
    assert code == 0, err
    assert out.splitlines()[0].split() == ["model", "pooler", "STSBenchmark", "SICKRelatedness", "avg"]


@pytest.mark.parametrize(("args", "message"), [
    (["--tasks", "STS12,STS99"], "unknown STS task 'STS99'"),
    (["--split", "validate"], "'validate' is not one of 'test', 'dev', 'train'"),
    (["--variant", "tokenised"], "'tokenised' is not one of 'senteval', 'raw'"),
    (["--aggregation", "median"], "'median' is not one of 'all', 'mean', 'wmean'"),
    (["--tasks", "STS13", "--split", "dev"], "STS13 has only a test split"),
])
def test_eval_bad_options_exit_2_before_loading_any_model(run_cli, small_data_dir, tmp_path, args, message):
    code, out, err = run_cli("eval", tmp_path / "no-such-model", *args, "--data-dir", small_data_dir)
    assert code == 2 and one_line_error(err) and message in err and out == ""


def test_eval_missing_data_directory_exits_2(run_cli, tiny_bert_dir, tmp_path):
    code, _, err = run_cli("eval", tiny_bert_dir, "--data-dir", tmp_path / "absent")
    assert code == 2 and one_line_error(err) and "absent" in err


def test_eval_malformed_data_file_exits_2(run_cli, tiny_bert_dir, small_copy):
    (small_copy / "sts/sts15/senteval/STS.gs.belief.txt").write_text("", encoding="utf-8")
    code, _, err = run_cli("eval", tiny_bert_dir, "--tasks", "STS15", "--data-dir", small_copy)
    assert code == 2 and one_line_error(err) and "STS.gs.belief.txt" in err
