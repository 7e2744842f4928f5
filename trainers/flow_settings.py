"""Settings of a BERT-flow fit (:mod:`trainers.flow`), kept free of heavy imports so the CLI reads its defaults."""

from __future__ import annotations

from dataclasses import dataclass

from simcse_analysis.errors import InputError


@dataclass
class FlowSettings:
    """Architecture and optimisation of the flow (``hidden=None``: the dimension the flow models, i.e. the
    directions the corpus spans).

    The directions without variance are projected out before the fit (:mod:`trainers.flow`); directions with
    little variance remain, which is why the learning rate is small. Measured on all-MiniLM-L6-v2 (mean
    pooling) with these defaults, on the first 3,000 / 5,000 lines of ``wiki1m_for_simcse.head.txt``: NLL
    per dimension −0.068 → −0.230 (12 steps) and −0.064 → −0.258 (20 steps); before the projection the same
    fits made it worse (−0.167 → 1.747 on 3,000). Without the projection, on 31k sentences, Adam at 1e-3
    diverged (NLL/dim −0.22 → 11.7) where 1e-4 improved the fit (−0.22 → −0.43)."""

    blocks: int = 4
    hidden: int | None = None
    epochs: float = 1.0
    learning_rate: float = 1e-4
    batch_size: int = 256
    seed: int = 0

    def check(self) -> None:
        if self.blocks < 1 or (self.hidden is not None and self.hidden < 1) or self.batch_size < 1:
            raise InputError("--blocks, --hidden and --flow-batch-size must be at least 1")
        if self.epochs <= 0 or self.learning_rate <= 0:
            raise InputError("--epochs and --lr must be > 0")
