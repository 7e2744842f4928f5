"""Training faults end cleanly (issue 15): a loss that turns NaN stops the run at once naming the step, keeps the
good checkpoints and cannot be resumed from; a full disk during a checkpoint save keeps the previous checkpoint
loadable and the run resumable."""

from __future__ import annotations

import errno
import hashlib
import json
import os
from pathlib import Path

import numpy as np
import pytest
from test_hardening import assert_one_error


def tree_digest(d: Path) -> dict[str, str]:
    return {str(p.relative_to(d)): hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(d.rglob("*"))
            if p.is_file()}


def train_args(model: Path, corpus: Path, out: Path, data: Path, *extra: str, steps: int = 6,
               eval_steps: int = 1) -> list:
    return ["train", "unsup", "--model", model, "--train-file", corpus, "--out", out, "--batch-size", "16",
            "--max-steps", str(steps), "--eval-steps", str(eval_steps), "--quiet", "--data-dir", data, *extra]


def assert_loadable_and_finite(checkpoint: Path) -> np.ndarray:
    from simcse_analysis.encoder import load_encoder

    enc = load_encoder(checkpoint, use_cache=False, device="cpu")
    emb = enc.encode(["a finite sentence.", "another one."])
    assert np.isfinite(emb).all()
    return emb


def test_nan_loss_stops_naming_the_step_keeps_good_checkpoints_and_resume_refuses(run_cli, tmp_path,
                                                                                  tiny_trainer_bert, tiny_corpus,
                                                                                  small_data_dir):
    out = tmp_path / "run"
    args = train_args(tiny_trainer_bert, tiny_corpus, out, small_data_dir, "--lr", "1e30", eval_steps=4)  # absurd
    code, _, err = run_cli(*args)
    assert_one_error(code, err, "training diverged at step 2: the loss is nan", "stopped without applying it",
                     "keeps best/ (step 0)", "Lower --lr (now 1e+30)", "--overwrite")
    run = json.loads((out / "run.json").read_text())
    assert run["status"] == "diverged" and run["diverged"]["step"] == 2
    assert json.loads((out / "best" / "simcse_analysis.json").read_text())["step"] == 0
    assert_loadable_and_finite(out / "best")
    kept = tree_digest(out / "best")

    for again in ((), ("--resume",)):  # rerun or resume: both refused, nothing touched
        code, _, err = run_cli(*args, *again)
        assert_one_error(code, err, f"--out {out} holds a run that diverged at step 2", "resuming would repeat it",
                         "--overwrite and a lower --lr")
    assert tree_digest(out / "best") == kept


def test_resume_refuses_a_state_with_non_finite_weights(run_cli, tmp_path, tiny_trainer_bert, tiny_corpus,
                                                        small_data_dir):
    from safetensors.torch import load_file, save_file

    out = tmp_path / "run"
    args = train_args(tiny_trainer_bert, tiny_corpus, out, small_data_dir, "--keep-state", steps=2)
    assert run_cli(*args)[0] == 0
    run = json.loads((out / "run.json").read_text())
    run["status"] = "running"  # as if killed after saving the state of step 1 …
    (out / "run.json").write_text(json.dumps(run))
    weights = next((out / "state").glob("checkpoint-*")) / "model.safetensors"
    tensors = load_file(str(weights))
    first = next(iter(tensors))
    tensors[first] = tensors[first].clone().fill_(float("nan"))  # … with poisoned weights
    save_file(tensors, str(weights))
    code, _, err = run_cli(*args, "--resume")
    assert err.startswith("resuming from checkpoint-1")  # the one progress note, then the error
    assert_one_error(code, err.split("\n", 1)[1], f"the resumable state {weights} holds NaN or inf weights",
                     "--overwrite")


@pytest.fixture()
def disk_full_after_first_checkpoint(monkeypatch):
    """Every checkpoint save after the first one runs out of disk half-way through a file it writes."""
    import trainers.checkpoint_io as cio

    real_replace, real_write = cio.replace_dir, cio._write_json
    state = {"armed": False}

    def replace_dir(src, target):
        real_replace(src, target)
        state["armed"] = True

    def write_json(path, data):
        if state["armed"]:
            text = json.dumps(data)
            Path(path).parent.mkdir(parents=True, exist_ok=True)
            Path(path).write_text(text[: len(text) // 2])
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))
        real_write(path, data)

    monkeypatch.setattr(cio, "replace_dir", replace_dir)
    monkeypatch.setattr(cio, "_write_json", write_json)
    return monkeypatch


def test_disk_full_during_a_checkpoint_save_keeps_the_previous_one_loadable(run_cli, tmp_path, tiny_trainer_bert,
                                                                            tiny_corpus, small_data_dir,
                                                                            disk_full_after_first_checkpoint):
    out = tmp_path / "run"
    args = train_args(tiny_trainer_bert, tiny_corpus, out, small_data_dir, "--lr", "1e-3")
    code, _, err = run_cli(*args)
    assert_one_error(code, err, f"cannot write the run in {out}: No space left on device", "free space",
                     "continue with --resume", "best/ and the last saved state are intact")
    assert json.loads((out / "best" / "simcse_analysis.json").read_text())["step"] == 0
    before = assert_loadable_and_finite(out / "best")
    assert not [p.name for p in out.iterdir() if p.name.startswith(".")]  # no half-written checkpoint left
    assert json.loads((out / "run.json").read_text())["status"] == "running"

    disk_full_after_first_checkpoint.undo()  # space freed: the run resumes and finishes
    code, _, err = run_cli(*args, "--resume")
    assert code == 0, err
    assert json.loads((out / "run.json").read_text())["status"] == "finished"
    assert_loadable_and_finite(out / "last")
    assert before.shape == assert_loadable_and_finite(out / "best").shape


def test_embeddings_turning_nan_at_an_evaluation_stop_the_run(run_cli, tmp_path, tiny_trainer_bert, tiny_corpus,
                                                              small_data_dir):
    out = tmp_path / "run"
    code, _, err = run_cli(*train_args(tiny_trainer_bert, tiny_corpus, out, small_data_dir, "--lr", "1e30"))
    assert_one_error(code, err, "training diverged at step 1: the model's embeddings are NaN or inf",
                     "keeps best/ (step 0)")
    assert not (out / "state").exists() or not any((out / "state").iterdir())  # no poisoned state saved
    assert_loadable_and_finite(out / "best")
