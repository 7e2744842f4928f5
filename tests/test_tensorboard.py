"""--report-to tensorboard: every evaluation's loss, learning rate, STS-B dev, alignment and uniformity are scalars in
the run's TensorBoard event files, read back with TensorBoard's own EventAccumulator (no mocking)."""

from __future__ import annotations

import json

import pytest

pytest.importorskip("tensorboard")

from simcse_analysis.errors import InputError
from trainers.config import TrainConfig, parse_report_to
from trainers.loop import TENSORBOARD_DIR, train

SCALARS = {"eval/loss": "loss", "eval/learning_rate": "learning_rate", "eval/stsb_spearman": "stsb_spearman",
           "eval/alignment": "alignment", "eval/uniformity": "uniformity"}


def _scalars(log_dir) -> dict[str, list[tuple[int, float]]]:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    out: dict[str, list[tuple[int, float]]] = {}
    files = sorted(log_dir.rglob("events.out.tfevents.*"))
    assert files, f"no event files under {log_dir}"
    for f in files:
        acc = EventAccumulator(str(f), size_guidance={"scalars": 0})
        acc.Reload()
        for tag in acc.Tags()["scalars"]:
            out.setdefault(tag, []).extend((e.step, e.value) for e in acc.Scalars(tag))
    return out


def test_report_to_is_parsed_and_kept_out_of_the_run_identity():
    assert parse_report_to("tensorboard, wandb,tensorboard") == ["tensorboard", "wandb"]
    assert parse_report_to("none") == parse_report_to(None) == parse_report_to("") == []
    c = TrainConfig("unsup", "m", ["f.txt"], "out", report_to="TensorBoard")
    assert c.report_to == ["tensorboard"]
    assert c.identity() == TrainConfig("unsup", "m", ["f.txt"], "out").identity()  # logging is not what is trained
    assert "--report-to tensorboard" in c.command_line()
    assert TrainConfig.from_dict(c.to_dict()) == c


def test_a_sweep_passes_report_to_to_every_run(tmp_path):
    from trainers.sweeps import plan_dropout_sweep

    base = TrainConfig("unsup", "m", ["f.txt"], str(tmp_path), report_to="tensorboard")
    sweep = plan_dropout_sweep(base, "0,0.1", [1, 2], tmp_path / "sweep")
    assert all(r.config.report_to == ["tensorboard"] for r in sweep.runs)
    assert all("--report-to tensorboard" in cmd for cmd in sweep.commands())


def test_every_evaluation_is_a_tensorboard_scalar(tmp_path, tiny_trainer_bert, tiny_corpus, small_data_dir):
    out = tmp_path / "run"
    cfg = TrainConfig("unsup", str(tiny_trainer_bert), [str(tiny_corpus)], str(out), batch_size=16, max_steps=3,
                      eval_steps=1, learning_rate=1e-4, data_dir=str(small_data_dir), report_to=["tensorboard"])
    result = train(cfg, progress=False)
    trajectory = [json.loads(line) for line in (out / "trajectory.jsonl").read_text().splitlines()]
    assert [e["step"] for e in trajectory] == [0, 1, 2, 3]

    scalars = _scalars(out / TENSORBOARD_DIR)
    assert set(SCALARS) <= set(scalars), sorted(scalars)
    for tag, key in SCALARS.items():
        logged = dict(scalars[tag])
        expected = {e["step"]: e[key] for e in trajectory if e[key] is not None}
        assert sorted(logged) == sorted(expected), tag
        for step, value in expected.items():
            assert logged[step] == pytest.approx(value, rel=1e-6, abs=1e-7), (tag, step)  # float32 in the file
    # the learning rate decays linearly to 0 over the 3 steps: the logged values show it
    lr = dict(scalars["eval/learning_rate"])
    assert lr[1] > lr[2] > lr[3] == 0.0
    assert result.status == "finished"
    assert not (out / "state").exists()  # the event files outlive the resumable state


def test_without_report_to_no_event_files_are_written(tmp_path, tiny_trainer_bert, tiny_corpus, small_data_dir):
    out = tmp_path / "run"
    cfg = TrainConfig("unsup", str(tiny_trainer_bert), [str(tiny_corpus)], str(out), batch_size=16, max_steps=1,
                      eval_steps=1, eval_at_start=False, data_dir=str(small_data_dir))
    train(cfg, progress=False)
    assert not (out / TENSORBOARD_DIR).exists()
    assert not list(out.rglob("events.out.tfevents.*"))


@pytest.mark.parametrize("name, words", [("tensorbored", "not a Hugging Face Trainer integration"),
                                         ("neptune", "package is not installed")])
def test_an_unknown_or_missing_integration_is_refused_before_the_run(tmp_path, tiny_trainer_bert, tiny_corpus,
                                                                      small_data_dir, name, words):
    from transformers.integrations.integration_utils import get_available_reporting_integrations

    if name in get_available_reporting_integrations():
        pytest.skip(f"{name} is installed here")
    out = tmp_path / "run"
    cfg = TrainConfig("unsup", str(tiny_trainer_bert), [str(tiny_corpus)], str(out), batch_size=16, max_steps=1,
                      data_dir=str(small_data_dir), report_to=[name])
    with pytest.raises(InputError, match=words):
        train(cfg, progress=False)
    assert not out.exists()


def test_the_cli_passes_report_to_through(tmp_path, tiny_trainer_bert, tiny_corpus, small_data_dir, run_cli):
    out = tmp_path / "cli-run"
    code, _, stderr = run_cli("train", "unsup", "--model", str(tiny_trainer_bert), "--train-file", str(tiny_corpus),
                              "--out", str(out), "--batch-size", "16", "--max-steps", "1", "--eval-steps", "1",
                              "--data-dir", str(small_data_dir), "--report-to", "tensorboard", "--quiet")
    assert code == 0, stderr
    assert set(SCALARS) <= set(_scalars(out / TENSORBOARD_DIR))
    code, _, stderr = run_cli("train", "unsup", "--model", str(tiny_trainer_bert), "--train-file", str(tiny_corpus),
                              "--out", str(tmp_path / "bad"), "--data-dir", str(small_data_dir),
                              "--report-to", "tensorbored")
    assert code == 2 and stderr.startswith("error: --report-to 'tensorbored'") and "Traceback" not in stderr
