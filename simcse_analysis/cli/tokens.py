"""``simcse-analyze tokens``: token-level anisotropy, rogue dimensions and embedding-matrix degeneration
(thin layer over :mod:`simcse_analysis.token_analysis`)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Annotated, Any

import typer

from ..path_safety import data_inputs
from .options import (
    DataDir,
    EncoderOptions,
    HtmlOut,
    JsonOut,
    Models,
    announce,
    check_outputs,
    with_encoder_options,
    write_output,
)

Corpus = Annotated[list[Path] | None, typer.Option(
    "--corpus", help="Sentences to analyse, one per line (repeatable; default: every distinct STS-B sentence).")]
Embeddings = Annotated[list[Path] | None, typer.Option(
    "--embeddings", help="Not supported here: precomputed sentence vectors hold no tokens (listed so the error "
                         "can say so).", hidden=True)]
MaxSentences = Annotated[int | None, typer.Option(
    "--max-sentences", min=2, help="Analyse a seeded uniform sample of this many sentences.")]
Units = Annotated[str, typer.Option(
    "--units", help="word: whole words, the mean of their word pieces | piece: every word piece (Ethayarajh's code).")]
MinCount = Annotated[int, typer.Option("--min-count", min=2, help="Word types need this many occurrences.")]
MevCap = Annotated[int, typer.Option("--mev-cap", min=2, help="MEV on at most this many occurrences per type.")]
MevTypes = Annotated[int, typer.Option("--mev-types", min=1, help="MEV on at most this many (seeded) types.")]
Seed = Annotated[int, typer.Option("--seed", help="Seed of the sentence and MEV samples.")]


def _fmt(x: Any, spec: str = ".3f") -> str:
    return "n/a" if x is None or (isinstance(x, float) and not math.isfinite(x)) else format(x, spec)


def tokens_table(report: Any) -> str:
    """Per-layer table of every checkpoint: Ethayarajh's measures, norms and rogue-dimension counts."""
    from ..tables import format_table

    heads = ["baseline", "self-sim", "adj", "intra", "adj", "MEV", "norm", "tok d50/d90", "sent cos",
             "sent d50/d90"]
    rows = []
    for r in report.results:
        for lay in r.layers:
            t, s = lay.token_rogue, lay.sentence_rogue
            rows.append([r.model.get("model"), lay.layer, _fmt(lay.baseline), _fmt(lay.self_similarity),
                         _fmt(lay.self_similarity_adjusted), _fmt(lay.intra_sentence), _fmt(lay.intra_sentence_adjusted),
                         _fmt(lay.mev), _fmt(lay.mean_norm, ".2f"), f"{_fmt(t.dims_50, 'd')}/{_fmt(t.dims_90, 'd')}",
                         _fmt(s.expected_cosine), f"{_fmt(s.dims_50, 'd')}/{_fmt(s.dims_90, 'd')}"])
    table = format_table(["model", "layer", *heads], rows, right=[False] + [True] * (len(heads) + 1))
    em_rows = []
    for r in report.results:
        em = r.embedding_matrix
        em_rows.append([r.model.get("model"), f"{em['vocab_size']}x{em['dim']}",
                        _fmt(em["spectrum"]["uncentered"]["effective_rank"], ".1f"),
                        _fmt(em["spectrum"]["centered"]["effective_rank"], ".1f"), _fmt(em["mean_vector_share"], ".4f"),
                        _fmt(em["spearman_frequency_norm"]), _fmt(em["spearman_frequency_knn"]),
                        " ".join(_fmt(b["mean_knn_distance"], ".3f") for b in em["buckets"])])
    em_table = format_table(["model", "matrix", "erank", "erank (c)", "mean-vec share", "rho(f,norm)",
                             "rho(f,kNN)", "kNN dist by freq bucket"], em_rows,
                            right=[False] + [True] * 7)
    return (table + "\n\ntoken-embedding matrix (frequency = count in the analysed sentences):\n" + em_table)


def register(app: typer.Typer) -> None:
    @app.command("tokens")
    @with_encoder_options
    def tokens_cmd(
        models: Models,
        corpus: Corpus = None,
        max_sentences: MaxSentences = None,
        units: Units = "word",
        min_count: MinCount = 5,
        mev_cap: MevCap = 50,
        mev_types: MevTypes = 500,
        seed: Seed = 0,
        json_out: JsonOut = None,
        html_out: HtmlOut = None,
        data_dir: DataDir = None,
        embeddings: Embeddings = None,
        *,
        encoder: EncoderOptions,
    ) -> None:
        """Token-level anisotropy per layer (Ethayarajh 2019), rogue dimensions and the token-embedding matrix."""
        from ..errors import InputError
        from ..token_analysis import TokenSettings, load_token_corpus, run_token_analysis

        if embeddings:
            raise InputError(f"--embeddings {embeddings[0]}: precomputed sentence vectors have no tokens and no "
                             "token-embedding matrix; token analysis needs a checkpoint (MODEL)")
        for m in models:
            if Path(m).suffix.lower() == ".npy" or Path(m).is_file():
                raise InputError(f"{m} is a file of precomputed vectors, not a checkpoint: token analysis needs the "
                                 "tokenizer and token-embedding matrix of a checkpoint directory or model id")
        to_stderr = check_outputs(("--json", json_out), ("--out", html_out), reads=[  # fail before any encoding
            *(("MODEL", m) for m in models), *(("--corpus", c) for c in corpus or []), *data_inputs(data_dir)])
        settings = TokenSettings(units=units, min_count=min_count, max_sentences=max_sentences, seed=seed,
                                 mev_cap=mev_cap, mev_types=mev_types)
        data = load_token_corpus(settings, list(corpus or []), data_dir)

        def encoders():
            from ..encoder import load_encoder

            for name in models:
                yield load_encoder(name, **encoder.load_kwargs)

        report = run_token_analysis(encoders(), data, settings, batch_size=encoder.batch_size,
                                    log=lambda msg: typer.echo(msg, err=True))
        typer.echo(f"protocol: {report.protocol}", err=to_stderr)
        typer.echo(tokens_table(report), err=to_stderr)
        if json_out is not None:
            write_output(json_out, report.to_json(), to_stderr=to_stderr)
        if html_out is not None:
            from reports.token_page import write_token_page

            write_token_page(report.to_dict(), html_out)
            announce(html_out, to_stderr=to_stderr)


def report_token_document(models: list[str], n_sentences: int | None, seed: int, tokens_from: Path | None,
                          data_dir: Path | None, encoder: EncoderOptions) -> dict[str, Any] | None:
    """The Token level section's document for ``report``: a saved ``tokens --json`` file, and/or a fresh
    analysis of ``models`` (``MODEL@POOLER`` and run directories as ``report`` reads them); None if neither."""
    from ..token_analysis import TokenReport, TokenSettings, load_token_corpus, run_token_analysis

    saved = TokenReport.load(tokens_from) if tokens_from is not None else None
    if not models:
        return saved.to_dict() if saved is not None else None
    from reports.collect import resolve_model_arg

    from ..encoder import load_encoder

    settings = saved.settings if saved is not None else TokenSettings(max_sentences=n_sentences, seed=seed)
    data = load_token_corpus(settings, [], data_dir)
    specs = [resolve_model_arg(m) for m in models]
    encoders = (load_encoder(s.load, **{**encoder.load_kwargs, "pooler": s.pooler or encoder.pooler}) for s in specs)
    fresh = run_token_analysis(encoders, data, settings, batch_size=encoder.batch_size,
                               log=lambda msg: typer.echo(msg, err=True))
    if saved is not None:
        if saved.protocol != fresh.protocol:
            from ..errors import InputError

            raise InputError(f"--tokens-from {tokens_from} was computed under another protocol ({saved.protocol!r}); "
                             "drop --tokens or rebuild the file with the same settings")
        fresh.results = saved.results + fresh.results
    return fresh.to_dict()
