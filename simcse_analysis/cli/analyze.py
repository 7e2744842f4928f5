"""``simcse-analyze align-uniform | spectrum | anisotropy``: embedding-space analyses of checkpoints.

Each command takes checkpoints (``MODEL…``) and/or precomputed embeddings (``--embeddings X.npy
--sentences S.txt``, repeatable; one sentence file may serve every matrix), runs the analysis under
the SimCSE protocol of :mod:`simcse_analysis.analysis`, prints the protocol line and a table, and
optionally writes ``--json`` (every figure and setting) and ``--out`` (an HTML page). Encodings come
from the embedding cache, so running all three commands on the same checkpoints encodes once.
``--export-sentences FILE`` writes the sentences the protocol embeds, for encoding elsewhere.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any

import typer

from ..path_safety import data_inputs
from .help_format import examples
from .options import (
    DataDir,
    EncoderOptions,
    HtmlOut,
    JsonOut,
    SharedOption,
    VariantName,
    announce,
    check_outputs,
    shared_options,
    with_encoder_options,
    with_progress,
    write_output,
)

OptModels = Annotated[list[str] | None, typer.Argument(metavar="MODEL",
    help="Checkpoints: Hugging Face ids, aliases, checkpoint or training-run directories; MODEL@POOLER picks the "
         "pooler of one (optional with --embeddings).", show_default=False)]
Embeddings = Annotated[list[Path] | None, typer.Option(
    "--embeddings", metavar="PATH",
    help="Precomputed (N, d) .npy matrix (row i embeds line i of --sentences) or an embedding store directory "
         "(simcse-analyze encode; memory-mapped, no --sentences needed); repeatable.")]
Sentences = Annotated[list[Path] | None, typer.Option(
    "--sentences", metavar="FILE",
    help="UTF-8 sentence list, one per line, for --embeddings (one file, or one per matrix).")]
ExportSentences = Annotated[Path | None, typer.Option(
    "--export-sentences", metavar="FILE",
    help="Write the protocol's distinct sentences (one per line) here and exit.")]
NoVerify = Annotated[bool, typer.Option(
    "--no-verify", help="Read an --embeddings store without checking every shard against its .sha256 (one "
                        "full read of the store; rows are still checked finite).")]
Splits = Annotated[str, typer.Option(
    "--splits", help="STS-B splits for p_data and p_pos: comma-separated train, dev, test, or all "
                     "(default: all three, the paper's 'all STS-B sentences').")]
Variant = Annotated[VariantName, typer.Option(
    "--variant", case_sensitive=False, help="senteval: the SentEval copy, as the paper; raw: the originals.")]
Threshold = Annotated[float, typer.Option(
    "--threshold", help="Positive pairs: gold score strictly above this (SimCSE: 4).")]
AlignAlpha = Annotated[float, typer.Option(
    "--align-alpha", help="Alignment exponent α: ℓ_align = E‖f(x) − f(y)‖^α over the positive pairs (Wang & Isola: 2).")]
AlphaAlias = Annotated[float | None, typer.Option(
    "--alpha", hidden=True, help="Older name of --align-alpha (compare's --alpha is the significance level).")]
Temperature = Annotated[float, typer.Option("--t", help="Uniformity temperature t.")]
UniformityPairs = Annotated[int | None, typer.Option(
    "--uniformity-pairs", min=2, help="Estimate uniformity from this many random pairs, with a standard "
                                      "error (default: exact over all distinct pairs).")]
Seed = Annotated[int, typer.Option("--seed", help="Seed of every random pair sample.")]
Pairs = Annotated[int, typer.Option("--pairs", min=2, help="Random sentence pairs for the mean cosine.")]
NoLayers = Annotated[bool, typer.Option("--no-layers", help="Skip the per-layer anisotropy (final layer only).")]
TopK = Annotated[str, typer.Option("--top-k", help="k values for the explained variance of the top-k directions.")]


def _fmt(x: float | None, spec: str = ".4f") -> str:
    return "n/a" if x is None or not math.isfinite(x) else format(x, spec)


def _label(model: dict[str, Any]) -> tuple[str, str]:
    return str(model.get("model")), str(model.get("pooler") or "-")


def _int_list(spec: str, option: str) -> tuple[int, ...]:
    from ..errors import InputError

    try:
        values = tuple(int(p) for p in spec.split(",") if p.strip())
    except ValueError:
        raise InputError(f"{option} expects comma-separated integers, got {spec!r}") from None
    if not values or min(values) < 1:
        raise InputError(f"{option} expects positive integers, got {spec!r}")
    return values


def _pair_files(embeddings: list[Path], sentences: list[Path]) -> list[tuple[Path, Path | None]]:
    from ..errors import InputError
    from ..store import is_store

    if embeddings and not sentences:
        matrices = [e for e in embeddings if not is_store(e)]
        if matrices:
            raise InputError(f"--embeddings {matrices[0]} needs --sentences S.txt (row i of the matrix embeds "
                             "line i)")
        return [(e, None) for e in embeddings]
    if sentences and not embeddings:
        raise InputError("--sentences is only used with --embeddings X.npy")
    if len(sentences) not in (1, len(embeddings)):
        raise InputError(f"give one --sentences file, or one per --embeddings ({len(embeddings)}), "
                         f"not {len(sentences)}")
    return [(e, sentences[0] if len(sentences) == 1 else sentences[i]) for i, e in enumerate(embeddings)]


def _run(analysis: str, settings_kw: dict[str, Any], inputs: dict[str, Any], encoder: EncoderOptions) -> None:
    """Run one analysis: ``settings_kw`` are the command's own settings, ``inputs`` the shared input/output
    options (see :data:`with_analysis_inputs`)."""
    from ..analysis import (
        AnalysisSettings,
        EncoderSource,
        analyze,
        load_precomputed,
        load_protocol_data,
        parse_splits,
    )
    from ..errors import InputError

    models, embeddings, sentences = inputs["models"], inputs["embeddings"], inputs["sentences"]
    export_sentences, data_dir = inputs["export_sentences"], inputs["data_dir"]
    json_out, html_out = inputs["json_out"], inputs["html_out"]
    settings = AnalysisSettings(splits=parse_splits(inputs["splits"]), variant=inputs["variant"], **settings_kw)
    to_stderr = check_outputs(*((("--export-sentences", export_sentences),) if export_sentences is not None else (
        ("--json", json_out), ("--out", html_out))), reads=[*(("MODEL", m) for m in models or []), *(
        ("--embeddings", e) for e in embeddings or []), *(("--sentences", f) for f in sentences or []),
        *data_inputs(data_dir)])
    data = load_protocol_data(settings, data_dir)  # fails on missing data before any model loads
    if export_sentences is not None:
        from ..io_utils import write_output_text

        write_output_text(export_sentences, "".join(s + "\n" for s in data.sentences))
        typer.echo(f"wrote {len(data.sentences)} sentences to {export_sentences}", err=to_stderr)
        return
    models = list(models or [])
    pairs = _pair_files(list(embeddings or []), list(sentences or []))
    if not models and not pairs:
        raise InputError("nothing to analyse: give MODEL names or --embeddings X.npy --sentences S.txt")
    if analysis == "align_uniform" and not data.positive.any():
        raise InputError(f"no STS-B {'+'.join(data.splits)} pair has gold score > {settings.positive_threshold:g} "
                         f"(scores range {data.scores.min():g}..{data.scores.max():g}): lower --threshold")
    if encoder.device is not None:  # --device cuda without a GPU fails here, before any work
        from ..metrics.device import torch_device

        torch_device(encoder.device)
    precomputed = [load_precomputed(e, s, pooler=encoder.pooler, verify=not inputs["no_verify"])
                   for e, s in pairs]  # validate before encoding
    from ..encoder import check_checkpoint, load_encoder
    from ..pooling import split_pooler

    specs = [split_pooler(m) for m in models]
    for name, _ in specs:  # every checkpoint is checked before the first one encodes anything
        check_checkpoint(name, trust_remote_code=encoder.trust_remote_code)

    def sources() -> Iterator[Any]:
        for name, pooler in specs:
            kwargs = {**encoder.load_kwargs, "pooler": pooler or encoder.pooler}  # MODEL@POOLER wins
            yield EncoderSource(load_encoder(name, **kwargs), batch_size=encoder.batch_size)
        yield from precomputed

    report = analyze(analysis, sources(), data, settings, device=encoder.device, n_sources=len(specs) + len(pairs))
    typer.echo(f"protocol: {report.protocol}", err=to_stderr)
    typer.echo(TABLES[analysis](report), err=to_stderr)
    if json_out is not None:
        write_output(json_out, report.to_json(), to_stderr=to_stderr)
    if html_out is not None:
        from reports.analysis_page import write_analysis_page

        write_analysis_page(report.to_dict(), html_out)
        announce(html_out, to_stderr=to_stderr)


# ------------------------------------------------------------------------------------------ tables
def align_uniform_table(report: Any) -> str:
    from ..tables import format_table

    rows = []
    for r in report.results:
        se = "" if r.uniformity_stderr is None else f" ± {r.uniformity_stderr:.4f}"
        a_se = "" if getattr(r, "alignment_stderr", None) is None else f" ± {r.alignment_stderr:.4f}"
        rows.append([*_label(r.model), _fmt(r.alignment) + a_se, _fmt(r.uniformity) + se, r.n_positive_pairs,
                     r.n_sentences])
    return format_table(["model", "pooler", "align ± se", "uniform ± se", "positives", "sentences"], rows,
                        right=[False, False, True, True, True, True])


def spectrum_table(report: Any) -> str:
    from ..tables import format_table

    ks = [k for k in ("1", "10", "100") if str(k) in map(str, report.settings.top_k)]
    rows = []
    for r in report.results:
        for sp in (r.uncentered, r.centered):
            rows.append([*_label(r.model), "centred" if sp.centered else "uncentred", _fmt(sp.effective_rank, ".2f"),
                         _fmt(sp.stable_rank, ".3f"),
                         *(_fmt(sp.explained_variance_top_k.get(k), ".4f") for k in ks),
                         _fmt(sp.condition_number, ".4g"), _fmt(sp.sigma_max, ".4g")])
    headers = ["model", "pooler", "matrix", "eff.rank", "stable rank", *(f"EV top{k}" for k in ks),
               "cond", "sigma_max"]
    return format_table(headers, rows, right=[False, False, False] + [True] * (len(headers) - 3))


def anisotropy_table(report: Any) -> str:
    from ..tables import format_table

    heads = ["rand cos", "IsoScore", "I(W)", "log I(W)", "norm", "PC1 share"]

    def cells(s: Any) -> list[str]:
        return [f"{s.random_pair_cosine:.4f} ± {s.random_pair_cosine_stderr:.4f}", _fmt(s.isoscore),
                _fmt(s.partition_isotropy, ".3g"), _fmt(s.log_partition_isotropy, ".1f"), _fmt(s.mean_norm, ".3f"),
                _fmt(s.first_pc_variance_share)]

    from ..metrics.anisotropy import PARTITION_ISOTROPY_CONVENTION

    parts = [format_table(["model", "pooler", *heads], [[*_label(r.model), *cells(r.summary)] for r in report.results],
                          right=[False, False] + [True] * len(heads)), PARTITION_ISOTROPY_CONVENTION]
    labels = [b.label for b in report.results[0].score_bins] if report.results else []
    parts.append("\ncosine of STS-B pairs by gold score (mean, n):")
    parts.append(format_table(["model", "pooler", *labels],
                              [[*_label(r.model), *(f"{_fmt(b.mean, '.3f')} ({b.n})" for b in r.score_bins)]
                               for r in report.results], right=[False, False] + [True] * len(labels)))
    layered = [r for r in report.results if r.layers]
    if layered:
        parts.append("\nper layer (0 = embeddings):")
        parts.append(format_table(["model", "layer pooler", "layer", *heads],
                                  [[r.model.get("model"), r.layer_pooler, i, *cells(s)]
                                   for r in layered for i, s in enumerate(r.layers)],
                                  right=[False, False] + [True] * (len(heads) + 1)))
    return "\n".join(parts)


TABLES = {"align_uniform": align_uniform_table, "spectrum": spectrum_table, "anisotropy": anisotropy_table}


# ------------------------------------------------------------------------------------------ commands
#: Inputs and outputs every analysis command shares; the command receives them as ``inputs: dict``.
with_analysis_inputs = shared_options([
    SharedOption("models", OptModels, None), SharedOption("embeddings", Embeddings, None),
    SharedOption("sentences", Sentences, None), SharedOption("export_sentences", ExportSentences, None),
    SharedOption("splits", Splits, "train,dev,test"), SharedOption("variant", Variant, "senteval"),
    SharedOption("json_out", JsonOut, None), SharedOption("html_out", HtmlOut, None),
    SharedOption("data_dir", DataDir, None), SharedOption("no_verify", NoVerify, False),
], "inputs")


def _examples(command: str, *extra: str) -> str:
    return examples(f"simcse-analyze {command} all-MiniLM-L6-v2 --data-dir ../shared/data",
                    f"simcse-analyze {command} all-MiniLM-L6-v2@avg all-MiniLM-L6-v2@cls_before_pooler --json F.json "
                    "--out F.html", *extra,
                    f"simcse-analyze {command} --embeddings X.npy --sentences S.txt   # vectors from elsewhere")


def register(app: typer.Typer) -> None:
    @app.command("align-uniform", rich_help_panel="Analysis", short_help="Alignment and uniformity (Wang & Isola "
                 "2020) on STS-B.", epilog=_examples("align-uniform", "simcse-analyze align-uniform runs/unsup "
                                                     "--uniformity-pairs 1000000 --seed 1"))
    @with_progress("align-uniform")
    @with_encoder_options
    @with_analysis_inputs
    def align_uniform_cmd(threshold: Threshold = 4.0, align_alpha: AlignAlpha = 2.0, t: Temperature = 2.0,
                          uniformity_pairs: UniformityPairs = None, seed: Seed = 0, alpha: AlphaAlias = None, *,
                          inputs: dict[str, Any], encoder: EncoderOptions) -> None:
        """Alignment (positive STS-B pairs) and uniformity (all distinct STS-B sentences), Wang & Isola 2020."""
        if alpha is not None and align_alpha not in (2.0, alpha):
            from ..errors import InputError

            raise InputError(f"--alpha {alpha:g} and --align-alpha {align_alpha:g} disagree: give --align-alpha only")
        _run("align_uniform", {"positive_threshold": threshold, "alpha": align_alpha if alpha is None else alpha,
                               "t": t, "uniformity_pairs": uniformity_pairs, "seed": seed}, inputs, encoder)

    @app.command("spectrum", rich_help_panel="Analysis", short_help="Singular-value spectrum, effective and "
                 "stable rank.", epilog=_examples("spectrum", "simcse-analyze spectrum --embeddings runs/wiki.store --top-k 1,10"))
    @with_progress("spectrum")
    @with_encoder_options
    @with_analysis_inputs
    def spectrum_cmd(top_k: TopK = "1,2,5,10,20,50,100", *, inputs: dict[str, Any],
                     encoder: EncoderOptions) -> None:
        """Singular-value spectrum (normalised to max 1) of the STS-B sentence embeddings, with summaries."""
        _run("spectrum", {"top_k": _int_list(top_k, "--top-k")}, inputs, encoder)

    @app.command("anisotropy", rich_help_panel="Analysis", short_help="Random-pair cosine, IsoScore, I(W), "
                 "per layer.", epilog=_examples("anisotropy", "simcse-analyze anisotropy runs/unsup --no-layers "
                                                "--pairs 100000"))
    @with_progress("anisotropy")
    @with_encoder_options
    @with_analysis_inputs
    def anisotropy_cmd(pairs: Pairs = 10_000, seed: Seed = 0, no_layers: NoLayers = False, *,
                       inputs: dict[str, Any], encoder: EncoderOptions) -> None:
        """Random-pair cosine, IsoScore, I(W), norms, first-PC share (per layer too) and cosine by gold score."""
        _run("anisotropy", {"cosine_pairs": pairs, "seed": seed, "layers": not no_layers}, inputs, encoder)
