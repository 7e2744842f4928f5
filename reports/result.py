"""The analysis of a list of checkpoints as a Python value: numbers, plotly figures, inline HTML.

:func:`analyze` runs what ``simcse-analyze report`` runs (STS, alignment/uniformity, spectra,
anisotropy, optionally UMAP) and returns an :class:`Analysis`: a typed view of the report record
(:class:`~simcse_analysis.records.ReportRecord`) with

- ``analysis.models``: one :class:`~simcse_analysis.records.ModelSummary` per checkpoint (the tables' scalars);
- ``analysis.figures.align_uniform()`` … : every figure of the report as a plotly ``Figure``;
- ``analysis.save(path)`` / :func:`load_analysis`: the record as JSON (what ``report --json`` writes and
  ``--from-json`` reads);
- ``_repr_html_``: a notebook cell shows the STS and isotropy tables;
- ``analysis.with_tokens(...)`` / ``analysis.with_comparison(...)``: the same analysis with the page's Token
  level section (a token analysis of its checkpoints, or a saved ``tokens --json``) or Comparison section
  (a ``compare`` result about its checkpoints), as ``report --tokens`` / ``--compare-from`` add them.

:func:`report` renders the self-contained HTML page (and writes it with ``out=``); the :class:`Report`
it returns shows the page inline in a notebook. :func:`render_page` is the one renderer of a record,
shared with ``simcse-analyze report``.
"""

from __future__ import annotations

import html
import json
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any

from simcse_analysis import progress
from simcse_analysis.analysis import AnalysisSettings
from simcse_analysis.errors import InputError
from simcse_analysis.records import ModelSummary, ReportRecord, require_models
from simcse_analysis.tables import format_table

from .collect import ReportSettings, collect_report, load_record, save_record, validate_record
from .umap_map import UMAPSettings

if TYPE_CHECKING:
    import plotly.graph_objects as go

#: Figure name (method of :class:`AnalysisFigures`) → section anchor of the report page.
FIGURES: dict[str, str] = {"align_uniform": "align-uniform", "trajectories": "trajectories", "spectra": "spectra",
                           "cosine_bins": "cosine-bins", "random_pairs": "random-pairs", "layers": "layers",
                           "umap": "umap"}


class FigureNotAvailable(InputError):
    """The analysis holds no data for the asked figure (no training trajectories, no UMAP, no layers)."""


class AnalysisFigures:
    """Every figure of the report page as a fresh plotly ``Figure`` (built once, copied per call)."""

    def __init__(self, record: ReportRecord) -> None:
        self._record = record
        self._built: dict[str, tuple[str, Any, str]] | None = None

    def _sections(self) -> dict[str, tuple[str, Any, str]]:
        if self._built is None:
            from .html import build_figures

            self._built = {anchor: (heading, fig, note) for anchor, heading, fig, note in build_figures(self._record)}
        return self._built

    def names(self) -> list[str]:
        """The figures this analysis has, in page order (e.g. no ``trajectories`` without a training run)."""
        anchors = list(self._sections())
        return [name for name, anchor in FIGURES.items() if anchor in anchors]

    def get(self, name: str) -> go.Figure:
        """The figure ``name`` (one of :data:`FIGURES`); :class:`FigureNotAvailable` if the analysis lacks it."""
        import plotly.graph_objects as go

        if name not in FIGURES:
            raise InputError(f"unknown figure {name!r}: choose one of {', '.join(FIGURES)}")
        section = self._sections().get(FIGURES[name])
        if section is None:
            why = {"trajectories": "pass a training run directory as a model, or trajectories=[RUN_DIR]",
                   "umap": "analyze with umap=True", "layers": "analyze with layers=True"}.get(name, "")
            raise FigureNotAvailable(f"this analysis has no {name} figure" + (f": {why}" if why else ""))
        return go.Figure(section[1])

    def __iter__(self) -> Iterator[tuple[str, go.Figure]]:
        return ((name, self.get(name)) for name in self.names())

    def align_uniform(self) -> go.Figure:
        """ℓ_align vs ℓ_uniform of every checkpoint, coloured by STS-B dev Spearman (SimCSE Fig. 2)."""
        return self.get("align_uniform")

    def trajectories(self) -> go.Figure:
        """Training paths (``trajectory.jsonl``) through the align–uniform plane."""
        return self.get("trajectories")

    def spectra(self) -> go.Figure:
        """Normalised singular values σ_k/σ_1, uncentred and centred."""
        return self.get("spectra")

    def cosine_bins(self) -> go.Figure:
        """Cosine of STS-B pairs grouped by gold rating (SimCSE Fig. G.1)."""
        return self.get("cosine_bins")

    def random_pairs(self) -> go.Figure:
        """Histograms of the cosine of random sentence pairs."""
        return self.get("random_pairs")

    def layers(self) -> go.Figure:
        """Random-pair cosine and IsoScore of every hidden layer."""
        return self.get("layers")

    def umap(self) -> go.Figure:
        """UMAP maps of a seeded sentence sample, one panel per checkpoint."""
        return self.get("umap")


_INLINE_CSS = ("<style>.simcse-analysis table{border-collapse:collapse;margin:4px 0}"
               ".simcse-analysis th,.simcse-analysis td{padding:3px 8px;border-bottom:1px solid #ddd;"
               "text-align:right}.simcse-analysis td.best{font-weight:700}"
               ".simcse-analysis caption{caption-side:bottom;text-align:left;font-size:11px;color:#666}</style>")


class Analysis:
    """The report record of one or more checkpoints, typed (see the module docstring).

    Worked example: ``examples/quickstart.ipynb`` (executed by ``tests/test_notebook.py``)::

        a = sa.load_analysis("out/minilm.json")     # or sa.analyze([...])
        a.models[0].sts["avg"], a.models[0].alignment
        a.figures.align_uniform()                   # a plotly Figure
    """

    def __init__(self, record: ReportRecord | dict[str, Any]) -> None:
        self.record: ReportRecord = validate_record(record)  # type: ignore[assignment]
        self.figures = AnalysisFigures(self.record)

    @property
    def models(self) -> list[ModelSummary]:
        """One :class:`ModelSummary` per checkpoint, in record order."""
        return [ModelSummary.from_dict(m["summary"]) for m in self.record["models"]]

    def __len__(self) -> int:
        return len(self.record["models"])

    def __getitem__(self, key: int | str) -> ModelSummary:
        """The summary of model ``key``: an index, or a label / model name."""
        models = self.models
        if isinstance(key, int):
            return models[key]
        for m in models:
            if key in (m.label, m.model):
                return m
        raise KeyError(f"no model labelled {key!r}; have {', '.join(m.label for m in models)}")

    def table(self) -> str:
        """The STS and isotropy scalars as a plain-text table (one row per checkpoint)."""
        cols = ("STS12", "STS13", "STS14", "STS15", "STS16", "STSBenchmark", "SICKRelatedness", "avg")
        headers = ["model", *[c.replace("STSBenchmark", "STS-B").replace("SICKRelatedness", "SICK-R") for c in cols],
                   "STS-B dev", "ℓ_align", "ℓ_uniform", "rand. cos", "IsoScore"]

        def f(x: float | None, spec: str) -> str:
            return "–" if x is None else format(x, spec)

        rows = [[m.label, *[f(m.sts.get(c), ".2f") for c in cols], f(m.stsb_dev, ".2f"), f(m.alignment, ".4f"),
                 f(m.uniformity, ".4f"), f(m.random_pair_cosine, ".4f"), f(m.isoscore, ".4f")] for m in self.models]
        return format_table(headers, rows, right=[False] + [True] * (len(headers) - 1))

    def to_dict(self) -> ReportRecord:
        return self.record

    def to_json(self) -> str:
        return json.dumps(self.record, ensure_ascii=False, allow_nan=False) + "\n"

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write the record as JSON (atomically): what ``simcse-analyze report --json`` writes."""
        return save_record(self.record, path)

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> Analysis:
        """Read a record written by :meth:`save` or ``report --json`` (the previous version too)."""
        return cls(load_record(path))

    def html(self) -> str:
        """The full self-contained report page (see :func:`render_page`)."""
        return render_page(self.record)

    def with_tokens(self, tokens: bool | str | os.PathLike[str] | Any = True, *, token_sentences: int | None = 2000,
                    seed: int = 0, data_dir: str | os.PathLike[str] | None = None, batch_size: int = 64,
                    encoder_kwargs: dict[str, Any] | None = None) -> Analysis:
        """This analysis with the page's Token level section, as ``report --tokens`` / ``--tokens-from`` add it.

        ``tokens``: ``True`` analyses the checkpoints of this analysis (``simcse-analyze tokens`` on a seeded
        sample of ``token_sentences`` STS-B sentences; ``None``: all), a path reads a saved ``tokens --json``
        document, a :class:`~simcse_analysis.token_analysis.TokenReport` (or its dict) is used as is.
        """
        if tokens is False or tokens is None:
            return self
        if tokens is True:
            request = TokenRequest.prepare([(m.get("path") or m["model"], m.get("pooler"))
                                            for m in self.record["models"]], token_sentences, seed, None, data_dir)
            doc = request.run(encoder_kwargs=encoder_kwargs or {}, batch_size=batch_size)
        else:
            doc = _token_doc(tokens)
        return Analysis({**self.record, "tokens": doc})

    def with_comparison(self, comparison: str | os.PathLike[str] | Any) -> Analysis:
        """This analysis with the page's Comparison section (``report --compare-from``): a
        :class:`~simcse_analysis.comparison.ComparisonReport` (``sa.compare(...)``), its dict, or the path of
        a ``compare --json`` document. Every checkpoint it compares must be one of this analysis's
        (:func:`check_comparison_models`)."""
        doc, source = _comparison_doc(comparison)
        check_comparison_models(doc, self.record["models"], source)
        return Analysis({**self.record, "comparison": doc})

    def _repr_html_(self) -> str:
        from .html import isotropy_table, sts_table

        title = html.escape(self.record.get("title") or f"Analysis of {len(self)} checkpoint(s)")
        return (f'<div class="simcse-analysis">{_INLINE_CSS}<h4>{title}</h4>{sts_table(self.record)}'
                f"{isotropy_table(self.record)}<p>Figures: "
                + ", ".join(f"<code>.figures.{n}()</code>" for n in self.figures.names()) + "</p></div>")

    def __repr__(self) -> str:
        return f"Analysis({', '.join(m.label for m in self.models)})"


@dataclass
class Report:
    """A rendered report page; a notebook shows it inline (in a sandboxed iframe)."""

    analysis: Analysis
    html: str
    path: Path | None = None

    def __repr__(self) -> str:
        """One line: the checkpoints, the page's size and where it was written (``.html`` holds the page)."""
        where = f", written to {str(self.path)!r}" if self.path is not None else ""
        return f"Report({', '.join(m.label for m in self.analysis.models)}: {len(self.html):,} characters{where})"

    def _repr_html_(self) -> str:
        return (f'<iframe sandbox="allow-scripts" style="width:100%;height:900px;border:1px solid #ddd" '
                f'srcdoc="{html.escape(self.html, quote=True)}"></iframe>')


def _settings_kwargs(cls: type, kwargs: dict[str, Any]) -> dict[str, Any]:
    names = {f.name for f in fields(cls)}
    return {k: kwargs.pop(k) for k in list(kwargs) if k in names}


def analyze(models: str | Sequence[str], *, data_dir: str | os.PathLike[str] | None = None,
            pooler: str | None = None, batch_size: int = 64, umap: bool = True,
            trajectories: Sequence[str | os.PathLike[str]] = (), title: str | None = None,
            settings: ReportSettings | None = None, encoder_kwargs: dict[str, Any] | None = None,
            command: str | None = None, log: Any = None, tokens: bool = False,
            token_sentences: int | None = 2000, **options: Any) -> Analysis:
    """Evaluate and analyse every checkpoint in ``models`` (what ``simcse-analyze report`` runs).

    ``models``: Hugging Face ids, aliases, checkpoint or training-run directories (``NAME@POOLER`` picks a
    pooler for one); a single string is one model. ``pooler``, ``encoder_kwargs`` (``max_length``,
    ``device``, ``dtype``, ``cache_dir``, ``use_cache``, ``trust_remote_code``) go to
    :func:`~simcse_analysis.encoder.load_encoder`. ``options``: fields of
    :class:`~simcse_analysis.analysis.AnalysisSettings` (``splits``, ``variant``, ``uniformity_pairs``,
    ``seed``, ``layers`` …), of :class:`~reports.umap_map.UMAPSettings` prefixed ``umap_``
    (``umap_sentences`` = ``n_sentences``), and ``layer_sentences``; defaults are those dataclasses', which
    are also the CLI's. ``settings`` replaces all of them at once. ``tokens=True`` adds the Token level
    section (``report --tokens``: the token analysis of the checkpoints on ``token_sentences`` sampled
    STS-B sentences, ``None``: all; see :meth:`Analysis.with_tokens`).

    Raises :class:`~simcse_analysis.records.EmptyModelListError` for an empty ``models`` and
    :class:`~simcse_analysis.errors.InputError` for bad input.

    >>> import simcse_analysis as sa
    >>> sa.analyze([])
    Traceback (most recent call last):
    ...
    simcse_analysis.records.EmptyModelListError: analyze: the model list is empty; give at least one checkpoint ...


    A full run on a checkpoint is ``examples/quickstart.ipynb`` (executed by ``tests/test_notebook.py``).
    """
    names = require_models(models, "analyze")
    if settings is None:
        seed = options.get("seed", AnalysisSettings.seed)
        if "splits" in options and isinstance(options["splits"], str):
            from simcse_analysis.analysis import parse_splits

            options["splits"] = parse_splits(options["splits"])
        analysis = AnalysisSettings(**_settings_kwargs(AnalysisSettings, options))
        umap_opts = {k[5:]: options.pop(k) for k in list(options) if k.startswith("umap_")}
        if "sentences" in umap_opts:
            umap_opts["n_sentences"] = umap_opts.pop("sentences")
        umap_settings = UMAPSettings(**{"seed": seed, **umap_opts}) if umap else None
        layer_sentences = options.pop("layer_sentences", ReportSettings.layer_sentences)
        settings = ReportSettings(analysis=analysis, umap=umap_settings, layer_sentences=layer_sentences or None,
                                  **_settings_kwargs(ReportSettings, options))
    if options:
        raise InputError(f"analyze: unknown option(s) {', '.join(sorted(options))}")
    kwargs = dict(encoder_kwargs or {})
    if pooler is not None:
        kwargs["pooler"] = pooler
    request = (TokenRequest.prepare([(n, kwargs.get("pooler")) for n in names], token_sentences,
                                    settings.analysis.seed, None, data_dir) if tokens else None)  # checked first
    with progress.job("analyze"):  # the command's job, else its own (a notebook sees the stages too)
        record = collect_report(names, settings, data_dir=data_dir, batch_size=batch_size,
                                trajectories=trajectories, encoder_kwargs=kwargs,
                                command=command or f"analyze({names!r})", title=title, log=log)
        if request is not None:
            record["tokens"] = request.run(encoder_kwargs=kwargs, batch_size=batch_size)
    return Analysis(record)


def load_analysis(path: str | os.PathLike[str]) -> Analysis:
    """An :class:`Analysis` from a record written by ``report --json`` / :meth:`Analysis.save`.

    A record of the previous schema version is read (upgraded in memory); an unknown or newer one raises
    :class:`~simcse_analysis.records.SchemaVersionError`, a foreign JSON file
    :class:`~simcse_analysis.records.SchemaError`.
    """
    return Analysis.load(path)


def report(analysis: Analysis | str | Sequence[str], out: str | os.PathLike[str] | None = None, *,
           title: str | None = None, tokens: bool | str | os.PathLike[str] | Any = False,
           token_sentences: int | None = 2000, comparison: str | os.PathLike[str] | Any = None,
           **analyze_options: Any) -> Report:
    """The HTML report page of ``analysis`` (an :class:`Analysis`, or models to :func:`analyze` first with
    ``analyze_options``); written atomically to ``out`` when given.

    ``tokens`` adds the Token level section (``report --tokens``; ``True``, a saved ``tokens --json``
    path or a ``TokenReport``: :meth:`Analysis.with_tokens`), ``comparison`` the Comparison section
    (``report --compare-from``; a ``ComparisonReport`` from ``sa.compare``, its dict or a ``compare --json``
    path, about the page's checkpoints: :meth:`Analysis.with_comparison`). Both are checked before any
    encoding. ``analyze_options`` apply only when models are given (an :class:`Analysis` is already computed).

    >>> import simcse_analysis as sa
    >>> sa.report([], out="x.html")
    Traceback (most recent call last):
    ...
    simcse_analysis.records.EmptyModelListError: report: the model list is empty; give at least one checkpoint ...
    """
    from simcse_analysis.io_utils import check_writable, write_output_text

    if not isinstance(analysis, Analysis):
        names = require_models(analysis, "report")
        if out is not None:
            check_writable(out)  # fail before any encoding
        if comparison is not None:  # a comparison about other checkpoints fails now, not after the analysis
            doc, source = _comparison_doc(comparison)
            enc = analyze_options.get("encoder_kwargs") or {}
            check_comparison_models(doc, model_identities(names, analyze_options.get("pooler") or enc.get("pooler")),
                                    source)
            comparison = doc
        analysis = analyze(names, title=title, tokens=tokens is True, token_sentences=token_sentences,
                           **analyze_options)
        if tokens is not True and tokens is not False and tokens is not None:
            analysis = analysis.with_tokens(tokens)
    else:
        if analyze_options:
            raise InputError(f"report: {', '.join(sorted(analyze_options))} only apply when report() analyses models; "
                             "this Analysis is already computed (pass them to sa.analyze)")
        if title is not None:
            analysis = Analysis({**analysis.record, "title": title})
        if tokens is not False and tokens is not None:
            provenance = analysis.record.get("provenance") or [{}]
            analysis = analysis.with_tokens(tokens, token_sentences=token_sentences,
                                            data_dir=provenance[-1].get("data_dir"))
    if comparison is not None:
        analysis = analysis.with_comparison(comparison)
    page = render_page(analysis.record)
    path = write_output_text(out, page) if out is not None else None
    return Report(analysis, page, path)


def render_page(record: ReportRecord | dict[str, Any]) -> str:
    """The report page of a record, with its Comparison (``record["comparison"]``) and Token level
    (``record["tokens"]``) sections when it holds them: what ``simcse-analyze report --out`` writes."""
    from .html import render_report

    blocks: list[Any] = []
    sections: list[Any] = []
    if record.get("comparison"):
        from .compare_page import comparison_report_parts

        blocks, cmp_figures = comparison_report_parts(record["comparison"])
        sections += cmp_figures
    if record.get("tokens"):
        from .token_page import token_sections

        sections += token_sections(record["tokens"])
    return render_report(record, extra_blocks=blocks, extra_sections=sections)


# ----------------------------------------------------------------------------------------- sections
def _identity(m: dict[str, Any]) -> tuple[str | None, str | None]:
    """How a checkpoint is recognised across documents: its fingerprint (weights and post-transform), else
    its name; with its pooler."""
    return (m.get("fingerprint") or m.get("model")), m.get("pooler")


def model_identities(models: Sequence[str], pooler: str | None = None, *,
                     trust_remote_code: bool = False) -> list[dict[str, Any]]:
    """``model``, ``pooler`` and ``fingerprint`` of each ``MODEL`` argument (``NAME@POOLER``, run directories),
    as the report will record them, read without loading any weights."""
    from simcse_analysis.encoder import check_checkpoint, describe_checkpoint

    from .collect import resolve_model_arg

    out = []
    for arg in models:
        spec = resolve_model_arg(arg)
        check_checkpoint(spec.load, trust_remote_code=trust_remote_code)
        out.append({**describe_checkpoint(spec.load, spec.pooler or pooler), "model": spec.name})
    return out


def check_comparison_models(doc: dict[str, Any], models: Sequence[dict[str, Any]],
                            source: str = "the comparison") -> None:
    """Refuse a comparison about a checkpoint the page does not show: each of ``doc``'s checkpoints (the
    baseline and the others) must be one of ``models`` (report entries, or :func:`model_identities`),
    matched by fingerprint and pooler (by name where a fingerprint is missing)."""
    shown = {_identity(m) for m in models}
    names = ", ".join(f"{m.get('model')}@{m.get('pooler')}" for m in models) or "none"
    for m in doc.get("models", []):
        if _identity(m.get("model") or {}) not in shown:
            raise InputError(f"{source} compares {m.get('label')}, which this report does not show (it shows "
                             f"{names}): add that checkpoint as a MODEL (or its --from-json record), or leave the "
                             "comparison out")


def _comparison_doc(comparison: Any) -> tuple[dict[str, Any], str]:
    """``(document, how to name it in an error)`` of a ComparisonReport, its dict, or a path."""
    from simcse_analysis.comparison import ComparisonReport, load_comparison

    if isinstance(comparison, ComparisonReport):
        return comparison.to_dict(), "the comparison"
    if isinstance(comparison, dict):
        return ComparisonReport.from_dict(comparison).to_dict(), "the comparison"
    return load_comparison(comparison).to_dict(), f"--compare-from {comparison}"


def _token_doc(tokens: Any) -> dict[str, Any]:
    """The ``tokens --json`` document of a TokenReport, its dict, or a path."""
    from simcse_analysis.token_analysis import TokenReport

    if isinstance(tokens, TokenReport):
        return tokens.to_dict()
    if isinstance(tokens, dict):
        return TokenReport.from_dict(tokens).to_dict()
    return TokenReport.load(tokens).to_dict()


@dataclass
class TokenRequest:
    """The Token level section a report asks for (``--tokens`` and/or ``--tokens-from``), checked before any
    encoding by :meth:`prepare`; :meth:`run` does the token analysis (:mod:`simcse_analysis.token_analysis`)."""

    models: list[tuple[str, str | None]]  # (checkpoint to load, pooler or None)
    settings: Any  # TokenSettings
    corpus: Any  # TokenCorpus, None when no model is analysed
    saved: Any  # TokenReport read from --tokens-from, or None
    source: str | None = None

    @classmethod
    def prepare(cls, models: Sequence[tuple[str, str | None]], n_sentences: int | None, seed: int,
                tokens_from: str | os.PathLike[str] | None, data_dir: str | os.PathLike[str] | None
                ) -> TokenRequest | None:
        """Read ``tokens_from`` and the corpus now (their errors come before any encoding); ``None`` when
        neither models nor a saved document are asked for. ``models`` may be ``MODEL@POOLER`` or run
        directories (as ``report`` reads them)."""
        from simcse_analysis.token_analysis import (
            TokenReport,
            TokenSettings,
            describe_protocol,
            load_token_corpus,
        )

        from .collect import resolve_model_arg

        saved = TokenReport.load(tokens_from) if tokens_from is not None else None
        if not models:
            return cls([], saved.settings, None, saved, str(tokens_from)) if saved is not None else None
        settings = saved.settings if saved is not None else TokenSettings(max_sentences=n_sentences, seed=seed)
        corpus = load_token_corpus(settings, [], data_dir)
        if saved is not None and describe_protocol(settings, corpus) != saved.protocol:
            raise InputError(f"--tokens-from {tokens_from} was computed under another protocol ({saved.protocol!r}); "
                             "drop --tokens or rebuild the file with the same settings and data")
        specs = [resolve_model_arg(m) for m, _ in models]
        loads = [(s.load, s.pooler or p) for s, (_, p) in zip(specs, models)]
        return cls(loads, settings, corpus, saved, None if tokens_from is None else str(tokens_from))

    def run(self, *, encoder_kwargs: dict[str, Any], batch_size: int = 64) -> dict[str, Any]:
        """The ``tokens --json`` document: the saved one, plus the analysis of :attr:`models` under its
        settings (the two must share a protocol)."""
        from simcse_analysis.encoder import load_encoder
        from simcse_analysis.token_analysis import run_token_analysis

        if not self.models:
            return self.saved.to_dict()
        encoders = (load_encoder(name, **{**encoder_kwargs, "pooler": pooler or encoder_kwargs.get("pooler")})
                    for name, pooler in self.models)
        fresh = run_token_analysis(encoders, self.corpus, self.settings, batch_size=batch_size,
                                   n_models=len(self.models))
        if self.saved is not None:  # same protocol: checked by prepare()
            fresh.results = self.saved.results + fresh.results
        return fresh.to_dict()
