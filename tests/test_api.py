"""The Python API: the package namespace resolves every public name lazily (and agrees with its type-checking
imports), the record schema reads the previous version and refuses unknown ones with a typed exception (exit
code 2 on the CLI), an empty model list is a typed error, and the entry points' docstring examples run."""

from __future__ import annotations

import ast
import doctest
import importlib
import json
import subprocess
import sys
from pathlib import Path

import pytest

import simcse_analysis
from simcse_analysis.records import (
    REPORT_VERSION,
    EmptyModelListError,
    ModelSummary,
    SchemaError,
    SchemaVersionError,
)

REPO = Path(__file__).resolve().parents[1]


# ----------------------------------------------------------------------------------------- the namespace
def _type_checking_imports() -> dict[str, str]:
    tree = ast.parse((REPO / "simcse_analysis" / "__init__.py").read_text())
    block = next(n for n in tree.body if isinstance(n, ast.If) and getattr(n.test, "id", "") == "TYPE_CHECKING")
    return {a.asname or a.name: node.module for node in block.body for a in node.names if node.module != "typing"}


def test_all_is_a_literal_list_of_names_that_resolve():
    tree = ast.parse((REPO / "simcse_analysis" / "__init__.py").read_text())
    assign = next(n for n in tree.body if isinstance(n, ast.Assign) and n.targets[0].id == "__all__")
    literal = ast.literal_eval(assign.value)  # a literal, so IDEs and linters read it without running code
    assert literal == simcse_analysis.__all__
    for name in literal:
        assert getattr(simcse_analysis, name) is not None, name


def test_lazy_table_and_type_checking_imports_name_the_same_objects():
    typed = _type_checking_imports()
    assert typed == {k: v for k, v in simcse_analysis._LAZY.items()}
    assert set(typed) | {"__version__"} == set(simcse_analysis.__all__)
    for name, module in typed.items():
        assert getattr(simcse_analysis, name) is getattr(importlib.import_module(module), name)


def test_importing_the_package_loads_no_heavy_library_and_no_upper_layer():
    code = ("import sys, simcse_analysis; "
            "print(sorted(m for m in ('torch', 'transformers', 'plotly', 'umap', 'trainers', 'reports', "
            "'simcse_analysis.cli') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"}, cwd=REPO).stdout
    assert out.strip() == "[]"


def test_an_unknown_attribute_is_an_attribute_error():
    with pytest.raises(AttributeError, match="no attribute 'compare_all'"):
        simcse_analysis.compare_all  # noqa: B018


# ----------------------------------------------------------------------------------------- docstring examples
@pytest.mark.parametrize("module", ["simcse_analysis.records", "simcse_analysis.sts_eval", "reports.result",
                                    pytest.param("simcse_analysis.encoder", marks=pytest.mark.slow)])
def test_docstring_examples_run(module, data_dir, monkeypatch):
    monkeypatch.setenv("SIMCSE_DATA", str(data_dir))
    result = doctest.testmod(importlib.import_module(module), optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0 and result.failed == 0


# ----------------------------------------------------------------------------------------- empty model lists
@pytest.mark.parametrize("models", [[], "", ["  "], None])
def test_an_empty_model_list_is_a_typed_error(models):
    with pytest.raises(EmptyModelListError, match="analyze: the model list is empty"):
        simcse_analysis.analyze(models)
    with pytest.raises(EmptyModelListError, match="report: the model list is empty"):
        simcse_analysis.report(models)


def test_empty_model_list_errors_are_input_errors():
    assert issubclass(EmptyModelListError, simcse_analysis.InputError)
    assert issubclass(SchemaVersionError, SchemaError) and issubclass(SchemaError, simcse_analysis.InputError)


# ----------------------------------------------------------------------------------------- record versions
def _as_version_1(record: dict) -> dict:
    """The record as the first release wrote it: version 1, no per-model summary."""
    return {**record, "version": 1, "models": [{k: v for k, v in m.items() if k != "summary"}
                                                for m in record["models"]]}


def test_the_current_record_carries_its_version_and_summaries(report_record):
    assert report_record["version"] == REPORT_VERSION == 2
    for m in report_record["models"]:
        s = ModelSummary.from_dict(m["summary"])
        assert s.alignment == m["align_uniform"]["alignment"]
        assert s.uniformity == m["align_uniform"]["uniformity"]
        assert s.sts == m["sts_test"]["scores"]
        assert s.stsb_dev == m["sts_dev"]["scores"]["STSBenchmark"]
        assert s.random_pair_cosine == m["anisotropy"]["summary"]["random_pair_cosine"]
        assert s.effective_rank == m["spectrum"]["centered"]["effective_rank"]


def test_a_version_1_record_is_read_and_upgraded(report_record, tmp_path):
    old = tmp_path / "v1.json"
    old.write_text(json.dumps(_as_version_1(report_record)))
    a = simcse_analysis.load_analysis(old)
    assert a.record["version"] == REPORT_VERSION
    assert a.models == simcse_analysis.Analysis(report_record).models


@pytest.mark.parametrize("version, words", [
    (REPORT_VERSION + 1, "written by a newer simcse-analysis"),
    (99, "written by a newer simcse-analysis"),
    (0, "which no simcse-analysis release wrote"),
    ("2", "which no simcse-analysis release wrote"),
    (None, "which no simcse-analysis release wrote"),
])
def test_an_unknown_or_future_version_is_a_typed_error(report_record, tmp_path, version, words):
    f = tmp_path / "future.json"
    f.write_text(json.dumps({**report_record, "version": version}))
    with pytest.raises(SchemaVersionError, match=words) as e:
        simcse_analysis.load_analysis(f)
    assert e.value.found == version and e.value.readable == (1, 2)
    assert str(f) in str(e.value)


def test_a_foreign_json_is_a_schema_error(tmp_path):
    f = tmp_path / "eval.json"
    f.write_text(json.dumps({"results": []}))
    with pytest.raises(SchemaError, match="is not a report record") as e:
        simcse_analysis.load_analysis(f)
    assert not isinstance(e.value, SchemaVersionError)


def test_the_cli_refuses_a_future_record_with_exit_code_2(report_record, tmp_path, run_cli):
    f = tmp_path / "future.json"
    f.write_text(json.dumps({**report_record, "version": REPORT_VERSION + 1}))
    out = tmp_path / "page.html"
    code, _, stderr = run_cli("report", "--from-json", str(f), "--out", str(out))
    assert code == 2
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "newer simcse-analysis" in lines[0]
    assert "Traceback" not in stderr and not out.exists()


def test_the_cli_reads_a_version_1_record(report_record, tmp_path, run_cli):
    f = tmp_path / "v1.json"
    f.write_text(json.dumps(_as_version_1(report_record)))
    again = tmp_path / "again.json"
    code, _, stderr = run_cli("report", "--from-json", str(f), "--json", str(again))
    assert code == 0, stderr
    rewritten = json.loads(again.read_text())
    assert rewritten["version"] == REPORT_VERSION
    assert [m["summary"] for m in rewritten["models"]] == [m["summary"] for m in report_record["models"]]


def test_an_analysis_document_of_a_future_version_is_refused(tmp_path):
    from simcse_analysis.analysis import AnalysisReport

    f = tmp_path / "au.json"
    f.write_text(json.dumps({"schema": "simcse-analysis/embedding-analysis", "version": 7, "analysis": "spectrum"}))
    with pytest.raises(SchemaVersionError, match="version 7, written by a newer"):
        AnalysisReport.load(f)


# ----------------------------------------------------------------------------------------- Analysis objects
def test_analysis_gives_every_report_figure_as_a_plotly_figure(report_record):
    import plotly.graph_objects as go

    a = simcse_analysis.Analysis(report_record)
    names = a.figures.names()
    assert names == ["align_uniform", "trajectories", "spectra", "cosine_bins", "random_pairs", "layers", "umap"]
    for name in names:
        fig = getattr(a.figures, name)()
        assert isinstance(fig, go.Figure) and len(fig.data) > 0, name
    # a fresh copy each call: editing one does not change the next
    fig = a.figures.align_uniform()
    fig.update_layout(title="edited")
    assert a.figures.align_uniform().layout.title.text != "edited"
    # the points of the plane are the record's numbers (x = ℓ_uniform, y = ℓ_align, as SimCSE Fig. 2)
    drawn = {(round(x, 9), round(y, 9)) for t in a.figures.align_uniform().data
             for x, y in zip(t.x or (), t.y or ()) if x is not None and y is not None}
    for m in report_record["models"]:
        point = (round(m["align_uniform"]["uniformity"], 9), round(m["align_uniform"]["alignment"], 9))
        assert point in drawn


def test_a_missing_figure_says_how_to_get_it(report_record):
    rec = {**report_record, "umap": None, "trajectories": [], "models": [{**m, "umap": None}
                                                                        for m in report_record["models"]]}
    a = simcse_analysis.Analysis(rec)
    with pytest.raises(simcse_analysis.FigureNotAvailable, match="umap=True"):
        a.figures.umap()
    with pytest.raises(simcse_analysis.FigureNotAvailable, match="training run directory"):
        a.figures.trajectories()


def test_analysis_and_report_render_inline(report_record, tmp_path):
    a = simcse_analysis.Analysis(report_record)
    html = a._repr_html_()
    assert 'id="sts-table"' in html and 'id="isotropy-table"' in html and "<script" not in html
    third = report_record["models"][2]
    assert a[2] == a[third["label"]] == a[third["model"]] and a[2].label == third["label"]
    with pytest.raises(KeyError, match="no model labelled 'nope'"):
        a["nope"]
    r = simcse_analysis.report(a, out=tmp_path / "page.html")
    assert r.path == tmp_path / "page.html" and r.path.read_text() == r.html
    inline = r._repr_html_()
    assert inline.startswith("<iframe") and "&lt;script" in inline  # the page, escaped into srcdoc
    assert "ℓ_align" in a.table() and len(a.table().splitlines()) == 2 + len(a)


def test_sts_and_training_results_render_inline():
    from simcse_analysis.sts_eval import STSResult
    from trainers.rundir import RunResult

    sts = STSResult("<b>m</b>", "avg", {"STSBenchmark": 81.234, "avg": 81.234}, "test", "senteval", "all", None)
    page = sts._repr_html_()
    assert "<td>81.23</td>" in page and "&lt;b&gt;m&lt;/b&gt; [avg]" in page and "<b>" not in page
    traj = [{"step": s, "stsb_spearman": v, "alignment": 0.1 * s, "uniformity": -s} for s, v in
            [(0, 50.0), (10, 70.5), (20, 65.0)]]
    run = RunResult("runs/x", "finished", {}, steps=20, best_step=10, best_stsb_spearman=70.5, trajectory=traj)
    assert run.summary_rows() == [["start", 0, "50.00", "0.0000", "0.0000"], ["best", 10, "70.50", "1.0000", "-10.0000"],
                                  ["last", 20, "65.00", "2.0000", "-20.0000"]]
    page = run._repr_html_()
    assert page.count("<tr>") == 4 and "<td>70.50</td>" in page and "runs/x: finished, 20 steps" in page


# ----------------------------------------------------------------------------------------- issue 24, item 10
def test_evaluate_sts_gives_the_cli_s_confidence_intervals_by_default(tiny_bert_dir, small_data_dir, run_cli, tmp_path):
    r = simcse_analysis.evaluate_sts(tiny_bert_dir, "STSBenchmark", data_dir=small_data_dir)
    assert r.ci is not None and r.ci["resamples"] == 1000 and r.ci["seed"] == 0
    out = tmp_path / "eval.json"
    code, _, err = run_cli("eval", tiny_bert_dir, "--tasks", "sts-b", "--data-dir", small_data_dir, "--json", out)
    assert code == 0, err
    cli = json.loads(out.read_text())["results"][0]
    assert cli["ci"] == r.ci and cli["intervals"].keys() == r.intervals.keys()
    for task, iv in r.intervals.items():
        assert cli["intervals"][task] == pytest.approx(iv, rel=1e-9)
    assert simcse_analysis.evaluate_sts(tiny_bert_dir, "STSBenchmark", data_dir=small_data_dir,
                                        resamples=None).intervals == {}


def test_evaluate_sts_reads_model_at_pooler(tiny_bert_dir, small_data_dir):
    r = simcse_analysis.evaluate_sts(f"{tiny_bert_dir}@cls_before_pooler", "STSBenchmark", data_dir=small_data_dir,
                                     resamples=None)
    assert (r.model, r.pooler) == (str(tiny_bert_dir), "cls_before_pooler")


def test_reprs_are_one_short_line(report_record, tmp_path):
    from simcse_analysis.analysis import AnalysisReport, AnalysisSettings
    from simcse_analysis.comparison import ComparisonReport
    from simcse_analysis.sts_eval import STSResult
    from simcse_analysis.token_analysis import TokenReport, TokenSettings

    a = simcse_analysis.Analysis(report_record)
    m = report_record["models"][0]
    sts = STSResult.from_dict({**m["sts_test"], "model": m["model"]})
    cmp = ComparisonReport({"alpha": 0.05}, [{"label": "a@avg"}, {"label": "b@avg"}], [], [], ["a long note " * 500])
    au = AnalysisReport("align_uniform", "p " * 1000, AnalysisSettings(), {"n_sentences": 9}, [])
    tok = TokenReport("p " * 1000, TokenSettings(), {"n_sentences": 9}, [])
    page = simcse_analysis.report(a, out=tmp_path / "p.html")
    for obj, words in ((a, [m["label"]]), (page, ["Report(", "characters", "p.html"]),
                       (sts, ["STSResult(", "avg=", "95% CI"]), (cmp, ["baseline='a@avg'", "b@avg"]),
                       (au, ["align_uniform", "9 sentences"]), (tok, ["TokenReport(", "9 sentences"])):
        text = repr(obj)
        assert "\n" not in text and len(text) < 400, text[:200]
        assert all(w in text for w in words), text
    assert "<iframe" in page._repr_html_() and 'id="sts-table"' in a._repr_html_()  # rich views unchanged


def test_report_adds_the_token_section_of_its_checkpoints(report_record, tmp_path):
    a = simcse_analysis.Analysis(report_record)
    page = simcse_analysis.report(a, out=tmp_path / "t.html", tokens=True, token_sentences=60)
    doc = page.analysis.record["tokens"]
    assert [r["model"]["pooler"] for r in doc["results"]] == [m["pooler"] for m in report_record["models"]]
    assert doc["data"]["n_sentences"] == 60
    assert 'id="fig-token-layers"' in page.html and page.path.read_text() == page.html
    # the same document, given as a saved file, makes the same page section
    saved = tmp_path / "tokens.json"
    saved.write_text(json.dumps(doc))
    again = a.with_tokens(saved)
    assert again.record["tokens"] == doc and "tokens" not in a.record


def test_report_refuses_analysis_options_it_would_ignore(report_record):
    a = simcse_analysis.Analysis(report_record)
    with pytest.raises(simcse_analysis.InputError, match="umap_sentences only apply when report"):
        simcse_analysis.report(a, umap_sentences=10)


def test_report_of_model_names_adds_tokens_and_a_comparison(tiny_bert_dir, small_data_dir, tmp_path):
    cmp = simcse_analysis.compare([f"{tiny_bert_dir}@avg", f"{tiny_bert_dir}@cls_before_pooler"],
                                  simcse_analysis.CompareSettings(tasks=("STSBenchmark",), resamples=100,
                                                                  layers=False, embedding_space=False),
                                  data_dir=small_data_dir)
    page = simcse_analysis.report([f"{tiny_bert_dir}@avg", f"{tiny_bert_dir}@cls_before_pooler"],
                                  data_dir=small_data_dir, umap=False, layers=False, tokens=True,
                                  token_sentences=60, comparison=cmp)
    assert page.analysis.record["comparison"] == cmp.to_dict() and len(page.analysis.record["tokens"]["results"]) == 2
    assert 'id="comparison"' in page.html and 'id="fig-token-layers"' in page.html
    with pytest.raises(simcse_analysis.InputError, match="which this report does not show"):
        simcse_analysis.report([f"{tiny_bert_dir}@avg"], data_dir=small_data_dir, comparison=cmp)
