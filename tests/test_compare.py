"""``simcse-analyze compare``: paired verdicts, CKA/kNN/movers, saved scores and bad input (tiny BERTs, small data)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from simcse_analysis.sts_data import TASKS


def _one_error_line(err: str) -> bool:
    lines = [ln for ln in err.strip().splitlines() if ln.strip()]
    return len(lines) == 1 and lines[0].startswith("error: ") and "Traceback" not in err


@pytest.fixture(scope="module")
def comparison(tmp_path_factory, tiny_bert_dir, small_data_dir):
    """tiny BERT avg (baseline) vs cls_before_pooler, 100 resamples, with --json and --save-scores."""
    from simcse_analysis.cli import main

    out = tmp_path_factory.mktemp("cmp")
    args = ["compare", f"{tiny_bert_dir}@avg", f"{tiny_bert_dir}@cls_before_pooler", "--data-dir", str(small_data_dir),
            "--resamples", "100", "--k", "5", "--movers", "3", "--json", str(out / "c.json"),
            "--save-scores", str(out / "scores")]
    with pytest.raises(SystemExit) as e:
        main(args)
    assert e.value.code == 0
    return out, json.loads((out / "c.json").read_text())


def test_compare_writes_a_verdict_row_per_task_avg_alignment_and_uniformity(comparison):
    _, doc = comparison
    metrics = [r["metric"] for r in doc["rows"]]
    assert metrics == [*TASKS, "avg", "alignment", "uniformity"]
    for r in doc["rows"]:
        assert r["p_holm"] >= r["p_value"] - 1e-12 and 0 <= r["p_value"] <= 1
        if r["metric"] not in ("alignment", "uniformity"):  # permutation p-values are never 0
            assert r["p_value"] >= 1 / 101
        assert r["low"] <= r["delta"] <= r["high"] or r["metric"] in ("alignment", "uniformity")
        assert r["verdict"] in ("better", "worse", "no detectable difference")
        assert r["delta"] == pytest.approx(r["other_value"] - r["baseline_value"], abs=1e-9)
    assert "Holm" in doc["notes"][0]


def test_compare_spearman_equals_eval(comparison, tiny_bert_dir, small_data_dir):
    from simcse_analysis.encoder import load_encoder
    from simcse_analysis.sts_eval import evaluate_sts

    _, doc = comparison
    want = evaluate_sts(load_encoder(tiny_bert_dir, pooler="avg"), data_dir=small_data_dir).scores
    got = doc["models"][0]["scores"]
    for t in [*TASKS, "avg"]:
        # 1e-3 (Spearman x100): the per-sentence cache may hold a vector encoded in another batch (other
        # padding), equal to float32 rounding, which can swap two near-tied pairs of this random tiny model
        assert got[t]["value"] == pytest.approx(want[t], abs=1e-3)
        assert got[t]["low"] <= got[t]["value"] <= got[t]["high"]


def test_compare_reports_cka_per_layer_knn_overlap_and_movers(comparison):
    _, doc = comparison
    pair = doc["pairs"][0]
    cka = np.array([[np.nan if v is None else v for v in row] for row in pair["cka"]])
    assert cka.shape == (4, 4)  # embeddings + 3 layers on each side
    assert np.all(np.isnan(cka[:, 0]))  # [CLS] at layer 0 is one vector for every sentence: CKA undefined
    ok = cka[np.isfinite(cka)]
    assert ok.size == 12 and np.all((ok >= -1e-9) & (ok <= 1 + 1e-9))
    assert len(pair["cka_debiased_diagonal"]) == 4
    assert 0 <= pair["knn_jaccard"] <= 1
    assert len(pair["movers"]) == 3 * len(TASKS)
    m = pair["movers"][0]
    assert abs(m["move"]) == pytest.approx(abs(m["rank_other"] - m["rank_baseline"]))
    assert {"sentence1", "sentence2", "gold", "cos_baseline", "cos_other"} <= set(m)


def test_compare_from_saved_scores_reproduces_the_verdicts(comparison, run_cli, small_data_dir):
    out, doc = comparison
    code, stdout, err = run_cli("compare", out / "scores" / "0.json", out / "scores" / "1.json", "--data-dir",
                                small_data_dir, "--resamples", "100", "--k", "5", "--movers", "3",
                                "--json", out / "again.json")
    assert code == 0, err
    again = json.loads((out / "again.json").read_text())
    assert [r["p_holm"] for r in again["rows"]] == pytest.approx([r["p_holm"] for r in doc["rows"]])
    assert again["pairs"][0]["cka"] is None  # saved scores hold no hidden layers
    assert "p (Holm)" in stdout and "verdict" in stdout


def test_a_checkpoint_against_an_identical_copy_shows_no_difference(run_cli, tiny_bert_dir, tiny_bert_copy,
                                                                    small_data_dir, tmp_path):
    code, _, err = run_cli("compare", f"{tiny_bert_dir}@avg", f"{tiny_bert_copy}@avg", "--data-dir", small_data_dir,
                             "--resamples", "100", "--k", "5", "--json", tmp_path / "same.json")
    assert code == 0, err
    doc = json.loads((tmp_path / "same.json").read_text())
    for r in doc["rows"]:
        assert r["delta"] == pytest.approx(0, abs=1e-9) and r["verdict"] == "no detectable difference"
    assert np.allclose(np.diag(doc["pairs"][0]["cka"]), 1.0)
    assert doc["pairs"][0]["knn_jaccard"] == pytest.approx(1.0)


@pytest.mark.parametrize("extra, match", [
    ((), "at least 2 checkpoints"),
    (("--resamples", "99"), "--resamples must be at least 100"),
    (("--k", "100000"), "--k must be between 1 and N - 1"),
])
def test_bad_input_exits_2_with_one_line(run_cli, tiny_bert_dir, small_data_dir, tmp_path, extra, match):
    models = [str(tiny_bert_dir)] if not extra else [f"{tiny_bert_dir}@avg", f"{tiny_bert_dir}@cls_before_pooler"]
    code, _, err = run_cli("compare", *models, "--data-dir", small_data_dir, *extra, "--json", tmp_path / "x.json")
    assert code == 2 and _one_error_line(err) and match in err
    assert not (tmp_path / "x.json").exists()


def test_scores_on_different_pairs_are_refused(comparison, run_cli, tiny_bert_dir, small_data_dir, tmp_path):
    out, _ = comparison
    code, _, err = run_cli("compare", f"{tiny_bert_dir}@avg", f"{tiny_bert_dir}@cls_before_pooler", "--data-dir",
                           small_data_dir, "--variant", "raw", "--resamples", "100", "--k", "5", "--no-layers",
                           "--save-scores", tmp_path / "raw")
    assert code == 0, err
    code, _, err = run_cli("compare", out / "scores" / "0.json", tmp_path / "raw" / "1.json", "--data-dir",
                           small_data_dir, "--resamples", "100", "--k", "5")
    assert code == 2 and _one_error_line(err)
    assert "cannot pair" in err and "STS12" in err


def test_comparison_page_has_verdicts_heatmap_and_a_searchable_movers_table(comparison):
    from reports.compare_page import render_compare_page

    _, doc = comparison
    page = render_compare_page(doc)
    assert 'id="verdict-table"' in page and 'id="movers-table"' in page and 'class="filter"' in page
    assert 'id="fig-cka-0"' in page and 'id="fig-sts"' in page and 'id="fig-align-uniform"' in page
    n_scripts = page.count("<script")
    evil = "<img src=x onerror=alert(1)>"
    doc = json.loads(json.dumps(doc))
    doc["pairs"][0]["movers"][0]["sentence1"] = evil
    doc["rows"][0]["other"] = doc["pairs"][0]["other"] = evil + "</script><script>"
    page = render_compare_page(doc)
    assert evil not in page and "</script><script>" not in page and "&lt;img src=x onerror=alert(1)&gt;" in page
    assert page.count("<script") == n_scripts  # user text never opens a script block


def test_compare_out_writes_the_page(comparison, run_cli, small_data_dir, tmp_path):
    out, _ = comparison
    code, _, err = run_cli("compare", out / "scores" / "0.json", out / "scores" / "1.json", "--data-dir",
                           small_data_dir, "--resamples", "100", "--k", "5", "--out", tmp_path / "c.html")
    assert code == 0, err
    assert "Checkpoint comparison" in (tmp_path / "c.html").read_text()


def test_compare_is_the_library_entry_point_and_renders_in_a_notebook(tiny_bert_dir):
    """``simcse_analysis.comparison`` (what the CLI calls) refuses fewer than 2 checkpoints with a typed error,
    and its result renders its verdict table inline."""
    import simcse_analysis as sa
    from simcse_analysis.comparison import ComparisonReport, VerdictRow

    with pytest.raises(sa.InputError, match="at least 2 checkpoints"):
        sa.compare([str(tiny_bert_dir)])
    row = VerdictRow("a", "b", "STSBenchmark", 80.0, 81.0, 1.0, 0.2, 1.8, 0.01, 0.02, "better")
    page = ComparisonReport({}, [], [row], [])._repr_html_()
    assert "<table>" in page and "STSBenchmark" in page and "better" in page and "+1.000" in page


def test_report_adds_the_comparison_section_from_a_saved_document(comparison, report_record, run_cli, tmp_path,
                                                                  tiny_bert_dir, small_data_dir):
    """``report --compare-from F.json`` embeds the verdicts, similarity and movers tables (sortable, the movers
    searchable) and the comparison's figures; the record keeps the document, so ``--from-json`` shows it again.
    A comparison about checkpoints the page does not show is refused."""
    from reports.collect import save_record

    out_dir, doc = comparison
    rec, rec2, page_path = tmp_path / "record.json", tmp_path / "record2.json", tmp_path / "page.html"
    save_record(report_record, rec)
    code, _, err = run_cli("report", "--from-json", rec, "--compare-from", out_dir / "c.json", "--out", page_path)
    assert code == 2 and _one_error_line(err) and "which this report does not show" in err
    code, _, err = run_cli("report", f"{tiny_bert_dir}@avg", f"{tiny_bert_dir}@cls_before_pooler", "--data-dir",
                           small_data_dir, "--no-umap", "--no-layers", "--compare-from", out_dir / "c.json", "--out",
                           page_path, "--json", rec2)
    assert code == 0, err
    page = page_path.read_text()
    assert 'href="#comparison"' in page and 'id="verdicts"' in page and 'id="movers-table"' in page
    assert 'class="filter"' in page and 'querySelectorAll("input.filter")' in page
    for row in doc["rows"]:
        assert row["metric"] in page
    assert 'id="fig-cmp-forest"' in page and 'id="fig-sts"' not in page.replace('id="fig-cmp-sts"', "")
    again = tmp_path / "again.html"
    code, _, err = run_cli("report", "--from-json", rec2, "--out", again)
    assert code == 0, err
    assert 'id="verdicts"' in again.read_text()
    code, _, err = run_cli("report", "--from-json", rec, "--compare-from", out_dir / "scores" / "0.json",
                           "--out", again)
    assert code == 2 and _one_error_line(err) and "0.json" in err and "compare --json" in err
