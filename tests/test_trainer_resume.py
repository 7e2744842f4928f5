"""A run killed with SIGKILL resumes with ``--resume`` and ends exactly like an uninterrupted run."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path

from trainers.config import TrainConfig
from trainers.loop import train

# Runs the config given as JSON and SIGKILLs itself right after the evaluation at step 4 is written to
# trajectory.jsonl — before the resumable state of step 4 is saved (the latest one is step 2).
KILLER = """
import json, os, signal, sys
from transformers import TrainerCallback
from trainers.config import TrainConfig
from trainers.loop import train

class Kill(TrainerCallback):
    def on_evaluate(self, args, state, control, **kwargs):
        if state.global_step == 4:
            os.kill(os.getpid(), signal.SIGKILL)

train(TrainConfig.from_dict(json.loads(sys.argv[1])), progress=False, callbacks=[Kill()])
"""


def _config(out: Path, model: Path, corpus: Path, data: Path) -> TrainConfig:
    return TrainConfig("unsup", str(model), [str(corpus)], str(out), batch_size=16, max_steps=6, eval_steps=2,
                       dropout=0.1, data_dir=str(data))


def test_killed_run_resumes_to_the_same_trajectory_and_weights(run_cli, tmp_path, tiny_trainer_bert, tiny_corpus,
                                                               small_data_dir):
    reference = train(_config(tmp_path / "full", tiny_trainer_bert, tiny_corpus, small_data_dir), progress=False)

    cfg = _config(tmp_path / "killed", tiny_trainer_bert, tiny_corpus, small_data_dir)
    repo = Path(__file__).resolve().parents[1]
    proc = subprocess.run([sys.executable, "-c", KILLER, json.dumps(cfg.to_dict())], cwd=repo,
                          capture_output=True, text=True, timeout=600, check=False)
    assert proc.returncode == -signal.SIGKILL, proc.stderr[-2000:]
    out = Path(cfg.output_dir)
    steps = [json.loads(line)["step"] for line in (out / "trajectory.jsonl").read_text().splitlines()]
    assert steps == [0, 2, 4]  # evaluated step 4 ...
    assert [p.name for p in (out / "state").iterdir()] == ["checkpoint-2"]  # ... but saved only step 2
    assert json.loads((out / "run.json").read_text())["status"] == "running"

    code, _, stderr = run_cli("train", *cfg.cli_args(), "--resume", "--quiet")
    assert code == 0, stderr
    assert "resuming from checkpoint-2" in stderr
    assert (out / "trajectory.jsonl").read_text() == (tmp_path / "full" / "trajectory.jsonl").read_text()
    for kind in ("best", "last"):
        assert (out / kind / "model.safetensors").read_bytes() == \
            (tmp_path / "full" / kind / "model.safetensors").read_bytes()
    assert json.loads((out / "run.json").read_text())["status"] == "finished"
    assert [e["step"] for e in reference.trajectory] == [0, 2, 4, 6]
