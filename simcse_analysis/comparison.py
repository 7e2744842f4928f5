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
   CI (all checkpoints share the resamples); alignment with a t-interval over its positive pairs; uniformity
   with the Hoeffding/delta-method standard error.
3. **Paired tests against the baseline**: Δ per task and ``avg`` (paired bootstrap CI, paired permutation
   p-value), Δ alignment (paired t), Δ uniformity (paired U-statistic influence). Holm's correction over
   every row of the table (all checkpoints, all metrics); the verdict uses the adjusted p at level ``alpha``.
   CIs are per row (not simultaneous).
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
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .errors import InputError
from .io_utils import finite_json
from .metrics import stats
from .sts_data import STSSubset

SCHEMA = "simcse-analysis/comparison"
SCORES_SCHEMA = "simcse-analysis/model-scores"
SCHEMA_VERSION = 1


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

    def __post_init__(self) -> None:
        from .sts_data import canonical_split, check_variant
        from .sts_eval import check_aggregation

        self.split, self.variant = canonical_split(self.split), check_variant(self.variant)
        check_aggregation(self.aggregation)
        stats.check_resamples(self.resamples)
        if not 0 < self.alpha < 1:
            raise InputError(f"--alpha must be in (0, 1), got {self.alpha}")
        if self.k < 1:
            raise InputError(f"--k must be at least 1, got {self.k}")
        if self.movers < 0:
            raise InputError(f"--movers must be >= 0, got {self.movers}")
        if self.tasks is not None:
            self.tasks = tuple(self.tasks)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["tasks"] = None if self.tasks is None else list(self.tasks)
        return d


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
        return finite_json({"schema": SCORES_SCHEMA, "version": SCHEMA_VERSION, "label": self.label,
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
        return cls.from_dict(_read_document(path, SCORES_SCHEMA, "scores", "compare --save-scores DIR"))


def embed_all(source: Any, data: CompareData, layers: bool) -> Any:
    """Every distinct sentence of the comparison through ``source`` once → ``embed(texts)``, a row lookup.

    The STS-B protocol sentences go first, with their per-layer poolings when ``layers`` (one forward pass
    for both, :meth:`~simcse_analysis.analysis.EncoderSource.prefetch`), then the task sentences not among
    them: the model sees each distinct sentence once, however many tasks share it, and nothing is
    encoded again for the embedding-space part (with or without the disk cache)."""
    from .sts_eval import unique_pairs

    protocol = data.protocol.sentences if data.protocol is not None else []
    if protocol and layers and hasattr(source, "prefetch"):
        source.prefetch(protocol, layers=True)
    known = set(protocol)
    rest = list(dict.fromkeys(t for subsets in data.tasks.values() for t in unique_pairs(subsets)[0]
                              if t not in known))
    parts = [np.asarray(source.embed(texts)) for texts in (protocol, rest) if texts]
    vectors = np.concatenate(parts) if parts else np.zeros((0, 0), dtype=np.float32)
    row = {t: i for i, t in enumerate([*protocol, *rest])}
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
            out.layers = source.embed_layers(p.sentences)
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
    """One line of the verdict table: ``other`` against ``baseline`` on ``metric``."""

    baseline: str
    other: str
    metric: str
    baseline_value: float
    other_value: float
    delta: float
    low: float
    high: float
    p_value: float
    p_holm: float = math.nan
    verdict: str = ""
    higher_is_better: bool = True
    method: str = ""


@dataclass
class PairAnalysis:
    """Where ``other`` differs from ``baseline``: layer CKA, kNN overlap, the pairs that moved."""

    baseline: str
    other: str
    cka: list[list[float]] | None = None  # [layer of baseline][layer of other]
    cka_debiased_diagonal: list[float] | None = None
    knn_jaccard: float | None = None
    movers: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class ComparisonReport:
    """What ``compare --json`` writes and the report's comparison section renders."""

    settings: dict[str, Any]
    models: list[dict[str, Any]]  # label, model, per-task Interval dicts, alignment/uniformity intervals
    rows: list[VerdictRow]
    pairs: list[PairAnalysis]
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return finite_json({"schema": SCHEMA, "version": SCHEMA_VERSION, "settings": self.settings,
                            "models": self.models, "rows": [asdict(r) for r in self.rows],
                            "pairs": [asdict(p) for p in self.pairs], "notes": self.notes})

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ComparisonReport:
        if d.get("schema") != SCHEMA:
            raise InputError(f"not a {SCHEMA} document (schema={d.get('schema')!r})")
        nan = (lambda v: math.nan if v is None else v)
        rows = [VerdictRow(**{k: nan(v) for k, v in r.items()}) for r in d["rows"]]
        return cls(d["settings"], d["models"], rows, [PairAnalysis(**p) for p in d["pairs"]], d.get("notes", []))

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, allow_nan=False) + "\n"

    def _repr_html_(self) -> str:
        """The verdict table, for a notebook cell (the full page: ``reports.compare_page``)."""
        import html

        def num(x: float, spec: str = ".2f") -> str:
            return "n/a" if x is None or not math.isfinite(x) else format(x, spec)

        head = "".join(f"<th>{h}</th>" for h in ("metric", "baseline", "other", "Δ", "95% CI", "p (Holm)", "verdict"))
        body = "".join(
            "<tr>" + "".join(f"<td>{html.escape(str(v))}</td>" for v in (
                r.metric, r.baseline, r.other, num(r.delta, "+.3f"), f"[{num(r.low, '.3f')}, {num(r.high, '.3f')}]",
                num(r.p_holm, ".3g"), r.verdict)) + "</tr>" for r in self.rows)
        return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _read_document(path: str | os.PathLike[str], schema: str, what: str, how: str) -> dict[str, Any]:
    """The JSON object in ``path`` if its ``schema`` is ``schema``; else one :class:`InputError` naming the file
    and ``how`` to write one."""
    try:
        d = json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InputError(f"{path}: no such {what} file (write one with {how})") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise InputError(f"{path}: not a readable {what} JSON ({e})") from e
    if not isinstance(d, dict) or d.get("schema") != schema:
        raise InputError(f"{path}: not a {schema} document (write one with {how})")
    return d


def load_comparison(path: str | os.PathLike[str]) -> ComparisonReport:
    """Read a ``compare --json`` document (schema and version checked; the error names the file)."""
    d = _read_document(path, SCHEMA, "comparison", "simcse-analyze compare --json F")
    if d.get("version") != SCHEMA_VERSION:
        raise InputError(f"{path}: comparison version {d.get('version')!r} is not readable by this release "
                         f"(reads {SCHEMA_VERSION}); re-run simcse-analyze compare")
    try:
        return ComparisonReport.from_dict(d)
    except (KeyError, TypeError) as e:
        raise InputError(f"{path}: malformed comparison document ({e}); re-run simcse-analyze compare") from e


# ----------------------------------------------------------------------------------------- statistics
def _interval(iv: stats.Interval, scale: float = 1.0) -> dict[str, Any]:
    d = iv.to_dict()
    for k in ("value", "low", "high", "stderr"):
        if d[k] is not None:
            d[k] *= scale
    return d


def _task_intervals(models: Sequence[ModelScores], data_gold: dict[str, np.ndarray], settings: CompareSettings
                    ) -> tuple[list[dict[str, Any]], dict[str, np.ndarray]]:
    """Per-model Spearman ×100 with CIs per task and ``avg``; returns also the bootstrap draws ``(M, B)``."""
    tasks = list(models[0].tasks)
    intervals, draws = stats.task_intervals(
        [{t: m.tasks[t].predictions for t in tasks} for m in models], {t: data_gold[t] for t in tasks},
        {t: models[0].tasks[t].bounds for t in tasks}, settings.aggregation, settings.resamples, settings.seed,
        settings.alpha)
    return [{k: _interval(iv, 100.0) for k, iv in per.items()} for per in intervals], draws


def _sts_rows(models: Sequence[ModelScores], gold: dict[str, np.ndarray], draws: dict[str, np.ndarray],
              per_model: list[dict[str, Any]], settings: CompareSettings) -> list[VerdictRow]:
    base = models[0]
    rows = []
    tasks = list(draws)
    for j, other in enumerate(models[1:], start=1):
        nulls, observed = [], []
        for i, task in enumerate(tasks):
            a, b = base.tasks[task], other.tasks[task]
            obs, null = stats.permutation_spearman(a.predictions, b.predictions, gold[task], a.bounds,
                                                   settings.aggregation, settings.resamples,
                                                   settings.seed + 1000 * i + 7)
            observed.append(obs)
            nulls.append(null)
            delta = per_model[j][task]["value"] / 100 - per_model[0][task]["value"] / 100
            ci = stats.percentile_interval(delta, draws[task][j] - draws[task][0], settings.alpha)
            rows.append(VerdictRow(base.label, other.label, task, per_model[0][task]["value"],
                                   per_model[j][task]["value"], 100 * delta, 100 * ci.low, 100 * ci.high,
                                   stats.permutation_p_value(obs, null),
                                   method="paired bootstrap CI; paired permutation test"))
        avg_delta = per_model[j]["avg"]["value"] / 100 - per_model[0]["avg"]["value"] / 100
        avg_d = np.mean([draws[t][j] - draws[t][0] for t in tasks], axis=0)
        ci = stats.percentile_interval(avg_delta, avg_d, settings.alpha)
        p = stats.permutation_p_value(float(np.mean(observed)), np.mean(nulls, axis=0))
        rows.append(VerdictRow(base.label, other.label, "avg", per_model[0]["avg"]["value"], per_model[j]["avg"]["value"],
                               100 * avg_delta, 100 * ci.low, 100 * ci.high, p,
                               method="paired bootstrap CI; paired permutation test"))
    return rows


def _space_rows(models: Sequence[ModelScores], settings: CompareSettings, per_model: list[dict[str, Any]]
                ) -> list[VerdictRow]:
    base = models[0]
    for j, m in enumerate(models):
        per_model[j]["alignment"] = _interval(stats.mean_interval(m.alignment_terms, settings.alpha))
        per_model[j]["uniformity"] = _interval(stats.uniformity_interval(m.uniformity, m.uniformity_stderr,
                                                                         settings.alpha))
    rows = []
    for m in models[1:]:
        t = stats.paired_mean_test(base.alignment_terms, m.alignment_terms, settings.alpha)
        rows.append(VerdictRow(base.label, m.label, "alignment", float(np.mean(base.alignment_terms)),
                               float(np.mean(m.alignment_terms)), t.delta, t.low, t.high, t.p_value,
                               higher_is_better=False, method=t.method))
        t = stats.paired_uniformity_test(base.uniformity_rows, m.uniformity_rows, base.uniformity, m.uniformity,
                                         settings.alpha)
        rows.append(VerdictRow(base.label, m.label, "uniformity", base.uniformity, m.uniformity, t.delta, t.low,
                               t.high, t.p_value, higher_is_better=False, method=t.method))
    return rows


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


def analyse_pair(base: ModelScores, other: ModelScores, data: CompareData | None, settings: CompareSettings
                 ) -> PairAnalysis:
    """CKA (layers), kNN Jaccard@k (final embeddings) and movers of ``other`` against ``base``."""
    from .metrics.similarity import cka_matrix, knn_jaccard, linear_cka

    out = PairAnalysis(base.label, other.label)
    if base.layers is not None and other.layers is not None:
        out.cka = cka_matrix(list(base.layers), list(other.layers)).tolist()
        out.cka_debiased_diagonal = [linear_cka(a, b, debiased=True)
                                     for a, b in zip(base.layers, other.layers)]
    if base.embeddings is not None and other.embeddings is not None:
        out.knn_jaccard = knn_jaccard(base.embeddings, other.embeddings, settings.k)
    if data is not None:
        for task, subsets in data.tasks.items():
            for m in movers(base.tasks[task], other.tasks[task], subsets, settings.movers):
                out.movers.append({"task": task, **m})
    return out


def compare_models(models: Sequence[ModelScores], settings: CompareSettings, data: CompareData | None = None
                   ) -> ComparisonReport:
    """Every checkpoint against the first: per-model CIs, paired tests with Holm, CKA, kNN overlap, movers."""
    if len(models) < 2:
        raise InputError(f"compare needs at least 2 checkpoints (a baseline and one to compare), got {len(models)}")
    for m in models[1:]:
        check_same_data(models[0], m)
    labels = [m.label for m in models]
    if len(set(labels)) != len(labels):
        raise InputError(f"two checkpoints share the label {next(x for x in labels if labels.count(x) > 1)!r}: "
                         "compare each checkpoint once (or with different poolers)")
    gold = _gold(models[0], data)
    per_model, draws = _task_intervals(models, gold, settings)
    rows = _sts_rows(models, gold, draws, per_model, settings)
    notes = [(f"Δ = other − baseline; {100 * (1 - settings.alpha):g}% CIs per row (not simultaneous); p-values "
              f"Holm-adjusted over all {{n}} rows; verdict at adjusted p < {settings.alpha:g}; "
              f"{settings.resamples} bootstrap resamples / permutations, seed {settings.seed} (smallest "
              f"permutation p = 1/{settings.resamples + 1}).")]
    if all(m.alignment_terms is not None and m.uniformity_rows is not None for m in models):
        rows += _space_rows(models, settings, per_model)
    elif any(m.alignment_terms is not None for m in models):
        notes.append("alignment/uniformity skipped: not every checkpoint has them")
    adjusted = stats.holm([r.p_value for r in rows])
    for r, p in zip(rows, adjusted):
        r.p_holm = p
        r.verdict = stats.verdict(r.delta, p, settings.alpha, r.higher_is_better)
    notes[0] = notes[0].replace("{n}", str(len(rows)))
    pairs = [analyse_pair(models[0], m, data, settings) for m in models[1:]]
    if any(m.layers is None for m in models):
        notes.append("CKA needs every checkpoint's hidden layers (not stored in scores files)")
    summary = [{"label": m.label, "model": m.model, "layer_pooler": m.layer_pooler, "scores": per_model[j]}
               for j, m in enumerate(models)]
    return ComparisonReport(settings.to_dict(), summary, rows, pairs, notes)


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
    earlier with ``save_scores`` (``DIR/<i>.json``: compared again without encoding). Per task: Δ Spearman
    with a paired bootstrap CI and a paired permutation p-value, Holm-adjusted over the table; alignment
    and uniformity paired; CKA per layer pair and mutual kNN Jaccard@k (``settings``). This is the
    function ``simcse-analyze compare`` calls.

    >>> from simcse_analysis.comparison import compare
    >>> compare(["all-MiniLM-L6-v2"])
    Traceback (most recent call last):
    ...
    simcse_analysis.errors.InputError: compare needs at least 2 checkpoints (baseline first), got 1
    """
    from .analysis import EncoderSource
    from .encoder import load_encoder

    checkpoints = [str(c) for c in checkpoints]
    if len(checkpoints) < 2:
        raise InputError(f"compare needs at least 2 checkpoints (baseline first), got {len(checkpoints)}")
    settings = settings or CompareSettings()
    data = load_compare_data(settings, data_dir)  # fails on missing data and k >= N before encoding
    saved = {c: ModelScores.load(c) for c in checkpoints if c.endswith(".json") and os.path.isfile(c)}
    from .encoder import later_poolers
    from .pooling import split_pooler

    # one forward pass for several poolers of one checkpoint: the first fills the cache for the later ones
    specs = [split_pooler(c) for c in checkpoints]
    siblings = later_poolers([(n, p or (encoder_kwargs or {}).get("pooler")) for c, (n, p) in zip(checkpoints, specs)
                              if c not in saved])
    also = iter(siblings)
    scores: list[ModelScores] = []
    for i, spec in enumerate(checkpoints):
        if spec in saved:
            scores.append(saved[spec])
            continue
        name, pooler = specs[i]
        kwargs = dict(encoder_kwargs or {})
        kwargs["pooler"] = pooler or kwargs.get("pooler")
        kwargs["also_pool"] = next(also)
        enc = load_encoder(name, **kwargs)
        scores.append(score_model(EncoderSource(enc, batch_size), data, settings, label=f"{name}@{enc.pooler}"))
        if save_scores is not None:
            scores[-1].save(os.path.join(save_scores, f"{i}.json"))
        del enc
    return compare_models(scores, settings, data)
