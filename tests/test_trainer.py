"""End-to-end training on a tiny BERT: trajectory, best/last checkpoints, their format and metadata."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest

from simcse_analysis.checkpoint import METADATA_FILE
from trainers.config import TrainConfig
from trainers.evaluation import dev_metrics, load_dev_set
from trainers.loop import train
from trainers.rundir import RunResult

SENTENCES = ["A man is playing a guitar.", "Two dogs run through a field of tall grass.", "hi", "The cat sleeps."]


@pytest.fixture(scope="module")
def sup_run(tmp_path_factory, tiny_trainer_bert, tiny_nli, small_data_dir):
    out = tmp_path_factory.mktemp("sup") / "run"
    cfg = TrainConfig("sup", str(tiny_trainer_bert), [str(tiny_nli)], str(out), batch_size=8, max_steps=4,
                      eval_steps=2, learning_rate=2e-4, hard_negative_weight=0.5, data_dir=str(small_data_dir))
    return cfg, train(cfg, progress=False)


@pytest.fixture(scope="module")
def unsup_run(tmp_path_factory, tiny_trainer_bert, tiny_corpus, small_data_dir):
    out = tmp_path_factory.mktemp("unsup") / "run"
    cfg = TrainConfig("unsup", str(tiny_trainer_bert), [str(tiny_corpus)], str(out), batch_size=16, max_steps=2,
                      eval_steps=1, dropout=0.1, data_dir=str(small_data_dir))
    return cfg, train(cfg, progress=False)


def test_trajectory_records_every_evaluation_from_step_zero(sup_run):
    _, result = sup_run
    traj = result.trajectory
    assert [e["step"] for e in traj] == [0, 2, 4]
    for e in traj:
        assert set(e) == {"step", "epoch", "loss", "learning_rate", "stsb_spearman", "sickr_spearman", "alignment",
                          "uniformity"}
        assert 0 <= e["alignment"] <= 4 and -4 <= e["uniformity"] <= 0
    assert traj[0]["loss"] is None and all(np.isfinite(e["loss"]) for e in traj[1:])
    # linear decay to zero without warm-up (the reference's schedule): lr_k = lr · (1 − k / K)
    assert [e["learning_rate"] for e in traj] == pytest.approx([2e-4, 1e-4, 0.0])
    lines = Path(result.output_dir, "trajectory.jsonl").read_text().splitlines()
    assert [json.loads(line) for line in lines] == traj
    assert result.steps == 4 and result.status == "finished"


def test_best_checkpoint_holds_the_highest_dev_score(sup_run):
    _, result = sup_run
    best = max(result.trajectory, key=lambda e: e["stsb_spearman"])
    meta = json.loads(Path(result.best_dir, METADATA_FILE).read_text())
    assert meta["step"] == best["step"] == result.best_step
    assert meta["dev"]["stsb_spearman"] == result.best_stsb_spearman == best["stsb_spearman"]
    last = json.loads(Path(result.last_dir, METADATA_FILE).read_text())
    assert last["step"] == 4 and last["checkpoint"] == "last"


def test_in_training_evaluation_equals_evaluating_the_saved_checkpoint(sup_run, small_data_dir):
    from simcse_analysis.encoder import load_encoder

    _, result = sup_run
    enc = load_encoder(result.last_dir, use_cache=False)
    assert enc.pooler == "cls"  # supervised: MLP kept at test time, stored in BERT's pooler
    m = dev_metrics(lambda t: enc.encode(t, batch_size=128), load_dev_set(small_data_dir))
    for key in ("stsb_spearman", "sickr_spearman", "alignment", "uniformity"):
        assert m[key] == pytest.approx(result.final[key], rel=1e-5, abs=1e-8)


def test_checkpoint_loads_in_automodel_and_sentence_transformers_with_the_same_embeddings(sup_run):
    from sentence_transformers import SentenceTransformer
    from transformers import AutoModel

    from simcse_analysis.encoder import load_encoder

    _, result = sup_run
    _, info = AutoModel.from_pretrained(result.last_dir, output_loading_info=True)
    assert not info["missing_keys"] and not info["unexpected_keys"]
    ours = load_encoder(result.last_dir, use_cache=False).encode(SENTENCES)
    st = SentenceTransformer(result.last_dir, device="cpu").encode(SENTENCES, convert_to_numpy=True)
    np.testing.assert_allclose(st, ours, atol=1e-6, rtol=1e-5)


def test_unsupervised_checkpoint_drops_the_mlp_at_test_time(unsup_run):
    from sentence_transformers import SentenceTransformer

    from simcse_analysis.encoder import load_encoder

    _, result = unsup_run
    enc = load_encoder(result.best_dir, use_cache=False)
    assert enc.pooler == "cls_before_pooler"
    modules = json.loads(Path(result.best_dir, "modules.json").read_text())
    assert [m["path"] for m in modules] == ["", "1_Pooling"]
    st = SentenceTransformer(result.best_dir, device="cpu").encode(SENTENCES, convert_to_numpy=True)
    np.testing.assert_allclose(st, enc.encode(SENTENCES), atol=1e-6, rtol=1e-5)
    assert [e["step"] for e in result.trajectory] == [0, 1, 2]


def test_metadata_records_settings_data_hash_and_version(sup_run, tiny_nli):
    import simcse_analysis

    _, result = sup_run
    meta = json.loads(Path(result.last_dir, METADATA_FILE).read_text())
    assert meta["objective"] == "sup" and meta["pooler"] == "cls" and meta["train_pooler"] == "cls"
    assert meta["temperature"] == 0.05 and meta["hard_negative_weight"] == 0.5 and meta["seed"] == 42
    assert meta["dropout"] == 0.1 and meta["batch_size"] == 8 and meta["train_max_length"] == 32
    assert meta["data"][0]["sha256"] == hashlib.sha256(tiny_nli.read_bytes()).hexdigest()
    assert meta["data"][0]["rows"] == 40
    assert meta["package_version"] == simcse_analysis.__version__
    assert meta["sentence_transformers"] is True


def test_finished_run_drops_its_resumable_state_and_reloads(sup_run):
    cfg, result = sup_run
    assert not Path(cfg.output_dir, "state").exists()
    assert sorted(p.name for p in Path(cfg.output_dir).iterdir()) == ["best", "last", "run.json", "trajectory.jsonl"]
    again = RunResult.load(cfg.output_dir)
    assert again.to_dict() == result.to_dict()


def test_resuming_a_finished_run_trains_nothing(sup_run):
    cfg, result = sup_run
    before = Path(cfg.output_dir, "trajectory.jsonl").read_text()
    again = train(cfg, resume=True, progress=False)
    assert again.trajectory == result.trajectory
    assert Path(cfg.output_dir, "trajectory.jsonl").read_text() == before


def test_checkpoint_swap_interrupted_midway_is_recovered(tmp_path):
    from trainers.checkpoint_io import recover_dir, replace_dir

    target = tmp_path / "best"
    target.mkdir()
    (target / "w").write_text("old")
    new = tmp_path / ".best.tmp-1"
    new.mkdir()
    (new / "w").write_text("new")
    target.rename(tmp_path / ".best.old")  # killed between the two renames of a swap
    recover_dir(target)
    assert (target / "w").read_text() == "old" and not new.exists()
    again = tmp_path / ".best.tmp-2"
    again.mkdir()
    (again / "w").write_text("newer")
    replace_dir(again, target)
    assert (target / "w").read_text() == "newer" and not (tmp_path / ".best.old").exists()
