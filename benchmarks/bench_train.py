"""Training throughput: this toolkit's SimCSE trainer vs sentence-transformers' own SimCSE recipe.

Both train the same checkpoint on the same sentences, in the same process, with the same batch size,
max length, precision, learning rate and dropout:

* ours: ``trainers.loop.train`` (unsupervised SimCSE, ``cls_before_pooler``; one forward pass over the
  2·B views, as the SimCSE reference);
* peer: ``SentenceTransformerTrainer`` + ``MultipleNegativesRankingLoss`` on ``(s, s)`` pairs (the
  sentence-transformers documentation's SimCSE recipe; needs the ``datasets`` package).

Only optimiser steps are timed, each on its own (forward, backward, clipping, optimiser; after
``--warmup`` untimed steps; evaluation, model loading and saving are excluded). The two systems
alternate for ``--repeats`` rounds; each one's throughput is 1 / (median step time over all its timed
steps), which shrugs off load spikes on a shared machine. Prints steps/s of both and the ratio
ours / peer (floor: ≥ 1.0×).

    python benchmarks/bench_train.py [--model all-MiniLM-L6-v2] [--steps 20] [--batch-size 64]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def step_timer(warmup: int, steps: int):
    """A TrainerCallback recording the wall time of each of steps ``warmup+1 … warmup+steps``."""
    from transformers import TrainerCallback

    class Timer(TrainerCallback):
        def __init__(self) -> None:
            self.times: list[float] = []
            self._t = 0.0

        def on_step_begin(self, args, state, control, **kwargs):
            self._t = time.perf_counter()

        def on_step_end(self, args, state, control, **kwargs):
            if warmup < state.global_step <= warmup + steps:
                self.times.append(time.perf_counter() - self._t)

    return Timer()


def run_ours(model: str, corpus: Path, a: argparse.Namespace, data_dir: Path) -> list[float]:
    from trainers.config import TrainConfig
    from trainers.loop import train

    timer = step_timer(a.warmup, a.steps)
    with tempfile.TemporaryDirectory() as tmp:
        cfg = TrainConfig("unsup", model, [str(corpus)], str(Path(tmp) / "run"), pooler="cls_before_pooler",
                          batch_size=a.batch_size, max_length=a.max_length, learning_rate=3e-5,
                          max_steps=a.warmup + a.steps, eval_steps=10 ** 9, eval_at_start=False,
                          precision=a.precision, data_dir=str(data_dir), device="cpu" if a.cpu else None)
        train(cfg, progress=False, callbacks=[timer])
    return timer.times


def run_peer(model_path: str, sentences: list[str], a: argparse.Namespace) -> list[float]:
    import torch
    from datasets import Dataset
    from sentence_transformers import (
        SentenceTransformer,
        SentenceTransformerTrainer,
        SentenceTransformerTrainingArguments,
    )
    try:
        from sentence_transformers.sentence_transformer.losses import MultipleNegativesRankingLoss
    except ImportError:  # sentence-transformers < 6
        from sentence_transformers.losses import MultipleNegativesRankingLoss

    timer = step_timer(a.warmup, a.steps)
    st = SentenceTransformer(model_path, device="cpu" if a.cpu else None)
    st.max_seq_length = a.max_length
    data = Dataset.from_dict({"anchor": sentences, "positive": sentences})
    with tempfile.TemporaryDirectory() as tmp:
        args = SentenceTransformerTrainingArguments(
            output_dir=tmp, per_device_train_batch_size=a.batch_size, max_steps=a.warmup + a.steps,
            learning_rate=3e-5, save_strategy="no", eval_strategy="no", logging_strategy="no", report_to="none",
            disable_tqdm=True, seed=42, bf16=a.precision == "bf16", fp16=a.precision == "fp16",
            use_cpu=a.cpu or not torch.cuda.is_available(), dataloader_pin_memory=torch.cuda.is_available())
        trainer = SentenceTransformerTrainer(model=st, args=args, train_dataset=data,
                                             loss=MultipleNegativesRankingLoss(st, scale=20.0), callbacks=[timer])
        trainer.train()
    return timer.times


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", default="all-MiniLM-L6-v2")
    p.add_argument("--steps", type=int, default=20, help="timed steps per run")
    p.add_argument("--warmup", type=int, default=3, help="untimed steps before")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--max-length", type=int, default=32)
    p.add_argument("--precision", default="fp32", choices=["fp32", "bf16", "fp16"])
    p.add_argument("--repeats", type=int, default=2, help="alternating rounds (median reported)")
    p.add_argument("--cpu", action="store_true", help="train on the CPU even if a GPU is present")
    p.add_argument("--data-dir", default=os.environ.get("SIMCSE_DATA", str(REPO.parent / "shared" / "data")))
    a = p.parse_args()

    try:
        import datasets  # noqa: F401  (sentence-transformers' trainer needs it)
    except ImportError:
        sys.exit("the peer (SentenceTransformerTrainer) needs the `datasets` package: pip install datasets")
    from transformers.utils import logging as hf_logging

    from simcse_analysis.checkpoint import resolve_checkpoint

    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    data_dir = Path(a.data_dir)
    model_path = str(resolve_checkpoint(a.model))
    need = a.batch_size * (a.warmup + a.steps)
    lines = (data_dir / "unsup" / "wiki1m_for_simcse.head.txt").read_text(encoding="utf-8").splitlines()
    sentences = [s for s in lines if s.strip()][:need]
    if len(sentences) < need:
        sys.exit(f"need {need} sentences, the corpus has {len(sentences)}: lower --steps or --batch-size")
    import torch

    with tempfile.TemporaryDirectory() as tmp:
        corpus = Path(tmp) / "corpus.txt"
        corpus.write_text("\n".join(sentences) + "\n", encoding="utf-8")
        ours: list[float] = []
        peer: list[float] = []
        for r in range(a.repeats):
            ours += run_ours(model_path, corpus, a, data_dir)
            peer += run_peer(model_path, sentences, a)
            print(f"round {r + 1}: median step ours {statistics.median(ours):.3f} s, sentence-transformers "
                  f"{statistics.median(peer):.3f} s", flush=True)
    # median step time over every timed step of every round: robust to the other load on a shared machine
    o, s = 1.0 / statistics.median(ours), 1.0 / statistics.median(peer)
    device = "cuda" if torch.cuda.is_available() and not a.cpu else "cpu"
    print(f"\nmodel {a.model}, batch {a.batch_size}, max length {a.max_length}, {a.precision}, {device} "
          f"({torch.get_num_threads()} threads), {a.steps} timed steps × {a.repeats} rounds (steps/s = 1 / median "
          "step time)")
    print(f"ours (trainers.loop.train, SimCSE)            {o:8.3f} steps/s")
    print(f"sentence-transformers (MNRL on (s, s) pairs)  {s:8.3f} steps/s")
    print(f"ratio ours / sentence-transformers            {o / s:8.3f}×   (floor 1.0×)")


if __name__ == "__main__":
    main()
