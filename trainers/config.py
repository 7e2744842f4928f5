"""Settings of one SimCSE training run, with the paper's defaults.

:class:`TrainConfig` is a plain record: it serialises to JSON (``run.json`` of a run directory) and
back, and prints as the equivalent ``simcse-analyze train …`` command (:meth:`TrainConfig.command_line`),
so a sweep can run in-process or hand its runs to a cluster scheduler.

Defaults follow the SimCSE reference (``run_unsup_example.sh``, ``run_sup_example.sh``, ``train.py``):

============================  =====================  =====================
setting                       unsupervised           supervised
============================  =====================  =====================
batch size                    64                     512
learning rate                 3e-5                   5e-5
epochs                        1                      3
max sequence length           32                     32
pooler                        ``cls`` (MLP on [CLS]) ``cls`` (MLP on [CLS])
MLP at evaluation             no (``mlp_only_train``) yes
temperature                   0.05                   0.05
hard-negative weight          –                      0 (a logit)
STS-B dev evaluation every    125 steps              125 steps
best checkpoint selected on   STS-B dev (SICK-R dev recorded; ``select_on="stsb_sickr"``: their mean)
alignment/uniformity on       STS-B dev              STS-B dev
optimiser                     AdamW, linear decay to 0, no warm-up, no weight decay, seed 42
============================  =====================  =====================
"""

from __future__ import annotations

import dataclasses
import json
import shlex
from dataclasses import dataclass, field
from typing import Any

from simcse_analysis.errors import InputError
from simcse_analysis.pooling import check_pooler
from simcse_analysis.records import list_argument

OBJECTIVES: tuple[str, ...] = ("unsup", "sup")
PRECISIONS: tuple[str, ...] = ("fp32", "bf16", "fp16")

#: How the gradient of cross-process negatives is combined: ``average`` (the reference: DDP's mean of
#: the per-process gradients of the global loss, ``∇L / P``) or ``global`` (rescaled by ``P``: ``∇L``).
CROSS_PROCESS_GRADIENTS: tuple[str, ...] = ("average", "global")

#: What picks ``best/``: STS-B dev Spearman, or its mean with SICK-R dev (the reference's choice).
SELECTION_METRICS: tuple[str, ...] = ("stsb", "stsb_sickr")

#: Per-objective defaults for the settings left as ``None`` in :class:`TrainConfig`.
PAPER_DEFAULTS: dict[str, dict[str, Any]] = {
    "unsup": {"batch_size": 64, "learning_rate": 3e-5, "epochs": 1.0, "mlp_only_train": True},
    "sup": {"batch_size": 512, "learning_rate": 5e-5, "epochs": 3.0, "mlp_only_train": False},
}


def check_objective(name: str) -> str:
    if name not in OBJECTIVES:
        raise InputError(f"unknown objective {name!r}: choose one of {', '.join(OBJECTIVES)}")
    return name


def parse_dropout(token: str | float | None) -> tuple[float | None, bool]:
    """``"0.1"`` → ``(0.1, False)``; ``"fixed"`` → ``(0.1, True)``; ``"fixed:0.2"`` → ``(0.2, True)``.

    ``fixed`` is the paper's "fixed 0.1" ablation (Table 3): both views share one dropout mask.
    ``None`` keeps the checkpoint's own dropout.
    """
    if token is None:
        return None, False
    text = str(token).strip().lower()
    fixed = text.startswith("fixed")
    if fixed:
        text = text[len("fixed"):].lstrip(":=") or "0.1"
    try:
        rate = float(text)
    except ValueError:
        raise InputError(f"--dropout {token!r}: give a rate in [0, 1), 'fixed' or 'fixed:RATE'") from None
    if not 0.0 <= rate < 1.0:
        raise InputError(f"--dropout {token!r}: the rate must be in [0, 1)")
    return rate, fixed


def parse_report_to(value: str | list[str] | tuple[str, ...] | None) -> list[str]:
    """``--report-to``: ``"tensorboard,wandb"`` or a list → ``["tensorboard", "wandb"]`` (order kept, duplicates
    dropped); ``None``, ``""`` and ``"none"`` → ``[]``. Names are checked against the installed Hugging Face
    integrations when training starts (:func:`trainers.loop.check_report_to`)."""
    items = value.split(",") if isinstance(value, str) else list(value or [])
    names = [str(v).strip().lower() for v in items if str(v).strip()]
    return [n for n in dict.fromkeys(names) if n != "none"]


def format_dropout(rate: float | None, fixed: bool) -> str | None:
    if rate is None:
        return None
    return (f"fixed:{rate:g}" if fixed else f"{rate:g}")


@dataclass
class TrainConfig:
    """One training run. ``None`` means "the objective's paper default" (see :data:`PAPER_DEFAULTS`)
    or, for ``dropout``, the checkpoint's own rate; :meth:`resolved` fills them in."""

    objective: str
    model: str
    train_files: list[str]
    output_dir: str
    # objective
    pooler: str = "cls"
    mlp_only_train: bool | None = None
    temperature: float = 0.05
    dropout: float | None = None
    fixed_dropout_mask: bool = False
    positive: str = "dropout"
    two_encoders: bool = False
    hard_negative_weight: float = 0.0
    do_mlm: bool = False
    mlm_weight: float = 0.1
    mlm_probability: float = 0.15
    # optimisation
    batch_size: int | None = None
    learning_rate: float | None = None
    epochs: float | None = None
    max_steps: int | None = None
    max_length: int = 32
    warmup_steps: int = 0
    weight_decay: float = 0.0
    max_grad_norm: float = 1.0
    gradient_accumulation_steps: int = 1
    mini_batch_size: int | None = None
    seed: int = 42
    precision: str = "fp32"
    device: str | None = None
    cross_process_gradient: str = "average"
    #: run the encoder's token-wise layers on real tokens only (:mod:`trainers.padding_free`; same numbers)
    padding_free: bool = True
    # evaluation / bookkeeping
    eval_steps: int = 125
    eval_at_start: bool = True
    select_on: str = "stsb"
    eval_batch_size: int = 128
    align_uniform_splits: str = "dev"
    data_dir: str | None = None
    keep_state: bool = False
    trust_remote_code: bool = False
    #: Hugging Face Trainer integrations that also receive every evaluation (``tensorboard``, ``wandb``, …)
    report_to: list[str] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.report_to = parse_report_to(self.report_to)

    # ------------------------------------------------------------------ defaults & checks
    @classmethod
    def defaults(cls) -> dict[str, Any]:
        """Each setting's default (``None``: the objective's paper default); the CLI's options read theirs here."""
        return {f.name: f.default for f in dataclasses.fields(cls) if f.default is not dataclasses.MISSING}

    def resolved(self) -> TrainConfig:
        """A copy with the paper defaults filled in and every setting checked (:class:`InputError`)."""
        check_objective(self.objective)
        files = list_argument(self.train_files, "train_files", "training files")
        c = dataclasses.replace(self, train_files=[str(f) for f in files], extra=dict(self.extra))
        for key, value in PAPER_DEFAULTS[c.objective].items():
            if getattr(c, key) is None:
                setattr(c, key, value)
        check_pooler(c.pooler)
        if not c.train_files:
            raise InputError("no training file given: pass --train-file FILE")
        if c.temperature <= 0:
            raise InputError(f"--temperature {c.temperature}: must be > 0")
        if c.dropout is not None and not 0.0 <= c.dropout < 1.0:
            raise InputError(f"--dropout {c.dropout}: must be in [0, 1)")
        if c.fixed_dropout_mask and c.objective != "unsup":
            raise InputError("a fixed dropout mask only applies to unsupervised SimCSE (train unsup)")
        if c.objective == "sup" and c.positive != "dropout":
            raise InputError("--positive applies to unsupervised SimCSE only (supervised positives are sent1)")
        if c.objective == "unsup" and c.hard_negative_weight:
            raise InputError("--hard-negative-weight applies to supervised SimCSE only (train sup)")
        if c.fixed_dropout_mask and c.two_encoders:
            raise InputError("a fixed dropout mask (one mask for both views of one encoder) cannot be combined with "
                             "--two-encoders")
        if c.fixed_dropout_mask and c.dropout is None:
            c.dropout = 0.1  # the paper's "fixed 0.1"
        for name in ("batch_size", "max_length", "eval_steps", "gradient_accumulation_steps", "eval_batch_size"):
            if int(getattr(c, name)) < 1:
                raise InputError(f"--{name.replace('_', '-')} {getattr(c, name)}: must be at least 1")
        if c.max_steps is not None and c.max_steps < 1:
            raise InputError(f"--max-steps {c.max_steps}: must be at least 1")
        if c.epochs is not None and c.epochs <= 0:
            raise InputError(f"--epochs {c.epochs}: must be > 0")
        if c.learning_rate is not None and c.learning_rate <= 0:
            raise InputError(f"--lr {c.learning_rate}: must be > 0")
        if not 0.0 < c.mlm_probability < 1.0:
            raise InputError(f"--mlm-probability {c.mlm_probability}: must be in (0, 1)")
        c.align_uniform_splits = ",".join(dict.fromkeys(x.strip() for x in str(c.align_uniform_splits).split(",")
                                                        if x.strip()))
        if not c.align_uniform_splits:
            raise InputError("--align-uniform-splits: give one or more of train, dev, test")
        if c.select_on not in SELECTION_METRICS:
            raise InputError(f"--select-on {c.select_on!r}: choose one of {', '.join(SELECTION_METRICS)}")
        if c.cross_process_gradient not in CROSS_PROCESS_GRADIENTS:
            raise InputError(f"--cross-process-gradient {c.cross_process_gradient!r}: choose one of "
                             f"{', '.join(CROSS_PROCESS_GRADIENTS)}")
        if c.precision not in PRECISIONS:
            raise InputError(f"--precision {c.precision!r}: choose one of {', '.join(PRECISIONS)}")
        if c.mini_batch_size is not None:
            if c.mini_batch_size < 1 or c.mini_batch_size > c.batch_size or c.batch_size % c.mini_batch_size:
                raise InputError(f"--mini-batch-size {c.mini_batch_size} must divide --batch-size {c.batch_size} "
                                 "(and be at most it): gradient caching encodes the batch in chunks of that size")
            if c.do_mlm:
                raise InputError("--mini-batch-size (gradient caching) cannot be combined with --do-mlm")
        if c.batch_size % c.gradient_accumulation_steps:
            raise InputError(f"--batch-size {c.batch_size} is not divisible by --grad-accum "
                             f"{c.gradient_accumulation_steps}")
        return c

    @property
    def eval_pooler(self) -> str:
        """Pooler of the saved checkpoint: ``cls_before_pooler`` when the MLP is used in training only."""
        if self.pooler == "cls" and self.mlp_only_train:
            return "cls_before_pooler"
        return self.pooler

    # ------------------------------------------------------------------ (de)serialisation
    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainConfig:
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - names)
        if unknown:
            raise InputError(f"unknown training settings {', '.join(unknown)}")
        return cls(**data)

    def identity(self) -> dict[str, Any]:
        """The settings that define *what* is trained (everything but where and how it is logged), used to
        decide whether an output directory holds the same run."""
        d = self.to_dict()
        for key in ("output_dir", "keep_state", "device", "data_dir", "eval_batch_size", "trust_remote_code",
                    "report_to", "padding_free"):
            d.pop(key, None)
        return json.loads(json.dumps(d, sort_keys=True))

    # ------------------------------------------------------------------ command line
    def cli_args(self) -> list[str]:
        """Arguments of ``simcse-analyze train OBJECTIVE …`` reproducing this run (non-defaults only)."""
        base = TrainConfig(self.objective, self.model, [], self.output_dir)
        args = [self.objective, "--model", self.model]
        for f in self.train_files:
            args += ["--train-file", str(f)]
        args += ["--out", str(self.output_dir)]
        if (self.dropout, self.fixed_dropout_mask) != (base.dropout, base.fixed_dropout_mask):
            args += ["--dropout", format_dropout(0.1 if self.dropout is None else self.dropout,
                                                 self.fixed_dropout_mask)]
        flags = {"do_mlm": "--do-mlm", "eval_at_start": "--eval-at-start", "keep_state": "--keep-state",
                 "trust_remote_code": "--trust-remote-code", "two_encoders": "--two-encoders",
                 "padding_free": "--padding-free"}
        negative = {"eval_at_start": "--no-eval-at-start", "padding_free": "--no-padding-free"}
        for f in dataclasses.fields(self):
            name = f.name
            if name in ("objective", "model", "train_files", "output_dir", "dropout", "fixed_dropout_mask",
                        "extra"):
                continue
            value, default = getattr(self, name), getattr(base, name)
            if value == default:
                continue
            if name == "mlp_only_train":
                args.append("--mlp-only-train" if value else "--mlp-at-test")
            elif name == "report_to":
                args += ["--report-to", ",".join(value)]
            elif name in flags:
                args.append(flags[name] if value else negative.get(name, ""))
            else:
                args += [CLI_OPTION.get(name, "--" + name.replace("_", "-")), _fmt(value)]
        if self.extra:
            raise InputError("settings in 'extra' have no command-line form")
        return [a for a in args if a]

    def command_line(self, program: str = "simcse-analyze train") -> str:
        """The shell command that runs this configuration."""
        return " ".join([program, *(shlex.quote(a) for a in self.cli_args())])


#: Command-line spelling of settings whose option name differs from the field name.
CLI_OPTION: dict[str, str] = {
    "learning_rate": "--lr",
    "gradient_accumulation_steps": "--grad-accum",
}


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return repr(value)
    return str(value)


@dataclass
class SBERTConfig:
    """Settings of one SBERT-NLI run (:func:`trainers.sbert.train_sbert`; defaults: Reimers & Gurevych 2019)."""

    model: str
    train_files: list[str]
    output_dir: str
    batch_size: int = 16
    learning_rate: float = 2e-5
    epochs: float = 1.0
    max_steps: int | None = None
    warmup_ratio: float = 0.1
    max_length: int = 128
    max_grad_norm: float = 1.0
    seed: int = 42
    device: str | None = None
    data_dir: str | None = None
    eval: bool = True

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)
