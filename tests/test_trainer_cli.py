"""``simcse-analyze train``: end-to-end runs, the command a config prints, and bad input (exit 2, nothing written)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from trainers.config import TrainConfig


def _fake_run(out: Path, config: TrainConfig, status: str = "running") -> None:
    out.mkdir(parents=True)
    (out / "run.json").write_text(json.dumps({"status": status, "config": config.to_dict(), "data": []}))
    (out / "trajectory.jsonl").write_text("")


def test_train_sup_cli_prints_the_summary_and_replaces_a_previous_run(run_cli, tmp_path, tiny_trainer_bert,
                                                                         tiny_nli, small_data_dir):
    out = tmp_path / "run"
    _fake_run(out, TrainConfig("sup", "other-model", [str(tiny_nli)], str(out)))
    (out / "stale.txt").write_text("from the previous run")
    code, stdout, stderr = run_cli("train", "sup", "--model", tiny_trainer_bert, "--train-file", tiny_nli, "--out",
                                   out, "--batch-size", "8", "--max-steps", "2", "--eval-steps", "1",
                                   "--data-dir", small_data_dir, "--overwrite", "--quiet",
                                   "--json", tmp_path / "result.json")
    assert code == 0, stderr
    assert "STS-B dev" in stdout and "steps 2" in stdout
    assert not (out / "stale.txt").exists()
    result = json.loads((tmp_path / "result.json").read_text())
    assert [e["step"] for e in result["trajectory"]] == [0, 1, 2] and result["status"] == "finished"


def test_initial_evaluation_of_minilm_matches_the_sts_evaluator(run_cli, tmp_path, minilm_path, tiny_corpus,
                                                                small_data_dir):
    """Real weights: the trainer's step-0 STS-B dev figure is what `eval` gives for the same encoder, and one
    unsupervised step starts far below chance loss log(B), as a pretrained encoder should."""
    from simcse_analysis.encoder import load_encoder
    from simcse_analysis.sts_eval import evaluate_sts

    out = tmp_path / "run"
    code, _, stderr = run_cli("train", "unsup", "--model", minilm_path, "--train-file", tiny_corpus, "--out", out,
                              "--pooler", "cls_before_pooler", "--batch-size", "8", "--max-steps", "1",
                              "--data-dir", small_data_dir, "--quiet")
    assert code == 0, stderr
    traj = [json.loads(line) for line in (out / "trajectory.jsonl").read_text().splitlines()]
    enc = load_encoder(str(minilm_path), pooler="cls_before_pooler", max_length=256, use_cache=False)
    expected = evaluate_sts(enc, ["STSBenchmark"], small_data_dir, split="dev").scores["STSBenchmark"]
    assert traj[0]["stsb_spearman"] == pytest.approx(expected, abs=1e-3)
    assert traj[1]["loss"] < math.log(8) / 2


def test_command_line_of_a_config_parses_back_to_the_same_settings(run_cli, tmp_path):
    cfg = TrainConfig("unsup", "all-MiniLM-L6-v2", ["a.txt", "b.txt"], str(tmp_path / "o"), pooler="avg",
                      temperature=0.1, dropout=0.2, fixed_dropout_mask=True, batch_size=32, learning_rate=1e-5,
                      max_steps=150, max_length=40, seed=3, eval_steps=25, eval_at_start=False, keep_state=True,
                      mlp_only_train=False, gradient_accumulation_steps=2, do_mlm=True, mlm_weight=0.2,
                      padding_free=False)
    assert "--no-padding-free" in cfg.cli_args()
    assert cfg.command_line().startswith("simcse-analyze train unsup --model all-MiniLM-L6-v2 --train-file a.txt")
    code, stdout, stderr = run_cli("train", *cfg.cli_args(), "--dry-run")
    assert code == 0, stderr
    printed = json.loads(stdout[: stdout.rindex("}") + 1])
    assert printed == cfg.resolved().to_dict()
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize("objective,defaults", [("unsup", (64, 3e-5, 1.0, True)), ("sup", (512, 5e-5, 3.0, False))])
def test_paper_defaults_per_objective(objective, defaults):
    c = TrainConfig(objective, "m", ["f"], "o").resolved()
    assert (c.batch_size, c.learning_rate, c.epochs, c.mlp_only_train) == defaults
    assert (c.temperature, c.max_length, c.pooler, c.eval_steps, c.seed) == (0.05, 32, "cls", 125, 42)


# ----------------------------------------------------------------------------- bad input
def _train(run_cli, objective, model, train_file, out, *extra):
    return run_cli("train", objective, "--model", model, "--train-file", train_file, "--out", out,
                   "--max-steps", "1", "--quiet", *extra)


def test_empty_training_file_is_refused(run_cli, tmp_path, tiny_trainer_bert, small_data_dir):
    empty = tmp_path / "empty.txt"
    empty.write_text("\n  \n")
    code, _, err = _train(run_cli, "unsup", tiny_trainer_bert, empty, tmp_path / "o", "--data-dir", small_data_dir)
    assert code == 2 and "empty.txt" in err and "no sentences" in err and "Traceback" not in err
    assert not (tmp_path / "o").exists()


def test_malformed_csv_names_the_line(run_cli, tmp_path, tiny_trainer_bert, small_data_dir):
    bad = tmp_path / "bad.csv"
    bad.write_text("sent0,sent1,hard_neg\na,b,c\nd,e,f,g\n")
    code, _, err = _train(run_cli, "sup", tiny_trainer_bert, bad, tmp_path / "o", "--data-dir", small_data_dir)
    assert code == 2 and "bad.csv line 3" in err
    assert not (tmp_path / "o").exists()


def test_empty_positive_names_the_row(run_cli, tmp_path, tiny_trainer_bert, small_data_dir):
    bad = tmp_path / "bad.csv"
    bad.write_text("sent0,sent1,hard_neg\na,b,c\nd,,f\n")
    code, _, err = _train(run_cli, "sup", tiny_trainer_bert, bad, tmp_path / "o", "--data-dir", small_data_dir)
    assert code == 2 and "data row 2" in err and "'sent1'" in err


def test_batch_larger_than_the_data_is_refused(run_cli, tmp_path, tiny_trainer_bert, tiny_corpus, small_data_dir):
    code, _, err = _train(run_cli, "unsup", tiny_trainer_bert, tiny_corpus, tmp_path / "o", "--batch-size", "65",
                          "--data-dir", small_data_dir)
    assert code == 2 and "larger than the training data (64 rows" in err
    assert not (tmp_path / "o").exists()


def test_output_dir_with_another_run_is_refused_without_overwrite(run_cli, tmp_path, tiny_trainer_bert, tiny_corpus,
                                                                  small_data_dir):
    out = tmp_path / "o"
    _fake_run(out, TrainConfig("unsup", str(tiny_trainer_bert), [str(tiny_corpus)], str(out), learning_rate=1e-4,
                               max_steps=1, data_dir=str(small_data_dir)))
    before = sorted(p.name for p in out.iterdir())
    code, _, err = _train(run_cli, "unsup", tiny_trainer_bert, tiny_corpus, out, "--data-dir", small_data_dir)
    assert code == 2 and "already holds a training run" in err and "--overwrite" in err
    code, _, err = _train(run_cli, "unsup", tiny_trainer_bert, tiny_corpus, out, "--data-dir", small_data_dir,
                          "--resume")
    assert code == 2 and "holds a different run" in err and "learning_rate" in err
    assert sorted(p.name for p in out.iterdir()) == before


def test_output_dir_with_foreign_files_is_never_overwritten(run_cli, tmp_path, tiny_trainer_bert, tiny_corpus,
                                                            small_data_dir):
    out = tmp_path / "o"
    out.mkdir()
    (out / "thesis.tex").write_text("precious")
    code, _, err = _train(run_cli, "unsup", tiny_trainer_bert, tiny_corpus, out, "--data-dir", small_data_dir,
                          "--overwrite")
    assert code == 2 and "not a training run" in err
    assert (out / "thesis.tex").read_text() == "precious"


def test_unknown_objective_is_refused(tmp_path, tiny_corpus):
    from simcse_analysis.errors import InputError
    from trainers.loop import train

    with pytest.raises(InputError, match="unknown objective 'triplet'"):
        train(TrainConfig("triplet", "m", [str(tiny_corpus)], str(tmp_path / "o")))
    assert not (tmp_path / "o").exists()


def test_unknown_objective_on_the_command_line_exits_2(run_cli, tmp_path, tiny_corpus):
    code, _, err = run_cli("train", "triplet", "--model", "m", "--train-file", tiny_corpus, "--out", tmp_path / "o")
    assert code == 2 and "triplet" in err
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize("extra,message", [
    (("--dropout", "lots"), "--dropout 'lots'"),
    (("--dropout", "1.5"), "must be in [0, 1)"),
    (("--pooler", "max"), "'max' is not one of 'cls', 'cls_before_pooler', 'avg'"),
    (("--positive", "shuffle:0.1"), "unknown positive view"),
    (("--temperature", "0"), "--temperature 0.0: must be > 0"),
    (("--do-mlm",), "masked-LM head"),
])
def test_bad_settings_are_refused_before_anything_is_written(run_cli, tmp_path, tiny_trainer_bert, tiny_corpus,
                                                              small_data_dir, extra, message):
    code, _, err = _train(run_cli, "unsup", tiny_trainer_bert, tiny_corpus, tmp_path / "o", "--data-dir",
                          small_data_dir, *extra)
    assert code == 2 and message in err and "Traceback" not in err
    assert not (tmp_path / "o").exists()


def test_supervised_training_needs_a_csv(run_cli, tmp_path, tiny_trainer_bert, tiny_corpus, small_data_dir):
    code, _, err = _train(run_cli, "sup", tiny_trainer_bert, tiny_corpus, tmp_path / "o", "--data-dir", small_data_dir)
    assert code == 2 and "sent0,sent1[,hard_neg]" in err
