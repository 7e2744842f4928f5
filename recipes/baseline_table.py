"""Print the baseline comparison table of a report record (``simcse-analyze report … --json F``).

One row per checkpoint: what it is (baseline name, else the training objective), the 7-task STS test average
(Spearman ×100, SentEval protocol), alignment and uniformity (STS-B pairs with gold > 4 / all STS-B sentences,
Wang & Isola 2020) and IsoScore (Rudman et al. 2022) of the same sentences.

    python recipes/baseline_table.py runs/compare/report.json
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def rows(record: dict) -> list[list[str]]:
    out = []
    for m in record["models"]:
        meta = m.get("checkpoint_metadata") or {}
        kind = m.get("baseline") or meta.get("objective") or "base"
        f = lambda x, digits: "n/a" if x is None else f"{x:.{digits}f}"
        out.append([m["label"], str(kind), m["pooler"], f(m["sts_test"]["scores"].get("avg"), 2),
                    f(m["align_uniform"]["alignment"], 4), f(m["align_uniform"]["uniformity"], 4),
                    f(m["anisotropy"]["summary"]["isoscore"], 4)])
    return out


def main(path: str) -> None:
    from simcse_analysis.tables import format_table

    record = json.loads(Path(path).read_text(encoding="utf-8"))
    print(format_table(["checkpoint", "kind", "pooler", "STS avg", "alignment", "uniformity", "IsoScore"],
                       rows(record), right=[False, False, False, True, True, True, True]))


if __name__ == "__main__":
    main(sys.argv[1])
