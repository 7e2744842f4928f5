"""Every input of a command is resolved and checked before any encoding (issue 24, items 3 and 8): a bad second
checkpoint, a wrong --compare-from file, a comparison about a checkpoint the page does not show, fp16 on the CPU."""

from __future__ import annotations

import json

import pytest

from simcse_analysis.errors import InputError


def one_line_error(err: str) -> bool:
    lines = err.strip().splitlines()
    return len(lines) == 1 and lines[0].startswith("error: ") and "Traceback" not in err


@pytest.fixture()
def loads(monkeypatch):
    """The checkpoints loaded (with their weights) while the test runs."""
    from simcse_analysis import encoder

    loaded: list[str] = []
    real = encoder.load_encoder

    def spy(name, *args, **kwargs):
        loaded.append(str(name))
        return real(name, *args, **kwargs)

    monkeypatch.setattr(encoder, "load_encoder", spy)
    return loaded


@pytest.fixture()
def no_analysis(monkeypatch):
    """Fail the test if the report's analysis starts."""
    import reports.collect
    import reports.result

    def boom(*args, **kwargs):
        raise AssertionError("the analysis started before the inputs were checked")

    monkeypatch.setattr(reports.result, "analyze", boom)
    monkeypatch.setattr(reports.collect, "collect_report", boom)


@pytest.fixture(scope="module")
def comparison_file(tmp_path_factory, tiny_bert_dir, small_data_dir):
    """A `compare --json` document of the tiny BERT's avg against its cls_before_pooler."""
    from simcse_analysis.comparison import CompareSettings, compare

    doc = compare([f"{tiny_bert_dir}@avg", f"{tiny_bert_dir}@cls_before_pooler"],
                  CompareSettings(tasks=("STSBenchmark",), resamples=100, layers=False, embedding_space=False),
                  data_dir=small_data_dir)
    path = tmp_path_factory.mktemp("cmp") / "cmp.json"
    path.write_text(doc.to_json())
    return path


# ----------------------------------------------------------------------------------------- compare
def test_compare_refuses_a_missing_second_checkpoint_before_scoring_the_first(run_cli, tiny_bert_dir,
                                                                              small_data_dir, tmp_path, loads):
    code, out, err = run_cli("compare", tiny_bert_dir, tmp_path / "nonexistent", "--data-dir", small_data_dir)
    assert code == 2 and one_line_error(err) and "nonexistent" in err and out == ""
    assert loads == []  # not even the first checkpoint was loaded


def test_compare_refuses_the_same_checkpoint_twice_before_scoring(run_cli, tiny_bert_dir, small_data_dir, loads):
    code, _, err = run_cli("compare", f"{tiny_bert_dir}@avg", f"{tiny_bert_dir}@avg", "--data-dir", small_data_dir)
    assert code == 2 and one_line_error(err) and "same checkpoint with the same pooler" in err
    assert loads == []


def test_compare_refuses_an_unwritable_scores_directory_before_scoring(run_cli, tiny_bert_dir, small_data_dir,
                                                                       tmp_path, loads):
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    code, _, err = run_cli("compare", f"{tiny_bert_dir}@avg", f"{tiny_bert_dir}@cls", "--data-dir", small_data_dir,
                           "--save-scores", blocker / "scores")
    assert code == 2 and one_line_error(err) and "--save-scores" in err and loads == []


# ----------------------------------------------------------------------------------------- fp16 on the CPU
@pytest.mark.parametrize("command", ["eval", "compare"])
def test_fp16_on_the_cpu_is_refused_with_the_alternatives(run_cli, tiny_bert_dir, small_data_dir, loads, command):
    extra = [f"{tiny_bert_dir}@cls_before_pooler"] if command == "compare" else []
    code, out, err = run_cli(command, tiny_bert_dir, *extra, "--dtype", "fp16", "--device", "cpu",
                             "--data-dir", small_data_dir)
    assert code == 2 and one_line_error(err) and out == ""
    assert "--dtype fp16 on the CPU" in err and "bf16" in err and "fp32" in err
    assert command == "eval" or loads == []


def test_load_encoder_refuses_fp16_on_the_cpu_and_accepts_bf16(tiny_bert_dir):
    from simcse_analysis.encoder import load_encoder

    with pytest.raises(InputError, match="fp16 on the CPU"):
        load_encoder(tiny_bert_dir, dtype="fp16", device="cpu", use_cache=False)
    assert load_encoder(tiny_bert_dir, dtype="bf16", device="cpu", use_cache=False).dtype == "bf16"


# ----------------------------------------------------------------------------------------- report --compare-from
def test_a_wrong_compare_from_file_fails_before_the_analysis(run_cli, tiny_bert_dir, small_data_dir, tmp_path,
                                                             no_analysis):
    wrong = tmp_path / "wrong.json"
    wrong.write_text(json.dumps({"results": []}))
    out = tmp_path / "page.html"
    code, _, err = run_cli("report", tiny_bert_dir, "--compare-from", wrong, "--out", out, "--data-dir",
                           small_data_dir)
    assert code == 2 and one_line_error(err) and "wrong.json" in err and not out.exists()


def test_a_comparison_about_a_checkpoint_the_page_lacks_is_refused_naming_it(run_cli, tiny_bert_dir, small_data_dir,
                                                                             tmp_path, comparison_file, no_analysis):
    out = tmp_path / "page.html"
    code, _, err = run_cli("report", f"{tiny_bert_dir}@avg", "--compare-from", comparison_file, "--out", out,
                           "--data-dir", small_data_dir)
    assert code == 2 and one_line_error(err) and not out.exists()
    assert f"compares {tiny_bert_dir}@cls_before_pooler, which this report does not show" in err


def test_a_comparison_of_the_page_s_checkpoints_is_added(run_cli, tiny_bert_dir, small_data_dir, tmp_path,
                                                         comparison_file):
    out, rec = tmp_path / "page.html", tmp_path / "page.json"
    code, _, err = run_cli("report", f"{tiny_bert_dir}@cls_before_pooler", f"{tiny_bert_dir}@avg", "--compare-from",
                           comparison_file, "--out", out, "--json", rec, "--data-dir", small_data_dir, "--no-umap",
                           "--no-layers")
    assert code == 0, err
    assert 'id="comparison"' in out.read_text()
    # the record carries the comparison; rebuilding from it checks it again, against the record's checkpoints
    code, _, err = run_cli("report", "--from-json", rec, "--out", tmp_path / "again.html")
    assert code == 0, err


def test_the_api_refuses_a_comparison_about_other_checkpoints(report_record, comparison_file):
    import simcse_analysis as sa

    with pytest.raises(InputError, match="which this report does not show"):
        sa.Analysis(report_record).with_comparison(comparison_file)
    with pytest.raises(InputError, match="which this report does not show"):
        sa.report(sa.Analysis(report_record), comparison=comparison_file)


# ----------------------------------------------------------------------------------------- MODEL@POOLER everywhere
def test_eval_reads_model_at_pooler_like_compare_and_report(run_cli, tiny_bert_dir, small_data_dir):
    code, out, err = run_cli("eval", f"{tiny_bert_dir}@avg", f"{tiny_bert_dir}@cls_before_pooler", "--tasks",
                             "sts-b", "--resamples", "0", "--data-dir", small_data_dir, "--json", "-")
    assert code == 0, err
    results = json.loads(out)["results"]
    assert [(r["model"], r["pooler"]) for r in results] == [(str(tiny_bert_dir), "avg"),
                                                            (str(tiny_bert_dir), "cls_before_pooler")]
    assert results[0]["scores"]["STSBenchmark"] != results[1]["scores"]["STSBenchmark"]


def test_load_encoder_reads_model_at_pooler(tiny_bert_dir):
    from simcse_analysis.encoder import load_encoder

    enc = load_encoder(f"{tiny_bert_dir}@avg_top2", use_cache=False)
    assert (enc.name, enc.pooler) == (str(tiny_bert_dir), "avg_top2")
    assert load_encoder(f"{tiny_bert_dir}@avg", pooler="avg", use_cache=False).pooler == "avg"
    with pytest.raises(InputError, match="asks for pooler 'avg' but pooler='cls'"):
        load_encoder(f"{tiny_bert_dir}@avg", pooler="cls", use_cache=False)
