"""Unsupervised STS evaluation: Spearman correlation of cosine similarity with the gold scores.

For a task with pairs ``(a_i, b_i)`` and gold scores ``g_i``, the system score is the cosine
``c_i = <e(a_i), e(b_i)> / (||e(a_i)|| ||e(b_i)||)`` (0 for a zero vector) and the figure is Spearman's
``rho(c, g)`` (Pearson correlation of the average ranks), reported ×100 as in the SimCSE paper.

STS12–16 consist of sub-datasets ``k = 1..K``; three aggregations are offered (SentEval computes all
three, ``senteval/sts.py``):

* ``all`` (SimCSE's choice, the default): one ``rho`` over the concatenation of every sub-dataset's pairs;
* ``mean``: ``(1/K) sum_k rho_k`` (SentEval's "mean");
* ``wmean``: ``sum_k n_k rho_k / sum_k n_k`` with ``n_k`` pairs in sub-dataset ``k`` (SentEval's "wmean").

STS-B and SICK-R have one subset per split, where all three coincide; SimCSE evaluates them like the
others (cosine, no trained regressor) on ``test``; training uses STS-B ``dev``. ``avg`` is the plain mean
of the evaluated tasks' figures.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from . import progress
from .errors import InputError
from .io_utils import finite_json as _finite
from .sts_data import SEMEVAL_TASKS, STSSubset, canonical_split, check_variant, load_sts, parse_tasks

AGGREGATIONS: tuple[str, ...] = ("all", "mean", "wmean")
#: Bootstrap resamples of the CIs :func:`evaluate_sts` gives by default (as ``simcse-analyze eval``).
DEFAULT_RESAMPLES = 1000

EncodeFn = Callable[[list[str]], np.ndarray]


# ------------------------------------------------------------------------------- pure metrics
def cosine_scores(emb1: np.ndarray, emb2: np.ndarray) -> np.ndarray:
    """Row-wise cosine ``c_i = <x_i, y_i> / (||x_i|| ||y_i||)`` in float64; 0 where a row is all zeros."""
    x = np.asarray(emb1, dtype=np.float64)
    y = np.asarray(emb2, dtype=np.float64)
    if x.ndim != 2 or x.shape != y.shape:
        raise ValueError(f"cosine_scores needs two (N, d) arrays of the same shape, got {x.shape} and {y.shape}")
    denom = np.linalg.norm(x, axis=1) * np.linalg.norm(y, axis=1)
    dots = np.einsum("ij,ij->i", x, y)
    return np.divide(dots, denom, out=np.zeros_like(dots), where=denom > 0)


def spearman(x: np.ndarray, y: np.ndarray) -> float:
    """Spearman's ``rho``: Pearson correlation of average ranks (ties share their mean rank), in [-1, 1].

    NaN when fewer than two pairs or either side is constant.
    """
    from scipy.stats import spearmanr

    x = np.asarray(x, dtype=np.float64).ravel()
    y = np.asarray(y, dtype=np.float64).ravel()
    if x.shape != y.shape:
        raise ValueError(f"spearman needs equal lengths, got {x.size} and {y.size}")
    if x.size < 2 or np.ptp(x) == 0 or np.ptp(y) == 0:
        return math.nan
    return float(spearmanr(x, y)[0])


def spearman_of_cosine(emb1: np.ndarray, emb2: np.ndarray, gold: np.ndarray) -> float:
    """``rho(cos(emb1_i, emb2_i), gold_i)`` over pairs ``i``: Spearman in [-1, 1] (not ×100)."""
    return spearman(cosine_scores(emb1, emb2), gold)


def aggregate_all(system: Sequence[np.ndarray], gold: Sequence[np.ndarray]) -> float:
    """SimCSE's "all": ``rho(concat_k system_k, concat_k gold_k)``."""
    return spearman(np.concatenate([np.ravel(s) for s in system]), np.concatenate([np.ravel(g) for g in gold]))


def aggregate_mean(system: Sequence[np.ndarray], gold: Sequence[np.ndarray]) -> float:
    """SentEval's "mean": ``(1/K) sum_k rho(system_k, gold_k)``."""
    return float(np.mean([spearman(s, g) for s, g in zip(system, gold, strict=True)]))


def aggregate_wmean(system: Sequence[np.ndarray], gold: Sequence[np.ndarray]) -> float:
    """SentEval's "wmean": ``sum_k n_k rho_k / sum_k n_k`` with ``n_k = len(gold_k)``."""
    rhos = [spearman(s, g) for s, g in zip(system, gold, strict=True)]
    return float(np.average(rhos, weights=[len(np.ravel(g)) for g in gold]))


_AGGREGATE = {"all": aggregate_all, "mean": aggregate_mean, "wmean": aggregate_wmean}


def check_aggregation(name: str) -> str:
    """Return ``name`` if it is ``all``, ``mean`` or ``wmean``, else raise :class:`InputError`."""
    if name not in AGGREGATIONS:
        raise InputError(f"unknown aggregation {name!r}: choose all, mean or wmean")
    return name


def aggregate(system: Sequence[np.ndarray], gold: Sequence[np.ndarray], aggregation: str = "all") -> float:
    """Combine per-subset system/gold scores into one Spearman ``rho`` by ``aggregation``."""
    return _AGGREGATE[check_aggregation(aggregation)](system, gold)


# ------------------------------------------------------------------------------- results
@dataclass
class STSResult:
    """Spearman ×100 per task plus ``avg``, and the settings that produced them (JSON-able).

    ``subsets[task][subset] = {"spearman": rho×100, "n": pairs}``; ``variants[task]`` is the copy actually
    read (SICK-R falls back to ``raw``); ``None`` stands for an undefined correlation in JSON.
    """

    model: str | None
    pooler: str | None
    scores: dict[str, float]
    split: str
    variant: str
    aggregation: str
    data_dir: str | None
    fingerprint: str | None = None
    subsets: dict[str, dict[str, dict[str, float]]] = field(default_factory=dict)
    variants: dict[str, str] = field(default_factory=dict)
    encoder: dict[str, Any] | None = None
    #: ``intervals[task] = {"low", "high", "stderr"}`` (×100) of a percentile-bootstrap CI over the pairs
    #: (STS12–16 resampled within each sub-dataset), and ``intervals["avg"]``; empty without ``resamples``.
    intervals: dict[str, dict[str, float | None]] = field(default_factory=dict)
    #: How the intervals were computed: ``{"method", "resamples", "seed", "alpha"}`` (None without them).
    ci: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        """Plain dict; non-finite numbers become ``None`` so the JSON is standard."""
        return _finite(asdict(self))

    def __repr__(self) -> str:
        """One line: the model, its pooler and the scores (``to_dict()`` holds everything)."""
        scores = ", ".join(f"{k}={v:.2f}" for k, v in self.scores.items())
        ci = self.intervals.get("avg") if self.intervals else None
        level = 100 * (1 - float((self.ci or {}).get("alpha", 0.05)))
        ci_text = (f", avg {level:g}% CI [{ci['low']:.2f}, {ci['high']:.2f}]" if ci and ci.get("low") is not None
                   and ci.get("high") is not None else "")
        return f"STSResult({self.model!r}, pooler={self.pooler!r}, {self.split}: {scores}{ci_text})"

    def _repr_html_(self) -> str:
        """A notebook cell shows the scores as a table."""
        from .tables import format_html_table

        label = f"{self.model or '?'}" + (f" [{self.pooler}]" if self.pooler else "")
        return format_html_table(["model", *self.scores], [[label, *(f"{v:.2f}" for v in self.scores.values())]],
                                 caption=f"Spearman ×100 of cosine ({self.split}, {self.variant}, {self.aggregation})")

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> STSResult:
        d = dict(d)
        d["scores"] = {k: (math.nan if v is None else float(v)) for k, v in d["scores"].items()}
        return cls(**{k: d[k] for k in cls.__dataclass_fields__ if k in d})


def results_to_json(results: Iterable[STSResult]) -> dict[str, Any]:
    """``{"results": [result.to_dict(), ...]}``: the format of ``simcse-analyze eval --json``."""
    return {"results": [r.to_dict() for r in results]}


def results_from_json(doc: dict[str, Any]) -> list[STSResult]:
    """Inverse of :func:`results_to_json`."""
    return [STSResult.from_dict(r) for r in doc["results"]]


# ------------------------------------------------------------------------------- evaluation
def _encode_fn(encoder: Any, batch_size: int) -> EncodeFn:
    """``encoder.encode(texts, batch_size=...)`` for an Encoder (or SentenceTransformer); a plain callable as is."""
    if hasattr(encoder, "encode"):
        return lambda texts: encoder.encode(texts, batch_size=batch_size)
    if callable(encoder):
        return encoder
    raise TypeError("encoder must have an .encode(sentences) method or be a callable encode(list[str])")


def unique_pairs(subsets: Sequence[STSSubset]) -> tuple[list[str], list[np.ndarray], list[np.ndarray]]:
    """Unique sentences of ``subsets`` (first-seen order) and per-subset row indices of each side."""
    index: dict[str, int] = {}
    idx1: list[np.ndarray] = []
    idx2: list[np.ndarray] = []
    for s in subsets:
        idx1.append(np.fromiter((index.setdefault(t, len(index)) for t in s.sentences1), np.int64, len(s)))
        idx2.append(np.fromiter((index.setdefault(t, len(index)) for t in s.sentences2), np.int64, len(s)))
    return list(index), idx1, idx2


def score_task(encode: EncodeFn, subsets: Sequence[STSSubset]) -> list[np.ndarray]:
    """Cosine system scores for each subset, encoding the task's unique sentences in one call."""
    texts, idx1, idx2 = unique_pairs(subsets)
    emb = np.asarray(encode(texts))
    if emb.ndim != 2 or emb.shape[0] != len(texts):
        raise ValueError(f"encode returned shape {emb.shape} for {len(texts)} sentences; expected (N, d)")
    return [cosine_scores(emb[a], emb[b]) for a, b in zip(idx1, idx2)]


def planned_sentences(data: dict[str, list[STSSubset]]) -> list[int]:
    """Per task, the distinct sentences :func:`evaluate_sts` encodes that no earlier task held (what a cold
    cache costs; the plan of the progress job, :mod:`simcse_analysis.progress`)."""
    return progress.new_counts(unique_pairs(subsets)[0] for subsets in data.values())


def evaluate_sts(encoder: Any, tasks: str | Iterable[str] | None = None,
                 data_dir: str | os.PathLike[str] | None = None, split: str = "test",
                 variant: str = "senteval", aggregation: str = "all", batch_size: int = 64, *,
                 model: str | None = None, pooler: str | None = None, resamples: int | None = DEFAULT_RESAMPLES,
                 seed: int = 0, alpha: float = 0.05) -> STSResult:
    """Spearman ×100 of cosine similarity per task, and their mean ``avg``.

    ``encoder``: an :class:`~simcse_analysis.encoder.Encoder` (its embedding cache makes repeated calls
    cheap), a checkpoint name or directory (loaded with :func:`~simcse_analysis.encoder.load_encoder`,
    ``pooler`` = its pooler), anything with ``.encode(list[str], batch_size=...)``, or a callable
    ``encode(list[str]) -> (N, d) array``. ``tasks``: names or a comma-separated string; ``None`` = every task that has ``split``
    (all seven for ``test``; STS-B and SICK-R for ``train``/``dev``). STS12–16 are always test sets, so
    asking for them with another split raises :class:`InputError`. ``model``/``pooler`` label the result
    (default: the encoder's ``name``/``pooler``). ``resamples`` (≥ 100; default 1000, as ``simcse-analyze
    eval``): a ``1 − alpha`` percentile-bootstrap CI per task and for ``avg`` in ``intervals``
    (:func:`~simcse_analysis.metrics.stats.task_intervals`, seeded); ``None`` or ``0``: no CIs.

    >>> import numpy as np
    >>> from simcse_analysis.sts_eval import evaluate_sts
    >>> random_vectors = lambda texts: np.random.default_rng(0).normal(size=(len(texts), 8))
    >>> r = evaluate_sts(random_vectors, "STSBenchmark", split="dev", model="random")  # data: $SIMCSE_DATA
    >>> sorted(r.scores), abs(r.scores["STSBenchmark"]) < 10    # random vectors: Spearman near 0
    (['STSBenchmark', 'avg'], True)
    """
    split, variant, aggregation = canonical_split(split), check_variant(variant), check_aggregation(aggregation)
    if tasks is None:
        chosen = [t for t in parse_tasks(None) if split == "test" or t not in SEMEVAL_TASKS]
    else:
        chosen = parse_tasks(tasks)
    data = {t: load_sts(t, data_dir, split, variant) for t in chosen}  # validate everything before encoding
    resamples = resamples or None
    if resamples is not None:
        from .metrics.stats import check_resamples

        check_resamples(resamples)
    if isinstance(encoder, (str, os.PathLike)):  # a name, ``NAME@POOLER`` or directory
        from .encoder import load_encoder

        encoder = load_encoder(str(encoder), pooler=pooler)
        pooler = None  # label the result with the encoder's own pooler (``@POOLER`` or the checkpoint's)
    encode = _encode_fn(encoder, batch_size)

    scores: dict[str, float] = {}
    per_subset: dict[str, dict[str, dict[str, float]]] = {}
    predictions: dict[str, np.ndarray] = {}
    planned = planned_sentences(data)
    progress.plan(sum(planned))
    for (task, subsets), n_new in zip(data.items(), planned):
        with progress.stage(progress.sentences_label(task, len(unique_pairs(subsets)[0])), n_new):
            system = score_task(encode, subsets)
        predictions[task] = np.concatenate(system)
        gold = [s.scores for s in subsets]
        scores[task] = 100.0 * aggregate(system, gold, aggregation)
        per_subset[task] = {s.subset: {"spearman": 100.0 * spearman(c, s.scores), "n": len(s)}
                            for s, c in zip(subsets, system)}
    scores["avg"] = float(np.mean([scores[t] for t in data])) if data else math.nan
    intervals, ci = {}, None
    if resamples is not None and data:
        with progress.stage(f"bootstrap CIs ({resamples:,} resamples)"):
            intervals, ci = _intervals(predictions, data, aggregation, resamples, seed, alpha)

    from .datadir import resolve_data_dir

    return STSResult(
        model=model if model is not None else getattr(encoder, "name", None),
        pooler=pooler if pooler is not None else getattr(encoder, "pooler", None),
        scores=scores, split=split, variant=variant, aggregation=aggregation,
        data_dir=str(resolve_data_dir(data_dir)),
        fingerprint=getattr(encoder, "fingerprint", None),
        subsets=per_subset,
        variants={t: subsets[0].variant for t, subsets in data.items()},
        encoder=_describe(encoder),
        intervals=intervals, ci=ci,
    )


def _intervals(predictions: dict[str, np.ndarray], data: dict[str, list[STSSubset]], aggregation: str,
               resamples: int, seed: int, alpha: float) -> tuple[dict[str, dict[str, float | None]], dict[str, Any]]:
    from .metrics.stats import task_intervals

    gold = {t: np.concatenate([s.scores for s in subsets]) for t, subsets in data.items()}
    bounds = {t: [0, *np.cumsum([len(s) for s in subsets]).tolist()] for t, subsets in data.items()}
    (per,), _ = task_intervals([predictions], gold, bounds, aggregation, resamples, seed, alpha)
    out = {t: {"low": 100 * iv.low, "high": 100 * iv.high, "stderr": None if iv.stderr is None else 100 * iv.stderr}
           for t, iv in per.items()}
    return out, {"method": "percentile bootstrap over pairs (stratified by sub-dataset)", "resamples": resamples,
                 "seed": seed, "alpha": alpha}


def _describe(encoder: Any) -> dict[str, Any] | None:
    """The encoder's own JSON-able summary (``Encoder.describe()``), if it has one."""
    describe = getattr(encoder, "describe", None)
    d = describe() if callable(describe) else None
    return d if isinstance(d, dict) else None
