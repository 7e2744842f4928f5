"""Training throughput: this toolkit's SimCSE trainer vs sentence-transformers' own SimCSE recipe.

Both train the same checkpoint on the same sentences, in the same process, with the same batch size,
max length, precision, learning rate and dropout:

* ours: ``trainers.loop.train`` (unsupervised SimCSE, ``cls_before_pooler``; one forward pass over the
  2·B views, as the SimCSE reference);
* peer: ``SentenceTransformerTrainer`` + ``MultipleNegativesRankingLoss`` on ``(s, s)`` pairs (the
  sentence-transformers documentation's SimCSE recipe; needs the ``datasets`` package).

Each step is timed as a whole cycle, from the end of the previous optimiser step to the end of this
one: fetching and collating the batch (tokenisation), forward, backward, clipping, the optimiser and the
trainer's per-step bookkeeping (after ``--warmup`` untimed steps; evaluation, model loading and saving
are excluded). The two systems alternate for ``--repeats`` rounds; each one's throughput is
1 / (median step time over all its timed steps). Prints steps/s of both and the ratio ours / peer
(floor: ≥ 1.3×), and beside it the machine: CPU and SIMD flags, the measured fp32 matmul ceiling,
each system's matrix-multiply FLOPs per step (counted by ``torch.utils.flop_counter`` on its first
step) and its share of the ceiling (FLOPs / ceiling / step time: the fraction of a step that matmuls at
the ceiling's rate would fill).

    python benchmarks/bench_train.py [--model all-MiniLM-L6-v2] [--steps 20] [--batch-size 64]
        [--pooler cls_before_pooler] [--no-padding-free]

``PYTHONPATH=/path/to/old/checkout python benchmarks/bench_train.py`` measures an older trainer the same way.
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
if not os.environ.get("PYTHONPATH"):
    sys.path.insert(0, str(REPO))

from machine import cpu_description, load_line, matmul_ceiling


def step_timer(warmup: int, steps: int):
    """A TrainerCallback recording the wall time of the cycles ending at steps ``warmup+1 … warmup+steps``
    (each from the previous step's end), and counting the FLOPs of steps 1 and 2: step 2 is a typical step
    (``flops``); step 1 also holds one-off work (the padding-free forward's check against the model's own,
    two forwards without a graph), whose FLOPs are the difference (``first_extra``)."""
    from torch.utils.flop_counter import FlopCounterMode
    from transformers import TrainerCallback

    class Timer(TrainerCallback):
        def __init__(self) -> None:
            self.times: list[float] = []
            self.flops = self.first = self.first_extra = 0
            self._t: float | None = None
            self._counter: FlopCounterMode | None = None

        def on_step_begin(self, args, state, control, **kwargs):
            if state.global_step in (0, 1):  # the first two steps run under the FLOP counter (never timed)
                self._counter = FlopCounterMode(display=False)
                self._counter.__enter__()

        def on_step_end(self, args, state, control, **kwargs):
            if self._counter is not None:
                self._counter.__exit__(None, None, None)
                counted, self._counter = self._counter.get_total_flops(), None
                if state.global_step == 1:
                    self.first = counted
                else:
                    self.flops, self.first_extra = counted, max(self.first - counted, 0)
            now = time.perf_counter()
            if self._t is not None and warmup < state.global_step <= warmup + steps:
                self.times.append(now - self._t)
            self._t = now

    return Timer()


def run_ours(model: str, corpus: Path, a: argparse.Namespace, data_dir: Path) -> tuple[list[float], int, int]:
    from trainers.config import TrainConfig
    from trainers.loop import train

    timer = step_timer(a.warmup, a.steps)
    with tempfile.TemporaryDirectory() as tmp:
        cfg = TrainConfig("unsup", model, [str(corpus)], str(Path(tmp) / "run"), pooler=a.pooler,
                          batch_size=a.batch_size, max_length=a.max_length, learning_rate=3e-5,
                          max_steps=a.warmup + a.steps, eval_steps=10 ** 9, eval_at_start=False,
                          precision=a.precision, data_dir=str(data_dir), device="cpu" if a.cpu else None,
                          **({} if a.padding_free else {"padding_free": False}))  # an older checkout has no such field
        train(cfg, progress=False, callbacks=[timer])
    return timer.times, timer.flops, timer.first_extra


def run_peer(model_path: str, sentences: list[str], a: argparse.Namespace) -> tuple[list[float], int]:
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
    return timer.times, timer.flops


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
    p.add_argument("--pooler", default="cls_before_pooler", help="our trainer's pooler (the peer: the model's own)")
    p.add_argument("--padding-free", action=argparse.BooleanOptionalAction, default=True,
                   help="our trainer's padding-free forward (--no-padding-free: the model's padded forward)")
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
    if a.warmup < 2:
        sys.exit("--warmup must be at least 2: steps 1 and 2 run under the FLOP counter")
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
        flops = {"ours": 0, "peer": 0}
        for r in range(a.repeats):
            times, flops["ours"], check_flops = run_ours(model_path, corpus, a, data_dir)
            ours += times
            times, flops["peer"] = run_peer(model_path, sentences, a)
            peer += times
            print(f"round {r + 1}: median step ours {statistics.median(ours):.3f} s, sentence-transformers "
                  f"{statistics.median(peer):.3f} s", flush=True)
    # median step time over every timed step of every round: robust to the other load on a shared machine
    o, s = 1.0 / statistics.median(ours), 1.0 / statistics.median(peer)
    device = "cuda" if torch.cuda.is_available() and not a.cpu else "cpu"
    ceiling = matmul_ceiling(device="cuda" if device == "cuda" else "cpu")
    print(f"\nmodel {a.model}, batch {a.batch_size}, max length {a.max_length}, {a.precision}, {device} "
          f"({torch.get_num_threads()} threads), {a.steps} timed steps × {a.repeats} rounds (steps/s = 1 / median "
          "step time)")
    print(f"{cpu_description()}; {load_line()}")
    print(f"fp32 matmul ceiling (4096×384 · 384×1536, best of 20): {ceiling:.0f} GFLOP/s")
    print(f"{'':46}{'steps/s':>9}{'GFLOP/step':>12}{'share of ceiling':>18}")
    for name, label, rate in (("ours", f"ours (SimCSE, {a.pooler}{'' if a.padding_free else ', padded'})", o),
                              ("peer", "sentence-transformers (MNRL on (s, s) pairs)", s)):
        gflop = flops[name] / 1e9
        print(f"{label:<46}{rate:9.3f}{gflop:12.1f}{100 * gflop / ceiling * rate:17.1f}%")
    print(f"ratio ours / sentence-transformers            {o / s:8.3f}×   (floor 1.3×)")
    if check_flops:
        print(f"ours' first step also ran one-off work (the padding-free forward's check against the model's own): "
              f"{check_flops / 1e9:.1f} GFLOP = {check_flops / flops['ours']:.2f} steps' matmul work, "
              f"{100 * check_flops / (150 * flops['ours']):.2f}% of a 150-step run's")


if __name__ == "__main__":
    main()
