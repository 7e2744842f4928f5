"""Where the project reaches into a dependency's private internals (README: "Dependencies"), a simulated next
release must end in a warning and the dependency's own path, never in a traceback or in other numbers.
The padding-free forward's simulations live in tests/test_padding_free.py; this file covers the Trainer hooks."""

from __future__ import annotations

import json

LR = 3e-5


def test_a_release_that_renames_the_trainers_save_hook_falls_back_to_the_trainers_own(tiny_trainer_bert, tiny_corpus,
                                                                                    data_dir, tmp_path, monkeypatch,
                                                                                    capfd):
    """``SimCSETrainer`` overrides two private Trainer hooks (``_save``, ``_load_from_checkpoint``). A release that
    renames one (its own ``save_model`` calling the new name) is noticed: one warning, run.json says whose code
    saved, and the run trains the same numbers."""
    from transformers import Trainer

    from trainers import loop
    from trainers.config import TrainConfig

    def run(out: str):
        cfg = TrainConfig("unsup", str(tiny_trainer_bert), [str(tiny_corpus)], str(tmp_path / out), batch_size=16,
                          max_steps=3, eval_steps=3, learning_rate=LR, data_dir=str(data_dir), seed=42, pooler="cls")
        return loop.train(cfg, progress=False)

    reference = run("reference")
    renamed = Trainer._save

    def save_model(self, output_dir=None, _internal_call=False):  # the new release's save_model
        if self.args.should_save:
            self._write_model(output_dir)

    loop.checkpoint_hooks_problem.cache_clear()
    try:
        with monkeypatch.context() as m:
            m.delattr(Trainer, "_save")
            m.setattr(Trainer, "_write_model", renamed, raising=False)
            m.setattr(Trainer, "save_model", save_model)
            capfd.readouterr()
            result = run("renamed")
            err = capfd.readouterr().err
    finally:
        loop.checkpoint_hooks_problem.cache_clear()
    assert [line for line in err.splitlines() if line.startswith("warning: resumable states")] == [
        ("warning: resumable states are written by the Trainer's own code: transformers' Trainer has no _save (this "
         "transformers is newer than the tested set in requirements/dev.lock)")]
    note = json.loads((tmp_path / "renamed" / "run.json").read_text())["resolved"]["checkpoint_io"]
    assert note == "the Trainer's own (transformers' Trainer has no _save)"
    assert [e["loss"] for e in result.trajectory] == [e["loss"] for e in reference.trajectory]
    assert loop.checkpoint_io_note() == "simcse (safetensors, finite weights only)"
