"""``simcse-analyze compare``: paired verdicts, CKA/kNN/movers, saved scores and bad input (tiny BERTs, small data)."""

from __future__ import annotations

import json
import math

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
    assert doc["version"] == 2 and "simultaneous" in doc["design"] and "one family per comparison" in doc["design"]
    for r in doc["rows"]:
        assert r["p_adjusted"] >= r["p_value"] - 1e-12 and 0 <= r["p_value"] <= 1
        assert r["low"] <= r["delta"] <= r["high"]
        assert r["family"] == f"{r['other']} vs {r['baseline']}" and r["family_size"] == len(metrics)
        space = r["metric"] in ("alignment", "uniformity")
        assert r["verdict"] in (("lower", "higher") if space else ("better", "worse")) + ("no detectable difference",)
        assert (r["low"] > 0 or r["high"] < 0) == (r["verdict"] != "no detectable difference") == (
            r["p_adjusted"] < 0.05)
        assert r["delta"] == pytest.approx(r["other_value"] - r["baseline_value"], abs=1e-9)
    assert doc["pairs"][0]["geometry"]


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
    assert [r["p_adjusted"] for r in again["rows"]] == pytest.approx([r["p_adjusted"] for r in doc["rows"]])
    assert [r["verdict"] for r in again["rows"]] == [r["verdict"] for r in doc["rows"]]
    assert again["pairs"][0]["cka"] is None  # saved scores hold no hidden layers
    assert "p (adj.)" in stdout and "verdict" in stdout and "design:" in stdout


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


# ------------------------------------------------------------------------------- the design, by simulation
def _simulate(rng: np.random.Generator, noise: list[float], sizes: dict[str, list[int]], *, shared: float = 0.5,
              own_corr: float = 0.0, ties: bool = True, align_shift: list[float] | None = None, n_pos: int = 300,
              n_sent: int = 400):
    """One seeded dataset and ``len(noise)`` checkpoints' scores on it (what ``compare`` pairs).

    Per task: latent similarity ``z ~ N(0, 1)`` per pair; gold ``z`` (``ties=False``) or on STS's 0.2 grid;
    checkpoint j predicts ``z + shared·e + noise_j·e_j`` (``e`` an error every checkpoint shares, as checkpoints
    of one model do; the own errors ``e_j`` correlate ``own_corr`` with each other), so Spearman
    ρ_j = (6/π)·asin(r_j/2), ``r_j = 1/√(1 + shared² + noise_j²)`` with continuous gold. Alignment terms: a common per-pair term + noise + ``align_shift[j]``; embeddings: common sentence
    centres + noise (exchangeable: the true Δ ℓ_uniform is 0), whose exact kernel row means give ℓ_uniform.
    """
    from simcse_analysis.comparison import ModelScores, TaskScores

    k = len(noise)
    gold, preds = {}, [{} for _ in range(k)]
    for t, b in sizes.items():
        z = rng.normal(size=b[-1])
        gold[t] = np.round(np.clip(2.5 + 1.2 * z, 0, 5) * 5) / 5 if ties else z
        e = rng.normal(size=(k + 2, b[-1]))
        for j in range(k):
            own = math.sqrt(own_corr) * e[k + 1] + math.sqrt(1 - own_corr) * e[j]
            preds[j][t] = z + shared * e[k] + noise[j] * own
    common = rng.gamma(4.0, 0.1, size=n_pos)
    centres = rng.normal(size=(n_sent, 8)) * np.linspace(2.0, 0.5, 8)
    models = []
    for j in range(k):
        terms = common + 0.05 * rng.normal(size=n_pos) + (align_shift[j] if align_shift else 0.0)
        x = centres + rng.normal(size=(n_sent, 8))
        x /= np.linalg.norm(x, axis=1, keepdims=True)
        # exp(−2‖x_i − x_j‖²) on the sphere; einsum, not a BLAS matmul, whose threads contend on a busy CI machine
        kernel = np.exp(-2.0 * np.maximum(2.0 - 2.0 * np.einsum("id,jd->ij", x, x), 0.0))
        np.fill_diagonal(kernel, 0.0)
        rows = kernel.sum(axis=1) / (n_sent - 1)
        models.append(ModelScores(f"m{j}", {}, {t: TaskScores([t], b, t, preds[j][t]) for t, b in sizes.items()},
                                  "s", terms, float(np.log(rows.mean())), rows, None))
    return models, gold


#: the seven tasks' families at a simulation size (the FWER and coverage do not need the real sizes: the
#: normal approximation is only better at 1,186–4,927 pairs); STS12 keeps two sub-datasets
SMALL = {"STS12": [0, 150, 300], "STS13": [0, 300], "STS14": [0, 300], "STS15": [0, 300], "STS16": [0, 300],
         "STSBenchmark": [0, 300], "SICKRelatedness": [0, 300]}


def _spearman_of_normal(noise: float, shared: float = 0.5) -> float:
    return 6 / math.pi * math.asin(1 / math.sqrt(1 + shared ** 2 + noise ** 2) / 2)


def _shown_agrees(r) -> bool:
    """The verdict agrees with the interval as printed and with the adjusted p-value."""
    from simcse_analysis.comparison import format_interval

    lo, hi = (float(v) for v in format_interval(r, ".2f").strip("[]").split(", "))
    excludes = lo > 0 or hi < 0
    return excludes == (r.verdict != "no detectable difference") == (r.p_adjusted < 0.05)


def test_family_wise_error_stays_below_alpha_under_the_global_null_for_2_3_and_8_checkpoints():
    """300 seeded datasets, 8 equally good checkpoints (7 tasks, avg, ℓ_align, ℓ_uniform: 10 rows per
    comparison). Any verdict other than "no detectable difference" is an error. The default families (one per
    comparison) and ``family="table"`` for the first 2, 3 and all 8 checkpoints keep the family-wise error at
    most alpha (+ 2 Monte Carlo sd); without the adjustment (each row at 5%) it is far above."""
    from simcse_analysis.comparison import CompareSettings, paired_estimates, simultaneous_tests

    rng = np.random.default_rng(2023)
    per_comparison, table, unadjusted = [], {2: [], 3: [], 8: []}, []
    default, whole = CompareSettings(), CompareSettings(family="table")
    for _ in range(300):
        models, gold = _simulate(rng, [0.5] * 8, SMALL)
        estimates = paired_estimates(models, gold, default)
        rows = simultaneous_tests(estimates, default)
        assert all(_shown_agrees(r) for r in rows)
        for j in range(1, 8):
            family = [r for r in rows if r.other == f"m{j}"]
            per_comparison.append(any(r.verdict != "no detectable difference" for r in family))
            unadjusted.append(any(r.p_value < 0.05 for r in family))
        for k, errors in table.items():
            rows_k = simultaneous_tests([e for e in estimates if int(e.row.other[1:]) < k], whole)
            errors.append(any(r.verdict != "no detectable difference" for r in rows_k))
    rates = {"per comparison": float(np.mean(per_comparison))} | {f"table of {k}": float(np.mean(v))
                                                                     for k, v in table.items()}
    print("family-wise error under the global null:", {k: round(v, 4) for k, v in rates.items()},
          f"unadjusted {np.mean(unadjusted):.3f}")
    assert 0.02 <= rates["per comparison"] <= 0.05 + 2 * math.sqrt(0.05 * 0.95 / len(per_comparison))
    for k in table:
        assert rates[f"table of {k}"] <= 0.05 + 2 * math.sqrt(0.05 * 0.95 / 300)
    assert np.mean(unadjusted) > 0.2  # the simulation can tell a procedure that does not adjust


def test_simultaneous_intervals_cover_the_true_differences():
    """300 datasets, a baseline and 3 checkpoints with known Spearman differences (continuous gold: ρ_s is
    exact), known alignment shifts and no uniformity difference: every row of a comparison inside its interval
    in 93–97% of the 900 comparisons; the verdicts agree with the intervals shown."""
    from simcse_analysis.comparison import CompareSettings, verdict_rows

    noise, shift = [0.5, 0.35, 0.7, 0.5], [0.0, -0.01, 0.0, 0.02]
    truth = {j: {"sts": 100 * (_spearman_of_normal(noise[j]) - _spearman_of_normal(noise[0])),
                 "alignment": shift[j] - shift[0], "uniformity": 0.0} for j in range(1, 4)}
    rng = np.random.default_rng(97)
    covered = []
    for _ in range(300):
        models, gold = _simulate(rng, noise, SMALL, ties=False, align_shift=shift)
        rows = verdict_rows(models, gold, CompareSettings())
        assert all(_shown_agrees(r) for r in rows)
        for j in range(1, 4):
            true = truth[j]
            covered.append(all(r.low <= true.get(r.metric, true["sts"]) <= r.high for r in rows
                               if r.other == f"m{j}"))
    print(f"simultaneous coverage {np.mean(covered):.3f} over {len(covered)} comparisons of 10 rows")
    assert 0.93 <= np.mean(covered) <= 0.97


def test_power_to_detect_two_spearman_points_on_stsb_sized_data_with_8_checkpoints():
    """100 datasets; STS-B at its real size (1,379 pairs, STS's tied gold) inside the full default family
    (7 tasks, avg, ℓ_align, ℓ_uniform: m = 10); the baseline at ρ_s = 0.80 and 7 checkpoints at 0.82 (Δ = 2
    Spearman points) whose predictions correlate 0.986 with the baseline's (checkpoints of one model a few
    hundred steps apart): se(Δ) ≈ 0.31 points, detected ("better" on STSBenchmark) in ≥ 99% of the 700
    comparisons. The verdicts use no resampling, so this holds at every ``--resamples``.

    The data decide the rest: with predictions correlated 0.97 (se ≈ 0.42) the power is ≈ 0.97, with 0.88
    (se ≈ 0.83; two poolers of one model) ≈ 0.35 — and no level-0.05 test of that one row reaches 0.99 there
    (unadjusted: ≈ 0.67); 2 points on 1,379 pairs is then within the noise.
    """
    from simcse_analysis.comparison import CompareSettings, verdict_rows

    r = {rs: 2 * math.sin(math.pi * rs / 6) for rs in (0.80, 0.82)}  # Pearson r of a normal pair with that ρ_s
    shared2 = 0.3
    noise = [math.sqrt(1 / r[0.80] ** 2 - 1 - shared2)] + [math.sqrt(1 / r[0.82] ** 2 - 1 - shared2)] * 7
    sizes = {**SMALL, "STSBenchmark": [0, 1379]}
    rng = np.random.default_rng(7)
    hits, deltas = [], []
    for _ in range(100):
        models, gold = _simulate(rng, noise, sizes, shared=math.sqrt(shared2), own_corr=0.9)
        rows = [row for row in verdict_rows(models, gold, CompareSettings()) if row.metric == "STSBenchmark"]
        assert all(row.family_size == 10 for row in rows)
        hits += [row.verdict == "better" for row in rows]
        deltas += [row.delta for row in rows]
    print(f"power {np.mean(hits):.4f} over {len(hits)} comparisons (mean Δ {np.mean(deltas):.2f} points)")
    assert np.mean(deltas) == pytest.approx(2.0, abs=0.15)
    assert np.mean(hits) >= 0.99


# ------------------------------------------------------------------------------- the design, deterministic
def _models_for(rng: np.random.Generator, k: int):
    return _simulate(rng, [0.5, 0.45, 0.6, 0.5, 0.3][:k], {"STSBenchmark": [0, 300], "SICKRelatedness": [0, 200]})


def test_adding_a_checkpoint_changes_no_other_comparison_under_the_default_families():
    from simcse_analysis.comparison import CompareSettings, verdict_rows

    models, gold = _models_for(np.random.default_rng(3), 5)
    two = verdict_rows(models[:2], gold, CompareSettings())
    five = [r for r in verdict_rows(models, gold, CompareSettings()) if r.other == "m1"]
    assert [(r.metric, r.low, r.high, r.p_adjusted, r.verdict) for r in two] == [
        (r.metric, r.low, r.high, r.p_adjusted, r.verdict) for r in five]
    table = [r for r in verdict_rows(models, gold, CompareSettings(family="table")) if r.other == "m1"]
    assert all(r.family == "all rows" and r.family_size == 4 * len(two) for r in table)  # the page says which
    assert all(t.high - t.low > f.high - f.low for t, f in zip(table, five))  # a larger family: wider intervals


def test_verdicts_do_not_depend_on_resamples_or_seed():
    """The old design's smallest adjusted p was m/(R + 1): 100 resamples could not find any difference."""
    from simcse_analysis.comparison import CompareSettings, verdict_rows

    models, gold = _models_for(np.random.default_rng(4), 3)
    a = verdict_rows(models, gold, CompareSettings(resamples=100, seed=1))
    b = verdict_rows(models, gold, CompareSettings(resamples=5000, seed=9))
    assert [(r.low, r.high, r.p_adjusted, r.verdict) for r in a] == [(r.low, r.high, r.p_adjusted, r.verdict)
                                                                     for r in b]


def test_a_clear_difference_is_found_whatever_the_number_of_checkpoints_and_resamples():
    """The issue's case: Δ ≈ −10 points with a tight interval read "no detectable difference" (p = 0.0559) at
    8 checkpoints, and p = 0.158 at --resamples 100. Now: "worse", p (adj.) printed as < 1e-16."""
    from simcse_analysis.comparison import CompareSettings, verdict_rows
    from simcse_analysis.metrics.stats import format_p

    rng = np.random.default_rng(5)
    models, gold = _simulate(rng, [0.4] + [1.0] * 7, {"STSBenchmark": [0, 1379], "STS13": [0, 1500]})
    for settings in (CompareSettings(resamples=100), CompareSettings(family="table")):
        rows = [r for r in verdict_rows(models, gold, settings) if r.metric == "avg"]
        assert all(r.delta < -8 and r.verdict == "worse" and format_p(r.p_adjusted) == "< 1e-16" for r in rows)


def test_alignment_and_uniformity_say_lower_or_higher_and_are_read_together(comparison):
    """Lower ℓ_align alone was "better" for a collapsed space; now lower/higher, and one reading of the pair."""
    from simcse_analysis.comparison import geometry_reading

    _, doc = comparison
    for r in doc["rows"]:
        if r["metric"] in ("alignment", "uniformity"):
            assert r["higher_is_better"] is None and r["verdict"] not in ("better", "worse")
    assert geometry_reading("lower", "higher").startswith("closer positive pairs at the cost of uniformity")
    assert geometry_reading("higher", "lower") == "more uniform at the cost of alignment (positive pairs farther apart)"
    assert "no detectable difference" in geometry_reading("lower", "no detectable difference")


def _edit_scores(src, dst, task, values):
    doc = json.loads(src.read_text())
    doc["tasks"][task]["predictions"] = values(len(doc["tasks"][task]["predictions"]))
    dst.write_text(json.dumps(doc))
    return dst


def test_nan_or_constant_predictions_get_no_verdict_and_say_why(comparison, run_cli, small_data_dir, tmp_path):
    """Issue 22: a scores file with null (NaN) or constant predictions was "worse" at the smallest p."""
    out, _ = comparison
    bad = _edit_scores(out / "scores" / "1.json", tmp_path / "bad.json", "STS13", lambda n: [None] * n)
    doc = json.loads(bad.read_text())
    doc["tasks"]["STS14"]["predictions"] = [0.5] * len(doc["tasks"]["STS14"]["predictions"])
    bad.write_text(json.dumps(doc))
    code, stdout, err = run_cli("compare", out / "scores" / "0.json", bad, "--data-dir", small_data_dir,
                                "--resamples", "100", "--k", "5", "--json", tmp_path / "c.json", "--out",
                                tmp_path / "c.html")
    assert code == 0, err
    rows = {r["metric"]: r for r in json.loads((tmp_path / "c.json").read_text())["rows"]}
    assert rows["STS13"]["verdict"] == "no verdict" and "NaN" in rows["STS13"]["reason"]
    assert "other:" in rows["STS13"]["reason"]
    assert rows["STS14"]["verdict"] == "no verdict" and "equal" in rows["STS14"]["reason"]
    assert rows["avg"]["verdict"] == "no verdict" and "STS13" in rows["avg"]["reason"]
    assert rows["STS12"]["verdict"] != "no verdict" and rows["STS12"]["family_size"] == len(rows) - 3
    assert "no verdict (other:" in stdout and "no verdict (other:" in (tmp_path / "c.html").read_text()
    models = json.loads((tmp_path / "c.json").read_text())["models"]
    assert set(models[1]["problems"]) == {"STS13", "STS14"} and models[1]["scores"]["STS13"]["value"] is None


@pytest.mark.parametrize("value, match", [("1000000000000", "at most 100,000"), ("many", "--resamples")])
def test_resamples_out_of_range_is_one_error_line(comparison, run_cli, small_data_dir, value, match):
    out, _ = comparison
    code, _, err = run_cli("compare", out / "scores" / "0.json", out / "scores" / "1.json", "--data-dir",
                           small_data_dir, "--resamples", value)
    assert code == 2 and match in err and "Traceback" not in err


@pytest.mark.parametrize("field, value, match", [("resamples", "many", "--resamples must be a whole number"),
                                                 ("resamples", 10 ** 12, "--resamples must be at most"),
                                                 ("alpha", "x", "--alpha must be a number"),
                                                 ("k", 2.5, "--k must be a whole number"),
                                                 ("family", "pairs", "--family must be one of")])
def test_compare_settings_refuse_bad_values_with_an_input_error(field, value, match):
    import simcse_analysis as sa
    from simcse_analysis.comparison import CompareSettings

    with pytest.raises(sa.InputError, match=match):
        CompareSettings(**{field: value})


def test_terminal_table_prints_underflowed_p_values_as_below_1e_16(comparison):
    from simcse_analysis.cli.compare import verdict_table
    from simcse_analysis.comparison import ComparisonReport

    _, doc = comparison
    doc = json.loads(json.dumps(doc))
    for r in doc["rows"]:
        r["p_value"], r["p_adjusted"] = 0.0, 0.0
    table = verdict_table(ComparisonReport.from_dict(doc))
    assert "< 1e-16" in table and not any(line.split()[-2:-1] == ["0"] for line in table.splitlines())


def test_a_version_1_document_is_still_read_and_its_space_rows_say_lower_or_higher(comparison, tmp_path):
    from reports.compare_page import render_compare_page
    from simcse_analysis.comparison import load_comparison

    _, doc = comparison
    old = json.loads(json.dumps(doc))
    old["version"] = 1
    for key in ("design",):
        old.pop(key)
    for r in old["rows"]:
        r["p_holm"] = r.pop("p_adjusted")
        for key in ("stderr", "family", "family_size", "reason"):
            r.pop(key)
        if r["metric"] == "alignment":
            r["verdict"], r["higher_is_better"] = "better", False
    (tmp_path / "v1.json").write_text(json.dumps(old))
    report = load_comparison(tmp_path / "v1.json")
    row = next(r for r in report.rows if r.metric == "alignment")
    assert row.verdict == "lower" and "version-1 document" in report.notes[0]
    page = render_compare_page(old)
    assert "version-1 document" in page and ">better</td>" not in page.split("alignment", 1)[1].split("</tr>")[0]
    (tmp_path / "v9.json").write_text(json.dumps({**old, "version": 9}))
    with pytest.raises(Exception, match="newer simcse-analysis"):
        load_comparison(tmp_path / "v9.json")


def test_isotropy_table_bolds_neither_alignment_nor_uniformity_alone(report_record):
    """The report bolded the lowest ℓ_align as best (a collapsed space's); the other columns keep their bold."""
    import re

    from reports.html import isotropy_table

    rows = re.findall(r"<tr>(.*?)</tr>", isotropy_table(report_record).split("<tbody>")[1])
    cells = [re.findall(r"<td[^>]*>", r)[1:] for r in rows]  # without the model cell
    for column in range(4):  # ℓ_align, ℓ_uniform and their dev-protocol twins
        assert not any('class="best"' in c[column] for c in cells)
    assert any('class="best"' in c[5] for c in cells)  # IsoScore (1 = isotropic) still has its best


def test_a_pair_analysed_with_the_baselines_shared_parts_equals_one_analysed_alone():
    """compare finds the baseline's neighbours and centred layers once for every pair (3+ checkpoints)."""
    from dataclasses import replace

    from simcse_analysis.comparison import CompareSettings, analyse_pair
    from simcse_analysis.metrics.similarity import cka_side, knn_indices

    rng = np.random.default_rng(11)
    models, _ = _models_for(rng, 3)
    with_space = [replace(m, embeddings=rng.normal(size=(120, 16)), layers=rng.normal(size=(3, 120, 16)))
                  for m in models]
    base, settings = with_space[0], CompareSettings(k=5)
    shared = (knn_indices(base.embeddings, 5), cka_side(list(base.layers)))
    for other in with_space[1:]:
        alone, reused = analyse_pair(base, other, None, settings), analyse_pair(base, other, None, settings, *shared)
        assert 0 < alone.knn_jaccard < 1 and reused.knn_jaccard == alone.knn_jaccard
        np.testing.assert_array_equal(np.array(reused.cka), np.array(alone.cka))
        assert reused.cka_debiased_diagonal == alone.cka_debiased_diagonal
