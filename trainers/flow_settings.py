"""Settings of a BERT-flow fit (:mod:`trainers.flow`), kept free of heavy imports so the CLI reads its defaults."""

from __future__ import annotations

from dataclasses import dataclass

from simcse_analysis.errors import InputError


@dataclass
class FlowSettings:
    """Architecture and optimisation of the flow (``hidden=None``: the embedding dimension)."""

    blocks: int = 4
    hidden: int | None = None
    epochs: float = 1.0
    learning_rate: float = 1e-3
    batch_size: int = 256
    seed: int = 0

    def check(self) -> None:
        if self.blocks < 1 or (self.hidden is not None and self.hidden < 1) or self.batch_size < 1:
            raise InputError("--blocks, --hidden and --flow-batch-size must be at least 1")
        if self.epochs <= 0 or self.learning_rate <= 0:
            raise InputError("--epochs and --lr must be > 0")
