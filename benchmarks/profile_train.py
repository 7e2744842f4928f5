"""Where a SimCSE training step's time goes, on the real trainer path (``trainers.loop.train``).

Two passes over the same run (all-MiniLM-L6-v2 by default, batch 64, max length 32, fp32):

1. **Phases** — wall time per optimiser step, measured by timers wrapped around the Hugging Face
   Trainer's own calls (no profiler running):
   ``data`` (the DataLoader: sampling, collation, tokenisation — ``get_batch_samples``),
   ``forward`` (``compute_loss``: encoder, pooler, contrastive loss),
   ``backward`` (``accelerator.backward``), ``clip`` (gradient-norm clipping),
   ``optimizer`` (``optimizer.step`` + LR schedule + ``zero_grad``), and ``other`` (the rest of the
   cycle from one step's end to the next: Trainer bookkeeping, callbacks, logging hooks).
2. **Operators** — ``torch.profiler`` self-CPU time of the next steps, grouped: matrix multiplies
   (``mm``/``addmm``/``bmm``/``baddbmm``), dropout's random masks (``bernoulli_``), the optimiser's
   kernels, the padding-free forward's gathers/scatters, and the ten largest other operators.

Runs with whatever ``trainers`` package is first on the path, so the same script profiles an older
checkout: ``PYTHONPATH=/path/to/old/checkout python benchmarks/profile_train.py``.

    python benchmarks/profile_train.py [--steps 8] [--warmup 3] [--profile-steps 4] [--pooler cls_before_pooler]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if not os.environ.get("PYTHONPATH"):
    sys.path.insert(0, str(REPO))

from machine import cpu_description, load_line, matmul_ceiling

PHASES = ("data", "forward", "backward", "clip", "optimizer", "other")
OP_GROUPS = {
    "matmul (mm/addmm/bmm)": ("aten::mm", "aten::addmm", "aten::bmm", "aten::baddbmm"),
    "dropout masks (bernoulli_)": ("aten::bernoulli_",),
    "optimizer kernels": ("aten::_fused_adamw_", "aten::_foreach_", "aten::lerp_", "aten::addcdiv_",
                          "aten::addcmul_", "aten::sqrt"),
    "gather/scatter (index_select/index_copy/index_add)": ("aten::index_select", "aten::index_copy",
                                                           "aten::index_add_", "aten::index_add"),
}


class PhaseClock:
    """Accumulates wall time per phase inside the current optimiser step; one dict per finished step."""

    def __init__(self) -> None:
        self.current: dict[str, float] = defaultdict(float)
        self.steps: list[dict[str, float]] = []
        self.cycle_start: float | None = None

    def wrap(self, phase: str, fn):
        def timed(*args, **kwargs):
            t = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                self.current[phase] += time.perf_counter() - t
        return timed

    def end_step(self) -> None:
        now = time.perf_counter()
        if self.cycle_start is not None:
            step = dict(self.current)
            step["total"] = now - self.cycle_start
            step["other"] = step["total"] - sum(v for k, v in step.items() if k in PHASES)
            self.steps.append(step)
        self.current = defaultdict(float)
        self.cycle_start = now


def instrument(clock: PhaseClock):
    """Wrap the Trainer's calls (class attributes, so the trainer ``train`` builds is timed) and return the
    callback that brackets the optimiser step and closes each cycle."""
    import accelerate
    from transformers import Trainer, TrainerCallback

    from trainers import loop

    loop.SimCSETrainer.compute_loss = clock.wrap("forward", loop.SimCSETrainer.compute_loss)
    Trainer.get_batch_samples = clock.wrap("data", Trainer.get_batch_samples)
    Trainer._clip_grad_norm = clock.wrap("clip", Trainer._clip_grad_norm)
    accelerate.Accelerator.backward = clock.wrap("backward", accelerate.Accelerator.backward)

    class Brackets(TrainerCallback):
        def on_pre_optimizer_step(self, args, state, control, **kwargs):
            self.t = time.perf_counter()

        def on_step_end(self, args, state, control, **kwargs):  # optimizer.step, lr step and zero_grad ran since
            clock.current["optimizer"] += time.perf_counter() - self.t
            clock.end_step()

    return Brackets()


def profiler_callback(first: int, last: int, holder: dict):
    """Run ``torch.profiler`` from the start of step ``first`` to the end of step ``last`` (1-based)."""
    from torch.profiler import ProfilerActivity, profile
    from transformers import TrainerCallback

    class Prof(TrainerCallback):
        def on_step_end(self, args, state, control, **kwargs):
            if state.global_step == first - 1:
                holder["prof"] = profile(activities=[ProfilerActivity.CPU])
                holder["prof"].__enter__()
            elif state.global_step == last and "prof" in holder:
                holder["prof"].__exit__(None, None, None)

    return Prof()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", default="all-MiniLM-L6-v2")
    p.add_argument("--pooler", default="cls_before_pooler")
    p.add_argument("--steps", type=int, default=8, help="steps timed by phase")
    p.add_argument("--warmup", type=int, default=3, help="untimed steps first")
    p.add_argument("--profile-steps", type=int, default=4, help="steps under torch.profiler, after the timed ones")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--max-length", type=int, default=32)
    p.add_argument("--precision", default="fp32", choices=["fp32", "bf16", "fp16"])
    p.add_argument("--data-dir", default=os.environ.get("SIMCSE_DATA", str(REPO.parent / "shared" / "data")))
    a = p.parse_args()

    import torch
    from transformers.utils import logging as hf_logging

    import trainers
    from simcse_analysis.checkpoint import resolve_checkpoint
    from trainers.config import TrainConfig
    from trainers.loop import train

    hf_logging.set_verbosity_error()
    total = a.warmup + a.steps + a.profile_steps
    lines = (Path(a.data_dir) / "unsup" / "wiki1m_for_simcse.head.txt").read_text(encoding="utf-8").splitlines()
    sentences = [s for s in lines if s.strip()][:a.batch_size * total]
    clock = PhaseClock()
    holder: dict = {}
    callbacks = [instrument(clock), profiler_callback(a.warmup + a.steps + 1, total, holder)]
    print(f"{cpu_description()}; {load_line()}; torch {torch.__version__}, {torch.get_num_threads()} threads")
    print(f"fp32 matmul ceiling: {matmul_ceiling():.0f} GFLOP/s")
    print(f"trainers from {Path(trainers.__file__).parent.parent}")
    with tempfile.TemporaryDirectory() as tmp:
        corpus = Path(tmp) / "corpus.txt"
        corpus.write_text("\n".join(sentences) + "\n", encoding="utf-8")
        cfg = TrainConfig("unsup", str(resolve_checkpoint(a.model)), [str(corpus)], str(Path(tmp) / "run"),
                          pooler=a.pooler, batch_size=a.batch_size, max_length=a.max_length, learning_rate=3e-5,
                          max_steps=total, eval_steps=10 ** 9, eval_at_start=False, precision=a.precision,
                          data_dir=a.data_dir)
        train(cfg, progress=False, callbacks=callbacks)
    timed = clock.steps[a.warmup - 1:a.warmup - 1 + a.steps]  # steps[0] is step 2's cycle
    med = {k: statistics.median(s.get(k, 0.0) for s in timed) for k in (*PHASES, "total")}
    print(f"\nphases, median over {len(timed)} steps (wall ms per step)")
    for k in (*PHASES, "total"):
        print(f"  {k:<10} {1000 * med[k]:8.1f}   {100 * med[k] / med['total']:5.1f}%")
    prof = holder.get("prof")
    if prof is None:
        return
    events = prof.key_averages()
    self_us = {e.key: e.self_cpu_time_total for e in events}
    all_us = sum(self_us.values())
    n = a.profile_steps
    print(f"\noperators under torch.profiler, {n} steps (self CPU ms per step; profiler overhead included)")
    grouped: set[str] = set()
    for name, prefixes in OP_GROUPS.items():
        keys = [k for k in self_us if any(k == p or (p.endswith("_") and k.startswith(p)) for p in prefixes)]
        grouped.update(keys)
        us = sum(self_us[k] for k in keys)
        print(f"  {name:<52} {us / 1000 / n:8.1f}   {100 * us / all_us:5.1f}%")
    rest = sorted(((v, k) for k, v in self_us.items() if k not in grouped), reverse=True)
    print(f"  {'everything else':<52} {sum(v for v, _ in rest) / 1000 / n:8.1f}   "
          f"{100 * sum(v for v, _ in rest) / all_us:5.1f}%")
    for v, k in rest[:10]:
        print(f"    {k[:50]:<50} {v / 1000 / n:8.1f}   {100 * v / all_us:5.1f}%")
    print(f"  {'total':<52} {all_us / 1000 / n:8.1f}")


if __name__ == "__main__":
    main()
