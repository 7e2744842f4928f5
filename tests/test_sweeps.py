"""Sweeps on a tiny random BERT: the planned runs, their reuse and resumption, and the reduced table."""

from __future__ import annotations

import json
import statistics
from pathlib import Path

import pytest

from simcse_analysis.errors import InputError
from trainers.config import TrainConfig
from trainers.loop import train
from trainers.rundir import RunResult
from trainers.sweeps import (
    check_run_dirs,
    collect_runs,
    format_summary,
    parse_grid,
    parse_rates,
    plan_dropout_sweep,
    plan_grid_sweep,
    run_sweep,
    summarize,
)


def _base(model, corpus, data_dir, out, **kw) -> TrainConfig:
    settings = {"batch_size": 16, "max_steps": 2, "eval_steps": 1, "data_dir": str(data_dir)}
    settings.update(kw)
    return TrainConfig("unsup", str(model), [str(corpus)], str(out), **settings)


@pytest.fixture(scope="module")
def dropout_sweep(tmp_path_factory, tiny_trainer_bert, tiny_corpus, small_data_dir):
    """3 rates × 2 seeds, 2 steps each, evaluated at every step."""
    out = tmp_path_factory.mktemp("sweep") / "dropout"
    sweep = plan_dropout_sweep(_base(tiny_trainer_bert, tiny_corpus, small_data_dir, out), "0,0.1,fixed", [1, 2], out)
    results = run_sweep(sweep, progress=False)
    return sweep, results


def _trajectory(run_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (run_dir / "trajectory.jsonl").read_text().splitlines()]


def test_rate_tokens_are_canonical_and_checked():
    assert parse_rates("0, 0.10,fixed,fixed:0.2") == ["0", "0.1", "fixed:0.1", "fixed:0.2"]
    with pytest.raises(InputError, match="unknown rate 'high'"):
        parse_rates("0,high")
    with pytest.raises(InputError, match="listed twice"):
        parse_rates("0.1,0.10")


def test_grid_parses_to_canonical_values_and_refuses_empty_grids():
    assert parse_grid(["temperature=0.05,0.1", "lr=3e-5", "pooler=avg", "positive=crop:10%,dropout"]) == {
        "temperature": ["0.05", "0.1"], "learning_rate": ["3e-05"], "pooler": ["avg"],
        "positive": ["crop:0.1", "dropout"]}
    for bad, needle in (([], "zero runs"), (["temperature="], "zero runs"), (["colour=red"], "unknown setting"),
                        (["temperature=-1"], "must be > 0"), (["pooler=max"], "max")):
        with pytest.raises(InputError, match=needle):
            parse_grid(bad)


def test_sweep_plans_one_run_per_value_and_seed(tmp_path, tiny_trainer_bert, tiny_corpus, small_data_dir):
    base = _base(tiny_trainer_bert, tiny_corpus, small_data_dir, tmp_path)
    sweep = plan_grid_sweep(base, ["temperature=0.05,0.1", "pooler=avg,cls"], [7, 8], tmp_path / "g")
    assert len(sweep.runs) == 2 * 2 * 2
    assert len({r.output_dir for r in sweep.runs}) == 8
    first = sweep.runs[0]
    assert (first.config.temperature, first.config.pooler, first.config.seed) == (0.05, "avg", 7)
    assert first.output_dir == tmp_path / "g" / "temperature=0.05__pooler=avg" / "seed-7"
    cmd = first.command()
    assert cmd.startswith("simcse-analyze train unsup ") and "--seed 7" in cmd and "--pooler avg" in cmd
    assert cmd.endswith("--resume")
    assert not (tmp_path / "g").exists()  # planning writes nothing


def test_each_run_trains_its_own_rate_and_seed(dropout_sweep):
    sweep, results = dropout_sweep
    assert [(r.config["dropout"], r.config["fixed_dropout_mask"], r.config["seed"]) for r in results] == [
        (0.0, False, 1), (0.0, False, 2), (0.1, False, 1), (0.1, False, 2), (0.1, True, 1), (0.1, True, 2)]
    for run, result in zip(sweep.runs, results):
        assert Path(result.output_dir) == run.output_dir and result.status == "finished"
        assert [e["step"] for e in result.trajectory] == [0, 1, 2]
    # seeds change the data order and the dropout masks, so the first step's loss differs
    by_seed = {r.config["seed"]: r.trajectory[1]["loss"] for r in results if r.config["dropout"] == 0.1
               and not r.config["fixed_dropout_mask"]}
    assert by_seed[1] != by_seed[2]


def test_every_run_starts_from_the_same_point(dropout_sweep):
    # the evaluation before the first step sees the untouched base model: no seed or rate can change it
    _, results = dropout_sweep
    starts = {(r.trajectory[0]["stsb_spearman"], r.trajectory[0]["alignment"], r.trajectory[0]["uniformity"])
              for r in results}
    assert len(starts) == 1


def test_summary_is_mean_and_sample_std_of_each_runs_best(dropout_sweep):
    sweep, results = dropout_sweep
    summary = summarize(results, kind="dropout", keys=["dropout"], values=sweep.values, seeds=sweep.seeds)
    assert [p.label for p in summary.points] == ["dropout=0", "dropout=0.1", "dropout=fixed:0.1"]
    assert summary.missing == []
    for point, run_pair in zip(summary.points, (sweep.runs[0:2], sweep.runs[2:4], sweep.runs[4:6])):
        trajs = [_trajectory(r.output_dir) for r in run_pair]
        bests = [max(t, key=lambda e: e["stsb_spearman"]) for t in trajs]
        s = point.stats
        assert point.seeds == [1, 2]
        assert s["best_stsb_spearman"].mean == pytest.approx(statistics.mean(b["stsb_spearman"] for b in bests))
        assert s["best_stsb_spearman"].std == pytest.approx(statistics.stdev(b["stsb_spearman"] for b in bests))
        assert s["alignment_at_best"].mean == pytest.approx(statistics.mean(b["alignment"] for b in bests))
        assert s["best_step"].values == [b["step"] for b in bests]
        assert s["alignment_change"].values == pytest.approx([t[-1]["alignment"] - t[0]["alignment"] for t in trajs])
        mean_last = point.mean_trajectory[-1]
        assert mean_last["step"] == 2 and mean_last["n"] == 2
        assert mean_last["uniformity"] == pytest.approx(statistics.mean(t[-1]["uniformity"] for t in trajs))
    table = format_summary(summary)
    assert "fixed:0.1" in table and " ± " in table


def test_rerunning_a_finished_sweep_reuses_every_run(dropout_sweep):
    sweep, results = dropout_sweep
    assert check_run_dirs(sweep) == ["finished"] * 6
    stamps = {r.output_dir: (r.output_dir / "run.json").stat().st_mtime_ns for r in sweep.runs}
    again = run_sweep(sweep, progress=False)
    assert [r.trajectory for r in again] == [r.trajectory for r in results]
    assert {r.output_dir: (r.output_dir / "run.json").stat().st_mtime_ns for r in sweep.runs} == stamps


def test_collect_reads_the_runs_back_and_groups_them_by_rate(dropout_sweep):
    sweep, results = dropout_sweep
    found, skipped = collect_runs([sweep.out])
    assert skipped == [] and len(found) == 6
    summary = summarize(found, kind="dropout", keys=["dropout"])
    assert [p.settings for p in summary.points] == [{"dropout": "0"}, {"dropout": "0.1"}, {"dropout": "fixed:0.1"}]
    direct = summarize(results, kind="dropout", keys=["dropout"])
    assert [p.stats["best_stsb_spearman"].values for p in summary.points] == [
        p.stats["best_stsb_spearman"].values for p in direct.points]


class _Interrupt(Exception):
    pass


def _interrupt_at(step: int):
    from transformers import TrainerCallback

    class Stop(TrainerCallback):
        def on_step_end(self, args, state, control, **kwargs):
            if state.global_step == step:
                raise _Interrupt(f"killed at step {step}")
            return control

    return Stop()


def test_an_interrupted_sweep_resumes_where_it_stopped(tmp_path, tiny_trainer_bert, tiny_corpus, small_data_dir):
    base = _base(tiny_trainer_bert, tiny_corpus, small_data_dir, tmp_path, max_steps=3)
    out = tmp_path / "sweep"
    sweep = plan_dropout_sweep(base, "0.1", [1, 2], out)
    # seed 1 finishes; seed 2 is killed after step 2 (its state from step 2's evaluation is on disk)
    done = run_sweep(plan_dropout_sweep(base, "0.1", [1], out), progress=False)
    with pytest.raises(_Interrupt):
        run_sweep(sweep, progress=False, callbacks=[_interrupt_at(3)])
    assert check_run_dirs(sweep) == ["finished", "resume"]
    found, skipped = collect_runs([out])
    assert [r.config["seed"] for r in found] == [1] and len(skipped) == 1 and "running" in skipped[0]

    log: list[str] = []
    results = run_sweep(sweep, progress=False, log=log.append)
    assert any("seed 1: finished, reused" in m for m in log) and any("seed 2: resuming" in m for m in log)
    assert results[0].trajectory == done[0].trajectory
    clean = train(TrainConfig.from_dict({**sweep.runs[1].config.to_dict(), "output_dir": str(tmp_path / "clean")}),
                  progress=False)
    assert [e["step"] for e in results[1].trajectory] == [0, 1, 2, 3]
    for got, want in zip(results[1].trajectory, clean.trajectory):
        for key in ("loss", "stsb_spearman", "alignment", "uniformity"):
            assert got[key] == (None if want[key] is None else pytest.approx(want[key], rel=1e-5, abs=1e-6))
    assert RunResult.load(sweep.runs[1].output_dir).status == "finished"


def test_a_run_directory_holding_a_different_run_stops_the_sweep_before_training(
        tmp_path, tiny_trainer_bert, tiny_corpus, small_data_dir):
    base = _base(tiny_trainer_bert, tiny_corpus, small_data_dir, tmp_path, max_steps=1)
    out = tmp_path / "sweep"
    run_sweep(plan_dropout_sweep(base, "0.1", [1], out), progress=False)
    changed = plan_dropout_sweep(TrainConfig.from_dict({**base.to_dict(), "learning_rate": 1e-3}), "0,0.1", [1], out)
    with pytest.raises(InputError, match="different run"):
        run_sweep(changed, progress=False)
    assert not (out / "dropout=0").exists()  # nothing trained before the clash was found


def test_a_grid_over_positive_views_trains_with_each_augmentation(tmp_path, tiny_trainer_bert, tiny_corpus,
                                                                   small_data_dir):
    base = _base(tiny_trainer_bert, tiny_corpus, small_data_dir, tmp_path, max_steps=1, eval_at_start=False)
    sweep = plan_grid_sweep(base, ["positive=word_deletion:30%,delete_one_word"], [3], tmp_path / "aug")
    results = run_sweep(sweep, progress=False)
    assert [r.config["positive"] for r in results] == ["word_deletion:0.3", "delete_one_word"]
    for r in results:
        assert r.status == "finished"
        assert json.loads(Path(r.last_dir, "simcse_analysis.json").read_text())["positive"] == r.config["positive"]
