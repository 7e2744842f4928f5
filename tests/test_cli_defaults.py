"""A default lives in one place: the training commands' options take theirs from TrainConfig; and one context
manager silences Hugging Face logging and restores it."""

from __future__ import annotations

import dataclasses
import json

import pytest

from trainers.config import TrainConfig


@pytest.mark.parametrize("objective", ["unsup", "sup"])
def test_a_command_without_options_trains_the_config_defaults(objective, run_cli, tmp_path):
    code, out, err = run_cli("train", objective, "--model", "m", "--train-file", "f.txt", "--out", str(tmp_path),
                             "--dry-run")
    assert code == 0, err
    printed = json.loads(out[:out.rindex("}") + 1])
    assert printed == TrainConfig(objective, "m", ["f.txt"], str(tmp_path)).resolved().to_dict()


def test_a_changed_dataclass_default_changes_the_cli_default(monkeypatch):
    from simcse_analysis.cli import train as cli_train

    options = {o.key or o.name: o.default for o in cli_train.TRAINING_OPTIONS}
    defaults = TrainConfig.defaults()
    assert all(options[k] == defaults[k] for k in options if k in defaults)
    # every TrainConfig setting but the positional ones, dropout (parsed from text), seed/positive/hard negative
    # weight (per-command options) and extra (no command-line form) is an option of every training command
    own = {"objective", "model", "train_files", "output_dir", "dropout", "fixed_dropout_mask", "seed", "positive",
           "hard_negative_weight", "extra"}
    assert {f.name for f in dataclasses.fields(TrainConfig)} - own == set(options)


def test_quiet_transformers_restores_verbosity_and_bars_after_an_error():
    from transformers.utils import logging as hf_logging

    from simcse_analysis.hf_logging import quiet_transformers

    hf_logging.set_verbosity_info()
    hf_logging.enable_progress_bar()
    try:
        with pytest.raises(RuntimeError), quiet_transformers():
            assert hf_logging.get_verbosity() == hf_logging.ERROR
            assert not hf_logging.is_progress_bar_enabled()
            raise RuntimeError("boom")
        assert hf_logging.get_verbosity() == hf_logging.INFO
        assert hf_logging.is_progress_bar_enabled()
        with quiet_transformers(warnings=True, progress_bars=True):
            assert hf_logging.get_verbosity() == hf_logging.INFO and hf_logging.is_progress_bar_enabled()
    finally:
        hf_logging.set_verbosity_warning()


def _defaults(*path: str) -> dict:
    import typer.main

    from simcse_analysis.cli import app

    cmd = typer.main.get_command(app)
    for name in path:
        cmd = cmd.commands[name]
    return {p.name: p.default for p in cmd.params}


def test_analysis_and_report_option_defaults_agree_with_their_settings_dataclasses():
    """These commands restate the defaults (their dataclasses live in modules that import numpy, which --help
    must not load), so this test is what keeps the two in step."""
    from reports.collect import ReportSettings
    from reports.umap_map import UMAPSettings
    from simcse_analysis.analysis import AnalysisSettings

    a = AnalysisSettings()
    report = _defaults("report")
    assert report["umap_sentences"] == UMAPSettings().n_sentences and report["seed"] == a.seed
    assert report["splits"].split(",") == list(a.splits) and report["variant"] == a.variant
    assert report["layer_sentences"] == ReportSettings().layer_sentences and report["umap_colour"] == UMAPSettings().colour
    au = _defaults("align-uniform")
    assert (au["threshold"], au["align_alpha"], au["t"], au["seed"]) == (a.positive_threshold, a.alpha, a.t, a.seed)
    assert au["alpha"] is None  # the hidden older name of --align-alpha
    assert au["uniformity_pairs"] == a.uniformity_pairs
    assert [int(k) for k in _defaults("spectrum")["top_k"].split(",")] == list(a.top_k)
    an = _defaults("anisotropy")
    assert (an["pairs"], an["seed"], an["no_layers"]) == (a.cosine_pairs, a.seed, not a.layers)
