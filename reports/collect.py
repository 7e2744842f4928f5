"""Gather everything the comparison report shows, for a list of checkpoints, into one JSON record.

The record is the report's only input (:mod:`reports.html` renders it; ``--from-json`` reloads it), so
a page can be rebuilt, or several records merged, without re-encoding. Per checkpoint it holds:

- ``sts_test``: :func:`~simcse_analysis.sts_eval.evaluate_sts` on the 7 STS test sets (Spearman ×100 of
  cosine, SimCSE's "all" aggregation) and ``sts_dev``: STS-B dev;
- ``align_uniform`` / ``spectrum`` / ``anisotropy``: the three analyses of :mod:`simcse_analysis.analysis`
  under one protocol (default: all STS-B sentences, pairs with gold > 4);
- ``dev_align_uniform``: ℓ_align / ℓ_uniform under the trainer's protocol (STS-B dev, pairs with gold > 4,
  exact uniformity), the protocol of ``trajectory.jsonl``, so checkpoints and training paths share a plane;
- ``random_pairs``: a histogram of the cosine of the anisotropy summary's random pairs (same seed, same
  pairs, so its mean is the summary's random-pair cosine);
- ``umap``: 2-D UMAP coordinates of a seeded sentence subsample (the same sentences for every checkpoint),
  fitted jointly (:func:`reports.umap_map.umap_maps`) so the panels compare.

Embeddings come from the encoder's on-disk cache: every text list here is one the STS evaluation or the
analyses already encode, so a report over evaluated checkpoints encodes nothing new.

Record layout (``schema = "simcse-analysis/report"``, ``version = 2``; typed in :mod:`simcse_analysis.records`,
which also reads version 1)::

    {"schema", "version", "title": str | null,
     "provenance": [{"created" (UTC ISO 8601), "command", "packages": {name: version},
                     "machine": {"platform", "cpu", "cores", "accelerator"?}, "data_dir"}],
     "settings": {"analysis": AnalysisSettings.to_dict(), "umap": UMAPSettings.to_dict() | null,
                  "random_pair_bins": int, "layer_sentences": int | null},
     "data": {"protocol": str, "protocol_data": {...}, "files": [{"path", "bytes", "sha256"}]},
     "models": [{"label", "model", "path", "pooler", "dim", "fingerprint", "baseline": str | null,
                 "checkpoint_metadata": {...}, "encoder": {...}, "sts_test", "sts_dev", "dev_align_uniform",
                 "align_uniform", "spectrum", "anisotropy" (its "layers" computed on ``layer_sentences`` sampled
                 sentences; a layer whose summary is undefined is null; "isotropic_reference": the summaries of
                 an isotropic Gaussian of the same shape, reports.reading), "layers_note": str | null,
                 "random_pairs": {"edges", "counts", "mean",
                 "n_pairs", "seed"}, "umap": {"x", "y"} | null, "summary": ModelSummary.to_dict()}],
     "umap": {"colour" ("corpus" | "split"; "bin" in older records), "fit" ("aligned"; absent: independent
              fits, older records), "sentences", "categories", "category_order"} | null,
     "trajectories": [{"label", "source", "model": index into models | null, "points": [{"step",
                       "alignment", "uniformity", "stsb_spearman", ...}]}]}
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import itertools
import json
import math
import os
import shlex
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from simcse_analysis import progress
from simcse_analysis.analysis import AnalysisSettings, describe_protocol, load_protocol_data
from simcse_analysis.documents import validate_document
from simcse_analysis.errors import InputError
from simcse_analysis.io_utils import finite_json as _finite
from simcse_analysis.pooling import split_pooler
from simcse_analysis.records import (
    REPORT_SCHEMA,
    REPORT_VERSION,
    TRAJECTORY_POINT_KIND,
    ModelSummary,
    read_report,
    validate_report,
)

from .umap_map import UMAPSettings

SCHEMA = REPORT_SCHEMA
SCHEMA_VERSION = REPORT_VERSION
TRAJECTORY_FILE = "trajectory.jsonl"
#: The Spearman key of a trajectory entry (``trainers.evaluation``), and an accepted alias.
TRAJECTORY_SCORE_KEYS = ("stsb_spearman", "stsb_dev")
#: Baseline label of the first–last layer average pooler (SimCSE Table 1's "first-last avg.").
FIRST_LAST_BASELINE = "first–last average"
PACKAGES = ("simcse-analysis", "torch", "transformers", "sentence-transformers", "numpy", "scipy",
            "scikit-learn", "umap-learn", "numba", "plotly")

Log = Callable[[str], None]


@dataclass
class ReportSettings:
    """Protocol of the analyses (also the STS data variant), UMAP settings (``None``: no map)."""

    analysis: AnalysisSettings = field(default_factory=AnalysisSettings)
    umap: UMAPSettings | None = field(default_factory=UMAPSettings)
    random_pair_bins: int = 100
    layer_sentences: int | None = 2000  # per-layer anisotropy on a seeded sample of this many (None: all)

    def __post_init__(self) -> None:
        if self.layer_sentences is not None and self.layer_sentences < 2:
            raise InputError(f"--layer-sentences must be at least 2 (or 0 for all), got {self.layer_sentences}")

    def to_dict(self) -> dict[str, Any]:
        return {"analysis": self.analysis.to_dict(), "umap": None if self.umap is None else self.umap.to_dict(),
                "random_pair_bins": self.random_pair_bins, "layer_sentences": self.layer_sentences}


# ----------------------------------------------------------------------------------------- inputs
@dataclass
class ModelSpec:
    """One ``MODEL`` argument resolved: what to load, with which pooler, and the run's trajectory, if any."""

    name: str
    load: str
    trajectory: Path | None = None
    pooler: str | None = None


def resolve_model_arg(arg: str) -> ModelSpec:
    """A checkpoint name/dir (optionally ``@pooler``), or a training run directory (→ its ``best/``, else
    ``last/``, with its trajectory).

    A checkpoint directory written by the trainer (``simcse_analysis.json`` says ``checkpoint: best|last``)
    picks up the ``trajectory.jsonl`` of its run directory.
    """
    from simcse_analysis.checkpoint import read_metadata, run_checkpoint_dir

    name, pooler = split_pooler(arg)
    p = Path(name).expanduser()
    checkpoint = run_checkpoint_dir(p)  # the same resolution every command applies
    if checkpoint is not None:
        traj = p / TRAJECTORY_FILE
        return ModelSpec(name, str(checkpoint), traj if traj.is_file() else None, pooler)
    if p.is_dir() and (p / "config.json").is_file():
        meta = read_metadata(p)
        traj = p.resolve().parent / TRAJECTORY_FILE
        if meta.get("checkpoint") in ("best", "last") and traj.is_file():
            return ModelSpec(name, name, traj, pooler)
    return ModelSpec(name, name, None, pooler)


def trajectory_file(path: str | os.PathLike[str]) -> Path:
    """``path`` itself (a ``.jsonl`` file) or the ``trajectory.jsonl`` of a run directory."""
    p = Path(path).expanduser()
    if p.is_dir():
        p = p / TRAJECTORY_FILE
    if not p.is_file():
        raise InputError(f"--trajectory {path}: no {TRAJECTORY_FILE} there; pass a training run directory or "
                         "its trajectory.jsonl")
    return p


def read_trajectory(path: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """Entries of a ``trajectory.jsonl`` (one JSON object per evaluation), in file order.

    Each needs ``step``, ``alignment``, ``uniformity`` and ``stsb_spearman`` (or ``stsb_dev``), stored as
    ``stsb_spearman``; ``null`` values are kept (not drawn). A torn last line (a run killed mid-write) is
    ignored; any other malformed line raises :class:`InputError` naming the file and line.
    """
    p = Path(path)
    try:
        lines = p.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as e:
        raise InputError(f"cannot read trajectory {p}: {e}") from e
    out: list[dict[str, Any]] = []
    for i, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            entry = json.loads(line)
        except (json.JSONDecodeError, RecursionError) as e:
            if i == len(lines):
                break  # torn last line
            raise InputError(f"trajectory {p} line {i} is not JSON ({getattr(e, 'msg', 'nested too deep')}); fix "
                             "or truncate the file") from e
        if not isinstance(entry, dict):
            raise InputError(f"trajectory {p} line {i}: expected a JSON object")
        score_key = next((k for k in TRAJECTORY_SCORE_KEYS if k in entry), None)
        missing = [k for k in ("step", "alignment", "uniformity") if k not in entry]
        if missing or score_key is None:
            need = missing + ([] if score_key else ["stsb_spearman"])
            raise InputError(f"trajectory {p} line {i} lacks {', '.join(need)}: not a simcse-analyze trajectory")
        point = {k: v for k, v in entry.items() if k not in TRAJECTORY_SCORE_KEYS}
        point["stsb_spearman"] = entry[score_key]
        validate_document(point, TRAJECTORY_POINT_KIND, f"trajectory {p} line {i}")  # types, finite numbers
        out.append(point)
    return out


def _trajectory_label(path: Path) -> str:
    return path.parent.name or str(path)


# ----------------------------------------------------------------------------------------- helpers
def package_versions(names: Iterable[str] = PACKAGES) -> dict[str, str]:
    """Installed versions of ``names`` (absent packages are left out)."""
    from importlib.metadata import PackageNotFoundError, version

    out = {"python": sys.version.split()[0]}
    for n in names:
        try:
            out[n] = version(n)
        except PackageNotFoundError:
            continue
    return out


def machine_info() -> dict[str, Any]:
    """The machine a page is built on: operating system, CPU, core count, and the accelerator torch sees
    (only when torch is already loaded: this never imports it)."""
    import platform

    info: dict[str, Any] = {"platform": platform.platform(), "cpu": platform.processor() or platform.machine(),
                            "cores": os.cpu_count()}
    torch = sys.modules.get("torch")
    if torch is not None:
        try:
            cuda = bool(torch.cuda.is_available())
            info["accelerator"] = torch.cuda.get_device_name(0) if cuda else "none (CPU)"
        except Exception:  # noqa: BLE001  (a broken driver must not stop a report)
            info["accelerator"] = "unknown"
    return info


def provenance_entry(command: str | None = None, data_dir: str | os.PathLike[str] | None = None) -> dict[str, Any]:
    """One entry of a record's ``provenance``: when (UTC), by which command line, with which package
    versions, on which machine, from which data directory."""
    return {"created": _now(), "command": command or _command_line(), "packages": package_versions(),
            "machine": machine_info(), "data_dir": None if data_dir is None else str(data_dir)}


def file_entries(paths: Iterable[str | os.PathLike[str]], root: Path) -> list[dict[str, Any]]:
    """``[{"path" (relative to root when inside it), "bytes", "sha256"}]`` of ``paths``, each once, sorted."""
    return [_file_entry(str(f), root) for f in sorted(dict.fromkeys(str(p) for p in paths))]


def _file_entry(path: str, root: Path) -> dict[str, Any]:
    p = Path(path)
    h = hashlib.sha256(p.read_bytes()).hexdigest()
    try:
        rel = str(p.resolve().relative_to(root.resolve()))
    except ValueError:
        rel = str(p)
    return {"path": rel, "bytes": p.stat().st_size, "sha256": h}


def model_label(name: str, pooler: str | None) -> str:
    """``name [pooler]``; a directory shows its last two path components."""
    p = Path(name)
    short = "/".join(p.parts[-2:]) if (len(p.parts) > 1 and p.exists()) else name
    return f"{short} [{pooler}]" if pooler else short


def baseline_of(metadata: dict[str, Any], pooler: str | None) -> str | None:
    """The baseline a checkpoint stands for: its metadata's ``baseline``, or the first–last average pooler."""
    b = metadata.get("baseline")
    if b:
        return str(b)
    if pooler == "avg_first_last":
        return FIRST_LAST_BASELINE
    return None


def display_label(model: dict[str, Any]) -> str:
    """The label figures show: ``label``, plus ``(X baseline)`` for baselines."""
    b = model.get("baseline")
    return f"{model['label']} ({b} baseline)" if b else model["label"]


def bin_labels(edges: Sequence[float]) -> list[str]:
    """Labels of the gold-rating bins ``[e_k, e_k+1)``, as :func:`cosine_by_score_bin` names them."""
    return [f"{lo:g}-{hi:g}" for lo, hi in itertools.pairwise(edges)]


def bin_of(scores: np.ndarray, edges: Sequence[float]) -> np.ndarray:
    """Bin index of each score: ``e_k ≤ s < e_k+1``, the last bin closed; outside → nearest end bin."""
    inner = np.asarray(edges[1:-1], dtype=np.float64)
    return np.searchsorted(inner, np.asarray(scores, dtype=np.float64), side="right")


def random_pair_histogram(x: np.ndarray, n_pairs: int, seed: int, bins: int) -> dict[str, Any]:
    """Histogram of ``cos(x_i, x_j)`` over ``n_pairs`` random pairs ``i ≠ j``, ``bins`` equal bins spanning
    the occupied range (rounded outward to multiples of 0.01, within [−1, 1]).

    Pairs are drawn exactly as :func:`simcse_analysis.metrics.anisotropy.random_pair_cosine` draws them
    (``i`` uniform, ``j`` uniform over the others, from ``default_rng(seed)``), so ``mean`` equals the
    anisotropy summary's random-pair cosine.
    """
    from simcse_analysis.metrics.anisotropy import pair_cosines

    n = x.shape[0]
    rng = np.random.default_rng(seed)
    i = rng.integers(0, n, size=n_pairs)
    j = rng.integers(0, n - 1, size=n_pairs)
    j += j >= i
    cos = np.clip(pair_cosines(x[i], x[j]), -1.0, 1.0)
    # bins over the occupied range (outward to the 0.01 grid), so a narrow cone still gets resolved
    lo, hi = math.floor(cos.min() * 100) / 100, math.ceil(cos.max() * 100) / 100
    lo, hi = max(-1.0, lo), min(1.0, hi)
    if hi - lo < 0.01:  # all pairs at one value: a 0.01-wide window inside [−1, 1]
        lo, hi = (hi - 0.01, hi) if hi >= 1.0 else (lo, lo + 0.01)
    edges = np.linspace(lo, hi, bins + 1)
    counts, _ = np.histogram(cos, bins=edges)
    return {"edges": [round(float(e), 6) for e in edges], "counts": counts.astype(int).tolist(),
            "mean": float(cos.mean()), "n_pairs": int(n_pairs), "seed": int(seed)}


#: Bootstrap resamples of the STS CIs shown in the report's STS table (seed 0).
STS_RESAMPLES = 1000


def dev_align_uniform(encode: Callable[[list[str]], np.ndarray], data_dir: Any, variant: str,
                      threshold: float = 4.0) -> dict[str, Any]:
    """ℓ_align (pairs with gold > ``threshold``) and exact ℓ_uniform on STS-B dev: the trainer's protocol.

    Encodes the dev split's distinct sentences in the order STS evaluation does (a cache hit after it).
    """
    from simcse_analysis.metrics.align_uniform import alignment, uniformity
    from simcse_analysis.sts_data import load_sts
    from simcse_analysis.sts_eval import unique_pairs

    subsets = load_sts("STSBenchmark", data_dir, "dev", variant)
    texts, idx1, idx2 = unique_pairs(subsets)
    a, b = np.concatenate(idx1), np.concatenate(idx2)
    gold = np.concatenate([s.scores for s in subsets])
    emb = np.asarray(encode(texts))
    pos = gold > threshold
    return {"alignment": alignment(emb[a[pos]], emb[b[pos]]) if pos.any() else None,
            "uniformity": uniformity(emb), "n_positive_pairs": int(pos.sum()), "n_sentences": len(texts),
            "protocol": f"STS-B dev ({subsets[0].variant}): pairs with gold > {threshold:g}, exact uniformity"}


@dataclass
class _UmapSentences:
    """The sentences a map shows, their categories, and where to find their embeddings."""

    sentences: list[str]
    categories: list[str]
    order: list[str]
    # (texts to encode, rows of that encoding to take) per source text list, concatenated in order
    sources: list[tuple[list[str], np.ndarray]]


def _umap_sentences(settings: UMAPSettings, data: Any, data_dir: Any, variant: str,
                    edges: Sequence[float]) -> _UmapSentences:
    """Seeded subsample: STS test sentences coloured by task (``corpus``), or STS-B protocol sentences by the
    split they first appear in (``split``)."""
    from .umap_map import subsample

    if settings.colour == "split":
        from simcse_analysis.sts_data import load_sts

        split_of: dict[str, str] = {}
        for split in data.splits:
            for sub in load_sts(data.task, data_dir, split=split, variant=variant):
                for sentence in (*sub.sentences1, *sub.sentences2):
                    split_of.setdefault(sentence, split)
        rows = subsample(len(data.sentences), settings.n_sentences, settings.seed)
        return _UmapSentences([data.sentences[r] for r in rows],
                              [split_of.get(data.sentences[r], "?") for r in rows], list(data.splits),
                              [(list(data.sentences), rows)])
    from simcse_analysis.sts_data import TASKS, load_sts
    from simcse_analysis.sts_eval import unique_pairs

    seen: set[str] = set()
    flat: list[tuple[int, int, str]] = []  # (task index, row in the task's text list, task)
    task_texts: list[list[str]] = []
    for t, task in enumerate(TASKS):
        texts = unique_pairs(load_sts(task, data_dir, "test", variant))[0]
        task_texts.append(texts)
        for r, s in enumerate(texts):
            if s not in seen:
                seen.add(s)
                flat.append((t, r, task))
    chosen = [flat[i] for i in subsample(len(flat), settings.n_sentences, settings.seed)]
    sources = [(task_texts[t], np.asarray([r for tt, r, _ in chosen if tt == t], dtype=np.int64))
               for t in range(len(TASKS))]
    ordered = sorted(chosen, key=lambda c: (c[0], c[1]))  # the order the sources concatenate in
    return _UmapSentences([task_texts[t][r] for t, r, _ in ordered], [task for _, _, task in ordered], list(TASKS),
                          [s for s in sources if len(s[1])])


# ----------------------------------------------------------------------------------------- collect
def collect_report(models: Sequence[str], settings: ReportSettings | None = None, *,
                   data_dir: str | os.PathLike[str] | None = None, encoder_kwargs: dict[str, Any] | None = None,
                   batch_size: int = 64, trajectories: Sequence[str | os.PathLike[str]] = (),
                   command: str | None = None, title: str | None = None, log: Log | None = None,
                   timings: dict[str, float] | None = None) -> dict[str, Any]:
    """Evaluate and analyse every checkpoint in ``models`` → the report record (see module docstring).

    Every input (data files, trajectories) is validated before the first model loads; models are loaded
    one at a time. ``timings`` (if given) receives wall-clock seconds per stage, summed over models.
    Progress (each checkpoint's stages, the job's plan) goes to the open progress job
    (:mod:`simcse_analysis.progress`); ``log`` is kept for callers that pass it and receives nothing.
    """
    from simcse_analysis.datadir import resolve_data_dir
    from simcse_analysis.sts_data import TASKS, load_sts

    settings = settings or ReportSettings()
    if not models:
        raise InputError("no checkpoints to report on: give MODEL names (or --from-json FILE)")
    a = settings.analysis
    root = resolve_data_dir(data_dir)
    clock: dict[str, float] = timings if timings is not None else {}

    def tick(stage: str, t0: float) -> float:
        now = time.perf_counter()
        clock[stage] = clock.get(stage, 0.0) + now - t0
        return now

    t0 = time.perf_counter()
    data = load_protocol_data(a, root)
    test_sets = {task: load_sts(task, root, "test", a.variant) for task in TASKS}
    sts_files = [f for subsets in test_sets.values() for s in subsets for f in s.files]
    dev_set = load_sts("STSBenchmark", root, "dev", a.variant)
    dev_files = [f for s in dev_set for f in s.files]
    specs = [resolve_model_arg(m) for m in models]
    from simcse_analysis.encoder import check_checkpoint

    for spec in specs:  # a bad checkpoint fails before the first one is evaluated
        check_checkpoint(spec.load, trust_remote_code=bool((encoder_kwargs or {}).get("trust_remote_code")))
    traj_files: list[tuple[Path, int | None]] = []
    for k, spec in enumerate(specs):
        if spec.trajectory is not None:
            traj_files.append((spec.trajectory.resolve(), k))
    for t in trajectories:
        f = trajectory_file(t).resolve()
        owner = next((k for k, s in enumerate(specs) if s.trajectory and s.trajectory.resolve() == f), None)
        traj_files.append((f, owner))
    traj_records, seen_files = [], set()
    for f, owner in traj_files:
        if f in seen_files:
            continue
        seen_files.add(f)
        traj_records.append({"label": _trajectory_label(f), "source": str(f), "model": owner,
                             "points": read_trajectory(f)})
    umap_plan = (_umap_sentences(settings.umap, data, root, a.variant, a.score_edges)
                 if settings.umap is not None else None)
    umap_inputs: list[np.ndarray] = []
    files = sorted(dict.fromkeys([*data.files, *sts_files, *dev_files]))
    plan = _progress_plan(test_sets, dev_set, data, umap_plan, layer_sample(data, settings.layer_sentences, a.seed)
                          if a.layers else [])
    progress.plan(len(specs) * sum(plan.values()))
    t0 = tick("inputs", t0)

    from simcse_analysis.analysis import EncoderSource, run_align_uniform, run_spectrum
    from simcse_analysis.checkpoint import read_metadata
    from simcse_analysis.encoder import later_poolers, load_encoder
    from simcse_analysis.sts_eval import evaluate_sts

    entries: list[dict[str, Any]] = []
    # one forward pass for several poolers of one checkpoint: the first fills the cache for the later ones
    siblings = later_poolers([(s.load, s.pooler or (encoder_kwargs or {}).get("pooler")) for s in specs])
    result_cache, cache_label = None, None  # where the joint UMAP fit is cached (the first checkpoint's cache)
    for spec, also in progress.each(list(zip(specs, siblings)),
                                    lambda sa: sa[0].name + (f"@{sa[0].pooler}" if sa[0].pooler else "")):
        t0 = time.perf_counter()
        kwargs = dict(encoder_kwargs or {})
        kwargs["also_pool"] = also
        if spec.pooler:
            kwargs["pooler"] = spec.pooler
        with progress.stage("loading"):
            enc = load_encoder(spec.load, **kwargs)
        meta = read_metadata(enc.path) if enc.path is not None else {}
        t0 = tick("load", t0)
        with progress.stage("STS test", plan["test"]), progress.covered():
            test = evaluate_sts(enc, None, root, "test", a.variant, "all", batch_size, model=spec.name,
                                resamples=STS_RESAMPLES)
        encode = lambda texts, e=enc: e.encode(texts, batch_size=batch_size)
        with progress.stage("STS-B dev", plan["dev"]), progress.covered():
            dev = evaluate_sts(enc, "STSBenchmark", root, "dev", a.variant, "all", batch_size, model=spec.name,
                               resamples=STS_RESAMPLES)
            dev_au = dev_align_uniform(encode, root, a.variant, a.positive_threshold)
        t0 = tick("sts", t0)
        source = EncoderSource(enc, batch_size=batch_size)
        if a.layers:  # the per-layer sample's final and per-layer vectors from one forward pass
            with progress.stage(progress.sentences_label("every layer of a sample", plan["layers"]),
                                plan["layers"]):
                source.prefetch(layer_sample(data, settings.layer_sentences, a.seed), layers=True)
        with progress.stage("analyses: " + progress.sentences_label("STS-B sentences", len(data.sentences)),
                            plan["protocol"]):
            au = run_align_uniform(source, data, a)
            sp = run_spectrum(source, data, a)
            an, layers_note = anisotropy_with_layers(source, data, a, settings.layer_sentences)
            emb = source.embed(data.sentences)
            hist = random_pair_histogram(emb, a.cosine_pairs, a.seed, settings.random_pair_bins)
        t0 = tick("analyses", t0)
        if umap_plan is not None:  # the maps are fitted jointly once every checkpoint is encoded
            with progress.stage(progress.sentences_label("UMAP inputs", len(umap_plan.sentences)), plan["umap"]):
                umap_inputs.append(np.concatenate([encode(texts)[rows] for texts, rows in umap_plan.sources]))
        from .reading import reference_for

        an["isotropic_reference"] = reference_for(an.get("summary") or {})
        if result_cache is None and enc.cache is not None:
            result_cache, cache_label = enc.cache.results, enc.cache_label()
        describe = enc.describe()
        entries.append({
            "label": model_label(spec.name, enc.pooler), "model": spec.name, "path": describe.get("path"),
            "pooler": enc.pooler, "dim": enc.dim, "fingerprint": enc.fingerprint,
            "baseline": baseline_of(meta, enc.pooler), "checkpoint_metadata": _small_metadata(meta),
            "encoder": describe, "sts_test": test.to_dict(), "sts_dev": dev.to_dict(),
            "dev_align_uniform": dev_au, "align_uniform": au.to_dict(), "spectrum": sp.to_dict(),
            "anisotropy": an, "layers_note": layers_note, "random_pairs": hist, "umap": None})
        entries[-1]["summary"] = ModelSummary.of_entry(entries[-1]).to_dict()
        del enc, source, emb
    if umap_plan is not None:
        from .umap_map import panel, umap_maps_cached

        t0 = time.perf_counter()
        with progress.stage(f"UMAP of {len(umap_plan.sentences):,} sentences, {len(entries)} checkpoint(s), "
                            "fitted jointly"):
            maps = umap_maps_cached(umap_inputs, settings.umap, result_cache, cache_label)
        for entry, coords in zip(entries, maps):
            entry["umap"] = panel(coords)
        t0 = tick("umap", t0)
    _unique_labels(entries)
    record = {
        "schema": SCHEMA, "version": SCHEMA_VERSION, "title": title,
        "provenance": [provenance_entry(command, root)],
        "settings": settings.to_dict(),
        "data": {"protocol": describe_protocol(a, data, "align_uniform"), "protocol_data": data.summary(),
                 "files": file_entries(files, root)},
        "models": entries,
        "umap": None if umap_plan is None else {
            "colour": settings.umap.colour, "fit": "aligned", "sentences": umap_plan.sentences,
            "categories": umap_plan.categories, "category_order": umap_plan.order},
        "trajectories": traj_records,
    }
    tick("record", t0)
    return _finite(record)


def _progress_plan(test_sets: dict[str, Any], dev_set: Any, data: Any, umap_plan: _UmapSentences | None,
                   layer_texts: Sequence[str]) -> dict[str, int]:
    """Sentences each stage of one checkpoint encodes on a cold cache (the progress job's plan): the STS
    test tasks, STS-B dev, the protocol sentences and the UMAP sample, each counting only the sentences no
    earlier stage encoded, plus the per-layer sample (another cache namespace)."""
    from simcse_analysis.sts_eval import unique_pairs

    lists = [unique_pairs(subsets)[0] for subsets in test_sets.values()]
    lists += [unique_pairs(dev_set)[0], data.sentences]
    if umap_plan is not None:
        lists.append([texts[r] for texts, rows in umap_plan.sources for r in rows])
    new = progress.new_counts(lists)
    k = len(test_sets)
    return {"test": sum(new[:k]), "dev": new[k], "layers": len(layer_texts), "protocol": new[k + 1],
            "umap": new[k + 2] if umap_plan is not None else 0}


def layer_sample(data: Any, layer_sentences: int | None, seed: int) -> list[str]:
    """The seeded sample of protocol sentences whose every layer the report analyses (all if ``None``)."""
    from .umap_map import subsample

    return [data.sentences[r] for r in subsample(len(data.sentences), layer_sentences or len(data.sentences), seed)]


def anisotropy_with_layers(source: Any, data: Any, settings: AnalysisSettings, layer_sentences: int | None
                           ) -> tuple[dict[str, Any], str | None]:
    """The anisotropy analysis (``AnisotropyResult.to_dict()``): the final embeddings on every protocol
    sentence, and each hidden layer on a seeded sample of ``layer_sentences`` of them (``None``: all).

    Every layer costs a full summary (a d×d Gram matrix and eigendecompositions); on the sample it
    costs a fraction, and the per-layer figures are estimates of the same quantities. A layer whose
    summary is undefined (e.g. the embedding layer's [CLS] vector is the same for every sentence, so its
    IsoScore is) is ``None``, and the returned note says why.
    """
    from dataclasses import replace

    from simcse_analysis.analysis import metrics_device, run_anisotropy
    from simcse_analysis.metrics.anisotropy import anisotropy_summary

    result = run_anisotropy(source, data, replace(settings, layers=False)).to_dict()
    sample = layer_sample(data, layer_sentences, settings.seed)
    stack = source.embed_layers(sample) if settings.layers else None  # only the sampled sentences' layers
    if stack is None:
        return result, None
    layers, notes = [], []
    for i, h in enumerate(stack):
        try:
            layers.append(anisotropy_summary(h, n_pairs=settings.cosine_pairs, seed=settings.seed,
                                             device=metrics_device(source)).to_dict())
        except InputError as e:
            layers.append(None)
            notes.append(f"layer {i}: {e}")
    result.update(layer_pooler=source.layer_pooler, layers=layers, layer_sentences=len(sample))
    return result, ("per-layer figures left out for " + "; ".join(notes)) if notes else None


def _small_metadata(meta: dict[str, Any]) -> dict[str, Any]:
    """The checkpoint metadata a reader wants in the header (not the full training config)."""
    keep = ("checkpoint", "step", "epoch", "baseline", "pooler", "max_length", "objective", "source_model",
            "base_model", "model_name_or_path")
    return {k: meta[k] for k in keep if k in meta and isinstance(meta[k], (str, int, float, bool))}


def _unique_labels(models: list[dict[str, Any]]) -> None:
    seen: dict[str, int] = {}
    for m in models:
        n = seen.get(m["label"], 0) + 1
        seen[m["label"]] = n
        if n > 1:
            m["label"] = f"{m['label']} #{n}"


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def _command_line() -> str:
    argv = list(sys.argv)
    if argv and argv[0].endswith(("simcse-analyze", "__main__.py")):
        argv[0] = "simcse-analyze"
    return shlex.join(argv)


# ----------------------------------------------------------------------------------------- JSON I/O
def validate_record(record: Any, source: str = "record") -> dict[str, Any]:
    """Check the record's schema, version and fields (:data:`~simcse_analysis.records.REPORT_KIND`) and return
    it in the current layout (a version-1 record is upgraded); :class:`~simcse_analysis.records.SchemaError` /
    :class:`~simcse_analysis.records.SchemaVersionError` (both :class:`InputError`) naming ``source`` and the field."""
    return validate_report(record, source)  # type: ignore[return-value]


def load_record(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read a record written by :func:`save_record`; unreadable, foreign or malformed JSON → :class:`InputError`
    naming the file and the field."""
    return read_report(path, f"--from-json {path}")  # type: ignore[return-value]


def save_record(record: dict[str, Any], path: str | os.PathLike[str]) -> Path:
    """Write the record as JSON, atomically (parent directories are created)."""
    from simcse_analysis.io_utils import write_output_text

    return write_output_text(path, json.dumps(record, ensure_ascii=False, allow_nan=False) + "\n")


def merge_records(records: Sequence[dict[str, Any]], title: str | None = None) -> dict[str, Any]:
    """One record holding every model of ``records`` (in order), for one page.

    The records must share their settings and, where both have one, the UMAP sentence sample; data
    files of the same path must have the same checksum. Labels are made unique.
    """
    if not records:
        raise InputError("nothing to merge")
    first = records[0]
    if len(records) == 1:
        out = dict(first)
        if title is not None:
            out["title"] = title
        return out
    models: list[dict[str, Any]] = []
    trajectories: list[dict[str, Any]] = []
    provenance: list[dict[str, Any]] = []
    files: dict[str, dict[str, Any]] = {}
    umap = first.get("umap")
    for rec in records:
        if rec["settings"] != first["settings"]:
            raise InputError("the records were built with different settings (protocol, seed or UMAP options), so "
                             "their figures do not compare: rebuild them with the same options")
        if rec["data"].get("protocol") != first["data"].get("protocol"):
            raise InputError("the records were built on different data (protocol lines differ): rebuild them "
                             "with the same --data-dir")
        for f in rec["data"]["files"]:
            old = files.setdefault(f["path"], f)
            if old["sha256"] != f["sha256"]:
                raise InputError(f"the records read different copies of {f['path']} (checksums differ): rebuild "
                                 "them from the same data directory")
        if umap is not None and rec.get("umap") is not None and (
                rec["umap"]["sentences"] != umap["sentences"] or rec["umap"]["categories"] != umap["categories"]):
            raise InputError("the records' UMAP maps show different sentences: rebuild them with the same "
                             "--umap-sentences, --seed and data")
        offset = len(models)
        models.extend(dict(m) for m in rec["models"])
        for t in rec["trajectories"]:
            t = dict(t)
            if t.get("model") is not None:
                t["model"] = t["model"] + offset
            trajectories.append(t)
        provenance.extend(rec["provenance"])
    if any(r.get("umap") is None for r in records):  # a map for every model, or none
        umap = None
        for m in models:
            m["umap"] = None
    _unique_labels(models)
    return {**first, "title": title if title is not None else first.get("title"), "provenance": provenance,
            "data": {**first["data"], "files": sorted(files.values(), key=lambda f: f["path"])},
            "models": models, "umap": umap, "trajectories": trajectories}
