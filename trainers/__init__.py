"""Training SimCSE checkpoints: objectives, model wrapper, data, the Trainer loop, run directories.

Entry point: ``trainers.loop.train(TrainConfig(...)) -> RunResult`` (the ``simcse-analyze train``
command is a thin layer over it). Modules: :mod:`~trainers.objectives` (pure losses),
:mod:`~trainers.model` (encoder + pooler/MLP + loss), :mod:`~trainers.data` (corpus rows → batches),
:mod:`~trainers.views` (positive views), :mod:`~trainers.config` (settings, paper defaults),
:mod:`~trainers.loop` (Hugging Face Trainer), :mod:`~trainers.evaluation` (STS-B dev, alignment,
uniformity), :mod:`~trainers.checkpoint_io` (checkpoint format), :mod:`~trainers.rundir` (run
directory, :class:`~trainers.rundir.RunResult`).
"""
