"""Where a packet-level run's radio legs settle, and how short a radio calibration can be.

    .venv/bin/python bench/radio_transient.py PACKET_RUN_DIR [OTHER_RUN_DIR ...] [--bin 1]
                                              [--from 3] [--windows 1,2,3,5]
                                              [--measured-from 5,6,7,8]

Reads the run directories ``bench/fidelity.py --keep`` leaves (``tasks.parquet``,
``hops.parquet``). Table 1, per ``--bin`` seconds of task creation: tasks, the packet run's
mean delay, mean uplink leg (UE -> serving server: LTE + EPC + core link) and mean result
leg, and each other run's mean delay (e.g. the hybrid and analytic runs of the same seed).
The attach transient shows as uplink legs far above their later level.

Table 2, from the packet run's own legs: the per-cell empirical model
(:class:`dtoee.network.RadioDelayModel`) built from legs that start in
``[--from, --from + w)`` for each window ``w``, against the one built from every leg after
``--from``: its mean uplink and result leg over all tasks' cells and the largest per-cell
difference of the mean. A calibration whose window gives the same means is long enough.
Table 3, for each ``--measured-from`` time: mean and p95 delay of the tasks created from
then on, per run, and each other run's error against the packet run (what the summary's
figures would be with that ``simulation.warmup_s``). Prints markdown; appends nothing.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _report import markdown_table  # noqa: E402


def per_bin(packet: Path, others: list[Path], bin_s: float) -> str:
    tasks = pd.read_parquet(packet / "tasks.parquet")
    tasks = tasks[tasks["status"] == "completed"]
    tasks["bin"] = (tasks["created_s"] // bin_s).astype(int)
    rows = []
    other = {run: pd.read_parquet(run / "tasks.parquet") for run in others}
    for b, group in tasks.groupby("bin"):
        row = [f"{b * bin_s:g}-{(b + 1) * bin_s:g}", len(group), f"{1e3 * group['delay_s'].mean():.1f}",
               f"{1e3 * group['uplink_s'].mean():.1f}", f"{1e3 * group['downlink_s'].mean():.1f}"]
        for run, frame in other.items():
            done = frame[(frame["status"] == "completed") & ((frame["created_s"] // bin_s).astype(int) == b)]
            row.append(f"{1e3 * done['delay_s'].mean():.1f}")
        rows.append(row)
    return markdown_table(["created (s)", "tasks", "packet mean delay (ms)", "uplink leg (ms)", "result leg (ms)"]
                          + [f"{run.name} mean delay (ms)" for run in others], rows)


def windows(packet: Path, from_s: float, widths: list[float]) -> str:
    hops = pd.read_parquet(packet / "hops.parquet")
    tasks = pd.read_parquet(packet / "tasks.parquet")
    serving = dict(zip("ue:" + tasks["ue"].astype(str), tasks["entry_node"]))  # UE -> its cell
    legs = hops[hops["kind"].isin(["uplink", "result"]) & (hops["start_s"] >= from_s)].copy()
    legs["cell"] = np.where(legs["kind"] == "uplink", legs["src"].map(serving), legs["dst"].map(serving))
    legs["leg_s"] = legs["end_s"] - legs["start_s"]
    weights = tasks["entry_node"].value_counts(normalize=True)  # tasks' cells, as the runs weight them

    def model(frame: pd.DataFrame) -> dict[str, pd.Series]:
        return {kind: frame[frame["kind"] == kind].groupby("cell")["leg_s"].mean() for kind in ("uplink", "result")}

    full = model(legs)
    rows = []
    for width in widths + [float("inf")]:
        part = legs[legs["start_s"] < from_s + width]
        m = model(part)
        row = [f"{from_s:g}-{from_s + width:g}" if width < float("inf") else f"{from_s:g}-end (all)", len(part)]
        for kind in ("uplink", "result"):
            means = m[kind].reindex(full[kind].index).fillna(part.loc[part["kind"] == kind, "leg_s"].mean())
            overall = float((means * weights.reindex(means.index).fillna(0)).sum() / weights.reindex(means.index).fillna(0).sum())
            worst = float(((means - full[kind]) / full[kind]).abs().max())
            row += [f"{1e3 * overall:.2f}", f"{100 * worst:.1f}"]
        rows.append(row)
    return markdown_table(["legs starting in (s)", "legs", "uplink mean (ms)", "worst cell's uplink vs all (%)",
                           "result mean (ms)", "worst cell's result vs all (%)"], rows)


def from_times(packet: Path, others: list[Path], times: list[float]) -> str:
    frames = {run: pd.read_parquet(run / "tasks.parquet") for run in [packet, *others]}
    rows = []
    for start in times:
        figures = {}
        for run, frame in frames.items():
            delay = frame.loc[(frame["status"] == "completed") & (frame["created_s"] >= start), "delay_s"]
            figures[run] = (delay.mean(), delay.quantile(0.95))
        ref_mean, ref_p95 = figures[packet]
        row = [f"{start:g}", f"{1e3 * ref_mean:.1f} / {1e3 * ref_p95:.1f}"]
        for run in others:
            mean, p95 = figures[run]
            row.append(f"{1e3 * mean:.1f} / {1e3 * p95:.1f} ({100 * (mean - ref_mean) / ref_mean:+.1f}% / "
                       f"{100 * (p95 - ref_p95) / ref_p95:+.1f}%)")
        rows.append(row)
    return markdown_table(["measured from (s)", "packet mean / p95 (ms)"]
                          + [f"{run.name} mean / p95 (ms, error)" for run in others], rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("packet", type=Path)
    parser.add_argument("others", type=Path, nargs="*")
    parser.add_argument("--bin", type=float, default=1.0)
    parser.add_argument("--from", dest="from_s", type=float, default=3.0)
    parser.add_argument("--windows", default="1,2,3,5")
    parser.add_argument("--measured-from", default="", help="comma-separated warm-ups for table 3")
    args = parser.parse_args()
    print(per_bin(args.packet, args.others, args.bin))
    print()
    print(windows(args.packet, args.from_s, [float(w) for w in args.windows.split(",")]))
    if args.measured_from:
        print()
        print(from_times(args.packet, args.others, [float(t) for t in args.measured_from.split(",")]))


if __name__ == "__main__":
    main()
