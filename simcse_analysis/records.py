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
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields
from typing import Any, TypedDict

from .errors import InputError

REPORT_SCHEMA = "simcse-analysis/report"
REPORT_VERSION = 2
#: Report versions this release reads (older ones are upgraded in memory by :func:`upgrade_report`).
REPORT_READABLE: tuple[int, ...] = (1, 2)
ANALYSIS_SCHEMA = "simcse-analysis/embedding-analysis"
ANALYSIS_VERSION = 1
ANALYSIS_READABLE: tuple[int, ...] = (1,)


# ----------------------------------------------------------------------------------------- errors
class SchemaError(InputError):
    """A JSON document is not a record of the expected kind (wrong or missing ``schema``, missing keys)."""


class SchemaVersionError(SchemaError):
    """A record's ``version`` is one this release cannot read: newer than it (written by a later
    simcse-analysis) or not a version that ever existed.

    ``found``: the version in the file; ``readable``: the versions this release reads.
    """

    def __init__(self, message: str, *, found: Any, readable: tuple[int, ...]) -> None:
        super().__init__(message)
        self.found = found
        self.readable = readable


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


def check_version(doc: Any, schema: str, readable: tuple[int, ...], source: str, *, fix: str) -> int:
    """The ``version`` of ``doc`` if ``doc`` is a ``schema`` document of a readable version.

    :class:`SchemaError` when ``doc`` is not a ``schema`` document; :class:`SchemaVersionError` when its
    version is newer than this release reads (upgrade simcse-analysis) or unknown (``fix`` says how to
    rebuild it). ``source`` names the file in the message.
    """
    if not isinstance(doc, dict) or doc.get("schema") != schema:
        found = doc.get("schema") if isinstance(doc, dict) else type(doc).__name__
        kind = schema.rsplit("/", 1)[-1].replace("-", " ")
        raise SchemaError(f"{source} is not a {kind} record (schema {found!r}, expected {schema!r}): {fix}")
    version = doc.get("version")
    if isinstance(version, int) and not isinstance(version, bool) and version in readable:
        return version
    newest = max(readable)
    if isinstance(version, int) and not isinstance(version, bool) and version > newest:
        msg = (f"{source} is a {schema} record of version {version}, written by a newer simcse-analysis; this "
               f"release reads versions {', '.join(map(str, readable))}: upgrade simcse-analysis, or {fix}")
    else:
        msg = (f"{source} has {schema} version {version!r}, which no simcse-analysis release wrote (this one reads "
               f"versions {', '.join(map(str, readable))}): {fix}")
    raise SchemaVersionError(msg, found=version, readable=readable)


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
