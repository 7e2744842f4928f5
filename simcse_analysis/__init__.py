"""simcse-analysis: train SimCSE checkpoints and analyse sentence-embedding spaces.

The notebook API, one entry point per job (each the function the matching CLI command calls)::

    import simcse_analysis as sa

    enc = sa.load_encoder("all-MiniLM-L6-v2@avg")             # an Encoder: .encode(sentences)
    sts = sa.evaluate_sts("all-MiniLM-L6-v2", "STSBenchmark")   # STSResult: Spearman ×100 per task, 95% CIs
    a = sa.analyze(["all-MiniLM-L6-v2"], umap=False)          # Analysis: .models, .figures.align_uniform()
    c = sa.compare(["all-MiniLM-L6-v2@avg", "all-MiniLM-L6-v2@cls_before_pooler"])  # ComparisonReport
    sa.report(a, out="out/minilm.html", tokens=True)          # the HTML page (Report renders inline);
                                                              # comparison=c: c's section (c's checkpoints analysed)
    run = sa.train(sa.TrainConfig("unsup", "all-MiniLM-L6-v2", ["wiki.txt"], "runs/x"))  # RunResult

This namespace is a façade (README, "Module map"): names resolve lazily (PEP 562) from the modules
that define them, so ``import simcse_analysis`` loads neither torch nor plotly, and the
``TYPE_CHECKING`` imports below give IDEs and type checkers the real signatures. ``train`` comes from
``trainers`` and ``analyze``/``report`` from ``reports`` (layer 2); the import contract lets this
namespace module (and the CLI) reach them, and forbids every library module to import the namespace,
so the façade can never become a back door from the core to the layers above it.
"""

from __future__ import annotations

import importlib

from .version import __version__

# typing.TYPE_CHECKING without importing typing (~9 ms); mypy and pyright treat this name the same way
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from reports.result import (
        Analysis,
        AnalysisFigures,
        FigureNotAvailable,
        Report,
        analyze,
        load_analysis,
        report,
    )
    from simcse_analysis.comparison import CompareSettings, ComparisonReport, compare
    from simcse_analysis.encoder import Encoder, load_encoder
    from simcse_analysis.errors import InputError
    from simcse_analysis.pooling import POOLERS
    from simcse_analysis.records import EmptyModelListError, ModelSummary, SchemaError, SchemaVersionError
    from simcse_analysis.sts_eval import STSResult, evaluate_sts
    from trainers.config import TrainConfig
    from trainers.loop import train
    from trainers.rundir import RunResult

__all__ = [
    "POOLERS",
    "Analysis",
    "AnalysisFigures",
    "CompareSettings",
    "ComparisonReport",
    "EmptyModelListError",
    "Encoder",
    "FigureNotAvailable",
    "InputError",
    "ModelSummary",
    "Report",
    "RunResult",
    "STSResult",
    "SchemaError",
    "SchemaVersionError",
    "TrainConfig",
    "__version__",
    "analyze",
    "compare",
    "evaluate_sts",
    "load_analysis",
    "load_encoder",
    "report",
    "train",
]

# name -> module that defines it (the same pairs as the TYPE_CHECKING block; tests/test_api.py checks both)
_LAZY = {
    "load_encoder": "simcse_analysis.encoder",
    "Encoder": "simcse_analysis.encoder",
    "InputError": "simcse_analysis.errors",
    "POOLERS": "simcse_analysis.pooling",
    "evaluate_sts": "simcse_analysis.sts_eval",
    "compare": "simcse_analysis.comparison",
    "CompareSettings": "simcse_analysis.comparison",
    "ComparisonReport": "simcse_analysis.comparison",
    "STSResult": "simcse_analysis.sts_eval",
    "EmptyModelListError": "simcse_analysis.records",
    "ModelSummary": "simcse_analysis.records",
    "SchemaError": "simcse_analysis.records",
    "SchemaVersionError": "simcse_analysis.records",
    "analyze": "reports.result",
    "load_analysis": "reports.result",
    "report": "reports.result",
    "Analysis": "reports.result",
    "AnalysisFigures": "reports.result",
    "FigureNotAvailable": "reports.result",
    "Report": "reports.result",
    "train": "trainers.loop",
    "TrainConfig": "trainers.config",
    "RunResult": "trainers.rundir",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'simcse_analysis' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # later look-ups skip __getattr__
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
