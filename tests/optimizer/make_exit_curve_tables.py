"""Regenerate ``tests/optimizer/data/exit_curves.json``: the exit curves of every model family.

The optimizer tests use real (non-concave) exit curves without training models at test
time; this script trains (or loads from the cache) each family's seed-0 model and stores
its per-exit curves on the default threshold grid (0, 0.01, ..., 1)::

    PYTHONPATH=. python tests/optimizer/make_exit_curve_tables.py

Needs the ``inference`` package (torch); training all four takes ~2 CPU minutes.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

OUT = Path(__file__).parent / "data" / "exit_curves.json"
FAMILIES = ("mlp", "resnet", "vit", "llama")


def main() -> int:
    from inference.staged import load_staged_model

    tables = {}
    for family in FAMILIES:
        model = load_staged_model(family, seed=0)
        tables[family] = [
            {
                "stage": int(c.stage),
                "thresholds": [round(float(t), 6) for t in c.thresholds],
                "exit_share": [round(float(v), 6) for v in c.exit_share],
                "accuracy_of_exited": [None if math.isnan(v) else round(float(v), 6) for v in c.accuracy_of_exited],
                "test_accuracy": round(float(c.test_accuracy), 6),
            }
            for c in model.exit_curves()
        ]
        print(family, [c["test_accuracy"] for c in tables[family]])
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps({"source": "inference.staged.load_staged_model(family, seed=0).exit_curves()",
                               "families": tables}, indent=None, separators=(",", ":")) + "\n")
    print(f"wrote {OUT}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
