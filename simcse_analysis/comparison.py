"""Paired comparison of checkpoints on the same pairs and sentences: is checkpoint B really better than A?

Protocol (every checkpoint against the first, the *baseline*; formulas in :mod:`~simcse_analysis.metrics.stats`
and :mod:`~simcse_analysis.metrics.similarity`):

1. **Scores per checkpoint** (:func:`score_model`): the cosine prediction of every scored STS pair of the
   chosen tasks (as :func:`~simcse_analysis.sts_eval.evaluate_sts`), and on the STS-B sentences of the
   align-uniform protocol (:mod:`~simcse_analysis.analysis`): the per-pair alignment terms of the positive
   pairs, the exact uniformity with its per-sentence kernel row means, the final embeddings (kNN overlap)
   and every hidden layer pooled (CKA). A :class:`ModelScores` records digests of the pairs and sentences;
   two records are paired only if these agree (:func:`check_same_data`).
2. **Uncertainty per checkpoint**: Spearman ×100 per task and ``avg`` with a stratified percentile-bootstrap
   CI (all checkpoints share the resamples; marginal 1 − alpha); alignment with a t-interval over its
   positive pairs; uniformity with the Hoeffding/delta-method standard error.
3. **Paired tests against the baseline** (one design: the verdict is the interval): every row's
   ``Δ = other − baseline`` is asymptotically normal with an analytic standard error — Spearman per task
   from the influence function of ρ (pairs drawn within sub-datasets), ``avg`` as the mean of the
   independent tasks' Δ, alignment by the paired t (per positive pair), uniformity by the paired
   U-statistic influence. The rows of one **family** — by default one comparison (one checkpoint against
   the baseline: its tasks, ``avg``, ℓ_align, ℓ_uniform), or with ``family="table"`` the whole table — get
   *simultaneous* ``1 − alpha`` intervals (Šidák: each row at ``(1 − α)^{1/m}``), the adjusted p-value
   ``1 − (1 − p)^m`` and the verdict "the interval excludes 0" (⟺ adjusted p < alpha). Nothing is
   resampled, so p-values reach any level and the verdicts do not depend on ``resamples`` or ``seed``;
   under the default families, adding a checkpoint changes no other comparison's rows. STS rows read
   ``better``/``worse``; ℓ_align/ℓ_uniform rows ``lower``/``higher`` (neither is better alone; the pair is
   read together in :attr:`PairAnalysis.geometry`). A row whose figures are undefined (NaN, missing or
   constant predictions) has no verdict and says why (``reason``).
4. **Where they differ**: linear CKA between every layer of the baseline and every layer of the other
   checkpoint (debiased CKA on the diagonal), mutual kNN Jaccard@k of the final embeddings, and the STS pairs
   whose predicted-similarity rank moved most.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from .documents import read_document
from .errors import InputError
from .io_utils import finite_json
from .metrics import stats
from .records import (
    COMPARISON_KIND,
    COMPARISON_SCHEMA,
    COMPARISON_VERSION,
    SCORES_KIND,
    SCORES_SCHEMA,
    SCORES_VERSION,
    list_argument,
)
from .sts_data import STSSubset

if TYPE_CHECKING:
    from .metrics.similarity import CKASide

SCHEMA = COMPARISON_SCHEMA
#: Multiplicity families: one per comparison (a checkpoint against the baseline), or the whole table.
FAMILIES = ("comparison", "table")
SPACE_METRICS = ("alignment", "uniformity")


# ----------------------------------------------------------------------------------------- settings
@dataclass
class CompareSettings:
    """What determines the comparison besides the checkpoints (defaults: the SimCSE protocol, 95% CIs)."""

    tasks: tuple[str, ...] | None = None  # None: all seven
    split: str = "test"
    variant: str = "senteval"
    aggregation: str = "all"
    resamples: int = stats.DEFAULT_RESAMPLES
    seed: int = 0
    alpha: float = 0.05
    k: int = 10
    movers: int = 25
    layers: bool = True
    embedding_space: bool = True  # alignment, uniformity, kNN, CKA on the STS-B sentences
    family: str = "comparison"  # multiplicity family: "comparison" (one per checkpoint) or "table"

    def __post_init__(self) -> None:
        from .sts_data import canonical_split, check_variant
        from .sts_eval import check_aggregation

        self.split, self.variant = canonical_split(self.split), check_variant(self.variant)
        check_aggregation(self.aggregation)
        self.resamples = stats.check_resamples(self.resamples)
        self.seed = _whole(self.seed, "--seed", 0)
        self.alpha = _real(self.alpha, "--alpha")
        if not 0 < self.alpha < 1:
            raise InputError(f"--alpha must be in (0, 1), got {self.alpha}")
        self.k = _whole(self.k, "--k", 1)
        self.movers = _whole(self.movers, "--movers", 0)
        if self.family not in FAMILIES:
            raise InputError(f"--family must be one of {', '.join(FAMILIES)} (got {self.family!r})")
        if self.tasks is not None:
            self.tasks = tuple(self.tasks)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["tasks"] = None if self.tasks is None else list(self.tasks)
        return d


def _whole(value: Any, name: str, least: int) -> int:
    """``value`` as an int ≥ ``least`` (a whole float too), else one InputError naming the option."""
    if isinstance(value, (float, np.floating)) and math.isfinite(value) and float(value).is_integer():
        value = int(value)
    if not isinstance(value, (int, np.integer)) or isinstance(value, bool):
        raise InputError(f"{name} must be a whole number (got {value!r})")
    if value < least:
        raise InputError(f"{name} must be >= {least}, got {value}")
    return int(value)


def _real(value: Any, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise InputError(f"{name} must be a number (got {value!r})")
    return float(value)


# ----------------------------------------------------------------------------------------- data
@dataclass
class CompareData:
    """The STS pairs of every task and the STS-B sentences, loaded once for all checkpoints."""

    tasks: dict[str, list[STSSubset]]
    protocol: Any | None  # analysis.ProtocolData, or None without the embedding-space part

    def bounds(self, task: str) -> list[int]:
        return [0, *np.cumsum([len(s) for s in self.tasks[task]]).tolist()]

    def gold(self, task: str) -> np.ndarray:
        return np.concatenate([s.scores for s in self.tasks[task]])


def load_compare_data(settings: CompareSettings, data_dir: str | os.PathLike[str] | None = None) -> CompareData:
    """Read the STS tasks (and the STS-B protocol sentences) before any model loads."""
    from .sts_data import SEMEVAL_TASKS, load_sts, parse_tasks

    if settings.tasks is None:
        chosen = [t for t in parse_tasks(None) if settings.split == "test" or t not in SEMEVAL_TASKS]
    else:
        chosen = parse_tasks(list(settings.tasks))
    tasks = {t: load_sts(t, data_dir, settings.split, settings.variant) for t in chosen}
    protocol = None
    if settings.embedding_space:
        from .analysis import AnalysisSettings, load_protocol_data

        protocol = load_protocol_data(AnalysisSettings(variant=settings.variant), data_dir)
        from .metrics.similarity import check_k

        check_k(settings.k, len(protocol.sentences))
    return CompareData(tasks, protocol)


def _digest(parts: Iterable[str]) -> str:
    h = hashlib.sha256()
    for p in parts:
        h.update(p.encode("utf-8"))
        h.update(b"\x00")
    return h.hexdigest()[:16]


def task_digest(subsets: Sequence[STSSubset]) -> str:
    """Identity of a task's scored pairs: sub-dataset names, both sentences and the gold score of each pair."""
    return _digest(f"{s.subset}\t{a}\t{b}\t{g!r}" for s in subsets
                   for a, b, g in zip(s.sentences1, s.sentences2, s.scores.tolist()))


# ----------------------------------------------------------------------------------------- scores
@dataclass
class TaskScores:
    """One checkpoint's cosine predictions on a task's pairs (concatenated sub-datasets)."""

    subsets: list[str]
    bounds: list[int]
    digest: str
    predictions: np.ndarray

    def to_dict(self) -> dict[str, Any]:
        return {"subsets": self.subsets, "bounds": self.bounds, "digest": self.digest,
                "predictions": self.predictions.tolist()}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TaskScores:
        return cls(list(d["subsets"]), [int(b) for b in d["bounds"]], d["digest"],
                   np.asarray(d["predictions"], dtype=np.float64))


@dataclass
class ModelScores:
    """Everything one checkpoint contributes to a comparison (embeddings and layers are not serialised)."""

    label: str
    model: dict[str, Any]
    tasks: dict[str, TaskScores]
    sentences_digest: str | None = None
    alignment_terms: np.ndarray | None = None
    uniformity: float | None = None
    uniformity_rows: np.ndarray | None = None
    uniformity_stderr: float | None = None
    embeddings: np.ndarray | None = field(default=None, repr=False)
    layers: np.ndarray | None = field(default=None, repr=False)
    layer_pooler: str | None = None

    def to_dict(self) -> dict[str, Any]:
        arr = (lambda a: None if a is None else np.asarray(a).tolist())
        return finite_json({"schema": SCORES_SCHEMA, "version": SCORES_VERSION, "label": self.label,
                            "model": self.model, "tasks": {t: s.to_dict() for t, s in self.tasks.items()},
                            "sentences_digest": self.sentences_digest,
                            "alignment_terms": arr(self.alignment_terms), "uniformity": self.uniformity,
                            "uniformity_rows": arr(self.uniformity_rows),
                            "uniformity_stderr": self.uniformity_stderr})

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ModelScores:
        arr = (lambda a: None if a is None else np.asarray(a, dtype=np.float64))
        return cls(d["label"], d["model"], {t: TaskScores.from_dict(s) for t, s in d["tasks"].items()},
                   d.get("sentences_digest"), arr(d.get("alignment_terms")), d.get("uniformity"),
                   arr(d.get("uniformity_rows")), d.get("uniformity_stderr"))

    def save(self, path: str | os.PathLike[str]) -> Path:
        from .io_utils import write_output_text

        return write_output_text(path, json.dumps(self.to_dict()) + "\n")

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> ModelScores:
        """Read a ``--save-scores`` file (validated: :data:`~simcse_analysis.records.SCORES_KIND`)."""
        return cls.from_dict(read_document(path, SCORES_KIND))


def _embed_plan(data: CompareData, layers: bool) -> list[tuple[str, list[str], bool]]:
    """The stages of :func:`embed_all`: ``(progress label, distinct sentences, with per-layer poolings)``."""
    from .progress import sentences_label
    from .sts_eval import unique_pairs

    protocol = list(data.protocol.sentences) if data.protocol is not None else []
    known = set(protocol)
    rest = list(dict.fromkeys(t for subsets in data.tasks.values() for t in unique_pairs(subsets)[0]
                              if t not in known))
    plan = []
    if protocol:
        what = "STS-B sentences, final and every layer" if layers else "STS-B sentences"
        plan.append((sentences_label(what, len(protocol)), protocol, layers))
    if rest:
        plan.append((sentences_label(f"the other sentences of {', '.join(data.tasks)}", len(rest)), rest, False))
    return plan


def embed_all(source: Any, data: CompareData, layers: bool) -> Any:
    """Every distinct sentence of the comparison through ``source`` once → ``embed(texts)``, a row lookup.

    The STS-B protocol sentences go first, with their per-layer poolings when ``layers`` (one forward pass
    for both, :meth:`~simcse_analysis.analysis.EncoderSource.prefetch`), then the task sentences not among
    them: the model sees each distinct sentence once, however many tasks share it, and nothing is
    encoded again for the embedding-space part (with or without the disk cache). Each part is a stage of
    the progress job (:func:`_score_stages` plans them)."""
    from . import progress

    parts, order = [], []
    for label, texts, with_layers in _embed_plan(data, layers):
        with progress.stage(label, len(texts)):
            if with_layers and hasattr(source, "prefetch"):
                source.prefetch(texts, layers=True)
            parts.append(np.asarray(source.embed(texts)))
        order += texts
    vectors = np.concatenate(parts) if parts else np.zeros((0, 0), dtype=np.float32)
    row = {t: i for i, t in enumerate(order)}
    return lambda texts: vectors[np.fromiter((row[t] for t in texts), dtype=np.int64, count=len(texts))]


def score_model(source: Any, data: CompareData, settings: CompareSettings, label: str | None = None
                ) -> ModelScores:
    """Encode the comparison's pairs and sentences with ``source`` (an :class:`~simcse_analysis.analysis.EncoderSource`),
    each distinct sentence once (:func:`embed_all`)."""
    from .metrics.align_uniform import uniformity_with_rows
    from .sts_eval import score_task

    embed = embed_all(source, data, settings.layers)
    tasks = {}
    for task, subsets in data.tasks.items():
        system = score_task(embed, subsets)
        tasks[task] = TaskScores([s.subset for s in subsets], data.bounds(task), task_digest(subsets),
                                 np.concatenate(system))
    describe = source.describe()
    name = label or f"{describe.get('model')}:{describe.get('pooler')}"
    out = ModelScores(name, describe, tasks)
    p = data.protocol
    if p is not None:
        emb = embed(p.sentences)
        pos = p.pairs[p.positive]
        out.sentences_digest = _digest(p.sentences) + f"/{len(pos)}"
        out.alignment_terms = stats.alignment_terms(emb[pos[:, 0]], emb[pos[:, 1]])
        u = uniformity_with_rows(emb)
        out.uniformity, out.uniformity_rows, out.uniformity_stderr = u.value, u.row_means, u.stderr
        out.embeddings = emb
        if settings.layers:
            out.layers = source.embed_layers(p.sentences)  # prefetched with the final vectors (embed_all)
            out.layer_pooler = getattr(source, "layer_pooler", None)
    return out


def check_same_data(base: ModelScores, other: ModelScores) -> None:
    """Refuse to pair two checkpoints scored on different pairs or sentences, naming the difference."""
    where = f"cannot pair {other.label!r} with {base.label!r}"
    if set(base.tasks) != set(other.tasks):
        only_a = sorted(set(base.tasks) - set(other.tasks))
        only_b = sorted(set(other.tasks) - set(base.tasks))
        raise InputError(f"{where}: different tasks (only in the baseline: {only_a or '-'}; only in the other: "
                         f"{only_b or '-'}); score both on the same --tasks")
    for t in base.tasks:
        a, b = base.tasks[t], other.tasks[t]
        if a.bounds[-1] != b.bounds[-1] or a.subsets != b.subsets:
            raise InputError(f"{where}: {t} was scored on {a.bounds[-1]} pairs ({', '.join(a.subsets)}) and on "
                             f"{b.bounds[-1]} pairs ({', '.join(b.subsets)}); use the same --data-dir, --split "
                             "and --variant")
        if a.digest != b.digest:
            raise InputError(f"{where}: {t} has {a.bounds[-1]} pairs in both but different sentences or gold scores "
                             f"(digest {a.digest} vs {b.digest}); use the same --data-dir and --variant")
    if (base.sentences_digest and other.sentences_digest and base.sentences_digest != other.sentences_digest):
        raise InputError(f"{where}: the STS-B sentences for alignment/uniformity differ (digest "
                         f"{base.sentences_digest} vs {other.sentences_digest}); use the same --data-dir and --variant")


# ----------------------------------------------------------------------------------------- results
@dataclass
class VerdictRow:
    """One line of the verdict table: ``other`` against ``baseline`` on ``metric`` (Δ = other − baseline).

    ``low``/``high``: the row's interval, simultaneous over its ``family`` of ``family_size`` rows;
    ``p_value``: the row's own two-sided p; ``p_adjusted``: the smallest family level at which the interval
    excludes 0; ``verdict``: ``better``/``worse`` (STS, ``higher_is_better``), ``lower``/``higher``
    (ℓ_align, ℓ_uniform: ``higher_is_better`` None), ``no detectable difference``, or ``no verdict`` with
    the ``reason``. Spearman rows are ×100.
    """

    baseline: str
    other: str
    metric: str
    baseline_value: float
    other_value: float
    delta: float
    low: float
    high: float
    p_value: float
    p_adjusted: float = math.nan
    verdict: str = ""
    higher_is_better: bool | None = True
    method: str = ""
    stderr: float | None = None
    family: str = ""
    family_size: int = 1
    reason: str = ""


@dataclass
class PairAnalysis:
    """Where ``other`` differs from ``baseline``: layer CKA, kNN overlap, the pairs that moved, and the
    alignment–uniformity reading (``geometry``: the two verdicts read together)."""

    baseline: str
    other: str
    cka: list[list[float]] | None = None  # [layer of baseline][layer of other]
    cka_debiased_diagonal: list[float] | None = None
    knn_jaccard: float | None = None
    movers: list[dict[str, Any]] = field(default_factory=list)
    geometry: str | None = None


@dataclass
class ComparisonReport:
    """What ``compare --json`` writes and the report's comparison section renders (version
    :data:`~simcse_analysis.records.COMPARISON_VERSION`; ``design``: the inferential design in words)."""

    settings: dict[str, Any]
    models: list[dict[str, Any]]  # label, model, per-task Interval dicts, alignment/uniformity intervals
    rows: list[VerdictRow]
    pairs: list[PairAnalysis]
    notes: list[str] = field(default_factory=list)
    design: str = ""

    def to_dict(self) -> dict[str, Any]:
        return finite_json({"schema": SCHEMA, "version": COMPARISON_VERSION, "settings": self.settings,
                            "design": self.design, "models": self.models, "rows": [asdict(r) for r in self.rows],
                            "pairs": [asdict(p) for p in self.pairs], "notes": self.notes})

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ComparisonReport:
        """Read a version-2 document, or upgrade a version-1 one (:func:`upgrade_comparison`)."""
        if d.get("schema") != SCHEMA:
            raise InputError(f"not a {SCHEMA} document (schema={d.get('schema')!r})")
        d = upgrade_comparison(d)
        nan = (lambda v: math.nan if v is None else v)
        keep = {"higher_is_better", "stderr"}
        rows = [VerdictRow(**{k: (v if k in keep else nan(v)) for k, v in r.items()}) for r in d["rows"]]
        return cls(d["settings"], d["models"], rows, [PairAnalysis(**p) for p in d["pairs"]], d.get("notes", []),
                   d.get("design", ""))

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, allow_nan=False) + "\n"

    def __repr__(self) -> str:
        """One line: the checkpoints and the verdicts that are not ties (``to_dict()`` holds everything)."""
        labels = [str(m.get("label")) for m in self.models]
        decided = [f"{r.other} {r.metric}: {r.verdict}" for r in self.rows if r.verdict in ("better", "worse")]
        return (f"ComparisonReport(baseline={labels[0] if labels else None!r}, others={labels[1:]!r}, "
                f"{len(self.rows)} rows" + (f"; {'; '.join(decided[:4])}" + (" …" if len(decided) > 4 else "")
                                            if decided else "") + ")")

    def _repr_html_(self) -> str:
        """The verdict table, for a notebook cell (the full page: ``reports.compare_page``)."""
        import html

        heads = ("metric", "baseline", "other", "Δ", "simultaneous CI", "p (adj.)", "verdict")
        head = "".join(f"<th>{h}</th>" for h in heads)
        body = "".join(
            "<tr>" + "".join(f"<td>{html.escape(str(v))}</td>" for v in (
                r.metric, r.baseline, r.other, format_delta(r.delta, "+.3f"), format_interval(r, ".3f"),
                stats.format_p(r.p_adjusted), verdict_text(r))) + "</tr>" for r in self.rows)
        design = f"<p>{html.escape(self.design)}</p>" if self.design else ""
        return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>{design}"


def upgrade_comparison(d: dict[str, Any]) -> dict[str, Any]:
    """A comparison document in the current layout: version 2 unchanged; version 1 (Holm over the table,
    per-row CIs) with ``p_adjusted = p_holm``, its alignment/uniformity verdicts read as ``lower``/``higher``
    and a note that its verdicts may disagree with its intervals."""
    if d.get("version", COMPARISON_VERSION) != 1:
        return d
    rows = []
    for r in d.get("rows", []):
        r = dict(r)
        r["p_adjusted"] = r.pop("p_holm", math.nan)
        if r.get("metric") in SPACE_METRICS:
            r["higher_is_better"] = None
            r["verdict"] = {"better": "lower", "worse": "higher"}.get(r.get("verdict"), r.get("verdict"))
        r.setdefault("family", "all rows (Holm)")
        r.setdefault("family_size", len(d.get("rows", [])))
        rows.append(r)
    note = ("version-1 document: per-row (not simultaneous) intervals beside Holm-adjusted permutation p-values, "
            "so a verdict may disagree with its interval; re-run simcse-analyze compare for the current design")
    return {**d, "version": COMPARISON_VERSION, "rows": rows, "notes": [note, *d.get("notes", [])],
            "design": d.get("design", "")}


def verdict_text(r: VerdictRow | dict[str, Any]) -> str:
    """The verdict as displayed: the verdict, or ``no verdict (reason)``."""
    get = r.get if isinstance(r, dict) else (lambda k, default=None: getattr(r, k, default))
    v = get("verdict", "") or "no verdict"
    reason = get("reason", "")
    return f"{v} ({reason})" if v == "no verdict" and reason else v


def format_delta(x: float | None, spec: str = "+.2f") -> str:
    return "n/a" if x is None or not math.isfinite(x) else format(x, spec)


def format_interval(r: VerdictRow | dict[str, Any], spec: str = ".2f") -> str:
    """``[low, high]`` with enough decimals that the printed interval is on the side of 0 its verdict reads
    (a bound of 0.004 never prints as 0.00 beside "better")."""
    get = r.get if isinstance(r, dict) else (lambda k, default=None: getattr(r, k, default))
    low, high = get("low"), get("high")
    if low is None or high is None or not (math.isfinite(low) and math.isfinite(high)):
        return "n/a"
    excludes = low > 0 or high < 0
    base = spec.lstrip("+")
    digits = int(base[1:-1]) if base.startswith(".") and base.endswith("f") else 2
    for d in range(digits, digits + 12):
        lo, hi = format(low, f".{d}f"), format(high, f".{d}f")
        if (float(lo) > 0 or float(hi) < 0) == excludes:
            break
    return f"[{lo}, {hi}]"


def load_comparison(path: str | os.PathLike[str]) -> ComparisonReport:
    """Read a ``compare --json`` document (validated: :data:`~simcse_analysis.records.COMPARISON_KIND`, an
    error names the file and the field; version 1 is upgraded)."""
    return ComparisonReport.from_dict(read_document(path, COMPARISON_KIND))


# ----------------------------------------------------------------------------------------- statistics
def _interval(iv: stats.Interval, scale: float = 1.0) -> dict[str, Any]:
    d = iv.to_dict()
    for k in ("value", "low", "high", "stderr"):
        if d[k] is not None:
            d[k] *= scale
    return d


def _prediction_problem(pred: np.ndarray) -> str:
    """Why a prediction vector has no Spearman (``""`` if it has one): non-finite or constant values."""
    bad = int(np.sum(~np.isfinite(pred)))
    if bad:
        return f"{bad:,} of {pred.size:,} predictions are NaN, infinite or missing"
    if pred.size and np.all(pred == pred.flat[0]):
        return "all predictions are equal: Spearman is undefined"
    return ""


def _usable(pred: np.ndarray) -> np.ndarray:
    """``pred``, or zeros (a constant: every Spearman of it is NaN) when it holds non-finite values, so the
    bootstrap and the influence function never rank NaN."""
    return pred if np.all(np.isfinite(pred)) else np.zeros_like(pred)


def _task_intervals(models: Sequence[ModelScores], data_gold: dict[str, np.ndarray], settings: CompareSettings
                    ) -> list[dict[str, Any]]:
    """Per-model Spearman ×100 with its (marginal) percentile-bootstrap CI per task and ``avg``."""
    tasks = list(models[0].tasks)
    intervals, _ = stats.task_intervals(
        [{t: _usable(m.tasks[t].predictions) for t in tasks} for m in models], {t: data_gold[t] for t in tasks},
        {t: models[0].tasks[t].bounds for t in tasks}, settings.aggregation, settings.resamples, settings.seed,
        settings.alpha)
    return [{k: _interval(iv, 100.0) for k, iv in per.items()} for per in intervals]


@dataclass
class Estimate:
    """A row before its family is known: Δ with its standard error (``df``: Student t, else normal);
    :func:`simultaneous_tests` turns a list of them into verdict rows."""

    row: VerdictRow
    se: float
    df: float | None = None


def _undefined_reason(base_problem: str, other_problem: str, value: str = "Spearman") -> str:
    parts = [f"baseline: {base_problem}" if base_problem else "", f"other: {other_problem}" if other_problem else ""]
    return "; ".join(p for p in parts if p) or f"{value} undefined"


def _sts_estimates(models: Sequence[ModelScores], gold: dict[str, np.ndarray], settings: CompareSettings
                   ) -> list[Estimate]:
    """Δ Spearman ×100 per task (influence-function se) and, with more than one task, ``avg`` (mean of the
    tasks' Δ; the tasks are independent samples, so ``se_avg = √(Σ se_t²) / T``) for every checkpoint against
    the first. A single task has no ``avg`` row: it would repeat the task's row and widen the family."""
    tasks = list(models[0].tasks)
    method = "influence-function se of Δρ (normal)"
    values: dict[str, np.ndarray] = {}
    phis: dict[str, np.ndarray] = {}
    problems: dict[str, list[str]] = {}
    for t in tasks:
        b = models[0].tasks[t].bounds
        preds = [m.tasks[t].predictions for m in models]
        problems[t] = [_prediction_problem(p) for p in preds]
        values[t], phis[t] = stats.spearman_influence(np.stack([_usable(p) for p in preds]), gold[t], b,
                                                      settings.aggregation)
    base = models[0]
    out = []
    for j, other in enumerate(models[1:], start=1):
        per_task = []
        for t in tasks:
            b = models[0].tasks[t].bounds
            delta = float(values[t][j] - values[t][0])
            se = float(stats.influence_se(phis[t][j] - phis[t][0], b)) if math.isfinite(delta) else math.nan
            reason = "" if math.isfinite(delta) else _undefined_reason(problems[t][0], problems[t][j])
            if reason and not (problems[t][0] or problems[t][j]):  # finite but constant within a sub-dataset
                reason = f"Spearman undefined under aggregation {settings.aggregation!r} (a constant sub-dataset)"
            row = VerdictRow(base.label, other.label, t, 100 * float(values[t][0]), 100 * float(values[t][j]),
                             100 * delta, math.nan, math.nan, math.nan, method=method, reason=reason)
            per_task.append(Estimate(row, 100 * se))
            out.append(per_task[-1])
        if len(tasks) > 1:
            deltas = [e.row.delta for e in per_task]
            ok = all(math.isfinite(d) for d in deltas)
            missing = [e.row.metric for e in per_task if not math.isfinite(e.row.delta)]
            row = VerdictRow(base.label, other.label, "avg", float(np.mean([e.row.baseline_value for e in per_task])),
                             float(np.mean([e.row.other_value for e in per_task])), float(np.mean(deltas)),
                             math.nan, math.nan, math.nan, method="mean of the tasks' Δ (independent tasks; normal)",
                             reason="" if ok else f"no Δ on {', '.join(missing)}")
            se = math.sqrt(sum(e.se ** 2 for e in per_task)) / len(per_task) if ok else math.nan
            out.append(Estimate(row, se))
    return out


def _terms_problem(values: np.ndarray | None, what: str) -> str:
    if values is None:
        return f"no {what}"
    bad = int(np.sum(~np.isfinite(values)))
    return f"{bad:,} of {values.size:,} {what} are NaN or infinite" if bad else ""


def _space_intervals(models: Sequence[ModelScores], settings: CompareSettings, per_model: list[dict[str, Any]]
                     ) -> None:
    """Each checkpoint's ℓ_align (t-interval; NaN if any term is) and ℓ_uniform (U-statistic se) intervals."""
    for j, m in enumerate(models):
        terms = m.alignment_terms if not _terms_problem(m.alignment_terms, "") else np.full(2, np.nan)
        per_model[j]["alignment"] = _interval(stats.mean_interval(terms, settings.alpha))
        per_model[j]["uniformity"] = _interval(stats.uniformity_interval(m.uniformity, m.uniformity_stderr,
                                                                         settings.alpha))


def _has_space(models: Sequence[ModelScores]) -> bool:
    return all(m.alignment_terms is not None and m.uniformity_rows is not None for m in models)


def _space_estimates(models: Sequence[ModelScores]) -> list[Estimate]:
    """Δ ℓ_align (paired t over the positive pairs) and Δ ℓ_uniform (paired U-statistic influence)."""
    base = models[0]
    out = []
    for m in models[1:]:
        t = stats.paired_mean_test(base.alignment_terms, m.alignment_terms)
        reason = "" if math.isfinite(t.p_value) else _undefined_reason(
            _terms_problem(base.alignment_terms, "alignment terms"), _terms_problem(m.alignment_terms, "alignment terms"),
            "ℓ_align")
        a_base, a_other = (float(np.mean(x)) for x in (base.alignment_terms, m.alignment_terms))
        out.append(Estimate(VerdictRow(base.label, m.label, "alignment", a_base, a_other, a_other - a_base, math.nan,
                                        math.nan, math.nan, higher_is_better=None, method=t.method, reason=reason),
                             t.stderr if t.stderr is not None else math.nan, m.alignment_terms.size - 1))
        t = stats.paired_uniformity_test(base.uniformity_rows, m.uniformity_rows, base.uniformity, m.uniformity)
        reason = "" if math.isfinite(t.p_value) else _undefined_reason(
            _terms_problem(base.uniformity_rows, "uniformity row means")
            or ("" if math.isfinite(base.uniformity) else "ℓ_uniform is NaN"),
            _terms_problem(m.uniformity_rows, "uniformity row means")
            or ("" if math.isfinite(m.uniformity) else "ℓ_uniform is NaN"), "ℓ_uniform")
        out.append(Estimate(VerdictRow(base.label, m.label, "uniformity", base.uniformity, m.uniformity,
                                        m.uniformity - base.uniformity, math.nan, math.nan, math.nan,
                                        higher_is_better=None, method=t.method, reason=reason),
                             t.stderr if t.stderr is not None else math.nan))
    return out


def _family_of(row: VerdictRow, settings: CompareSettings) -> str:
    return "all rows" if settings.family == "table" else f"{row.other} vs {row.baseline}"


def simultaneous_tests(estimates: Sequence[Estimate], settings: CompareSettings) -> list[VerdictRow]:
    """The verdict rows of ``estimates``: every row gets its family (``settings.family``), is tested
    simultaneously with the family's testable rows (Šidák, :func:`~simcse_analysis.metrics.stats.normal_test`)
    and reads its verdict off the interval. The estimates are not modified."""
    families: dict[str, int] = {}
    for e in estimates:
        if math.isfinite(e.row.delta) and math.isfinite(e.se):
            f = _family_of(e.row, settings)
            families[f] = families.get(f, 0) + 1
    rows = []
    for e in estimates:
        f = _family_of(e.row, settings)
        r = replace(e.row, family=f, family_size=families.get(f, 0))
        if math.isfinite(r.delta) and math.isfinite(e.se):
            t = stats.normal_test(r.delta, e.se, settings.alpha, r.family_size, e.df, r.method)
            r.low, r.high, r.p_value, r.p_adjusted, r.stderr = t.low, t.high, t.p_value, t.p_adjusted, t.stderr
            r.verdict = stats.interval_verdict(r.low, r.high, r.higher_is_better)
        else:
            r.verdict, r.reason = "no verdict", r.reason or "undefined standard error"
        rows.append(r)
    return rows


#: ``(alignment verdict, uniformity verdict)`` → the two read together (ℓ lower = closer positive pairs /
#: more uniform); neither alone makes a space better: a collapsing space has a low ℓ_align and a high ℓ_uniform.
_GEOMETRY = {
    ("lower", "lower"): "closer positive pairs and a more uniform space",
    ("lower", "higher"): "closer positive pairs at the cost of uniformity (a less uniform, more collapsed space)",
    ("higher", "lower"): "more uniform at the cost of alignment (positive pairs farther apart)",
    ("higher", "higher"): "positive pairs farther apart and a less uniform space",
}


def geometry_reading(alignment: str, uniformity: str) -> str:
    """The alignment and uniformity verdicts of one comparison read together, in one phrase."""
    if (alignment, uniformity) in _GEOMETRY:
        return _GEOMETRY[(alignment, uniformity)]
    say = {"lower": {"a": "closer positive pairs (ℓ_align lower)", "u": "more uniform (ℓ_uniform lower)"},
           "higher": {"a": "positive pairs farther apart (ℓ_align higher)", "u": "less uniform (ℓ_uniform higher)"}}
    parts = [say[alignment]["a"] if alignment in say else f"ℓ_align: {alignment or 'no verdict'}",
             say[uniformity]["u"] if uniformity in say else f"ℓ_uniform: {uniformity or 'no verdict'}"]
    return "; ".join(parts)


def design_note(settings: CompareSettings, rows: Sequence[VerdictRow]) -> str:
    """The inferential design in words, as the page and the terminal state it."""
    level = 100 * (1 - settings.alpha)
    sizes = sorted({r.family_size for r in rows if r.family_size})
    m = "/".join(map(str, sizes)) or "0"
    per_row = 100 * (1 - stats.sidak_level(settings.alpha, max(sizes, default=1)))
    family = ("one family per comparison (a checkpoint against the baseline: its STS tasks, avg, ℓ_align and "
              "ℓ_uniform), so adding a checkpoint changes no other comparison's rows"
              if settings.family == "comparison" else "one family: every row of the table")
    return (f"Δ = other − baseline. Families: {family} (m = {m} rows). Each row's interval is a simultaneous "
            f"{level:g}% interval (Šidák: {per_row:.4g}% per row when m = {max(sizes, default=1)}), Δ ± z·se with an "
            "analytic standard error (Spearman: influence function, pairs drawn within sub-datasets; avg: the "
            "tasks' Δ averaged; ℓ_align: paired t; ℓ_uniform: paired U-statistic influence); p (adj.) = "
            f"1 − (1 − p)^m; verdict: the interval excludes 0 (⟺ p (adj.) < {settings.alpha:g}), so intervals, "
            "p-values and verdicts agree. STS: better/worse; ℓ_align, ℓ_uniform: lower/higher (read together "
            f"below). The per-checkpoint Spearman CIs are marginal {level:g}% percentile-bootstrap intervals "
            f"({settings.resamples} resamples, seed {settings.seed}); the verdicts use no resampling.")


def movers(base: TaskScores, other: TaskScores, subsets: Sequence[STSSubset], top: int) -> list[dict[str, Any]]:
    """The ``top`` pairs whose rank by predicted similarity (1 = most similar) moved most from base to other."""
    if top == 0:
        return []
    n = base.predictions.size
    ra = n + 1 - stats.average_ranks(base.predictions)
    rb = n + 1 - stats.average_ranks(other.predictions)
    move = rb - ra
    idx = np.argsort(-np.abs(move), kind="stable")[:top]
    s1 = [s for sub in subsets for s in sub.sentences1]
    s2 = [s for sub in subsets for s in sub.sentences2]
    gold = np.concatenate([s.scores for s in subsets])
    gold_rank = n + 1 - stats.average_ranks(gold)
    names = [sub.subset for sub in subsets for _ in range(len(sub))]
    return [{"subset": names[i], "sentence1": s1[i], "sentence2": s2[i], "gold": float(gold[i]),
             "gold_rank": float(gold_rank[i]), "rank_baseline": float(ra[i]), "rank_other": float(rb[i]),
             "cos_baseline": float(base.predictions[i]), "cos_other": float(other.predictions[i]),
             "move": float(move[i])} for i in idx]


def analyse_pair(base: ModelScores, other: ModelScores, data: CompareData | None, settings: CompareSettings,
                 base_neighbours: np.ndarray | None = None, base_layers: CKASide | None = None) -> PairAnalysis:
    """CKA (layers), kNN Jaccard@k (final embeddings) and movers of ``other`` against ``base``
    (``base_neighbours``: ``knn_indices(base.embeddings, settings.k)``, ``base_layers``:
    ``cka_side(base.layers)``, when already computed for another pair)."""
    from .metrics.similarity import knn_indices, knn_sets_jaccard, layer_cka

    out = PairAnalysis(base.label, other.label)
    if base.layers is not None and other.layers is not None:
        cka, debiased = layer_cka(base_layers or list(base.layers), list(other.layers))
        out.cka, out.cka_debiased_diagonal = cka.tolist(), debiased
    if base.embeddings is not None and other.embeddings is not None:
        if base_neighbours is None:
            base_neighbours = knn_indices(base.embeddings, settings.k)
        # the same sentences in both (check_same_data); knn_sets_jaccard refuses index arrays of other shapes
        out.knn_jaccard = knn_sets_jaccard(base_neighbours, knn_indices(other.embeddings, settings.k))
    if data is not None:
        for task, subsets in data.tasks.items():
            for m in movers(base.tasks[task], other.tasks[task], subsets, settings.movers):
                out.movers.append({"task": task, **m})
    return out


def paired_estimates(models: Sequence[ModelScores], gold: dict[str, np.ndarray], settings: CompareSettings
                     ) -> list[Estimate]:
    """Δ and its standard error for every checkpoint against the first (``gold``: the gold scores per task):
    per task, ``avg``, ℓ_align and ℓ_uniform (when every checkpoint has them). Deterministic (no resampling)."""
    estimates = _sts_estimates(models, gold, settings)
    if _has_space(models):
        estimates += _space_estimates(models)
    return estimates


def verdict_rows(models: Sequence[ModelScores], gold: dict[str, np.ndarray], settings: CompareSettings
                 ) -> list[VerdictRow]:
    """The verdict table (:func:`paired_estimates` tested per family by :func:`simultaneous_tests`);
    :func:`compare_models` adds the per-checkpoint intervals and the rest."""
    return simultaneous_tests(paired_estimates(models, gold, settings), settings)


def compare_models(models: Sequence[ModelScores], settings: CompareSettings, data: CompareData | None = None
                   ) -> ComparisonReport:
    """Every checkpoint against the first: per-model CIs, simultaneous paired tests per family (module
    docstring), the alignment–uniformity reading, CKA, kNN overlap, movers."""
    if len(models) < 2:
        raise InputError(f"compare needs at least 2 checkpoints (a baseline and one to compare), got {len(models)}")
    for m in models[1:]:
        check_same_data(models[0], m)
    labels = [m.label for m in models]
    if len(set(labels)) != len(labels):
        raise InputError(f"two checkpoints share the label {next(x for x in labels if labels.count(x) > 1)!r}: "
                         "compare each checkpoint once (or with different poolers)")
    gold = _gold(models[0], data)
    per_model = _task_intervals(models, gold, settings)
    notes = []
    if _has_space(models):
        _space_intervals(models, settings, per_model)
    elif any(m.alignment_terms is not None for m in models):
        notes.append("alignment/uniformity skipped: not every checkpoint has them")
    rows = verdict_rows(models, gold, settings)
    from .metrics.similarity import cka_side, knn_indices

    # the baseline's k nearest neighbours and centred layers, computed once for every pair
    base_neighbours = base_layers = None
    if models[0].embeddings is not None and sum(m.embeddings is not None for m in models[1:]) > 1:
        base_neighbours = knn_indices(models[0].embeddings, settings.k)
    if models[0].layers is not None and sum(m.layers is not None for m in models[1:]) > 1:
        base_layers = cka_side(list(models[0].layers))
    pairs = [analyse_pair(models[0], m, data, settings, base_neighbours, base_layers) for m in models[1:]]
    for p in pairs:
        verdicts = {r.metric: r.verdict for r in rows if r.other == p.other and r.metric in SPACE_METRICS}
        if verdicts:
            p.geometry = geometry_reading(verdicts.get("alignment", ""), verdicts.get("uniformity", ""))
    if any(m.layers is None for m in models):
        notes.append("CKA needs every checkpoint's hidden layers (not stored in scores files)")
    summary = []
    for j, m in enumerate(models):
        problems = {t: pr for t in m.tasks if (pr := _prediction_problem(m.tasks[t].predictions))}
        summary.append({"label": m.label, "model": m.model, "layer_pooler": m.layer_pooler, "scores": per_model[j],
                        "problems": problems})
    return ComparisonReport(settings.to_dict(), summary, rows, pairs, notes, design_note(settings, rows))


def _gold(model: ModelScores, data: CompareData | None) -> dict[str, np.ndarray]:
    if data is None:
        raise InputError("the gold scores come from the data: pass the CompareData the scores were computed on")
    missing = [t for t in model.tasks if t not in data.tasks]
    if missing:
        raise InputError(f"the data lacks task(s) {', '.join(missing)} that the scores hold: use the same --tasks")
    gold = {t: data.gold(t) for t in model.tasks}
    for t, g in gold.items():
        if model.tasks[t].digest != task_digest(data.tasks[t]):
            raise InputError(f"{model.label!r}: {t} was scored on other pairs than the data read now "
                             f"({model.tasks[t].bounds[-1]} vs {g.size} pairs); use the same --data-dir and --variant")
    return gold


# ----------------------------------------------------------------------------------------- entry point
def compare(checkpoints: Sequence[str], settings: CompareSettings | None = None, *,
            data_dir: str | os.PathLike[str] | None = None, encoder_kwargs: dict[str, Any] | None = None,
            batch_size: int = 128, save_scores: str | os.PathLike[str] | None = None) -> ComparisonReport:
    """Compare every checkpoint with the first (the baseline) on the same STS pairs and STS-B sentences.

    ``checkpoints``: hub ids, aliases or directories, optionally ``NAME@POOLER``, or score files written
    earlier with ``save_scores`` (``DIR/<i>.json``: compared again without encoding). Per task and ``avg``:
    Δ Spearman, alignment and uniformity with simultaneous intervals per family whose exclusion of 0 is the
    verdict (module docstring); CKA per layer pair and mutual kNN Jaccard@k (``settings``). This is the
    function ``simcse-analyze compare`` calls.

    >>> from simcse_analysis.comparison import compare
    >>> compare(["all-MiniLM-L6-v2"])
    Traceback (most recent call last):
    ...
    simcse_analysis.errors.InputError: compare needs at least 2 checkpoints (baseline first), got 1
    """
    from . import progress
    from .analysis import EncoderSource
    from .encoder import load_encoder

    checkpoints = [str(c) for c in list_argument(checkpoints, "checkpoints", "checkpoints (baseline first)")]
    if len(checkpoints) < 2:
        raise InputError(f"compare needs at least 2 checkpoints (baseline first), got {len(checkpoints)}")
    settings = settings or CompareSettings()
    saved = {c: ModelScores.load(c) for c in checkpoints if c.endswith(".json") and os.path.isfile(c)}  # validated
    data = load_compare_data(settings, data_dir)  # fails on missing data and k >= N before encoding
    labels = _check_checkpoints([c for c in checkpoints if c not in saved], encoder_kwargs or {}, save_scores)
    labels.update({c: s.label for c, s in saved.items()})
    seen: dict[str, str] = {}
    for c in checkpoints:  # the same checkpoint and pooler twice would fail only after scoring both
        if labels[c] in seen:
            raise InputError(f"{seen[labels[c]]} and {c} are the same checkpoint with the same pooler "
                             f"({labels[c]}): compare each once (or with different poolers, NAME@POOLER)")
        seen[labels[c]] = c
    from .encoder import later_poolers
    from .pooling import split_pooler

    # one forward pass for several poolers of one checkpoint: the first fills the cache for the later ones
    specs = [split_pooler(c) for c in checkpoints]
    also = iter(later_poolers([(n, p or (encoder_kwargs or {}).get("pooler"))
                               for c, (n, p) in zip(checkpoints, specs) if c not in saved]))
    with progress.job("compare"):  # the command's job, else its own (a notebook sees the stages too)
        stages = _score_stages(data, settings)
        to_score = [c for c in checkpoints if c not in saved]
        progress.plan(len(to_score) * sum(n for _, n in stages))
        scores: list[ModelScores] = []
        for i, spec in enumerate(checkpoints):
            if spec in saved:
                scores.append(saved[spec])
                continue
            name, pooler = specs[i]
            kwargs = dict(encoder_kwargs or {})
            kwargs["pooler"] = pooler or kwargs.get("pooler")
            kwargs["also_pool"] = next(also)
            with progress.section(f"[{to_score.index(spec) + 1}/{len(to_score)} {labels[spec]}]"):
                with progress.stage("loading"):
                    enc = load_encoder(name, **kwargs)
                scores.append(score_model(EncoderSource(enc, batch_size), data, settings,
                                          label=f"{name}@{enc.pooler}"))
            if save_scores is not None:
                scores[-1].save(os.path.join(save_scores, f"{i}.json"))
            del enc
        with progress.stage("paired tests, bootstrap CIs, CKA, kNN overlap, movers"):
            return compare_models(scores, settings, data)


def _check_checkpoints(specs: Sequence[str], encoder_kwargs: dict[str, Any],
                       save_scores: str | os.PathLike[str] | None) -> dict[str, str]:
    """Check every checkpoint to encode before the first one is scored (it resolves, its files are complete,
    its tokenizer loads, the pooler exists), and that ``save_scores`` can be written; returns each one's
    label ``NAME@POOLER``."""
    from .encoder import check_checkpoint, describe_checkpoint, resolve_device, resolve_dtype
    from .pooling import split_pooler

    if specs:  # --dtype / --device: checked once, before any checkpoint loads
        from .encoder import check_dtype_for_device

        check_dtype_for_device(resolve_dtype(encoder_kwargs.get("dtype")),
                               resolve_device(encoder_kwargs.get("device")))
    labels = {}
    for spec in specs:
        name, pooler = split_pooler(spec)
        check_checkpoint(name, trust_remote_code=bool(encoder_kwargs.get("trust_remote_code")))
        labels[spec] = f"{name}@{describe_checkpoint(name, pooler or encoder_kwargs.get('pooler'))['pooler']}"
    if save_scores is not None:
        from .io_utils import check_writable_dir

        check_writable_dir(save_scores, "--save-scores")
    return labels


def _score_stages(data: CompareData, settings: CompareSettings) -> list[tuple[str, int]]:
    """What :func:`score_model` encodes per checkpoint, in order: ``(label, distinct sentences)`` (the plan of
    the progress job: :func:`embed_all`'s stages)."""
    return [(label, len(texts)) for label, texts, _ in _embed_plan(data, settings.layers)]
