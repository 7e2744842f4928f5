"""``eval`` reports a bootstrap CI per task and for the average (JSON and a compact terminal table)."""

from __future__ import annotations

import json

import pytest

from simcse_analysis.sts_data import TASKS


def test_eval_json_and_table_carry_95_percent_cis(run_cli, tiny_bert_dir, small_data_dir, tmp_path):
    out = tmp_path / "e.json"
    code, stdout, err = run_cli("eval", tiny_bert_dir, "--data-dir", small_data_dir, "--resamples", "200",
                                "--json", out)
    assert code == 0, err
    r = json.loads(out.read_text())["results"][0]
    assert r["ci"]["resamples"] == 200 and r["ci"]["alpha"] == 0.05
    assert set(r["intervals"]) == {*TASKS, "avg"}
    for t, iv in r["intervals"].items():
        assert iv["low"] <= r["scores"][t] <= iv["high"] and iv["stderr"] > 0
    assert "95% CI" in stdout
    ci_line = stdout.splitlines()[stdout.splitlines().index(next(ln for ln in stdout.splitlines() if "95% CI" in ln)) + 3]
    assert f"{r['intervals']['avg']['low']:.2f}-{r['intervals']['avg']['high']:.2f}" in ci_line


def test_eval_without_resamples_has_no_intervals(run_cli, tiny_bert_dir, small_data_dir, tmp_path):
    out = tmp_path / "e.json"
    code, stdout, _ = run_cli("eval", tiny_bert_dir, "--data-dir", small_data_dir, "--resamples", "0", "--json", out)
    assert code == 0 and "CI" not in stdout
    assert json.loads(out.read_text())["results"][0]["intervals"] == {}


@pytest.mark.parametrize("n", ["1", "99"])
def test_eval_refuses_fewer_than_100_resamples(run_cli, tiny_bert_dir, small_data_dir, n):
    code, _, err = run_cli("eval", tiny_bert_dir, "--data-dir", small_data_dir, "--resamples", n)
    assert code == 2 and err.strip().startswith("error: --resamples must be at least 100") and len(err.strip().splitlines()) == 1


def test_align_uniform_reports_standard_errors_of_both_figures(run_cli, tiny_bert_dir, small_data_dir, tmp_path):
    import numpy as np

    from simcse_analysis.analysis import AnalysisSettings, load_protocol_data
    from simcse_analysis.encoder import load_encoder
    from simcse_analysis.metrics.stats import alignment_terms

    out = tmp_path / "au.json"
    code, stdout, err = run_cli("align-uniform", tiny_bert_dir, "--data-dir", small_data_dir, "--json", out)
    assert code == 0, err
    r = json.loads(out.read_text())["results"][0]
    data = load_protocol_data(AnalysisSettings(), small_data_dir)
    emb = load_encoder(tiny_bert_dir).encode(data.sentences)
    pos = data.pairs[data.positive]
    terms = alignment_terms(emb[pos[:, 0]], emb[pos[:, 1]])
    assert r["alignment_stderr"] == pytest.approx(terms.std(ddof=1) / np.sqrt(len(terms)), rel=1e-6)
    assert r["uniformity_stderr"] > 0  # exact value, U-statistic se
    assert f"± {r['alignment_stderr']:.4f}" in stdout and f"± {r['uniformity_stderr']:.4f}" in stdout


def test_report_sts_table_shows_each_ci_under_its_value():
    from reports.html import STS_COLUMNS, sts_table

    keys = [k for k, _ in STS_COLUMNS]
    test = {"scores": {k: 70.0 + i for i, k in enumerate(keys)}, "variant": "senteval", "aggregation": "all",
            "intervals": {k: {"low": 68.0 + i, "high": 72.25 + i} for i, k in enumerate(keys)}}
    dev = {"scores": {"STSBenchmark": 80.0}, "intervals": {}}
    html = sts_table({"models": [{"label": "m", "sts_test": test, "sts_dev": dev}]})
    assert html.count('<small class="ci">') == len(keys)
    assert '70.00<br><small class="ci">[68.0, 72.2]</small></td>' in html  # 72.25 → 72.2 (round half even)
