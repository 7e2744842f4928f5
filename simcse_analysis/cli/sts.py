"""``simcse-analyze eval``: the SimCSE paper's STS table (Spearman ×100 of cosine) for checkpoints."""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from typing import Annotated

import typer

from ..path_safety import data_inputs
from ..tables import format_table
from .options import (
    DataDir,
    EncoderOptions,
    JsonOut,
    Models,
    check_outputs,
    with_encoder_options,
    write_output,
)

Tasks = Annotated[str | None, typer.Option(
    "--tasks", help="Comma-separated tasks: STS12..STS16, STSBenchmark (sts-b), SICKRelatedness (sick-r) "
                    "(default: all that have --split).")]
Split = Annotated[str, typer.Option("--split", help="test | dev (dev: STS-B and SICK-R only).")]
Variant = Annotated[str, typer.Option("--variant", help="senteval (SentEval-processed, as the paper) | raw.")]
Aggregation = Annotated[str, typer.Option(
    "--aggregation", help="STS12-16 over sub-datasets: all (SimCSE: one Spearman over all pairs) | mean | wmean.")]


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


def register(app: typer.Typer) -> None:
    @app.command("eval")
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
        from ..sts_data import SEMEVAL_TASKS, canonical_split, check_variant, load_sts, parse_tasks
        from ..sts_eval import check_aggregation, evaluate_sts, results_to_json

        to_stderr = check_outputs(("--json", json_out), reads=[*(("MODEL", m) for m in models), *data_inputs(data_dir)])
        split_c, variant_c = canonical_split(split), check_variant(variant)
        check_aggregation(aggregation)
        if resamples:
            from ..metrics.stats import check_resamples

            check_resamples(resamples)
        chosen = parse_tasks(tasks) if tasks is not None else [
            t for t in parse_tasks(None) if split_c == "test" or t not in SEMEVAL_TASKS]
        for t in chosen:  # fail on missing/malformed data before loading any model
            load_sts(t, data_dir, split_c, variant_c)

        from ..encoder import check_checkpoint, load_encoder

        for name in models:  # every checkpoint is checked before the first one encodes anything
            check_checkpoint(name, trust_remote_code=encoder.trust_remote_code)
        results = []
        for name in models:
            enc = load_encoder(name, **encoder.load_kwargs)
            results.append(evaluate_sts(enc, chosen, data_dir, split_c, variant_c, aggregation, encoder.batch_size,
                                        resamples=resamples or None, seed=seed))
            del enc
        typer.echo(sts_table(results), err=to_stderr)
        if resamples:
            typer.echo(ci_table(results), err=to_stderr)
        if json_out is not None:
            write_output(json_out, json.dumps(results_to_json(results), indent=2) + "\n", to_stderr=to_stderr)
