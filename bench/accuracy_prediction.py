"""Predicted against delivered accuracy for every policy of the registry (docs/fidelity.md, section 2).

    .venv/bin/python bench/accuracy_prediction.py SCENARIO [--family vit] [--duration 20] [--policies a,b]
                                                  [--out rows.csv]

Runs SCENARIO once per policy (radio off, packet-level backhaul, the scenario's seed) and prints
one markdown row each: delivered accuracy; the prediction on the run's own samples with the
strategies as they ran (summary.json's ``accuracy_on_run_samples``) with its routing standard
error; the old all-sample curves on the same samples and strategies; the prediction over the
whole split with its sampling standard error. The docs table came from

    bench/accuracy_prediction.py scenarios/city_small.toml --family mlp
    bench/accuracy_prediction.py scenarios/city_small.toml --family vit
    bench/accuracy_prediction.py scenarios/city_llm.toml
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests" / "dtoee"))


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("scenario")
    parser.add_argument("--family", default=None)
    parser.add_argument("--duration", type=float, default=20.0)
    parser.add_argument("--out", default=None)
    parser.add_argument("--policies", default=None, help="comma-separated registry names (default: all)")
    args = parser.parse_args()

    from ns3_glue.build import load_glue

    load_glue()  # once, before the runs fork
    from dtoee.config import load_scenario
    from dtoee.run import run_isolated
    from dtoee.trace import measured_completed
    from optimizer.registry import POLICIES
    from test_prediction import _recomputed  # the acceptance test's own recomputation

    rows = []
    print("| family | policy | tasks | delivered | on the run's samples (error, routing s.e.) | "
          "old curves, same samples and strategies (error) | over the split (error, sampling s.e.) |")
    print("|---|---|---|---|---|---|---|")
    for policy in (args.policies.split(",") if args.policies else POLICIES):
        sets = [f"policy.kind={policy}", f"simulation.duration_s={args.duration}", "simulation.drain_s=3",
                "radio.enabled=false", "simulation.progress=false"]
        if args.family:
            sets.append(f"model.family={args.family}")
        scenario = load_scenario(args.scenario, sets)
        run_dir = Path(tempfile.mkdtemp(prefix="accuracy-prediction-"))
        summary = run_isolated(scenario, run_dir)
        p, e = summary["predicted"], summary["prediction_error"]
        tasks = measured_completed(pd.read_parquet(run_dir / "tasks.parquet"), scenario.simulation.warmup_s)
        _, old, _ = _recomputed(scenario, run_dir, tasks)
        delivered = summary["accuracy"]
        row = dict(family=scenario.model.family, policy=policy, tasks=p["run_samples"], delivered=delivered,
                   on_run=p["accuracy_on_run_samples"], on_run_error_pts=e["accuracy_on_run_samples_pts"],
                   routing_se_pts=100 * p["accuracy_routing_se"], old_curves=old,
                   old_error_pts=100 * (delivered - old), split=p["accuracy"], split_error_pts=e["accuracy_pts"],
                   sampling_se_pts=100 * p["accuracy_sampling_se"], strategies=p["run_strategies"])
        rows.append(row)
        print(f"| {row['family']} | {policy} | {row['tasks']} | {delivered:.4f} | {row['on_run']:.4f} "
              f"({row['on_run_error_pts']:+.2f}, {row['routing_se_pts']:.2f}) | {old:.4f} ({row['old_error_pts']:+.2f}) | "
              f"{row['split']:.4f} ({row['split_error_pts']:+.2f}, {row['sampling_se_pts']:.2f}) |", flush=True)
    if args.out:
        pd.DataFrame(rows).to_csv(args.out, index=False)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
