"""SBERT's NLI objective (Reimers & Gurevych 2019, "Sentence-BERT"): a softmax classifier over (u, v, |u − v|).

With ``u = pool(f(a))`` and ``v = pool(f(b))`` the mean-pooled (``avg``) embeddings of premise ``a`` and
hypothesis ``b`` of a labelled NLI pair, and ``W ∈ R^{3 × 3d}``, ``c ∈ R^3`` a fresh linear layer,

    o = softmax(W [u; v; |u − v|] + c),      L = −(1/B) Σ log o_y      (y ∈ {entailment, neutral, contradiction})

and the encoder and ``W`` are trained together (the paper: batch 16, Adam lr 2e-5, linear warm-up over
10 % of the steps, one epoch, mean pooling). The classifier is discarded; the checkpoint is the encoder
with the ``avg`` pooler, loadable by every command (and by ``SentenceTransformer``).

Training data (:func:`load_nli_pairs`): a SentEval SNLI directory (``s1.SPLIT``, ``s2.SPLIT``,
``labels.SPLIT``: premise, hypothesis, label per line), or a CSV/TSV with a header naming a premise
column (``sentence1``/``premise``/``sent0``/``s1``), a hypothesis column (``sentence2``/``hypothesis``/
``sent1``/``s2``) and ``label`` / ``gold_label``. Data without labels (e.g. SimCSE's
``sent0,sent1,hard_neg`` triplets) is refused.
"""

from __future__ import annotations

import csv
import io
import math
import os
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from simcse_analysis.errors import InputError
from simcse_analysis.path_safety import check_apart

from .config import SBERTConfig  # defined beside TrainConfig (the CLI reads its defaults)

#: Class index of each NLI label (SNLI's order).
LABELS: dict[str, int] = {"entailment": 0, "neutral": 1, "contradiction": 2}
_PREMISE = ("sentence1", "premise", "sent0", "s1")
_HYPOTHESIS = ("sentence2", "hypothesis", "sent1", "s2")
_LABEL = ("label", "gold_label")


@dataclass
class NLIPairs:
    """Labelled pairs: ``premise[i]``, ``hypothesis[i]``, ``label[i]`` ∈ {0, 1, 2} (:data:`LABELS`)."""

    premise: list[str]
    hypothesis: list[str]
    label: list[int]
    files: list[dict[str, Any]] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.label)


def _label(value: str, where: str) -> int:
    v = value.strip().lower()
    if v in LABELS:
        return LABELS[v]
    if v in ("0", "1", "2"):
        return int(v)
    raise InputError(f"{where}: label {value!r} is not one of {', '.join(LABELS)} (or 0/1/2); drop unlabelled "
                     "('-') pairs first")


def _read_senteval_dir(d: Path) -> tuple[list[str], list[str], list[int], list[Path]]:
    splits = sorted(p.name[len("labels."):] for p in d.glob("labels.*"))
    if not splits:
        raise InputError(f"--train-file {d}: a directory must hold SentEval SNLI files s1.SPLIT, s2.SPLIT and "
                         "labels.SPLIT; this one has no labels.* file, and SBERT's objective needs labels")
    a: list[str] = []
    b: list[str] = []
    y: list[int] = []
    used: list[Path] = []
    for split in splits:
        files = [d / f"{k}.{split}" for k in ("s1", "s2", "labels")]
        missing = [f.name for f in files if not f.is_file()]
        if missing:
            raise InputError(f"--train-file {d}: split {split!r} lacks {', '.join(missing)}")
        cols = [f.read_text(encoding="utf-8").splitlines() for f in files]
        if len({len(c) for c in cols}) != 1:
            raise InputError(f"--train-file {d}: s1/s2/labels.{split} have {'/'.join(str(len(c)) for c in cols)} "
                             "lines; they must be parallel")
        a += cols[0]
        b += cols[1]
        y += [_label(v, f"{files[2]} line {i}") for i, v in enumerate(cols[2], start=1)]
        used += files
    return a, b, y, used


def _read_table(p: Path) -> tuple[list[str], list[str], list[int]]:
    try:
        text = p.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as e:
        raise InputError(f"cannot read --train-file {p}: {e}") from e
    reader = csv.reader(io.StringIO(text, newline=""), delimiter="\t" if p.suffix.lower() == ".tsv" else ",")
    header = [h.strip().lower() for h in next(reader, [])]

    def column(names: tuple[str, ...]) -> int | None:
        return next((header.index(n) for n in names if n in header), None)

    ia, ib, iy = column(_PREMISE), column(_HYPOTHESIS), column(_LABEL)
    if iy is None:
        raise InputError(f"--train-file {p} has no label column (header: {','.join(header) or 'none'}): SBERT's "
                         "NLI objective needs labelled pairs, e.g. a 'sentence1,sentence2,label' CSV or the "
                         "SentEval SNLI directory nli/snli-senteval")
    if ia is None or ib is None:
        raise InputError(f"--train-file {p}: the header needs a premise column ({'/'.join(_PREMISE)}) and a "
                         f"hypothesis column ({'/'.join(_HYPOTHESIS)})")
    a: list[str] = []
    b: list[str] = []
    y: list[int] = []
    for row in reader:
        if not row or not any(x.strip() for x in row):
            continue
        if len(row) <= max(ia, ib, iy):
            raise InputError(f"--train-file {p} line {reader.line_num}: {len(row)} field(s), expected {len(header)}")
        a.append(row[ia])
        b.append(row[ib])
        y.append(_label(row[iy], f"{p} line {reader.line_num}"))
    return a, b, y


def load_nli_pairs(files: Sequence[str | os.PathLike[str]]) -> NLIPairs:
    """Read labelled NLI pairs from SentEval SNLI directories and/or labelled CSV/TSV files (module docstring)."""
    from simcse_analysis.checkpoint import file_digest

    if not files:
        raise InputError("no training file given: pass --train-file (a SentEval SNLI directory or a labelled CSV)")
    out = NLIPairs([], [], [])
    for f in files:
        p = Path(f)
        if p.is_dir():
            a, b, y, used = _read_senteval_dir(p)
        elif p.is_file():
            if p.suffix.lower() not in (".csv", ".tsv"):
                raise InputError(f"--train-file {p}: SBERT trains on labelled pairs (a CSV/TSV with a label column "
                                 "or a SentEval SNLI directory), not on one sentence per line")
            a, b, y = _read_table(p)
            used = [p]
        else:
            raise InputError(f"--train-file {p} does not exist")
        if not y:
            raise InputError(f"--train-file {p} holds no labelled pair")
        out.premise += a
        out.hypothesis += b
        out.label += y
        out.files += [{"path": str(u.resolve()), "sha256": file_digest(u)} for u in used]
    return out


@dataclass
class SBERTResult:
    """What :func:`train_sbert` did (JSON-able): steps, mean loss per tenth of training, train accuracy, dev."""

    output_dir: str
    steps: int
    rows: int
    train_time_s: float
    loss_curve: list[float]
    train_accuracy: float
    dev_start: dict[str, float] | None
    dev_end: dict[str, float] | None
    config: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def nli_head(dim: int, seed: int):
    """The classifier ``W ∈ R^{3 × 3d}``, ``c = 0``; ``W`` uniform in ``±1/√(3d)`` (PyTorch's Linear init),
    drawn from its own generator seeded with ``seed``."""
    import torch

    g = torch.Generator().manual_seed(int(seed))
    head = torch.nn.Linear(3 * dim, len(LABELS))
    with torch.no_grad():
        bound = 1.0 / math.sqrt(3 * dim)
        head.weight.copy_(torch.empty_like(head.weight).uniform_(-bound, bound, generator=g))
        head.bias.zero_()
    return head


def sbert_logits(u, v, head):
    """``W [u; v; |u − v|] + c``: ``(B, 3)`` logits of the NLI classifier."""
    import torch

    return head(torch.cat([u, v, (u - v).abs()], dim=-1))


def train_sbert(config: SBERTConfig, *, overwrite: bool = False, progress: bool = True,
                log: Callable[[str], None] | None = None) -> SBERTResult:
    """Train SBERT-NLI from ``config.model`` and write the encoder (pooler ``avg``) to ``config.output_dir``."""
    import numpy as np
    import torch
    from tqdm.auto import tqdm
    from transformers import AutoModel, AutoTokenizer, get_linear_schedule_with_warmup

    from simcse_analysis.checkpoint import resolve_checkpoint, weights_fingerprint
    from simcse_analysis.encoder import Encoder, resolve_device
    from simcse_analysis.pooling import masked_mean

    from .checkpoint_io import save_checkpoint
    from .evaluation import dev_metrics, load_dev_set
    from .loop import eval_max_length
    from .postprocess import check_output_dir

    say = log or (lambda msg: None)
    c = config
    for name in ("batch_size", "max_length"):
        if int(getattr(c, name)) < 1:
            raise InputError(f"--{name.replace('_', '-')} {getattr(c, name)}: must be at least 1")
    if c.learning_rate <= 0 or c.epochs <= 0 or not 0 <= c.warmup_ratio < 1:
        raise InputError("--lr and --epochs must be > 0, --warmup-ratio in [0, 1)")
    check_apart([("--out", c.output_dir)], [("--model", c.model), *(("--train-file", f) for f in c.train_files)])
    out = check_output_dir(c.output_dir, overwrite)
    data = load_nli_pairs(c.train_files)
    if len(data) < c.batch_size:
        raise InputError(f"--batch-size {c.batch_size} is larger than the training data ({len(data)} pairs)")
    dev = load_dev_set(c.data_dir) if c.eval else None
    path = resolve_checkpoint(c.model)
    device = resolve_device(c.device)
    torch.manual_seed(c.seed)
    tokenizer = AutoTokenizer.from_pretrained(str(path))
    encoder = AutoModel.from_pretrained(str(path)).to(device)
    if getattr(encoder, "pooler", None) is not None:
        encoder.pooler.requires_grad_(False)  # mean pooling: BERT's pooler layer is unused
    length = eval_max_length(path, tokenizer, encoder.config)  # evaluation and the saved checkpoint
    head = nli_head(int(encoder.config.hidden_size), c.seed).to(device)
    params = [p for p in encoder.parameters() if p.requires_grad] + list(head.parameters())
    per_epoch = len(data) // c.batch_size
    steps = c.max_steps or max(1, math.ceil(per_epoch * c.epochs))
    optimiser = torch.optim.AdamW(params, lr=c.learning_rate, weight_decay=0.01)
    schedule = get_linear_schedule_with_warmup(optimiser, int(c.warmup_ratio * steps), steps)

    def dev_eval() -> dict[str, float] | None:
        if dev is None:
            return None
        encoder.eval()
        enc = Encoder.from_model(encoder, tokenizer, pooler="avg", max_length=length, name="training")
        with torch.random.fork_rng(devices=[]):
            m = dev_metrics(lambda t: enc.encode(t, batch_size=128, show_progress_bar=False), dev)
        encoder.train()
        return m

    start = dev_eval()
    rng = random.Random(c.seed)
    order: list[int] = []
    losses: list[float] = []
    correct = 0
    encoder.train()
    began = time.perf_counter()
    for _ in tqdm(range(steps), desc="SBERT-NLI", disable=not progress):
        if len(order) < c.batch_size:  # a new epoch: reshuffle, drop the incomplete last batch
            order = list(range(len(data)))
            rng.shuffle(order)
        batch, order = order[:c.batch_size], order[c.batch_size:]
        toks = [tokenizer([side[i] for i in batch], max_length=c.max_length, truncation=True, padding=True,
                          return_tensors="pt").to(device) for side in (data.premise, data.hypothesis)]
        u, v = (masked_mean(encoder(**t).last_hidden_state, t["attention_mask"]) for t in toks)
        logits = sbert_logits(u, v, head)
        y = torch.tensor([data.label[i] for i in batch], device=device)
        loss = torch.nn.functional.cross_entropy(logits.float(), y)
        optimiser.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, c.max_grad_norm)
        optimiser.step()
        schedule.step()
        losses.append(float(loss.detach()))
        correct += int((logits.argmax(-1) == y).sum())
    elapsed = time.perf_counter() - began
    end = dev_eval()
    tenths = [float(np.mean(chunk)) for chunk in np.array_split(np.array(losses), min(10, len(losses)))]
    meta = {"checkpoint": "sbert", "objective": "sbert_nli", "train_pooler": "avg", "base_model": c.model,
            "base_fingerprint": weights_fingerprint(path), "data": data.files, "rows": len(data), "steps": steps,
            "batch_size": c.batch_size, "learning_rate": c.learning_rate, "seed": c.seed,
            "train_max_length": c.max_length, "dev": end,
            "method": "Reimers & Gurevych 2019: softmax(W [u; v; |u - v|]) over 3 NLI labels, mean pooling"}
    save_checkpoint(encoder, tokenizer, out, pooler="avg", max_length=length, metadata=meta)
    say(f"wrote {out}")
    return SBERTResult(output_dir=str(out), steps=steps, rows=len(data), train_time_s=elapsed, loss_curve=tenths,
                       train_accuracy=correct / (steps * c.batch_size), dev_start=start, dev_end=end,
                       config=c.to_dict())
