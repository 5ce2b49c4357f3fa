"""Predicted against delivered mean delay, per scenario x load x policy, from `dtoee compare`
outputs (docs/fidelity.md, section 3).

    python bench/prediction_table.py OUT [OUT ...]

OUT: a `dtoee compare` output folder (its results.parquet). Prints a Markdown table: the
delivered mean delay (mean over seeds), the predicted one (summary.json "predicted", the
policy as it ran; empty for a per-task dispatcher: not predicted), the error of the means
and the range of the per-seed errors (delivered - predicted, as a share of delivered), and
the realised-split figure (the same delay model fed the split each run measured), then where
the delay went, measured / predicted, per part: radio legs, backhaul, service, queueing.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pandas as pd


def table(frames: list[pd.DataFrame]) -> str:
    lines = ["| scenario | fidelity | load | policy | seeds | delivered (ms) | predicted (ms) | error | per-seed errors "
             "| realised split (ms) | its error | radio | backhaul | service | queue |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    pct = lambda d, p: f"{100 * (d - p) / d:+.1f}%"  # noqa: E731
    for frame in frames:
        frame = frame[frame["experiment"] == "steady"] if "experiment" in frame else frame
        for (load, policy), runs in frame.groupby(["load", "policy.kind"], sort=False):
            delivered = runs["delay_s.mean"].mean() * 1e3
            predicted = runs["predicted.mean_delay_s"].mean() * 1e3 if runs["predicted.mean_delay_s"].notna().all() else None
            realised = runs["predicted_realised_split.mean_delay_s"].mean() * 1e3
            errors = 100 * runs["prediction_error.mean_delay_rel"].dropna()
            spread = f"{errors.min():+.1f} .. {errors.max():+.1f}%" if len(errors) else "not predicted"
            parts = []
            for measured, model in (("radio", "access_delay_s"), ("backhaul", "network_delay_s"),
                                    ("compute", "service_delay_s"), ("queue", "queue_delay_s")):
                parts.append(f"{runs[f'delay_breakdown_s.{measured}'].mean() * 1e3:.1f} / "
                             f"{runs[f'predicted_realised_split.{model}'].mean() * 1e3:.1f}")
            lines.append(f"| {runs['scenario'].iloc[0]} | {','.join(sorted(set(runs['fidelity'])))} | {load:g} | {policy} | "
                         f"{len(runs)} | {delivered:.1f} | {'' if predicted is None else f'{predicted:.1f}'} | "
                         f"{'n/p' if predicted is None else pct(delivered, predicted)} | {spread} | {realised:.1f} | "
                         f"{pct(delivered, realised)} | " + " | ".join(parts) + " |")
    return "\n".join(lines)


if __name__ == "__main__":
    if len(sys.argv) < 2:
        print(__doc__.strip().splitlines()[2].strip(), file=sys.stderr)
        raise SystemExit(2)
    frames = [pd.read_parquet(Path(out) / "results.parquet") for out in sys.argv[1:]]
    print(table(frames))
