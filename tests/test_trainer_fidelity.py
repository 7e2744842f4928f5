"""Reference fidelity of the trainer (princeton-nlp/SimCSE ``trainers.py``): SICK-R dev is evaluated beside
STS-B dev at every evaluation, and ``--select-on stsb_sickr`` picks the checkpoint on their average."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from simcse_analysis.checkpoint import METADATA_FILE
from simcse_analysis.errors import InputError
from trainers.config import TrainConfig
from trainers.evaluation import selection_score
from trainers.loop import train


def test_selection_score_is_stsb_or_the_mean_with_sickr():
    e = {"stsb_spearman": 70.0, "sickr_spearman": 60.0}
    assert selection_score(e) == 70.0
    assert selection_score(e, "stsb_sickr") == 65.0
    assert math.isnan(selection_score({"stsb_spearman": 70.0}, "stsb_sickr"))  # an old trajectory entry
    assert math.isnan(selection_score({"stsb_spearman": float("nan"), "sickr_spearman": 1.0}, "stsb_sickr"))


def test_unknown_selection_metric_is_refused():
    with pytest.raises(InputError, match="--select-on 'sick'"):
        TrainConfig("unsup", "m", ["f.txt"], "out", select_on="sick").resolved()


@pytest.fixture(scope="module")
def avg_selected_run(tmp_path_factory, tiny_trainer_bert, tiny_corpus, small_data_dir):
    out = tmp_path_factory.mktemp("select") / "run"
    cfg = TrainConfig("unsup", str(tiny_trainer_bert), [str(tiny_corpus)], str(out), batch_size=16, max_steps=3,
                      eval_steps=1, learning_rate=1e-3, select_on="stsb_sickr", data_dir=str(small_data_dir))
    return train(cfg, progress=False)


def test_best_checkpoint_maximises_the_stsb_sickr_average(avg_selected_run):
    result = avg_selected_run
    traj = result.trajectory
    assert [e["step"] for e in traj] == [0, 1, 2, 3]
    assert all(math.isfinite(e["sickr_spearman"]) for e in traj)
    averages = [(e["stsb_spearman"] + e["sickr_spearman"]) / 2 for e in traj]
    best = traj[averages.index(max(averages))]  # the first of equal maxima, as the trainer keeps it
    meta = json.loads(Path(result.best_dir, METADATA_FILE).read_text())
    assert meta["step"] == best["step"] == result.best_step
    run = json.loads(Path(result.output_dir, "run.json").read_text())
    assert run["eval"]["sickr"] == {"task": "SICKRelatedness", "split": "dev", "variant": "raw", "pairs": 40}


def test_recorded_sickr_equals_the_sts_evaluation_of_the_saved_checkpoint(avg_selected_run, small_data_dir):
    from simcse_analysis.encoder import load_encoder
    from simcse_analysis.sts_eval import evaluate_sts

    result = avg_selected_run
    enc = load_encoder(result.last_dir, use_cache=False)
    sts = evaluate_sts(enc, ["SICKRelatedness", "STSBenchmark"], small_data_dir, split="dev")
    assert result.final["sickr_spearman"] == pytest.approx(sts.scores["SICKRelatedness"], rel=1e-5)
    assert result.final["stsb_spearman"] == pytest.approx(sts.scores["STSBenchmark"], rel=1e-5)
