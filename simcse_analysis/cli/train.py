"""``simcse-analyze train unsup|sup``: train a SimCSE checkpoint (thin layer over ``trainers.loop.train``)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any, Literal

import typer

from trainers.config import TrainConfig

from .help_format import examples
from .options import (
    DataDir,
    Device,
    DtypeName,
    JsonOut,
    PoolerName,
    SharedOption,
    TrustRemoteCode,
    check_outputs,
    shared_options,
    with_progress,
    write_record,
)

Model = Annotated[str, typer.Option(
    "--model", metavar="MODEL", help="Starting checkpoint: Hugging Face id, alias or directory.",
    show_default=False)]
TrainFiles = Annotated[list[Path], typer.Option(
    "--train-file", metavar="FILE",
    help="Training data (repeatable): one sentence per line (unsup) or a sent0,sent1[,hard_neg] "
         "CSV (sup).", show_default=False)]
Out = Annotated[Path, typer.Option(
    "--out", metavar="DIR", help="Run directory: trajectory.jsonl, best/, last/, run.json.",
    show_default=False)]
TrainPooler = Annotated[PoolerName, typer.Option(
    "--pooler", case_sensitive=False, help="The pooler trained and evaluated: cls = an MLP over [CLS] (SimCSE); "
                                           "README, 'Poolers'.")]
MlpOnlyTrain = Annotated[bool | None, typer.Option(
    "--mlp-only-train/--mlp-at-test",
    help="With --pooler cls: drop the MLP at evaluation (default for unsup) or keep it (default for sup).",
    show_default=False)]
Temperature = Annotated[float, typer.Option("--temperature", help="Softmax temperature of the contrastive loss.")]
Dropout = Annotated[str | None, typer.Option(
    "--dropout", help="Hidden+attention dropout: a rate (0 allowed), 'fixed' (both views share one mask, "
                      "rate 0.1) or 'fixed:RATE' (default: the checkpoint's own).", show_default=False)]
Positive = Annotated[str, typer.Option(
    "--positive", help="How the positive is made: dropout (SimCSE), crop:K, word_deletion:K, delete_one_word, "
                       "synonym[:K], mlm:K@MODEL, or next[:K] (a following line of the same file); see the "
                       "README's Tables 1-3.")]
TwoEncoders = Annotated[bool, typer.Option(
    "--two-encoders", help="Encode the positives with a second, independent copy of the encoder (Table 2); the "
                           "first is saved.")]
HardNegWeight = Annotated[float, typer.Option(
    "--hard-negative-weight", help="Logit added to each anchor's own hard negative (reference default 0).")]
DoMlm = Annotated[bool, typer.Option("--do-mlm", help="Add the auxiliary MLM loss (needs a checkpoint with an MLM "
                                                      "head).")]
MlmWeight = Annotated[float, typer.Option("--mlm-weight", help="Weight of the MLM loss.")]
MlmProb = Annotated[float, typer.Option("--mlm-probability", help="Share of tokens masked for MLM.")]
BatchSize = Annotated[int | None, typer.Option(
    "--batch-size", min=1, help="Rows per optimiser step over all processes (default 64 unsup, 512 sup).",
    show_default=False)]
Lr = Annotated[float | None, typer.Option("--lr", help="Peak learning rate (default 3e-5 unsup, 5e-5 sup).",
                                             show_default=False)]
Epochs = Annotated[float | None, typer.Option("--epochs", help="Epochs (default 1 unsup, 3 sup).",
                                                 show_default=False)]
MaxSteps = Annotated[int | None, typer.Option("--max-steps", min=1, help="Stop after this many steps "
                                                                            "(overrides --epochs).")]
MaxLength = Annotated[int, typer.Option("--max-length", min=1, help="Truncate training texts to this many tokens.")]
Warmup = Annotated[int, typer.Option("--warmup-steps", min=0, help="Linear warm-up steps.")]
WeightDecay = Annotated[float, typer.Option("--weight-decay", help="AdamW weight decay.")]
MaxGradNorm = Annotated[float, typer.Option("--max-grad-norm", help="Gradient clipping norm.")]
GradAccum = Annotated[int, typer.Option("--grad-accum", min=1, help="Gradient accumulation steps (in-batch "
                                                                    "negatives stay per micro-batch; see "
                                                                    "--mini-batch-size).")]
MiniBatch = Annotated[int | None, typer.Option(
    "--mini-batch-size", min=1, help="Gradient caching: encode the batch in chunks of this many rows with cached "
                                     "representation gradients; same update as the full batch, memory of one chunk.",
    show_default=False)]
CrossProcessGradient = Annotated[Literal["average", "global"], typer.Option(
    "--cross-process-gradient", case_sensitive=False,
    help="Several processes: 'average' (the reference: DDP averages, update = global-batch gradient / "
         "processes) or 'global' (rescaled: same update as one process on the global batch).")]
Seed = Annotated[int, typer.Option("--seed", help="Seed of initialisation, data order, dropout and views.")]
Precision = Annotated[DtypeName, typer.Option(
    "--precision", case_sensitive=False, help="Mixed precision of training (fp16 needs a CUDA GPU).")]
EvalSteps = Annotated[int, typer.Option("--eval-steps", min=1, help="Evaluate on STS-B dev (and save resumable "
                                                                    "state) every this many steps.")]
EvalAtStart = Annotated[bool, typer.Option("--eval-at-start/--no-eval-at-start",
                                           help="Evaluate before the first step.")]
SelectOn = Annotated[Literal["stsb", "stsb_sickr"], typer.Option(
    "--select-on", case_sensitive=False, help="What picks best/: stsb (STS-B dev Spearman) or stsb_sickr (its mean with SICK-R dev, "
                        "the reference's choice); both are recorded in the trajectory.")]
EvalBatch = Annotated[int, typer.Option("--eval-batch-size", min=1, help="Sentences per forward pass when "
                                                                         "evaluating.")]
AlignSplits = Annotated[str, typer.Option(
    "--align-uniform-splits", help="STS-B splits whose pairs (gold > 4) and sentences give alignment and uniformity "
                                   "(train,dev,test = the align-uniform command's protocol; dev = one encoding per "
                                   "evaluation).")]
ReportTo = Annotated[str, typer.Option(
    "--report-to", help="Also send every evaluation (loss, learning rate, STS-B dev, alignment, uniformity) to these "
                        "Hugging Face Trainer integrations: tensorboard (event files in OUT/tensorboard), wandb, "
                        "mlflow, … comma-separated, or none.")]
PaddingFree = Annotated[bool, typer.Option(
    "--padding-free/--no-padding-free", help="Run the encoder's dense layers on real tokens only (BERT and RoBERTa; "
                                             "same numbers to float tolerance, fewer FLOPs); off: the model's own "
                                             "padded forward.")]
KeepState = Annotated[bool, typer.Option("--keep-state", help="Keep the resumable optimiser state after the run.")]
Resume = Annotated[bool, typer.Option("--resume", help="Continue the run in --out from its last saved state.")]
Overwrite = Annotated[bool, typer.Option("--overwrite", help="Replace the run in --out.")]
DryRun = Annotated[bool, typer.Option("--dry-run", help="Print the resolved settings and the command, train "
                                                        "nothing.")]


def _config(objective: str, **kw: Any):
    from trainers.config import TrainConfig, parse_dropout

    rate, fixed = parse_dropout(kw.pop("dropout"))
    data_dir = kw.pop("data_dir")
    return TrainConfig(objective=objective, model=kw.pop("model"), train_files=[str(f) for f in kw.pop("train_files")],
                       output_dir=str(kw.pop("out")), dropout=rate, fixed_dropout_mask=fixed,
                       data_dir=str(data_dir) if data_dir is not None else None, **kw)


def summary_table(result) -> str:
    """Steps, time, and STS-B dev / alignment / uniformity before training, at the best step and at the end."""
    from trainers.rundir import SUMMARY_HEADERS

    from ..tables import format_table

    table = format_table(SUMMARY_HEADERS, result.summary_rows(), right=[False, True, True, True, True])
    minutes = (result.train_time_s or 0.0) / 60
    return (f"{table}\n\nsteps {result.steps}, training time {minutes:.1f} min\n"
            f"best: {result.best_dir}\nlast: {result.last_dir}")


def _run(objective: str, *, resume: bool, overwrite: bool, dry_run: bool, show_progress: bool,
         json_out: Path | None, training: dict[str, Any], **kw: Any) -> None:
    """Build the config from the command's own options and the shared ``training`` ones, and run it."""
    config = _config(objective, **training, **kw)
    to_stderr = check_outputs(("--json", json_out), reads=[("--model", config.model), *(
        ("--train-file", f) for f in config.train_files)], dirs=[("--out", config.output_dir)])
    if dry_run:
        resolved = config.resolved()
        typer.echo(json.dumps(resolved.to_dict(), indent=2, sort_keys=True))
        typer.echo(config.command_line())
        return
    from trainers.loop import train

    from .. import progress

    result = train(config, resume=resume, overwrite=overwrite, progress=show_progress, log=progress.say)
    typer.echo(summary_table(result), err=to_stderr)
    write_record(json_out, result, to_stderr=to_stderr)


#: The defaults of every training option: those of :class:`~trainers.config.TrainConfig` (one place).
DEFAULTS = TrainConfig.defaults()
#: Options of every command that trains (train unsup/sup, ablate dropout/grid), keyed by TrainConfig field.
TRAINING_OPTIONS: list[SharedOption] = [
    SharedOption(name, annotation, DEFAULTS[key or name], key) for name, annotation, key in (
        ("pooler", TrainPooler, None), ("mlp_only_train", MlpOnlyTrain, None), ("temperature", Temperature, None),
        ("two_encoders", TwoEncoders, None), ("do_mlm", DoMlm, None), ("mlm_weight", MlmWeight, None),
        ("mlm_probability", MlmProb, None), ("batch_size", BatchSize, None), ("lr", Lr, "learning_rate"),
        ("epochs", Epochs, None), ("max_steps", MaxSteps, None), ("max_length", MaxLength, None),
        ("warmup_steps", Warmup, None), ("weight_decay", WeightDecay, None), ("max_grad_norm", MaxGradNorm, None),
        ("grad_accum", GradAccum, "gradient_accumulation_steps"), ("mini_batch_size", MiniBatch, None),
        ("precision", Precision, None), ("device", Device, None),
        ("cross_process_gradient", CrossProcessGradient, None), ("padding_free", PaddingFree, None),
        ("eval_steps", EvalSteps, None),
        ("eval_at_start", EvalAtStart, None), ("select_on", SelectOn, None),
        ("eval_batch_size", EvalBatch, None), ("align_uniform_splits", AlignSplits, None),
        ("data_dir", DataDir, None), ("keep_state", KeepState, None), ("trust_remote_code", TrustRemoteCode, None))
] + [SharedOption("report_to", ReportTo, "none")]
#: Give a command the training options; it receives them as ``training: dict`` (TrainConfig field names).
with_training_options = shared_options(TRAINING_OPTIONS, "training")


UNSUP_EXAMPLES = examples(
    "simcse-analyze train unsup --model bert-base-uncased --train-file wiki1m_for_simcse.txt --out runs/unsup",
    "simcse-analyze train unsup --model all-MiniLM-L6-v2 --train-file wiki1m_for_simcse.head.txt --out mini "
    "--max-steps 40",
    "simcse-analyze train unsup --model M --train-file F --out runs/x --dry-run   # the resolved settings",
    "simcse-analyze train unsup --model M --train-file F --out runs/x --resume")
SUP_EXAMPLES = examples(
    "simcse-analyze train sup --model bert-base-uncased --train-file nli_for_simcse.csv --out runs/sup",
    "simcse-analyze train sup --model M --train-file nli.csv --out runs/sup --batch-size 512 --mini-batch-size 64")


def register(app: typer.Typer) -> None:
    train_app = typer.Typer(help="Train SimCSE checkpoints (unsupervised or supervised), recording the STS-B dev "
                                 "trajectory.", no_args_is_help=True,
                            epilog=examples("simcse-analyze train unsup --help", "simcse-analyze train sup --help",
                                            "simcse-analyze train sbert --help"))
    app.add_typer(train_app, name="train", rich_help_panel="Training",
                  short_help="Train SimCSE (unsup, sup) or the SBERT-NLI baseline.")

    @train_app.command("unsup", epilog=UNSUP_EXAMPLES)
    @with_progress("train unsup")
    @with_training_options
    def unsup(model: Model, train_files: TrainFiles, out: Out, dropout: Dropout = None,
              positive: Positive = DEFAULTS["positive"], seed: Seed = DEFAULTS["seed"], resume: Resume = False,
              overwrite: Overwrite = False,
              dry_run: DryRun = False, json_out: JsonOut = None, *,
              training: dict[str, Any], show_progress: bool) -> None:
        """Unsupervised SimCSE: each sentence is its own positive under two dropout masks."""
        _run("unsup", **locals())

    @train_app.command("sup", epilog=SUP_EXAMPLES)
    @with_progress("train sup")
    @with_training_options
    def sup(model: Model, train_files: TrainFiles, out: Out, dropout: Dropout = None,
            hard_negative_weight: HardNegWeight = DEFAULTS["hard_negative_weight"], seed: Seed = DEFAULTS["seed"],
            resume: Resume = False,
            overwrite: Overwrite = False, dry_run: DryRun = False, json_out: JsonOut = None, *,
            training: dict[str, Any], show_progress: bool) -> None:
        """Supervised SimCSE on sent0,sent1[,hard_neg] triplets (entailment positive, contradiction hard negative)."""
        _run("sup", **locals())
