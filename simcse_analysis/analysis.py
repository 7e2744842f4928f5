"""Embedding-space analyses under the SimCSE protocol: alignment/uniformity, spectra, anisotropy.

Protocol (SimCSE §5 / Fig. 2, following Wang & Isola 2020; every setting configurable and recorded):

- data distribution ``p_data`` = all distinct sentences of the STS Benchmark, by default of all three
  splits (train + dev + test, the paper's "all STS-B sentences"), SentEval copy (the one the paper's
  STS numbers use); duplicates are encoded once (first-seen order);
- positive pairs ``p_pos`` = the STS-B pairs of those splits with gold score ``> 4`` (strictly);
- alignment ``ℓ_align`` (α = 2) on the positive pairs, uniformity ``ℓ_uniform`` (t = 2) exact over all
  distinct pairs of ``p_data`` (or a seeded Monte-Carlo estimate with ``uniformity_pairs``);
- spectrum: singular values of the ``p_data`` embedding matrix, uncentred and centred;
- anisotropy: summaries of ``p_data`` (random-pair cosine, IsoScore, I(W), norms, first-PC share),
  cosine of every scored pair grouped by gold score bin (Fig. G.1), and the same summaries for every
  hidden layer (``Encoder.encode_layers``; ``avg`` or ``cls_before_pooler`` pooling per layer).

Formulas live in :mod:`simcse_analysis.metrics`. Embeddings come from an :class:`EncoderSource`
(``encoder.encode`` — cached on disk, so the three analyses encode the sentences once) or a
:class:`PrecomputedSource` (an ``.npy`` matrix plus its sentence list, for models from other
frameworks; :func:`protocol_sentences` gives the sentences to encode).

JSON schema (``AnalysisReport.to_dict()``; ``AnalysisReport.from_dict`` reads it back)::

    {
      "schema": "simcse-analysis/embedding-analysis", "version": 1,
      "analysis": "align_uniform" | "spectrum" | "anisotropy",
      "protocol": "<one line: data, positives, settings>",
      "settings": {"task", "variant", "splits": [...], "positive_threshold", plus per analysis
                   align_uniform: "alpha", "t", "uniformity": "exact" | "sampled", "uniformity_pairs", "seed";
                   spectrum: "top_k": [...]; anisotropy: "seed", "cosine_pairs", "score_edges": [...], "layers"},
      "data": {"task", "variant", "splits", "files": [...], "n_scored_pairs", "n_positive_pairs",
               "n_sentences"},
      "results": [ one per model:
        {"model": {"model", "pooler", "dim", ...encoder.describe() or {"model", "embeddings", "sentences"}},
         # analysis == "align_uniform":
         "alignment": float, "uniformity": float, "uniformity_stderr": float | null,
         "alignment_stderr": float | null,   # se over the positive pairs; uniformity's: U-statistic (exact)
         "n_positive_pairs": int, "n_sentences": int,
         # analysis == "spectrum":  Spectrum.to_dict() each (singular_values normalised to max 1)
         "uncentered": {...}, "centered": {...},
         # analysis == "anisotropy":
         "summary": AnisotropySummary.to_dict(), "score_bins": [CosineBin.to_dict(), ...],
         "layer_pooler": str | null, "layers": [AnisotropySummary.to_dict() per layer, 0 = embeddings] | null}
      ]
    }

Non-finite numbers never appear: an infinite condition number is ``null``.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .corpora import split_lines
from .documents import read_document, validate_document
from .errors import InputError
from .metrics.align_uniform import alignment, uniformity, uniformity_sampled, uniformity_with_rows
from .metrics.anisotropy import (
    DEFAULT_SCORE_EDGES,
    AnisotropySummary,
    CosineBin,
    anisotropy_summary,
    cosine_by_score_bin,
)
from .metrics.spectrum import DEFAULT_TOP_K, Spectrum, spectrum
from .metrics.stats import alignment_terms, mean_interval
from .records import ANALYSIS_KIND, ANALYSIS_SCHEMA, ANALYSIS_VERSION

SCHEMA = ANALYSIS_SCHEMA
SCHEMA_VERSION = ANALYSIS_VERSION
ANALYSES: tuple[str, ...] = ("align_uniform", "spectrum", "anisotropy")
DEFAULT_SPLITS: tuple[str, ...] = ("train", "dev", "test")


def parse_splits(spec: str) -> tuple[str, ...]:
    """``--splits``: ``"train,dev"`` → ``("train", "dev")``; ``"all"`` → :data:`DEFAULT_SPLITS`
    (names are checked by :class:`AnalysisSettings`)."""
    parts = tuple(p.strip() for p in spec.split(",") if p.strip())
    return DEFAULT_SPLITS if [p.lower() for p in parts] == ["all"] else parts


# ----------------------------------------------------------------------------------------- settings
@dataclass
class AnalysisSettings:
    """Everything that determines the figures besides the model (defaults = the SimCSE protocol)."""

    task: str = "STSBenchmark"
    variant: str = "senteval"
    splits: tuple[str, ...] = DEFAULT_SPLITS
    positive_threshold: float = 4.0
    alpha: float = 2.0
    t: float = 2.0
    uniformity_pairs: int | None = None  # None: exact over all distinct pairs
    seed: int = 0
    cosine_pairs: int = 10_000
    score_edges: tuple[float, ...] = DEFAULT_SCORE_EDGES
    top_k: tuple[int, ...] = DEFAULT_TOP_K
    layers: bool = True

    def __post_init__(self) -> None:
        from .sts_data import canonical_split, check_variant

        self.variant = check_variant(self.variant)
        splits = [canonical_split(s) for s in self.splits]
        if not splits:
            raise InputError("--splits: give at least one of train, dev, test")
        self.splits = tuple(dict.fromkeys(splits))  # de-duplicated, order kept
        if not math.isfinite(self.positive_threshold):
            raise InputError(f"--threshold must be a finite number, got {self.positive_threshold}")
        for name, option in (("alpha", "--align-alpha"), ("t", "--t")):
            v = getattr(self, name)
            if not (math.isfinite(v) and v > 0):
                raise InputError(f"{option} must be a positive number, got {v}")
        if self.uniformity_pairs is not None and self.uniformity_pairs < 2:
            raise InputError(f"--uniformity-pairs must be at least 2, got {self.uniformity_pairs}")
        if self.cosine_pairs < 2:
            raise InputError(f"--pairs must be at least 2, got {self.cosine_pairs}")
        self.score_edges = tuple(float(e) for e in self.score_edges)
        self.top_k = tuple(int(k) for k in self.top_k)

    def to_dict(self, analysis: str | None = None) -> dict[str, Any]:
        """All settings, or only those that affect ``analysis`` (see :data:`SETTINGS_USED`)."""
        d = asdict(self)
        d["uniformity"] = "exact" if self.uniformity_pairs is None else "sampled"
        for k in ("splits", "score_edges", "top_k"):
            d[k] = list(d[k])
        if analysis is not None:
            d = {k: v for k, v in d.items() if k in SETTINGS_USED[analysis]}
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> AnalysisSettings:
        d = {k: v for k, v in d.items() if k != "uniformity"}
        for k in ("splits", "score_edges", "top_k"):
            if k in d:
                d[k] = tuple(d[k])
        return cls(**d)


_COMMON = ("task", "variant", "splits", "positive_threshold")
#: The settings each analysis depends on (and records in its JSON); the rest keep their defaults.
SETTINGS_USED: dict[str, tuple[str, ...]] = {
    "align_uniform": (*_COMMON, "alpha", "t", "uniformity", "uniformity_pairs", "seed"),
    "spectrum": (*_COMMON, "top_k"),
    "anisotropy": (*_COMMON, "seed", "cosine_pairs", "score_edges", "layers"),
}


# ----------------------------------------------------------------------------------------- data
@dataclass
class ProtocolData:
    """STS-B pairs of the chosen splits, as indices into the list of distinct sentences."""

    task: str
    variant: str
    splits: tuple[str, ...]
    sentences: list[str]
    pairs: np.ndarray  # (P, 2) int: sentence indices of each scored pair
    scores: np.ndarray  # (P,) gold scores
    files: list[str]
    positive_threshold: float

    @property
    def positive(self) -> np.ndarray:
        """Boolean mask of the positive pairs (gold score strictly above the threshold)."""
        return self.scores > self.positive_threshold

    def summary(self) -> dict[str, Any]:
        return {"task": self.task, "variant": self.variant, "splits": list(self.splits), "files": self.files,
                "n_scored_pairs": len(self.scores), "n_positive_pairs": int(self.positive.sum()),
                "n_sentences": len(self.sentences)}


def load_protocol_data(settings: AnalysisSettings, data_dir: str | os.PathLike[str] | None = None
                       ) -> ProtocolData:
    """Read the STS-B splits of ``settings`` and index their distinct sentences (first-seen order)."""
    from .sts_data import load_sts

    index: dict[str, int] = {}
    pairs: list[tuple[int, int]] = []
    scores: list[float] = []
    files: list[str] = []
    variant = settings.variant
    for split in settings.splits:
        for sub in load_sts(settings.task, data_dir, split=split, variant=settings.variant):
            variant = sub.variant
            files.extend(sub.files)
            for a, b in zip(sub.sentences1, sub.sentences2):
                pairs.append((index.setdefault(a, len(index)), index.setdefault(b, len(index))))
            scores.extend(float(s) for s in sub.scores)
    if len(index) < 2:
        raise InputError(f"STS-B {'+'.join(settings.splits)} holds fewer than two distinct sentences: "
                         "choose more --splits or restore the data files")
    return ProtocolData(task=settings.task, variant=variant, splits=settings.splits, sentences=list(index),
                        pairs=np.asarray(pairs, dtype=np.int64).reshape(-1, 2),
                        scores=np.asarray(scores, dtype=np.float64), files=files,
                        positive_threshold=settings.positive_threshold)


def protocol_sentences(settings: AnalysisSettings, data_dir: str | os.PathLike[str] | None = None) -> list[str]:
    """The distinct sentences the analyses embed, in order (write them out to encode them elsewhere)."""
    return load_protocol_data(settings, data_dir).sentences


def describe_protocol(settings: AnalysisSettings, data: ProtocolData, analysis: str = "align_uniform") -> str:
    """One line stating the data, the positives and the settings (printed with every output)."""
    text = (f"STS-B {'+'.join(data.splits)} ({data.variant}): p_data = {len(data.sentences):,} distinct "
            f"sentences; p_pos = {int(data.positive.sum()):,} of {len(data.scores):,} pairs with gold score > "
            f"{settings.positive_threshold:g}")
    if analysis == "align_uniform":
        uni = ("exact over all distinct pairs" if settings.uniformity_pairs is None
               else f"sampled from {settings.uniformity_pairs:,} pairs (seed {settings.seed})")
        text += f"; alpha = {settings.alpha:g}, t = {settings.t:g}, uniformity {uni}"
    elif analysis == "spectrum":
        text += "; spectrum of the p_data embedding matrix, uncentred and centred"
    elif analysis == "anisotropy":
        text += (f"; {settings.cosine_pairs:,} random pairs (seed {settings.seed}); pairs binned by gold score at "
                 f"{', '.join(f'{e:g}' for e in settings.score_edges)}"
                 + ("; every hidden layer too" if settings.layers else ""))
    return text


# ----------------------------------------------------------------------------------------- sources
class EncoderSource:
    """Embeddings from a loaded :class:`~simcse_analysis.encoder.Encoder` (cached on disk per sentence).

    The last list embedded (and its per-layer stack) is also kept in memory, so the analyses of one
    command read it once; :meth:`prefetch` gets both from one forward pass when a command needs both.
    """

    def __init__(self, encoder: Any, batch_size: int = 64) -> None:
        self.encoder = encoder
        self.batch_size = batch_size
        self._memo: dict[str, tuple[str, np.ndarray, list[str]]] = {}  # what → (digest, array, texts)

    def describe(self) -> dict[str, Any]:
        return self.encoder.describe()

    @property
    def device(self) -> str:
        """Where the encoder runs (the default device of the analyses' heavy work)."""
        return self.encoder.device

    @property
    def layer_pooler(self) -> str:
        """Per-layer pooling: the [CLS] vector for CLS-type poolers, the token mean otherwise."""
        return "cls_before_pooler" if self.encoder.pooler.startswith("cls") else "avg"

    def _remembered(self, what: str, digest: str) -> np.ndarray | None:
        hit = self._memo.get(what)
        return hit[1] if hit is not None and hit[0] == digest else None

    def prefetch(self, sentences: Sequence[str], layers: bool = True) -> None:
        """Embed ``sentences`` and, if ``layers``, their per-layer poolings, in one forward pass."""
        from .cache import texts_digest

        texts = list(sentences)
        if not layers:
            self.embed(texts)
            return
        digest = texts_digest(texts)
        if self._remembered("embed", digest) is not None and self._remembered("layers", digest) is not None:
            return
        emb, stack = self.encoder.encode_with_layers(texts, batch_size=self.batch_size,
                                                     layer_pooler=self.layer_pooler)
        self._memo = {"embed": (digest, emb, texts), "layers": (digest, stack, texts)}

    def embed(self, sentences: Sequence[str]) -> np.ndarray:
        """Final vectors; rows of the previous list embedded here are reused (also without a disk cache)."""
        from .cache import texts_digest

        texts = list(sentences)
        digest = texts_digest(texts)
        hit = self._remembered("embed", digest)
        if hit is not None:
            return hit
        prev = self._memo.get("embed")
        known = {t: i for i, t in enumerate(prev[2])} if prev is not None else {}
        new = list(dict.fromkeys(t for t in texts if t not in known))
        if not known or not texts:
            out = self.encoder.encode(texts, batch_size=self.batch_size)
        else:
            fresh = self.encoder.encode(new, batch_size=self.batch_size) if new else None
            where = {t: i for i, t in enumerate(new)}
            out = np.empty((len(texts), prev[1].shape[1]), dtype=prev[1].dtype)
            for r, t in enumerate(texts):
                out[r] = prev[1][known[t]] if t in known else fresh[where[t]]
        self._memo["embed"] = (digest, out, texts)
        return out

    def embed_layers(self, sentences: Sequence[str]) -> np.ndarray | None:
        from .cache import texts_digest

        texts = list(sentences)
        digest = texts_digest(texts)
        hit = self._remembered("layers", digest)
        if hit is None:
            hit = self.encoder.encode_layers(texts, batch_size=self.batch_size, pooler=self.layer_pooler)
            self._memo["layers"] = (digest, hit, texts)
        return hit


class PrecomputedSource:
    """Embeddings computed elsewhere: row ``i`` of ``embeddings`` is the vector of ``sentences[i]``."""

    layer_pooler = None

    def __init__(self, embeddings: np.ndarray, sentences: Sequence[str], *, name: str,
                 embeddings_path: str | None = None, sentences_path: str | None = None) -> None:
        self.embeddings = embeddings
        self.sentences = list(sentences)
        self.name = name
        self.paths = (embeddings_path, sentences_path)
        self._row: dict[str, int] = {}
        for i, s in enumerate(self.sentences):
            self._row.setdefault(s, i)

    def describe(self) -> dict[str, Any]:
        return {"model": self.name, "pooler": None, "dim": int(self.embeddings.shape[1]),
                "embeddings": self.paths[0], "sentences": self.paths[1]}

    def embed(self, sentences: Sequence[str]) -> np.ndarray:
        missing = [s for s in sentences if s not in self._row]
        if missing:
            where = self.paths[1] or "the sentence list"
            raise InputError(f"{where} lacks {len(missing)} of the {len(sentences)} sentences the analysis needs "
                             f"(first: {missing[0][:80]!r}); encode the list written by --export-sentences")
        return self.embeddings[[self._row[s] for s in sentences]]

    def embed_layers(self, sentences: Sequence[str]) -> np.ndarray | None:
        return None


class StoreSource:
    """Embeddings from an embedding store (:mod:`simcse_analysis.store`), memory-mapped: a sentence's row
    is found by its key, so only the rows an analysis needs are read."""

    layer_pooler = None

    def __init__(self, store: Any, name: str | None = None) -> None:
        self.store = store
        self.name = name or store.manifest.model

    def describe(self) -> dict[str, Any]:
        m = self.store.manifest
        return {"model": self.name, "pooler": m.pooler, "dim": m.dim, "embeddings": str(self.store.root),
                "sentences": None, "fingerprint": m.fingerprint, "max_length": m.max_length, "dtype": m.dtype,
                "store_precision": m.precision, "store_rows": m.n}

    def embed(self, sentences: Sequence[str]) -> np.ndarray:
        return self.store[self.store.rows_of(list(sentences))]

    def embed_layers(self, sentences: Sequence[str]) -> np.ndarray | None:
        return None


def load_precomputed(embeddings_path: str | os.PathLike[str], sentences_path: str | os.PathLike[str] | None,
                     name: str | None = None, pooler: str | None = None, verify: bool = True
                     ) -> PrecomputedSource | StoreSource:
    """Read ``X.npy`` (``(N, d)`` float) and its sentence list (UTF-8, one sentence per line, N lines), or
    open an embedding store directory (its rows are found by sentence, so no list is needed; ``pooler``,
    when given, must be the store's; ``verify``: check its shards against their checksums)."""
    from .metrics._checks import as_points, first_nonfinite_row, row_norms
    from .store import is_store, open_store

    if is_store(embeddings_path):
        return StoreSource(open_store(embeddings_path, pooler=pooler, verify=verify), name=name)
    if sentences_path is None:
        raise InputError(f"--embeddings {embeddings_path} needs --sentences S.txt (row i of the matrix embeds "
                         "line i); only an embedding store carries its own sentence keys")
    ep, sp = Path(embeddings_path), Path(sentences_path)
    try:
        arr = np.load(ep, allow_pickle=False)
    except FileNotFoundError:
        raise InputError(f"--embeddings {ep}: no such file") from None
    except (OSError, ValueError) as e:
        raise InputError(f"--embeddings {ep}: not a readable .npy array ({str(e).splitlines()[0]})") from e
    try:
        text = sp.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise InputError(f"--sentences {sp}: no such file") from None
    except (OSError, UnicodeDecodeError) as e:
        raise InputError(f"--sentences {sp}: cannot read as UTF-8 text ({e})") from e
    sentences = split_lines(text)  # row i of the matrix embeds line i, blank lines included
    if arr.ndim != 2:
        raise InputError(f"--embeddings {ep}: expected a 2-D array (sentences x dimensions), got shape {arr.shape}")
    if arr.shape[0] != len(sentences):
        raise InputError(f"--embeddings {ep} has {arr.shape[0]} rows but --sentences {sp} has {len(sentences)} "
                         "lines: row i must be the embedding of line i")
    bad = first_nonfinite_row(arr) if arr.dtype.kind == "f" else None
    if bad is not None:  # name the sentence, not "x: row i"
        raise InputError(f"--embeddings {ep} row {bad} holds NaN or inf (the embedding of line {bad + 1} of --sentences "
                         f"{sp}: {sentences[bad][:60]!r}): NaN in the --embeddings file; re-encode that sentence or "
                         "remove it from both files")
    arr = as_points(arr, f"--embeddings {ep}", min_rows=2)
    zero = np.flatnonzero(row_norms(arr) == 0.0)
    if zero.size:  # no direction, so no cosine: every analysis would fail on it or silently skew
        i = int(zero[0])
        raise InputError(f"--embeddings {ep} row {i} is the zero vector (the embedding of line {i + 1} of "
                         f"--sentences {sp}: {sentences[i][:60]!r}; {zero.size} zero row(s) in all): re-encode "
                         "that sentence or remove it from both files")
    return PrecomputedSource(arr, sentences, name=name or ep.stem, embeddings_path=str(ep), sentences_path=str(sp))


# ----------------------------------------------------------------------------------------- results
@dataclass
class AlignUniformResult:
    model: dict[str, Any]
    alignment: float
    uniformity: float
    uniformity_stderr: float | None
    n_positive_pairs: int
    n_sentences: int
    #: se of the alignment (``s/√n`` over its positive pairs); the uniformity's is ``uniformity_stderr``
    #: (Hoeffding/delta method for the exact value, Monte-Carlo for the sampled one).
    alignment_stderr: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> AlignUniformResult:
        return cls(**{k: v for k, v in d.items() if k in cls.__dataclass_fields__})


@dataclass
class SpectrumResult:
    model: dict[str, Any]
    uncentered: Spectrum
    centered: Spectrum

    def to_dict(self) -> dict[str, Any]:
        return {"model": self.model, "uncentered": self.uncentered.to_dict(), "centered": self.centered.to_dict()}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> SpectrumResult:
        return cls(d["model"], Spectrum.from_dict(d["uncentered"]), Spectrum.from_dict(d["centered"]))


@dataclass
class AnisotropyResult:
    model: dict[str, Any]
    summary: AnisotropySummary
    score_bins: list[CosineBin]
    layer_pooler: str | None = None
    layers: list[AnisotropySummary] | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"model": self.model, "summary": self.summary.to_dict(),
                "score_bins": [b.to_dict() for b in self.score_bins], "layer_pooler": self.layer_pooler,
                "layers": None if self.layers is None else [s.to_dict() for s in self.layers]}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> AnisotropyResult:
        layers = d.get("layers")
        return cls(d["model"], AnisotropySummary.from_dict(d["summary"]),
                   [CosineBin.from_dict(b) for b in d["score_bins"]], d.get("layer_pooler"),
                   None if layers is None else [AnisotropySummary.from_dict(s) for s in layers])


_RESULT_TYPES = {"align_uniform": AlignUniformResult, "spectrum": SpectrumResult, "anisotropy": AnisotropyResult}


@dataclass
class AnalysisReport:
    """One analysis of one or more models under one protocol: what ``--json`` writes."""

    analysis: str
    protocol: str
    settings: AnalysisSettings
    data: dict[str, Any]
    results: list[Any] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"schema": SCHEMA, "version": SCHEMA_VERSION, "analysis": self.analysis, "protocol": self.protocol,
                "settings": self.settings.to_dict(self.analysis), "data": self.data,
                "results": [r.to_dict() for r in self.results]}

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, allow_nan=False) + "\n"

    def __repr__(self) -> str:
        """One line: the analysis, its checkpoints and the protocol's size (``to_dict()`` holds everything)."""
        models = [r.model.get("model") for r in self.results]
        return (f"AnalysisReport({self.analysis!r}, models={models!r}, "
                f"{self.data.get('n_sentences', '?')} sentences)")

    @classmethod
    def from_dict(cls, d: dict[str, Any], source: str = "document") -> AnalysisReport:
        validate_document(d, ANALYSIS_KIND, source)  # schema, version, fields
        kind = _RESULT_TYPES[d["analysis"]]
        return cls(d["analysis"], d["protocol"], AnalysisSettings.from_dict(d["settings"]), d["data"],
                   [kind.from_dict(r) for r in d["results"]])

    def save(self, path: str | os.PathLike[str]) -> Path:
        from .io_utils import write_output_text

        return write_output_text(path, self.to_json())

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> AnalysisReport:
        """Read an ``align-uniform|spectrum|anisotropy --json`` document (validated:
        :data:`~simcse_analysis.records.ANALYSIS_KIND`)."""
        return cls.from_dict(read_document(path, ANALYSIS_KIND), str(path))


# ----------------------------------------------------------------------------------------- runners
def _positives(data: ProtocolData, settings: AnalysisSettings) -> np.ndarray:
    pos = data.pairs[data.positive]
    if len(pos) == 0:
        raise InputError(f"no STS-B {'+'.join(data.splits)} pair has gold score > {settings.positive_threshold:g} "
                         f"(scores range {data.scores.min():g}..{data.scores.max():g}): lower --threshold")
    return pos


def metrics_device(source: Any, device: Any = None) -> Any:
    """Where the heavy metric work runs: ``device`` if given, else the source's (an encoder's device);
    ``None`` (the NumPy path) for the CPU."""
    d = device if device is not None else getattr(source, "device", None)
    return None if d is None or str(d) == "cpu" else d


def run_align_uniform(source: Any, data: ProtocolData, settings: AnalysisSettings, device: Any = None
                      ) -> AlignUniformResult:
    """``ℓ_align`` over the positive pairs and ``ℓ_uniform`` over the distinct sentences."""
    pos = _positives(data, settings)
    emb = source.embed(data.sentences)
    dev = metrics_device(source, device)
    a = alignment(emb[pos[:, 0]], emb[pos[:, 1]], alpha=settings.alpha)
    a_se = mean_interval(alignment_terms(emb[pos[:, 0]], emb[pos[:, 1]], settings.alpha)).stderr
    if settings.uniformity_pairs is None:
        if dev is None:
            exact = uniformity_with_rows(emb, t=settings.t)  # the U-statistic's standard error in the same pass
            u, se = exact.value, (exact.stderr if math.isfinite(exact.stderr) else None)
        else:
            u, se = uniformity(emb, t=settings.t, device=dev), None
    else:
        est = uniformity_sampled(emb, t=settings.t, n_pairs=settings.uniformity_pairs, seed=settings.seed,
                                 device=dev)
        u, se = est.value, est.stderr
    return AlignUniformResult(model=source.describe(), alignment=a, uniformity=u, uniformity_stderr=se,
                              n_positive_pairs=len(pos), n_sentences=len(data.sentences), alignment_stderr=a_se)


def run_spectrum(source: Any, data: ProtocolData, settings: AnalysisSettings, device: Any = None
                 ) -> SpectrumResult:
    """Uncentred and centred singular-value spectra of the distinct-sentence embedding matrix."""
    emb = source.embed(data.sentences)
    dev = metrics_device(source, device)
    return SpectrumResult(model=source.describe(),
                          uncentered=spectrum(emb, center=False, top_k=settings.top_k, device=dev),
                          centered=spectrum(emb, center=True, top_k=settings.top_k, device=dev))


def run_anisotropy(source: Any, data: ProtocolData, settings: AnalysisSettings, device: Any = None
                   ) -> AnisotropyResult:
    """Anisotropy summaries of the final embeddings (and of every layer), plus cosine by gold-score bin."""
    if settings.layers and hasattr(source, "prefetch"):
        source.prefetch(data.sentences, layers=True)  # final and per-layer vectors from one forward pass
    emb = source.embed(data.sentences)
    dev = metrics_device(source, device)
    summary = anisotropy_summary(emb, n_pairs=settings.cosine_pairs, seed=settings.seed, device=dev)
    bins = cosine_by_score_bin(emb[data.pairs[:, 0]], emb[data.pairs[:, 1]], data.scores, settings.score_edges)
    layers, layer_pooler = None, None
    if settings.layers:
        stack = source.embed_layers(data.sentences)
        if stack is not None:
            layer_pooler = source.layer_pooler
            layers = [anisotropy_summary(h, n_pairs=settings.cosine_pairs, seed=settings.seed, device=dev)
                      for h in stack]
    return AnisotropyResult(model=source.describe(), summary=summary, score_bins=bins,
                            layer_pooler=layer_pooler, layers=layers)


RUNNERS = {"align_uniform": run_align_uniform, "spectrum": run_spectrum, "anisotropy": run_anisotropy}


_STAGE_NAMES = {"align_uniform": "alignment and uniformity", "spectrum": "spectrum", "anisotropy": "anisotropy"}


def analyze(analysis: str, sources: Iterable[Any], data: ProtocolData, settings: AnalysisSettings,
            device: Any = None, *, n_sources: int | None = None) -> AnalysisReport:
    """Run one analysis for every source under one protocol; the report records settings and data.

    ``sources`` may be a generator that loads each model only when its turn comes (``n_sources``: how
    many it yields, for the progress job's plan and its ``[i/n model]`` labels). ``device``: where the
    heavy metric work runs (default: each encoder's device; precomputed vectors: the CPU).
    """
    from . import progress

    if analysis not in RUNNERS:
        raise InputError(f"unknown analysis {analysis!r}: choose {', '.join(ANALYSES)}")
    if n_sources is None and isinstance(sources, Sequence):
        n_sources = len(sources)
    n = len(data.sentences)
    with progress.job(analysis.replace("_", "-")):  # the command's job, else its own
        progress.plan((n_sources or 0) * n)
        what = _STAGE_NAMES[analysis] + (" (every layer)" if analysis == "anisotropy" and settings.layers else "")
        results = []
        for i, s in enumerate(sources, start=1):
            d = s.describe()
            label = f"{d.get('model')}@{d['pooler']}" if d.get("pooler") else str(d.get("model"))
            with progress.section(f"[{i}/{n_sources or '?'} {label}]"), progress.stage(
                    f"{what}: {progress.sentences_label('STS-B sentences', n)}", n if n_sources else None):
                results.append(RUNNERS[analysis](s, data, settings, device=device))
    return AnalysisReport(analysis, describe_protocol(settings, data, analysis), settings, data.summary(), results)


def merge_reports(reports: Sequence[AnalysisReport]) -> AnalysisReport:
    """One report holding the results of several runs of the same analysis under the same protocol.

    E.g. one checkpoint analysed with two poolers in two invocations; raises InputError if the analysis,
    settings or data differ, since the figures would then not be comparable.
    """
    if not reports:
        raise InputError("no analysis reports to merge")
    first = reports[0]
    for r in reports[1:]:
        if (r.analysis, r.settings.to_dict(r.analysis), r.data) != (
                first.analysis, first.settings.to_dict(first.analysis), first.data):
            raise InputError(f"cannot merge {r.analysis} results computed under different settings or data "
                             f"({r.protocol!r} vs {first.protocol!r})")
    return AnalysisReport(first.analysis, first.protocol, first.settings, first.data,
                          [res for r in reports for res in r.results])
