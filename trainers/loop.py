"""Training SimCSE on the Hugging Face ``Trainer``: ``train(config) -> RunResult``.

The Trainer supplies the optimisation loop (AdamW, linear decay, gradient clipping, accumulation,
mixed precision, DDP under ``torchrun`` / ``accelerate launch``) and resumable state. This module adds

* the SimCSE forward/loss (:class:`trainers.model.SimCSEModel`) and batches (:mod:`trainers.data`);
* an evaluation every ``eval_steps`` steps (and before the first and after the last step) on STS-B
  dev with the in-memory encoder — Spearman, alignment, uniformity (:mod:`trainers.evaluation`) —
  appended to ``trajectory.jsonl``; the best checkpoint by STS-B dev is exported to ``best/`` as it
  appears, the final one to ``last/`` (:mod:`trainers.checkpoint_io`);
* the run directory (:mod:`trainers.rundir`): refuses to clobber, resumes after a kill with the same
  trajectory as an uninterrupted run.

Batch size is the number of rows per optimiser step over all processes and accumulation steps:
``batch_size = per_device × processes × accumulation``. In-batch negatives span all processes (the
reference's all-gather) but not accumulation steps (a warning says so); ``mini_batch_size`` instead
computes the whole per-process batch's loss in chunks with cached representation gradients
(:mod:`trainers.gradcache`), so the negatives stay the full batch.
"""

from __future__ import annotations

import contextlib
import functools
import math
import os
import shutil
import time
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch
from transformers import Trainer, TrainerCallback

from simcse_analysis import progress as staged
from simcse_analysis.errors import InputError, NonFiniteEmbeddingError, warn
from simcse_analysis.hf_logging import quiet_transformers
from simcse_analysis.io_utils import check_writable_dir
from simcse_analysis.locks import DirectoryLock
from simcse_analysis.version import __version__

from .checkpoint_io import save_checkpoint
from .config import TrainConfig
from .data import ContrastiveCollator, RowDataset, load_training_data
from .evaluation import DevSet, dev_metrics, load_dev_set, selection_score
from .model import SimCSEModel, get_dropout
from .rundir import RunDir, RunResult, check_run_paths, decide_output_action, prepare_output_dir, wipe_run_dir
from .views import parse_positive

#: Run-time warning of gradient accumulation: it shrinks the in-batch negatives (gradient caching does not).
ACCUMULATION_WARNING = ("--grad-accum {k}: each of the {k} micro-batches only sees its own {m} rows as in-batch "
                        "negatives, not the {b} of the batch; to train with all {b} as negatives in the same memory, "
                        "use --mini-batch-size {m} (gradient caching) instead")


class TrainingDiverged(InputError):
    """The loss (or the weights) became NaN or infinite at ``step``: training stops before that step's update,
    so the checkpoints and resumable states already written hold only finite weights."""

    def __init__(self, step: int, what: str) -> None:
        self.step, self.what = int(step), what
        super().__init__(f"training diverged at step {step}: {what}")


def _all_finite(module: torch.nn.Module) -> bool:
    return all(bool(torch.isfinite(p).all()) for p in module.parameters())


def _world_size() -> int:
    return int(os.environ.get("WORLD_SIZE", "1"))


def _is_main_process() -> bool:
    return int(os.environ.get("RANK", "0")) == 0


def eval_max_length(path: Path, tokenizer: Any, config: Any) -> int:
    """Max length used to *evaluate* (and stored in the checkpoint): the base checkpoint's own (its
    sentence-transformers setting or tokenizer limit, ≤ 512, ≤ position embeddings), as the reference
    evaluates without the training truncation."""
    from simcse_analysis.checkpoint import default_max_length

    length = default_max_length(path, getattr(tokenizer, "model_max_length", None))
    pos = getattr(config, "max_position_embeddings", None)
    return min(length, int(pos)) if pos else length


class Schedule(TrainerCallback):
    """Evaluate every ``eval_steps`` and at the last step; no state save at the last step (the final weights
    go to ``last/``); evaluate at step 0 when asked."""

    def __init__(self, trainer: SimCSETrainer, eval_steps: int, eval_at_start: bool) -> None:
        self.trainer, self.eval_steps, self.eval_at_start = trainer, eval_steps, eval_at_start

    def on_train_begin(self, args, state, control, **kwargs):
        if state.global_step == 0 and self.eval_at_start:
            self.trainer.evaluate()
        return control

    def on_step_end(self, args, state, control, **kwargs):
        if state.global_step % self.eval_steps == 0 or state.global_step >= state.max_steps:
            control.should_evaluate = True
        if state.global_step >= state.max_steps:
            control.should_save = False
        return control


class RecordPaddingFree(TrainerCallback):
    """Writes ``run.json`` → ``resolved.padding_free`` once the first batch has settled it (the padding-free
    forward checks itself against the model's own there: :meth:`SimCSEModel._padding_free_for`)."""

    def __init__(self, model: SimCSEModel, rd: RunDir, run_record: dict[str, Any]) -> None:
        self.model, self.rd, self.run_record = model, rd, run_record

    def on_step_end(self, args, state, control, **kwargs):
        resolved = self.run_record.setdefault("resolved", {})
        note = self.model.padding_free_note()
        if note != resolved.get("padding_free") and _is_main_process():
            resolved["padding_free"] = note
            self.rd.write_run(self.run_record)
        return control


class StepProgress(TrainerCallback):
    """The training bar: the open progress job (:mod:`simcse_analysis.progress`) counts optimiser steps, and
    every evaluation shows as its stage (the Trainer's own bar is off: it froze during evaluations and
    printed its log dicts to standard output)."""

    def on_train_begin(self, args, state, control, **kwargs):
        if state.is_world_process_zero:
            staged.plan(max(int(state.max_steps) - int(state.global_step), 0), unit="steps")
        return control

    def on_step_end(self, args, state, control, **kwargs):
        if state.is_world_process_zero:
            staged.advance(1, unit="steps")
        return control


class SimCSETrainer(Trainer):
    """``Trainer`` with SimCSE's loss bookkeeping, STS-B dev evaluation and best-checkpoint export."""

    def setup_simcse(self, *, run: RunDir, dev: DevSet, tokenizer: Any, config: TrainConfig,
                     eval_length: int, metadata: dict[str, Any]) -> None:
        self.run, self.dev, self.simcse_tokenizer, self.simcse_config = run, dev, tokenizer, config
        self.eval_length, self.base_metadata = eval_length, metadata
        self._window: list[torch.Tensor] = []
        # best STS-B dev so far: rebuilt from the trajectory on resume (kept out of TrainerState, whose
        # best_global_step would make the Trainer wait for the other processes at every save)
        scores = [x for x in (selection_score(e, config.select_on) for e in run.trajectory()) if math.isfinite(x)]
        self.best_score: float | None = max(scores) if scores else None

    # ---------------------------------------------------------------- loss
    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        outputs = model(**inputs)
        loss = outputs["loss"].detach()
        if not bool(torch.isfinite(loss).all()):  # stop before backward: no update from a NaN/inf loss
            raise TrainingDiverged(self.state.global_step + 1, f"the loss is {float(loss)}")
        self._window.append(outputs["reported_loss"])
        return (outputs["loss"], outputs) if return_outputs else outputs["loss"]

    # ---------------------------------------------------------------- evaluation
    def evaluate(self, eval_dataset=None, ignore_keys=None, metric_key_prefix: str = "eval") -> dict[str, float]:
        window, self._window = self._window, []
        if not self.is_world_process_zero():
            self.control = self.callback_handler.on_evaluate(self.args, self.state, self.control, metrics={})
            return {}
        from simcse_analysis.encoder import Encoder

        model: SimCSEModel = self.model
        state = self.state
        enc = Encoder.from_model(model.encoder, self.simcse_tokenizer, pooler=model.eval_pooler,
                                 max_length=self.eval_length, name="training")
        devices = [torch.cuda.current_device()] if torch.cuda.is_available() else []

        def embed(texts: list[str]) -> Any:
            try:  # the encoder refuses NaN/inf vectors; during training that means the run diverged
                return enc.encode(texts, batch_size=self.simcse_config.eval_batch_size)  # batches: the stage's bar
            except NonFiniteEmbeddingError:
                raise TrainingDiverged(state.global_step, "the model's embeddings are NaN or inf") from None

        with torch.random.fork_rng(devices=devices), staged.stage(  # never shifts the training RNG stream
                f"evaluating STS-B dev at step {state.global_step} ({len(self.dev.gold):,} pairs) …"):
            m = dev_metrics(embed, self.dev)
        losses = [float(x) for x in window]
        entry = {"step": int(state.global_step), "epoch": round(float(state.epoch or 0.0), 6),
                 "loss": (sum(losses) / len(losses)) if losses else None,
                 "learning_rate": (float(self.lr_scheduler.get_last_lr()[0])
                                   if self.lr_scheduler is not None else None),
                 **{k: float(v) for k, v in m.items()}}
        self.run.append_trajectory(entry)
        score = selection_score(entry, self.simcse_config.select_on)
        if math.isfinite(score) and (self.best_score is None or score > self.best_score):
            self.best_score = score
            self.export(self.run.best_dir, kind="best", entry=entry)
        staged.note(evaluation_line(entry, state.max_steps, self.best_score))  # with the bar (not --no-progress)
        metrics = {f"{metric_key_prefix}_{k}": v for k, v in entry.items() if k not in ("step", "epoch")
                   and v is not None}
        self.log(metrics)
        self.control = self.callback_handler.on_evaluate(self.args, self.state, self.control, metrics=metrics)
        return metrics

    def export(self, out: Path, *, kind: str, entry: dict[str, Any] | None) -> None:
        model: SimCSEModel = self.model
        if not _all_finite(model.encoder):
            raise TrainingDiverged(self.state.global_step, "the weights hold NaN or inf values")
        meta = {**self.base_metadata, "checkpoint": kind, "step": int(self.state.global_step),
                "epoch": float(self.state.epoch or 0.0), "dev": entry}
        save_checkpoint(model.encoder, self.simcse_tokenizer, out, pooler=model.eval_pooler,
                        max_length=self.eval_length, metadata=meta)

    # ---------------------------------------------------------------- resumable state
    # Two private hooks of the Trainer are overridden: `_save` (write the resumable model state, refusing NaN
    # weights) and `_load_from_checkpoint` (read it back). `checkpoint_hooks_problem` checks, once per process,
    # that this transformers still calls them with the signature written for; if not, both defer to the
    # Trainer's own implementation (a warning says so and run.json records it).
    def _save(self, output_dir: str | None = None, state_dict: dict | None = None, *args: Any, **kwargs: Any) -> None:
        from safetensors.torch import save_model

        if args or kwargs or checkpoint_hooks_problem() is not None:
            return super()._save(output_dir, state_dict, *args, **kwargs)
        if not self.args.should_save:
            return
        output_dir = output_dir or self.args.output_dir
        if not _all_finite(self.model):  # never leave a poisoned state to resume from
            raise TrainingDiverged(self.state.global_step, "the weights hold NaN or inf values")
        os.makedirs(output_dir, exist_ok=True)
        save_model(self.accelerator.unwrap_model(self.model), os.path.join(output_dir, "model.safetensors"))

    def _load_from_checkpoint(self, resume_from_checkpoint: str, model=None, *args: Any, **kwargs: Any) -> None:
        from safetensors.torch import load_model

        if args or kwargs or checkpoint_hooks_problem() is not None:
            return super()._load_from_checkpoint(resume_from_checkpoint, model, *args, **kwargs)
        target = self.accelerator.unwrap_model(model if model is not None else self.model)
        weights = os.path.join(resume_from_checkpoint, "model.safetensors")
        load_model(target, weights, device="cpu")
        if not _all_finite(target):
            raise InputError(f"the resumable state {weights} holds NaN or inf weights: the run cannot continue "
                             "from it; start over with --overwrite (and a lower --lr)")


#: The Trainer's private hooks :class:`SimCSETrainer` overrides: name → the parameters (after ``self``) it expects.
CHECKPOINT_HOOKS: dict[str, tuple[str, ...]] = {"_save": ("output_dir", "state_dict"),
                                                "_load_from_checkpoint": ("resume_from_checkpoint", "model")}


@functools.cache
def checkpoint_hooks_problem() -> str | None:
    """``None`` if this transformers' ``Trainer`` still has the private hooks of :data:`CHECKPOINT_HOOKS` with
    those leading parameters *and* calls them from one of its own methods; else what changed (then the
    overrides defer to the Trainer's own saving and loading)."""
    import inspect

    for name, expected in CHECKPOINT_HOOKS.items():
        hook = getattr(Trainer, name, None)
        if not callable(hook):
            return f"transformers' Trainer has no {name}"
        try:
            params = tuple(inspect.signature(hook).parameters)[1:1 + len(expected)]
        except (TypeError, ValueError):
            return f"the signature of Trainer.{name} cannot be read"
        if params != expected:
            return f"Trainer.{name} takes ({', '.join(params)}), not ({', '.join(expected)})"
        callers = [m for m in vars(Trainer).values()
                   if callable(m) and name in getattr(getattr(m, "__code__", None), "co_names", ())]
        if not callers:
            return f"no method of transformers' Trainer calls {name} any more"
    return None


def checkpoint_io_note() -> str:
    """``run.json`` → ``resolved.checkpoint_io``: whose code writes and reads the resumable state."""
    problem = checkpoint_hooks_problem()
    return "simcse (safetensors, finite weights only)" if problem is None else f"the Trainer's own ({problem})"


def evaluation_line(entry: dict[str, Any], max_steps: int, best: float | None) -> str:
    """``step 20/40: STS-B dev 74.31 (best 74.31), SICK-R dev …, ℓ_align 0.2134, ℓ_uniform -2.4521, loss 0.0031``."""
    def num(key: str, spec: str) -> str | None:
        v = entry.get(key)
        return None if v is None else format(float(v), spec)

    parts = [f"STS-B dev {num('stsb_spearman', '.2f')}" + (f" (best {best:.2f})" if best is not None else "")]
    parts += [f"{name} {v}" for name, v in (("SICK-R dev", num("sickr_spearman", ".2f")),
                                            ("ℓ_align", num("alignment", ".4f")), ("ℓ_uniform", num("uniformity", ".4f")),
                                            ("loss", num("loss", ".4g"))) if v is not None]
    return f"step {entry['step']}/{max_steps}: " + ", ".join(parts)


def adamw_implementation(device_type: str) -> str:
    """The Trainer's ``optim`` for AdamW on ``device_type``: torch's fused kernel where this torch has one
    for the device (one pass over each parameter, where the for-loop implementation makes about ten
    elementwise passes; the same update to float rounding, tested in tests/test_padding_free.py), else
    the for-loop ``adamw_torch``."""
    try:
        torch.optim.AdamW([torch.zeros(1, device=device_type, requires_grad=True)], fused=True)
    except (RuntimeError, ValueError, TypeError):
        return "adamw_torch"
    return "adamw_torch_fused"


def _training_device_type(c: TrainConfig) -> str:
    return "cpu" if c.device == "cpu" or not torch.cuda.is_available() else "cuda"


def _training_arguments(c: TrainConfig, rd: RunDir, per_device: int, progress: bool):
    from transformers import TrainingArguments

    return TrainingArguments(
        output_dir=str(rd.state_dir),
        per_device_train_batch_size=per_device,
        gradient_accumulation_steps=c.gradient_accumulation_steps,
        learning_rate=c.learning_rate,
        num_train_epochs=float(c.epochs),
        max_steps=c.max_steps if c.max_steps is not None else -1,
        lr_scheduler_type="linear",
        warmup_steps=c.warmup_steps,
        weight_decay=c.weight_decay,
        max_grad_norm=c.max_grad_norm,
        optim=adamw_implementation(_training_device_type(c)),
        seed=c.seed,
        data_seed=c.seed,
        bf16=c.precision == "bf16",
        fp16=c.precision == "fp16",
        # without CUDA train on the CPU (several CPU processes are only recognised as distributed, and bf16
        # only allowed, with use_cpu)
        use_cpu=_training_device_type(c) == "cpu",
        eval_strategy="no",
        save_strategy="steps",
        save_steps=c.eval_steps,
        save_total_limit=1,
        logging_strategy="no",  # the evaluations log themselves (SimCSETrainer.evaluate -> self.log)
        report_to=list(c.report_to) or "none",
        disable_tqdm=True,  # StepProgress draws the bar; the Trainer's froze during evaluations
        dataloader_num_workers=0,
        dataloader_pin_memory=torch.cuda.is_available(),
        remove_unused_columns=False,
        ddp_find_unused_parameters=False,
        ddp_backend="gloo" if _world_size() > 1 and not torch.cuda.is_available() else None,
    )


ModelFactory = Callable[[TrainConfig, Path], SimCSEModel]


def build_model(c: TrainConfig, path: Path) -> SimCSEModel:
    """The default model of a (resolved) config: ``SimCSEModel.from_pretrained`` with its settings."""
    return SimCSEModel.from_pretrained(
        str(path), pooler=c.pooler, mlp_only_train=bool(c.mlp_only_train), dropout=c.dropout,
        temperature=c.temperature, hard_negative_weight=c.hard_negative_weight,
        fixed_dropout_mask=c.fixed_dropout_mask, do_mlm=c.do_mlm, mlm_weight=c.mlm_weight, seed=c.seed,
        trust_remote_code=c.trust_remote_code, two_encoders=c.two_encoders,
        cross_process_gradient=c.cross_process_gradient, mini_batch_size=c.mini_batch_size,
        padding_free=c.padding_free)


def train(config: TrainConfig, *, resume: bool = False, overwrite: bool = False, progress: bool = True,
          callbacks: Sequence[Any] = (), log: Callable[[str], None] | None = None,
          model_factory: ModelFactory | None = None) -> RunResult:
    """Run (or resume, or return the already finished) training run ``config`` describes.

    Everything the user can get wrong — settings, training file, batch size vs data, model, data
    directory, output directory — is checked before anything is written; such errors raise
    :class:`InputError`. ``callbacks`` are extra ``TrainerCallback`` objects; ``log`` receives one-line
    status messages (default: none). ``model_factory(resolved_config, checkpoint_dir)`` replaces
    :func:`build_model` (e.g. a :class:`SimCSEModel` subclass with another ``embed_views``).

    Example (the training cell of ``examples/quickstart.ipynb``, executed by ``tests/test_notebook.py``)::

        run = train(TrainConfig("unsup", "all-MiniLM-L6-v2", ["wiki.txt"], "runs/x", max_steps=2,
                                eval_steps=1, report_to=["tensorboard"]))
        run.best_stsb_spearman, run.trajectory[-1]["alignment"]
    """
    # no "Loading weights" / "Writing model shards" bars at every save; the steps and evaluations go to the
    # progress job (a command's, else this run's own: progress=False shows none)
    with quiet_transformers(warnings=True), staged.job(f"train {config.objective}", enabled=progress):
        staged.plan(0, unit="steps")  # the job counts steps (its evaluations' sentences only move their stage)
        return _train(config, resume=resume, overwrite=overwrite, progress=progress, callbacks=callbacks, log=log,
                      model_factory=model_factory or build_model)


#: Where ``--report-to tensorboard`` writes its event files, inside the run directory.
TENSORBOARD_DIR = "tensorboard"


def check_report_to(names: Sequence[str]) -> None:
    """Every name must be a Hugging Face Trainer integration whose package is installed (``all`` = every
    installed one); :class:`InputError` otherwise."""
    from transformers.integrations.integration_utils import (
        INTEGRATION_TO_CALLBACK,
        get_available_reporting_integrations,
    )

    available = set(get_available_reporting_integrations())
    for name in names:
        if name == "all":
            continue
        if name not in INTEGRATION_TO_CALLBACK:
            raise InputError(f"--report-to {name!r} is not a Hugging Face Trainer integration; choose from "
                             f"{', '.join(sorted(INTEGRATION_TO_CALLBACK))} (or none)")
        if name not in available:
            raise InputError(f"--report-to {name}: the {name} package is not installed here (pip install {name}), "
                             "or drop the option")


def _point_tensorboard_at(trainer: Any, log_dir: Path) -> None:
    """TensorBoard event files go to ``RUN/tensorboard`` (the Trainer's own default lies inside the resumable
    state, which is deleted after the run), unless ``$TENSORBOARD_LOGGING_DIR`` names another place."""
    from transformers.integrations import TensorBoardCallback

    for cb in trainer.callback_handler.callbacks:
        if isinstance(cb, TensorBoardCallback) and cb.logging_dir is None:
            cb.logging_dir = str(log_dir)


def _check_setup(c: TrainConfig, rows: int, world: int) -> int:
    """Checks that need the data size and the process layout; returns the per-process batch size."""
    per_device, rest = divmod(c.batch_size, world * c.gradient_accumulation_steps)
    if rest or per_device < 1:
        raise InputError(f"--batch-size {c.batch_size} must be a multiple of processes × --grad-accum "
                         f"({world} × {c.gradient_accumulation_steps})")
    if c.batch_size > rows:
        raise InputError(f"--batch-size {c.batch_size} is larger than the training data ({rows} rows in "
                         f"{', '.join(c.train_files)}): use a smaller batch or more data")
    if c.device not in (None, "cpu", "cuda"):
        raise InputError(f"--device {c.device!r}: use cpu or cuda (pick GPUs with CUDA_VISIBLE_DEVICES, several "
                         "with torchrun)")
    if c.device == "cuda" and not torch.cuda.is_available():
        raise InputError("--device cuda: no CUDA GPU is available here; use --device cpu")
    if c.precision == "fp16" and (c.device == "cpu" or not torch.cuda.is_available()):
        raise InputError("--precision fp16 needs a CUDA GPU; on the CPU use bf16 or fp32")
    if torch.cuda.device_count() > 1 and world == 1 and c.device != "cpu":
        raise InputError("several GPUs are visible but this is one process, which would split in-batch negatives "
                         "across GPUs: launch with `torchrun --nproc-per-node N` (or `accelerate launch`), or set "
                         "CUDA_VISIBLE_DEVICES to one GPU")
    if c.fixed_dropout_mask and c.positive != "dropout":
        raise InputError("a fixed dropout mask needs --positive dropout (identical views)")
    check_report_to(c.report_to)
    if c.mini_batch_size is not None and (per_device % c.mini_batch_size or c.mini_batch_size > per_device):
        raise InputError(f"--mini-batch-size {c.mini_batch_size} must divide the per-process batch of {per_device} "
                         f"rows (--batch-size {c.batch_size} over {world} process(es) × --grad-accum "
                         f"{c.gradient_accumulation_steps})")
    if c.gradient_accumulation_steps > 1:
        warnings.warn(ACCUMULATION_WARNING.format(k=c.gradient_accumulation_steps, b=c.batch_size,
                                                  m=c.batch_size // c.gradient_accumulation_steps), stacklevel=3)
    return per_device


def _resolved_settings(c: TrainConfig, model: Any) -> dict[str, Any]:
    """What the settings left to a default (``None`` in ``config``) resolved to in this run: the dropout
    rate (the checkpoint's own unless set) and the data directory. ``run.json`` keeps them beside the
    config, so a report can show the value each run used (the device is added when the run finishes)."""
    from simcse_analysis.datadir import resolve_data_dir

    return {"dropout": get_dropout(model.encoder.config), "data_dir": str(resolve_data_dir(c.data_dir).resolve())}


def _train(config: TrainConfig, *, resume: bool, overwrite: bool, progress: bool, callbacks: Sequence[Any],
           log: Callable[[str], None] | None, model_factory: ModelFactory) -> RunResult:
    say = log or (lambda msg: None)
    # ---- everything the user can get wrong is checked before the output directory is touched
    c = config.resolved()
    check_run_paths(c)  # --out never on an input; pure path logic, so every process refuses the same --out
    views = parse_positive(c.positive)
    data = load_training_data(c.train_files, c.objective, c.positive)
    world = _world_size()
    per_device = _check_setup(c, len(data), world)
    dev = load_dev_set(c.data_dir, align_uniform_splits=c.align_uniform_splits.split(","))
    rd = RunDir(c.output_dir)
    if _is_main_process():  # only the main process reads the output directory; the others follow its decision
        _, action = prepare_output_dir(c, data.files, resume=resume, overwrite=overwrite)
        if action == "finished" and world == 1:
            say(f"{rd.root} already holds this finished run; nothing to do")
            return RunResult.load(rd.root)

    from simcse_analysis.checkpoint import check_tokenizer_fits, resolve_checkpoint
    from simcse_analysis.encoder import load_tokenizer

    check_writable_dir(c.output_dir)
    path = resolve_checkpoint(c.model)
    tokenizer = load_tokenizer(path, trust_remote_code=c.trust_remote_code)
    check_tokenizer_fits(tokenizer, path)
    model = model_factory(c, path)
    check_tokenizer_fits(tokenizer, path, int(model.encoder.get_input_embeddings().num_embeddings))
    collator = ContrastiveCollator(data, tokenizer, c.max_length, views=views, seed=c.seed,
                                   mlm_probability=c.mlm_probability if c.do_mlm else None)
    length = eval_max_length(path, tokenizer, model.encoder.config)
    metadata = {
        "objective": c.objective, "train_pooler": c.pooler, "mlp_only_train": bool(c.mlp_only_train),
        "temperature": c.temperature, "dropout": get_dropout(model.encoder.config),
        "fixed_dropout_mask": c.fixed_dropout_mask, "positive": c.positive, "two_encoders": c.two_encoders,
        "hard_negative_weight": c.hard_negative_weight, "do_mlm": c.do_mlm, "batch_size": c.batch_size,
        "learning_rate": c.learning_rate, "train_max_length": c.max_length, "seed": c.seed,
        "base_model": c.model, "data": data.files, "package_version": __version__,
    }
    args = _training_arguments(c, rd, per_device, progress)  # sets up the process group under torchrun

    # ---- from here on the output directory is written, under its lock (main process; the others follow)
    lock = DirectoryLock(rd.root)
    try:
        start: dict[str, Any] = {}
        failure: InputError | None = None
        if _is_main_process():
            try:
                lock.acquire()
                action = decide_output_action(c, data.files, resume=resume, overwrite=overwrite)  # again, locked
                start = {"action": action}
                if action != "finished":
                    start.update(_start_run(rd, action, c, data.files, path, world, dev, length, model, say))
            except (InputError, OSError) as e:
                failure = e if isinstance(e, InputError) else InputError(
                    f"cannot write the run in {rd.root}: {e.strerror or e}; free space or fix the rights")
                start = {"error": str(failure)}
        run_record: dict[str, Any] = start.pop("run_record", {})  # the main process's; the others keep none
        if world > 1:
            start = _share_from_main(start)  # every process learns the decision (or the refusal) of the main one
        if "error" in start:
            raise failure or InputError(start["error"])
        if start["action"] == "finished":
            say(f"{rd.root} already holds this finished run; nothing to do")
            return RunResult.load(rd.root)
        resume_from = Path(start["resume_from"]) if start.get("resume_from") else None
        return _fit(c, rd, run_record, resume_from, model=model, args=args, data=data, collator=collator,
                    dev=dev, tokenizer=tokenizer, length=length, metadata=metadata, callbacks=callbacks,
                    progress=progress, world=world)
    finally:
        lock.release()


def _start_run(rd: RunDir, action: str, c: TrainConfig, data_files: list[dict[str, Any]], path: Path, world: int,
               dev: DevSet, length: int, model: SimCSEModel, say: Callable[[str], None]) -> dict[str, Any]:
    """The main process's first writes (under the run's lock): clear a run to overwrite, repair one to resume,
    write ``run.json`` (status ``running``). Returns the resume point and the run record."""
    from simcse_analysis.checkpoint import weights_fingerprint

    if action == "overwrite":
        wipe_run_dir(rd)
    rd.root.mkdir(parents=True, exist_ok=True)
    resume_from: Path | None = None
    run_record: dict[str, Any] = {}
    if action == "resume":
        rd.recover()
        resume_from = rd.latest_state()
        run_record = rd.read_run() or {}
    done = rd.truncate_trajectory(_state_step(resume_from))
    if resume_from is None:
        for d in (rd.best_dir, rd.last_dir):
            if d.exists():
                shutil.rmtree(d)
    run_record.update({
        "status": "running", "config": c.to_dict(), "data": data_files, "package_version": __version__,
        "base_model": {"name": c.model, "path": str(path), "fingerprint": weights_fingerprint(path)},
        "world_size": world, "eval": {**dev.describe(), "max_length": length, "pooler": model.eval_pooler},
        "resolved": _resolved_settings(c, model),
    })
    rd.write_run(run_record)
    if resume_from is not None:
        say(f"resuming from {resume_from.name} ({len(done)} evaluations kept)")
    return {"resume_from": str(resume_from) if resume_from is not None else None, "run_record": run_record}


def _fit(c: TrainConfig, rd: RunDir, run_record: dict[str, Any], resume_from: Path | None, *, model: SimCSEModel,
         args: Any, data: Any, collator: Any, dev: DevSet, tokenizer: Any, length: int, metadata: dict[str, Any],
         callbacks: Sequence[Any], progress: bool, world: int) -> RunResult:
    """Train with the Hugging Face Trainer from ``resume_from`` (or the start) and return the run's result."""
    trainer = SimCSETrainer(model=model, args=args, train_dataset=RowDataset(len(data)),
                               data_collator=collator, callbacks=list(callbacks))
    trainer.setup_simcse(run=rd, dev=dev, tokenizer=tokenizer, config=c, eval_length=length, metadata=metadata)
    trainer.add_callback(Schedule(trainer, c.eval_steps, c.eval_at_start))
    _point_tensorboard_at(trainer, rd.root / TENSORBOARD_DIR)
    from transformers.trainer_callback import PrinterCallback, ProgressCallback

    trainer.remove_callback(PrinterCallback)  # it would print every log dict to standard output
    trainer.remove_callback(ProgressCallback)
    trainer.add_callback(StepProgress())
    run_record.setdefault("resolved", {}).update({
        "device": str(args.device), "optimizer": str(getattr(args.optim, "value", args.optim)),
        "padding_free": model.padding_free_note(), "checkpoint_io": checkpoint_io_note()})
    if checkpoint_hooks_problem() is not None:
        warn(f"resumable states are written by the Trainer's own code: {checkpoint_hooks_problem()} "
             "(this transformers is newer than the tested set in requirements/dev.lock)")
    trainer.add_callback(RecordPaddingFree(model, rd, run_record))
    try:
        _run_trainer(trainer, rd, run_record, resume_from, rows=len(data), keep_state=c.keep_state,
                     select_on=c.select_on)
    except TrainingDiverged as e:
        raise _diverged(e, rd, run_record if _is_main_process() else None, c) from e
    except OSError as e:  # a full disk (or lost rights) while saving: what was saved before stays loadable
        raise InputError(f"cannot write the run in {rd.root}: {e.strerror or e}"
                         f"{' (' + str(e.filename) + ')' if e.filename else ''}; free space (or fix the rights), "
                         "then continue with --resume: best/ and the last saved state are intact") from e
    if world > 1:
        import torch.distributed as dist

        if dist.is_initialized():
            dist.barrier()
    return RunResult.load(rd.root)


def _run_trainer(trainer: Any, rd: RunDir, run_record: dict[str, Any], resume_from: Path | None, *, rows: int,
                 keep_state: bool, select_on: str = "stsb") -> None:
    """Train, export ``last/`` and mark the run finished in ``run.json`` (main process)."""
    started = time.perf_counter()
    trainer.train(resume_from_checkpoint=str(resume_from) if resume_from else None)
    elapsed = time.perf_counter() - started
    if not trainer.is_world_process_zero():
        return
    trajectory = rd.trajectory()
    trainer.export(rd.last_dir, kind="last", entry=trajectory[-1] if trajectory else None)
    previous_time = (run_record.get("summary") or {}).get("train_time_s") or 0.0
    best = max((e for e in trajectory if math.isfinite(selection_score(e, select_on))),
               key=lambda e: selection_score(e, select_on), default=None)
    run_record["summary"] = {
        "steps": int(trainer.state.global_step), "epochs": float(trainer.state.epoch or 0.0),
        "train_time_s": previous_time + elapsed, "rows": rows,
        "best_step": best["step"] if best else None,
        "best_stsb_spearman": best["stsb_spearman"] if best else None,
        "final": trajectory[-1] if trajectory else None,
    }
    run_record["status"] = "finished"
    rd.write_run(run_record)
    if not keep_state and rd.state_dir.exists():
        shutil.rmtree(rd.state_dir, ignore_errors=True)


def _diverged(e: TrainingDiverged, rd: RunDir, run_record: dict[str, Any] | None, c: TrainConfig) -> InputError:
    """Record a diverged run in ``run.json`` (status ``diverged``, so ``--resume`` refuses it) and return the
    one-line error: the step, what was kept, and what to change."""
    kept = [f"best/ (step {_checkpoint_step(rd.best_dir)})"] if rd.best_dir.is_dir() else []
    state = rd.latest_state()
    if state is not None:
        kept.append(f"the resumable state of step {_state_step(state)}")
    if run_record is not None:
        run_record.update({"status": "diverged", "diverged": {"step": e.step, "reason": e.what}})
        with contextlib.suppress(OSError):  # a full disk must not hide the divergence behind a traceback
            rd.write_run(run_record)
    return InputError(f"{e}; stopped without applying it. {rd.root} keeps "
                      f"{' and '.join(kept) if kept else 'no checkpoint yet'}. Lower --lr (now {c.learning_rate:g})"
                      f"{' or use --precision fp32' if c.precision == 'fp16' else ''} and start over with --overwrite")


def _checkpoint_step(path: Path) -> Any:
    from simcse_analysis.checkpoint import read_metadata

    return read_metadata(path).get("step", "?")


def _state_step(state: Path | None) -> int | None:
    return int(state.name.rsplit("-", 1)[1]) if state is not None else None


def _share_from_main(box: dict[str, Any]) -> dict[str, Any]:
    """Every process gets the main process's ``box`` (its decision about the output directory, the resume point
    it chose after cleaning half-written states, or its refusal), so the processes of one run never decide
    for themselves, nor lock each other out."""
    import torch.distributed as dist

    if not dist.is_initialized():
        return box
    shared = [box if _is_main_process() else None]
    dist.broadcast_object_list(shared, src=0)
    return dict(shared[0] or {})
