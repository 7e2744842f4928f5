"""Sweep summaries: 95% t-intervals over seeds and paired differences between points (synthetic runs)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import t

from trainers.config import TrainConfig
from trainers.rundir import RunResult
from trainers.sweeps import format_summary, summarize


def _run(rate: str, seed: int, best: float, align: float) -> RunResult:
    traj = [{"step": 0, "loss": None, "stsb_spearman": best - 5, "alignment": align + 0.1, "uniformity": -2.0},
            {"step": 10, "loss": 1.0, "stsb_spearman": best, "alignment": align, "uniformity": -2.5}]
    cfg = TrainConfig(objective="unsup", model="m", train_files=["wiki.txt"], output_dir=f"/runs/{rate}/{seed}",
                      dropout=float(rate), seed=seed)
    return RunResult(output_dir=cfg.output_dir, status="finished", config=cfg.to_dict(), steps=10, trajectory=traj)


BEST = {"0.1": [76.0, 77.5, 75.9], "0": [70.0, 72.5, 70.4]}


@pytest.fixture()
def summary():
    runs = [_run(rate, s, b, 0.2 + 0.01 * s) for rate, bs in BEST.items() for s, b in zip((1, 2, 3), bs)]
    return summarize(runs, kind="dropout", keys=["dropout"], values={"dropout": ["0.1", "0"]}, seeds=[1, 2, 3])


def test_each_point_has_a_student_t_interval_over_seeds(summary):
    x = np.array(BEST["0.1"])
    half = t.ppf(0.975, 2) * x.std(ddof=1) / np.sqrt(3)
    st = summary.points[0].stats["best_stsb_spearman"]
    assert (st.ci_low, st.ci_high) == pytest.approx((x.mean() - half, x.mean() + half))


def test_paired_differences_pair_runs_by_seed(summary):
    (d,) = summary.differences
    diff = np.array(BEST["0"]) - np.array(BEST["0.1"])  # -6.0, -5.0, -5.5: tight once paired
    half = t.ppf(0.975, 2) * diff.std(ddof=1) / np.sqrt(3)
    assert d["seeds"] == [1, 2, 3] and d["baseline"] == summary.points[0].label
    assert d["best_stsb_spearman"].mean == pytest.approx(diff.mean())
    assert (d["best_stsb_spearman"].ci_low, d["best_stsb_spearman"].ci_high) == pytest.approx(
        (diff.mean() - half, diff.mean() + half))
    assert d["alignment_at_best"].mean == pytest.approx(0.0)  # same alignment per seed at both rates
    assert summary.to_dict()["differences"][0]["best_stsb_spearman"]["ci_high"] < 0


def test_summary_table_prints_the_intervals(summary):
    text = format_summary(summary)
    st = summary.points[0].stats["best_stsb_spearman"]
    assert f"[{st.ci_low:.2f}, {st.ci_high:.2f}]" in text
    assert "paired differences to" in text and "-5.50" in text
