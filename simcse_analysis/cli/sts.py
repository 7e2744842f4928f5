"""``simcse-analyze eval``: the SimCSE paper's STS table (Spearman ×100 of cosine) for checkpoints."""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from typing import Annotated

import typer

from ..path_safety import data_inputs
from ..tables import format_table
from .help_format import examples
from .options import (
    AggregationName,
    DataDir,
    EncoderOptions,
    JsonOut,
    Models,
    SplitName,
    VariantName,
    check_outputs,
    with_encoder_options,
    with_progress,
    write_output,
)

Tasks = Annotated[str | None, typer.Option(
    "--tasks", help="Comma-separated tasks: STS12..STS16, STSBenchmark (sts-b), SICKRelatedness (sick-r) "
                    "(default: all that have --split).")]
Split = Annotated[SplitName, typer.Option(
    "--split", case_sensitive=False, help="Split of STS-B and SICK-R (STS12-16 are test sets only).")]
Variant = Annotated[VariantName, typer.Option(
    "--variant", case_sensitive=False, help="senteval: the SentEval-processed copy, as the paper; raw: the originals.")]
Aggregation = Annotated[AggregationName, typer.Option(
    "--aggregation", case_sensitive=False,
    help="STS12-16 over their sub-datasets: all (SimCSE: one Spearman over all pairs), mean or wmean (SentEval).")]


Resamples = Annotated[int, typer.Option(
    "--resamples", help="Bootstrap resamples for the 95% CIs (>= 100; 0 = no CIs).")]
CISeed = Annotated[int, typer.Option("--seed", help="Seed of the bootstrap.")]


def _fmt(x: float | None) -> str:
    return "n/a" if x is None or not math.isfinite(x) else f"{x:.2f}"


def sts_table(results: Sequence) -> str:
    """One row per model: model, pooler, each task's Spearman ×100 and ``avg`` (2 decimals)."""
    tasks = [t for t in results[0].scores if t != "avg"] if results else []
    headers = ["model", "pooler", *tasks, "avg"]
    rows = [[r.model, r.pooler, *(_fmt(r.scores.get(t)) for t in tasks), _fmt(r.scores.get("avg"))]
            for r in results]
    return format_table(headers, rows, right=[False, False] + [True] * (len(tasks) + 1))


def ci_table(results: Sequence) -> str:
    """The CIs of :func:`sts_table`, compact: ``low–high`` per task and ``avg`` (empty without intervals)."""
    with_ci = [r for r in results if getattr(r, "intervals", None)]
    if not with_ci:
        return ""
    tasks = [t for t in with_ci[0].scores if t != "avg"] + ["avg"]
    ci = with_ci[0].ci or {}
    level = 100 * (1 - float(ci.get("alpha", 0.05)))
    rows = [[r.model, r.pooler, *(f"{_fmt(r.intervals.get(t, {}).get('low'))}-{_fmt(r.intervals.get(t, {}).get('high'))}"
                                  for t in tasks)] for r in with_ci]
    head = f"{level:g}% CI ({ci.get('method', 'bootstrap')}, {ci.get('resamples')} resamples, seed {ci.get('seed')}):"
    return head + "\n" + format_table(["model", "pooler", *tasks], rows, right=[False, False] + [True] * len(tasks))


EXAMPLES = examples(
    "simcse-analyze eval all-MiniLM-L6-v2 --data-dir ../shared/data",
    "simcse-analyze eval all-MiniLM-L6-v2@avg all-MiniLM-L6-v2@cls_before_pooler --tasks sts-b,sick-r",
    "simcse-analyze eval runs/unsup --split dev --json dev.json",
    "simcse-analyze eval all-MiniLM-L6-v2 --resamples 0 --json - | jq .results[0].scores")


def register(app: typer.Typer) -> None:
    @app.command("eval", rich_help_panel="Analysis", epilog=EXAMPLES,
                 short_help="STS Spearman ×100 per task and average, with 95% CIs.")
    @with_progress("eval")
    @with_encoder_options
    def eval_cmd(
        models: Models,
        tasks: Tasks = None,
        split: Split = "test",
        variant: Variant = "senteval",
        aggregation: Aggregation = "all",
        json_out: JsonOut = None,
        data_dir: DataDir = None,
        resamples: Resamples = 1000,
        seed: CISeed = 0,
        *,
        encoder: EncoderOptions,
    ) -> None:
        """STS Spearman ×100 of cosine similarity per task and their average (with 95% CIs), one row per model."""
        from .. import progress
        from ..pooling import split_pooler
        from ..sts_data import SEMEVAL_TASKS, canonical_split, check_variant, load_sts, parse_tasks
        from ..sts_eval import check_aggregation, evaluate_sts, planned_sentences, results_to_json

        to_stderr = check_outputs(("--json", json_out), reads=[*(("MODEL", m) for m in models), *data_inputs(data_dir)])
        split_c, variant_c = canonical_split(split), check_variant(variant)
        check_aggregation(aggregation)
        if resamples:
            from ..metrics.stats import check_resamples

            check_resamples(resamples)
        chosen = parse_tasks(tasks) if tasks is not None else [
            t for t in parse_tasks(None) if split_c == "test" or t not in SEMEVAL_TASKS]
        data = {t: load_sts(t, data_dir, split_c, variant_c) for t in chosen}  # fail on bad data before any model

        from ..encoder import check_checkpoint, describe_checkpoint, load_encoder

        specs = [split_pooler(m) for m in models]
        labels = []
        for name, pooler in specs:  # every checkpoint is checked before the first one encodes anything
            check_checkpoint(name, trust_remote_code=encoder.trust_remote_code)
            labels.append(f"{name}@{describe_checkpoint(name, pooler or encoder.pooler)['pooler']}")
        per_model = sum(planned_sentences(data))
        progress.plan(len(specs) * per_model)
        results = []
        for (name, pooler), label in progress.each(list(zip(specs, labels)), lambda item: item[1]):
            with progress.stage("loading"):
                enc = load_encoder(name, **{**encoder.load_kwargs, "pooler": pooler or encoder.pooler})
            with progress.stage("STS", per_model), progress.covered():
                results.append(evaluate_sts(enc, chosen, data_dir, split_c, variant_c, aggregation,
                                            encoder.batch_size, model=name, resamples=resamples or None, seed=seed))
            del enc
        typer.echo(sts_table(results), err=to_stderr)
        if resamples:
            typer.echo(ci_table(results), err=to_stderr)
        if json_out is not None:
            write_output(json_out, json.dumps(results_to_json(results), indent=2) + "\n", to_stderr=to_stderr)
