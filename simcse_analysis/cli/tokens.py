"""``simcse-analyze tokens``: token-level anisotropy, rogue dimensions and embedding-matrix degeneration
(thin layer over :mod:`simcse_analysis.token_analysis`)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Annotated, Any, Literal

import typer

from ..path_safety import data_inputs
from .help_format import examples
from .options import (
    DataDir,
    EncoderOptions,
    HtmlOut,
    JsonOut,
    Models,
    announce,
    check_outputs,
    with_encoder_options,
    with_progress,
    write_output,
)

Corpus = Annotated[list[Path] | None, typer.Option(
    "--corpus", metavar="FILE", help="Sentences to analyse, one per line (repeatable; default: every distinct STS-B sentence).")]
Embeddings = Annotated[list[Path] | None, typer.Option(
    "--embeddings", help="Not supported here: precomputed sentence vectors hold no tokens (listed so the error "
                         "can say so).", hidden=True)]
MaxSentences = Annotated[int | None, typer.Option(
    "--max-sentences", min=2, help="Analyse a seeded uniform sample of this many sentences.")]
Units = Annotated[Literal["word", "piece"], typer.Option(
    "--units", case_sensitive=False,
    help="word: whole words, the mean of their word pieces; piece: every word piece (Ethayarajh's code).")]
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


EXAMPLES = examples(
    "simcse-analyze tokens all-MiniLM-L6-v2 --data-dir ../shared/data --out tokens.html --json tokens.json",
    "simcse-analyze tokens all-MiniLM-L6-v2 runs/unsup --max-sentences 2000 --units piece",
    "simcse-analyze tokens runs/unsup@cls_before_pooler --corpus wiki.txt --out tokens.html")


def register(app: typer.Typer) -> None:
    @app.command("tokens", rich_help_panel="Analysis", epilog=EXAMPLES,
                 short_help="Token-level anisotropy per layer, rogue dimensions.")
    @with_progress("tokens")
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
        from ..encoder import check_checkpoint, load_encoder
        from ..pooling import split_pooler

        specs = [split_pooler(m) for m in models]
        for name, _ in specs:  # every checkpoint is checked before the first one is analysed
            check_checkpoint(name, trust_remote_code=encoder.trust_remote_code)
        encoders = (load_encoder(name, **{**encoder.load_kwargs, "pooler": pooler or encoder.pooler})
                    for name, pooler in specs)
        report = run_token_analysis(encoders, data, settings, batch_size=encoder.batch_size, n_models=len(specs))
        typer.echo(f"protocol: {report.protocol}", err=to_stderr)
        typer.echo(tokens_table(report), err=to_stderr)
        if json_out is not None:
            write_output(json_out, report.to_json(), to_stderr=to_stderr)
        if html_out is not None:
            from reports.token_page import write_token_page

            write_token_page(report.to_dict(), html_out)
            announce(html_out, to_stderr=to_stderr)
