"""The record schema: what a result looks like in Python and in its JSON, and which versions are read.

One module defines every record that crosses a layer or goes to disk, so a reader (and an IDE) sees the
fields without running code:

- the **report record** (``schema = "simcse-analysis/report"``, :data:`REPORT_VERSION`): what
  ``simcse-analyze report --json`` writes, ``--from-json`` and :func:`simcse_analysis.load_analysis`
  read, and :class:`~reports.result.Analysis` wraps (:class:`ReportRecord`, one :class:`ModelEntry`
  per checkpoint);
- its per-checkpoint scalars, :class:`ModelSummary` (``models[i]["summary"]`` in the JSON since
  version 2): the figures of the report's tables under stable, flat names;
- the single-analysis document of ``align-uniform`` / ``spectrum`` / ``anisotropy --json``
  (:data:`ANALYSIS_SCHEMA`, written by :class:`simcse_analysis.analysis.AnalysisReport`).

Versions. Every document carries ``schema`` and ``version``. :func:`check_version` accepts the
current version and every older one this module can upgrade (:data:`REPORT_READABLE`); anything else
raises :class:`SchemaVersionError` (an :class:`~simcse_analysis.errors.InputError`, so the CLI exits
with code 2) naming the file, the version found and what to do. Report versions:

- 1: the first layout (no ``summary``); read by computing ``summary`` from the nested figures;
- 2: every model entry carries ``summary`` (:class:`ModelSummary`).

Comparison versions (``compare --json``, :data:`COMPARISON_SCHEMA`; the rows are
:class:`simcse_analysis.comparison.VerdictRow`):

- 1: per-row CIs beside Holm-adjusted permutation p-values over the whole table (``p_holm``);
- 2: one family per comparison (or the table), simultaneous intervals, ``p_adjusted``, ``stderr``,
  ``family``, ``family_size``, ``reason`` (why a row has no verdict) and ``design`` (the method in words).
"""

from __future__ import annotations

import itertools
import math
from dataclasses import asdict, dataclass, fields
from typing import Any, TypedDict

# SchemaError, SchemaVersionError and check_version live with the reader (documents); re-exported here, where
# callers have always imported them
from .documents import (  # noqa: F401
    Bool,
    DocumentKind,
    Int,
    ListOf,
    MapOf,
    Nested,
    Num,
    Obj,
    SchemaError,
    SchemaVersionError,
    Str,
    check_version,
    read_document,
    validate_document,
)
from .errors import InputError

REPORT_SCHEMA = "simcse-analysis/report"
REPORT_VERSION = 2
#: Report versions this release reads (older ones are upgraded in memory by :func:`upgrade_report`).
REPORT_READABLE: tuple[int, ...] = (1, 2)
ANALYSIS_SCHEMA = "simcse-analysis/embedding-analysis"
ANALYSIS_VERSION = 1
ANALYSIS_READABLE: tuple[int, ...] = (1,)
COMPARISON_SCHEMA = "simcse-analysis/comparison"
COMPARISON_VERSION = 2
#: Comparison versions this release reads (version 1 is upgraded in memory by
#: :func:`simcse_analysis.comparison.upgrade_comparison`).
COMPARISON_READABLE: tuple[int, ...] = (1, 2)


# ----------------------------------------------------------------------------------------- errors
class EmptyModelListError(InputError):
    """An entry point was given no checkpoints to work on (an empty list or only empty names)."""


def require_models(models: Any, what: str = "analyze") -> list[str]:
    """``models`` as a list of names (a single string is one model); :class:`EmptyModelListError` if none.

    >>> require_models("all-MiniLM-L6-v2")
    ['all-MiniLM-L6-v2']
    >>> require_models([])
    Traceback (most recent call last):
    ...
    simcse_analysis.records.EmptyModelListError: analyze: the model list is empty; give at least one checkpoint ...
    """
    names = [models] if isinstance(models, str) else [str(m) for m in (models or [])]
    names = [n for n in names if n.strip()]
    if not names:
        raise EmptyModelListError(f"{what}: the model list is empty; give at least one checkpoint (a Hugging Face "
                                  "id, an alias such as all-MiniLM-L6-v2, or a checkpoint directory)")
    return names


def list_argument(value: Any, name: str, what: str) -> list[Any]:
    """``value`` as a list, for an argument that takes a list of ``what``; a lone ``str`` (or bytes) is refused
    with :class:`InputError` naming ``name``, since iterating it would silently give its characters.

    >>> list_argument(["a.txt"], "sentence_files", "files")
    ['a.txt']
    >>> list_argument("a.txt", "sentence_files", "files")
    Traceback (most recent call last):
    ...
    simcse_analysis.errors.InputError: sentence_files: expected a list of files, got the string 'a.txt' (it would be read character by character): pass ['a.txt']
    """
    if isinstance(value, (str, bytes)):
        shown = value if len(value) <= 40 else value[:37] + "..."
        raise InputError(f"{name}: expected a list of {what}, got the string {shown!r} (it would be read "
                         f"character by character): pass [{shown!r}]")
    try:
        return list(value)
    except TypeError:
        raise InputError(f"{name}: expected a list of {what}, got {type(value).__name__}") from None


# ----------------------------------------------------------------------------------------- report record
class STSScores(TypedDict, total=False):
    """``evaluate_sts(...).to_dict()``: Spearman ×100 per task and their mean ``avg`` under ``scores``."""

    model: str
    pooler: str | None
    split: str
    variant: str
    aggregation: str
    scores: dict[str, float]


class ModelEntry(TypedDict, total=False):
    """One checkpoint of a report record (``models[i]``); the nested figures are the analyses' JSON."""

    label: str
    model: str
    path: str | None
    pooler: str | None
    dim: int | None
    fingerprint: str | None
    baseline: str | None
    checkpoint_metadata: dict[str, Any]
    encoder: dict[str, Any]
    sts_test: STSScores
    sts_dev: STSScores
    dev_align_uniform: dict[str, Any]
    align_uniform: dict[str, Any]
    spectrum: dict[str, Any]
    anisotropy: dict[str, Any]
    layers_note: str | None
    random_pairs: dict[str, Any]
    umap: dict[str, Any] | None
    summary: dict[str, Any]  # ModelSummary.to_dict(), version >= 2


class ReportRecord(TypedDict, total=False):
    """The report record (layout in :mod:`reports.collect`)."""

    schema: str
    version: int
    title: str | None
    provenance: list[dict[str, Any]]
    settings: dict[str, Any]
    data: dict[str, Any]
    models: list[ModelEntry]
    umap: dict[str, Any] | None
    trajectories: list[dict[str, Any]]
    #: ``report --tokens`` / ``--tokens-from``: a ``simcse-analyze tokens --json`` document (the Token level section)
    tokens: dict[str, Any] | None
    #: ``report --compare-from``: a ``simcse-analyze compare --json`` document (the Comparison section)
    comparison: dict[str, Any] | None


def _get(d: Any, *path: str) -> Any:
    for key in path:
        if not isinstance(d, dict):
            return None
        d = d.get(key)
    return d


def _num(x: Any) -> float | None:
    return float(x) if isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x) else None


@dataclass(frozen=True)
class ModelSummary:
    """The scalar figures of one checkpoint in a report (what its tables show), under flat names.

    ``sts``: Spearman ×100 of cosine per STS test task plus ``avg``; ``stsb_dev``: STS-B dev Spearman ×100;
    ``alignment`` / ``uniformity``: ℓ_align (α = 2, positive pairs) and ℓ_uniform (t = 2) under the analysis
    protocol; ``dev_*``: the same on STS-B dev (the trainer's protocol); the rest: the anisotropy summary
    of the analysis sentences and the centred spectrum's effective rank. ``None`` where undefined.
    """

    label: str
    model: str
    pooler: str | None
    dim: int | None
    baseline: str | None
    sts: dict[str, float]
    stsb_dev: float | None
    alignment: float | None
    uniformity: float | None
    dev_alignment: float | None
    dev_uniformity: float | None
    random_pair_cosine: float | None
    isoscore: float | None
    partition_isotropy: float | None
    first_pc_variance_share: float | None
    effective_rank: float | None
    mean_norm: float | None

    @classmethod
    def of_entry(cls, m: dict[str, Any]) -> ModelSummary:
        """Read the scalars out of a model entry's nested figures."""
        an = _get(m, "anisotropy", "summary") or {}
        scores = _get(m, "sts_test", "scores") or {}
        return cls(
            label=str(m.get("label", m.get("model", "?"))), model=str(m.get("model", "?")), pooler=m.get("pooler"),
            dim=m.get("dim"), baseline=m.get("baseline"),
            sts={k: float(v) for k, v in scores.items() if _num(v) is not None},
            stsb_dev=_num(_get(m, "sts_dev", "scores", "STSBenchmark")),
            alignment=_num(_get(m, "align_uniform", "alignment")),
            uniformity=_num(_get(m, "align_uniform", "uniformity")),
            dev_alignment=_num(_get(m, "dev_align_uniform", "alignment")),
            dev_uniformity=_num(_get(m, "dev_align_uniform", "uniformity")),
            random_pair_cosine=_num(an.get("random_pair_cosine")), isoscore=_num(an.get("isoscore")),
            partition_isotropy=_num(an.get("partition_isotropy")),
            first_pc_variance_share=_num(an.get("first_pc_variance_share")),
            effective_rank=_num(_get(m, "spectrum", "centered", "effective_rank")), mean_norm=_num(an.get("mean_norm")))

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ModelSummary:
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in names})


def upgrade_report(record: dict[str, Any], version: int) -> ReportRecord:
    """A record of a readable older ``version`` in the current layout (the input is not modified)."""
    if version == REPORT_VERSION:
        return record  # type: ignore[return-value]
    out = dict(record)
    if version == 1:  # 1 → 2: add each model's summary
        out["models"] = [{**m, "summary": ModelSummary.of_entry(m).to_dict()} for m in record.get("models", [])]
    out["version"] = REPORT_VERSION
    return out  # type: ignore[return-value]


REPORT_FIX = "rebuild it with `simcse-analyze report MODEL… --json FILE`"


# ----------------------------------------------------------------------------------------- document specs
# What the readers use of each document, checked by documents.read_document before any work starts. A float
# the writers may not have (NaN, written as null by io_utils.finite_json) is ``_N``; unknown keys pass.
_N = Num(null=True)
_NUMS = ListOf(_N)
_INTERVAL = Obj(optional={"value": _N, "low": _N, "high": _N, "stderr": _N, "alpha": _N, "method": Str()})
_STS_RESULT = Obj({"scores": MapOf(_N)}, optional={
    "model": Str(), "pooler": Str(null=True), "split": Str(), "variant": Str(), "aggregation": Str(),
    "data_dir": Str(null=True), "fingerprint": Str(null=True), "variants": MapOf(Str()), "encoder": MapOf(),
    "subsets": MapOf(MapOf(Obj(optional={"spearman": _N, "n": Int(min=0)}))), "intervals": MapOf(_INTERVAL),
    "ci": MapOf()})
_ALIGN_UNIFORM = Obj({"alignment": _N, "uniformity": _N}, optional={
    "model": MapOf(), "uniformity_stderr": _N, "alignment_stderr": _N, "n_positive_pairs": Int(min=0),
    "n_sentences": Int(min=0)})
_SPECTRUM_SIDE = Obj({"singular_values": _NUMS}, optional={
    "centered": Bool(), "n_points": Int(min=0), "dim": Int(min=0), "sigma_max": _N, "effective_rank": _N,
    "stable_rank": _N, "condition_number": _N, "numerical_rank": Int(min=0), "explained_variance_top_k": MapOf(_N)})
_SPECTRUM = Obj({"centered": _SPECTRUM_SIDE, "uncentered": _SPECTRUM_SIDE}, optional={"model": MapOf()})
_ANISOTROPY_SUMMARY = Obj(optional={
    k: _N for k in ("random_pair_cosine", "random_pair_cosine_std", "random_pair_cosine_stderr",
                    "mean_cosine_all_pairs", "isoscore", "partition_isotropy", "mean_norm", "norm_std",
                    "first_pc_variance_share", "log_partition_isotropy")} | {
    "n_points": Int(min=0), "dim": Int(min=0), "n_pairs": Int(min=0), "seed": Int()})
_COSINE_BIN = Obj({"label": Str(), "lo": _N, "hi": _N, "n": Int(min=0)}, optional={
    "mean": _N, "std": _N, "quartiles": ListOf(_N, null=True), "cosines": _NUMS})
_ANISOTROPY = Obj({"summary": _ANISOTROPY_SUMMARY, "score_bins": ListOf(_COSINE_BIN)}, optional={
    "model": MapOf(), "layer_pooler": Str(null=True), "layer_sentences": Int(null=True, min=0),
    "layers": ListOf(Obj(_ANISOTROPY_SUMMARY.required, _ANISOTROPY_SUMMARY.optional, null=True), null=True)})


def _model_summary_spec() -> Obj:
    """:class:`ModelSummary` as written by ``to_dict`` (every scalar a number or null)."""
    kinds: dict[str, Any] = {"label": Str(), "model": Str(), "pooler": Str(null=True), "dim": Int(null=True),
                             "baseline": Str(null=True), "sts": MapOf(_N)}
    return Obj({f.name: kinds.get(f.name, _N) for f in fields(ModelSummary)})


_MODEL_ENTRY = Obj(
    {"label": Str(), "model": Str(), "pooler": Str(null=True), "sts_test": _STS_RESULT, "sts_dev": _STS_RESULT,
     "dev_align_uniform": Obj(optional={"alignment": _N, "uniformity": _N}), "align_uniform": _ALIGN_UNIFORM,
     "spectrum": _SPECTRUM, "anisotropy": _ANISOTROPY,
     "random_pairs": Obj({"edges": _NUMS, "counts": ListOf(Int(min=0))}, optional={"mean": _N})},
    optional={"path": Str(null=True), "dim": Int(null=True, min=1), "fingerprint": Str(null=True),
              "baseline": Str(null=True), "checkpoint_metadata": MapOf(), "encoder": MapOf(),
              "layers_note": Str(null=True), "umap": Obj({"x": _NUMS, "y": _NUMS}, null=True),
              "summary": _model_summary_spec()},
    rules=(lambda m: (("random_pairs", "edges"), f"must have one more entry than counts ({len(m['random_pairs']['counts'])})")
           if len(m["random_pairs"]["edges"]) != len(m["random_pairs"]["counts"]) + 1 else None,))


def _umap_rule(record: dict[str, Any]) -> tuple[tuple[str | int, ...], str] | None:
    """The UMAP sample's sentences, categories and every model's coordinates have one entry per point."""
    umap = record.get("umap")
    if umap is None:
        return None
    n = len(umap["sentences"])
    if len(umap["categories"]) != n:
        return ("umap", "categories"), f"has {len(umap['categories'])} entries for {n} sentences"
    for i, m in enumerate(record["models"]):
        panel = m.get("umap")
        if panel is not None and not len(panel["x"]) == len(panel["y"]) == n:
            return ("models", i, "umap"), f"has {len(panel['x'])}/{len(panel['y'])} coordinates for {n} sentences"
    return None


def _trajectory_rule(record: dict[str, Any]) -> tuple[tuple[str | int, ...], str] | None:
    """A trajectory's ``model`` indexes into ``models``."""
    for i, t in enumerate(record["trajectories"]):
        if t.get("model") is not None and t["model"] >= len(record["models"]):
            return ("trajectories", i, "model"), f"is {t['model']}, but there are {len(record['models'])} models"
    return None


# ----------------------------------------------------------------------------------------- comparison records
SCORES_SCHEMA = "simcse-analysis/model-scores"
SCORES_VERSION = 1


def _bounds_rule(t: dict[str, Any]) -> tuple[tuple[str | int, ...], str] | None:
    """A task's ``bounds`` cut its ``predictions`` into one run per sub-dataset: 0, non-decreasing, the count."""
    b, n = t["bounds"], len(t["predictions"])
    if len(b) != len(t["subsets"]) + 1:
        return ("bounds",), f"has {len(b)} entries for {len(t['subsets'])} subsets (needs one more)"
    if b[0] != 0 or b[-1] != n or any(x > y for x, y in itertools.pairwise(b)):
        return ("bounds",), f"must rise from 0 to the number of predictions ({n}), got {b[:3]}…{b[-1:]}"
    return None


def _space_rule(d: dict[str, Any]) -> tuple[tuple[str | int, ...], str] | None:
    """The embedding-space part (alignment terms, uniformity and its rows) is whole or absent."""
    keys = ("alignment_terms", "uniformity", "uniformity_rows")
    have = [d.get(k) is not None for k in keys]
    if any(have) and not all(have):
        missing = keys[have.index(False)]
        return (missing,), "is missing or null while the other embedding-space scores are present"
    return None


SCORES_FIX = "write the scores again with `simcse-analyze compare MODEL… --save-scores DIR`"
SCORES_KIND = DocumentKind("scores file", Obj(
    {"label": Str(), "model": MapOf(), "tasks": MapOf(Obj({"subsets": ListOf(Str(), min_len=1), "bounds": ListOf(Int(min=0)),
                                         "digest": Str(), "predictions": _NUMS}, rules=(_bounds_rule,)), min_len=1)},
    optional={"sentences_digest": Str(null=True), "alignment_terms": ListOf(_N, null=True),
              "uniformity": _N, "uniformity_rows": ListOf(_N, null=True), "uniformity_stderr": _N},
    rules=(_space_rule,)), SCORES_FIX, SCORES_SCHEMA, (SCORES_VERSION,))

_VERDICT_ROW = Obj({"baseline": Str(), "other": Str(), "metric": Str(), "baseline_value": _N, "other_value": _N,
                    "delta": _N, "low": _N, "high": _N, "p_value": _N},
                   optional={"p_holm": _N, "p_adjusted": _N, "verdict": Str(), "higher_is_better": Bool(null=True),
                             "method": Str(), "stderr": _N, "family": Str(), "family_size": Int(min=1),
                             "reason": Str()})
_MOVER = Obj(optional={"task": Str(), "subset": Str(), "sentence1": Str(), "sentence2": Str()} | {
    k: _N for k in ("gold", "gold_rank", "rank_baseline", "rank_other", "cos_baseline", "cos_other", "move")})
_PAIR = Obj({"baseline": Str(), "other": Str()}, optional={
    "cka": ListOf(_NUMS, null=True), "cka_debiased_diagonal": ListOf(_N, null=True), "knn_jaccard": _N,
    "movers": ListOf(_MOVER), "geometry": Str(null=True)})
COMPARISON_KIND = DocumentKind("comparison", Obj(
    {"settings": Obj(optional={"alpha": Num(min=0, max=1), "k": Int(min=1), "resamples": Int(min=1), "seed": Int(),
                               "movers": Int(min=0), "tasks": ListOf(Str(), null=True), "split": Str(),
                               "variant": Str(), "aggregation": Str(), "layers": Bool(), "embedding_space": Bool(),
                               "family": Str()}),
     "models": ListOf(Obj({"label": Str()}, optional={"model": MapOf(), "layer_pooler": Str(null=True),
                                                      "scores": MapOf(_INTERVAL)})),
     "rows": ListOf(_VERDICT_ROW), "pairs": ListOf(_PAIR)},
    optional={"notes": ListOf(Str()), "design": Str()}), "write it with `simcse-analyze compare --json FILE MODEL…`",
    COMPARISON_SCHEMA, COMPARISON_READABLE)

# ----------------------------------------------------------------------------------------- token analysis
TOKEN_SCHEMA = "simcse-analysis/token-analysis"
TOKEN_VERSION = 1
_ROGUE = Obj({"expected_cosine": _N, "contributions": _NUMS}, optional={
    "dims_50": Int(null=True), "dims_90": Int(null=True), "variance_dims_50": Int(null=True),
    "variance_dims_90": Int(null=True), "variance_shares": _NUMS,
    "top": ListOf(Obj(optional={"dim": Int(min=0), "contribution": _N, "share": _N}))})
_TOKEN_LAYER = Obj({"layer": Int(min=0), "token_rogue": _ROGUE, "sentence_rogue": _ROGUE} | {
    k: _N for k in ("baseline", "self_similarity", "self_similarity_adjusted", "intra_sentence",
                    "intra_sentence_adjusted", "mev", "mev_centered", "mean_norm")})
TOKEN_KIND = DocumentKind("token-analysis JSON", Obj(
    {"protocol": Str(), "settings": MapOf(), "data": MapOf(),
     "results": ListOf(Obj({"model": MapOf(), "layer_pooler": Str(), "layers": ListOf(_TOKEN_LAYER, min_len=1),
                            "frequent_types": ListOf(MapOf()), "embedding_matrix": MapOf()} | {
         k: Int(min=0) for k in ("n_sentences", "n_units", "n_types", "n_mev_types", "n_mev_occurrences")}))}),
    "write it again with `simcse-analyze tokens MODEL… --json FILE`", TOKEN_SCHEMA, (TOKEN_VERSION,))

# ----------------------------------------------------------------------------------------- report record kind
#: One evaluation of a training run (a line of ``trajectory.jsonl``, a point of a report's trajectory).
TRAJECTORY_POINT = Obj({"step": Int(min=0)}, optional={
    k: _N for k in ("alignment", "uniformity", "stsb_spearman", "sickr_spearman", "epoch", "loss", "learning_rate")})
TRAJECTORY_POINT_KIND = DocumentKind("trajectory entry", TRAJECTORY_POINT,
                                     "fix or truncate the file (each line is one evaluation of the run)")
REPORT_KIND = DocumentKind("report record", Obj(
    {"provenance": ListOf(Obj(optional={"created": Str(), "command": Str(), "packages": MapOf(Str(null=True)),
                                        "machine": MapOf(), "data_dir": Str(null=True)})),
     "settings": Obj({"analysis": MapOf()}, optional={"umap": MapOf(null=True), "random_pair_bins": Int(min=1),
                                                     "layer_sentences": Int(null=True, min=0)}),
     "data": Obj({"protocol": Str(), "files": ListOf(Obj({"path": Str(), "sha256": Str()},
                                                          optional={"bytes": Int(min=0)}))},
                 optional={"protocol_data": MapOf()}),
     "models": ListOf(_MODEL_ENTRY, min_len=1),
     "trajectories": ListOf(Obj({"label": Str(), "points": ListOf(TRAJECTORY_POINT)},
         optional={"source": Str(null=True), "model": Int(null=True, min=0)}))},
    optional={"title": Str(null=True), "umap": Obj({"sentences": ListOf(Str()), "categories": ListOf(Str())},
                                                   optional={"colour": Str(), "category_order": ListOf(Str())},
                                                   null=True),
              "comparison": Nested(COMPARISON_KIND, null=True), "tokens": Nested(TOKEN_KIND, null=True)},
    rules=(_umap_rule, _trajectory_rule)), REPORT_FIX, REPORT_SCHEMA, REPORT_READABLE)

# ----------------------------------------------------------------------------------------- single analyses
_ANALYSIS_RESULTS = {"align_uniform": _ALIGN_UNIFORM, "spectrum": _SPECTRUM, "anisotropy": _ANISOTROPY}


def _results_rule(d: dict[str, Any]) -> None:
    spec = _ANALYSIS_RESULTS[d["analysis"]]
    for i, r in enumerate(d["results"]):
        spec.check(r, ("results", i))


ANALYSIS_KIND = DocumentKind("analysis JSON", Obj(
    {"analysis": Str(choices=tuple(_ANALYSIS_RESULTS)), "protocol": Str(), "settings": MapOf(), "data": MapOf(),
     "results": ListOf(Obj({"model": MapOf()}))}, rules=(_results_rule,)),
    "rebuild it with `simcse-analyze align-uniform|spectrum|anisotropy MODEL --json FILE`", ANALYSIS_SCHEMA,
    ANALYSIS_READABLE)


def read_report(path: Any, source: str | None = None) -> ReportRecord:
    """The report record at ``path``, validated (:data:`REPORT_KIND`) and upgraded to the current version."""
    record = read_document(path, REPORT_KIND, source=source)
    return upgrade_report(record, record["version"])


def validate_report(record: Any, source: str = "record") -> ReportRecord:
    """An in-memory report record validated (:data:`REPORT_KIND`) and upgraded to the current version."""
    version = validate_document(record, REPORT_KIND, source)
    return upgrade_report(record, int(version))  # type: ignore[arg-type]
