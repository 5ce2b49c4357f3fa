"""Figures of a radio sweep: delay and the radio's share of it against one swept radio field,
and per-task uplink time against the UE's distance from its eNB (from the traces).

    python -m dtoee.radio_plots SWEEP_DIR [SWEEP_DIR ...] --out DIR

For each sweep directory (``dtoee sweep``'s ``results.parquet``) whose first swept key is a
radio field, draws ``radio_<field>.png``: mean and p95 delay (one line per value of the
second swept key, e.g. UEs per cell) and the share of delay spent on the uplink and the
downlink (sum of transfer times over sum of delays, completed tasks after the warm-up).
``radio_distance.png`` pools the tasks of the sweeps over ``radio.bandwidth_rb``: uplink time
against UE distance, binned, one line per bandwidth.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import pandas as pd

from dtoee.trace import measured_completed

LABELS = {
    "radio.bandwidth_rb": "LTE bandwidth (resource blocks)",
    "radio.scheduler": "MAC scheduler",
    "radio.ue_tx_power_dbm": "UE transmit power (dBm)",
    "ue_groups.*.count": "UEs per cell",
    "ue_groups.*.radius_m": "cell radius of the UEs (m)",
}


def _swept(results: pd.DataFrame, directory: Path) -> list[str]:
    info = json.loads((directory / "sweep.json").read_text())
    keys = [key for key, _ in info["grid"]] if isinstance(info.get("grid"), list) else list(info.get("grid", {}))
    return [k for k in keys if k in results.columns]


def sweep_figure(directory: Path, out: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    results = pd.read_parquet(directory / "results.parquet")
    results = results[results["status"] == "complete"] if "status" in results.columns else results
    keys = _swept(results, directory)
    x_key = keys[0]
    group_key = next((k for k in keys[1:] if results[k].nunique() > 1), None)
    groups = sorted(results[group_key].unique()) if group_key else [None]
    categorical = not pd.api.types.is_numeric_dtype(results[x_key])
    xs_all = list(dict.fromkeys(results[x_key])) if categorical else sorted(results[x_key].unique())
    fig, axes = plt.subplots(1, 3, figsize=(14, 3.8), layout="constrained")
    flagged = False
    for group in groups:
        rows = results if group is None else results[results[group_key] == group]
        agg = rows.groupby(x_key, sort=False)[["delay_s.mean", "delay_s.p95", "radio_share.uplink",
                                               "radio_share.downlink"]].mean().reindex(xs_all)
        positions = np.arange(len(xs_all)) if categorical else np.asarray(xs_all, float)
        label = "" if group is None else f"{LABELS.get(group_key, group_key)} = {group}"
        line = axes[0].plot(positions, agg["delay_s.mean"] * 1e3, "o-", label=f"mean {label}")[0]
        axes[0].plot(positions, agg["delay_s.p95"] * 1e3, "s--", color=line.get_color(), label=f"p95 {label}")
        axes[1].plot(positions, agg["radio_share.uplink"], "o-", color=line.get_color(), label=label or "uplink")
        axes[2].plot(positions, agg["radio_share.downlink"], "o-", color=line.get_color(), label=label or "downlink")
        if "counts_by_status.in_flight" in rows.columns:  # overloaded: the completed are the lucky ones
            stuck = rows.groupby(x_key, sort=False)["counts_by_status.in_flight"].max().reindex(xs_all).to_numpy() > 0
            if stuck.any():
                axes[0].plot(positions[stuck], agg["delay_s.p95"].to_numpy()[stuck] * 1e3, "o", ms=14, mfc="none",
                             mec="red", label="_" if flagged else "tasks still in flight at the stop: delays understated")
                flagged = True
    axes[0].set_ylabel("response delay (ms)")
    if results["delay_s.p95"].max() > 10 * max(results["delay_s.mean"].min(), 1e-9):
        axes[0].set_yscale("log")
    axes[1].set_ylabel("uplink share of delay")
    axes[2].set_ylabel("downlink share of delay")
    axes[1].set_ylim(0, 1)
    axes[2].set_ylim(0, max(0.05, float(results["radio_share.downlink"].max()) * 1.3))
    for ax in axes:
        ax.set_xlabel(LABELS.get(x_key, x_key))
        if categorical:
            ax.set_xticks(range(len(xs_all)), xs_all)
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=7)
    if group_key:
        axes[1].legend(fontsize=7)
    fig.suptitle(f"{directory.name}: one seed per point; exits and compute ESTIMATED (large_model)", fontsize=9)
    return _saved(fig, out / f"radio_{x_key.split('.')[-1]}.png")


def _saved(fig, path: Path) -> Path:
    import matplotlib.pyplot as plt

    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


def distance_table(directories: list[Path], bins_m=(0, 100, 150, 200, 250)) -> pd.DataFrame:
    """Uplink time (mean, p95, s) and count of completed tasks by UE distance bin, per
    bandwidth, pooled over the runs of the given sweeps."""
    frames = []
    for directory in directories:
        results = pd.read_parquet(directory / "results.parquet")
        for _, row in results.iterrows():
            run = directory / "runs" / row["run_id"]
            tasks = pd.read_parquet(run / "tasks.parquet")
            summary = json.loads((run / "summary.json").read_text())
            done = measured_completed(tasks, summary.get("measured_from_s", 0.0))
            bandwidth = row.get("radio.bandwidth_rb", 25)
            frames.append(done.assign(bandwidth_rb=int(bandwidth) if pd.notna(bandwidth) else 25,
                                      sweep=directory.name))
    tasks = pd.concat(frames, ignore_index=True)
    tasks["distance_m"] = pd.cut(tasks["ue_distance_m"], list(bins_m))
    return (tasks.groupby(["bandwidth_rb", "distance_m"], observed=True)["uplink_s"]
            .agg(n="size", mean="mean", p95=lambda s: s.quantile(0.95)).reset_index())


def distance_figure(directories: list[Path], out: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    table = distance_table(directories)
    fig, ax = plt.subplots(figsize=(6.5, 3.8), layout="constrained")
    for bandwidth, rows in table.groupby("bandwidth_rb"):
        centres = [interval.mid for interval in rows["distance_m"]]
        ax.plot(centres, rows["mean"] * 1e3, "o-", label=f"{bandwidth} RB")
    ax.set_xlabel("UE distance from its eNB (m)")
    ax.set_ylabel("mean uplink time per task (ms)")
    ax.set_yscale("log")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    ax.set_title("uplink time vs distance (all UE counts pooled)", fontsize=9)
    return _saved(fig, out / "radio_distance.png")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m dtoee.radio_plots", description=__doc__.splitlines()[0])
    parser.add_argument("sweeps", nargs="+", type=Path)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    for directory in args.sweeps:
        print(sweep_figure(directory, args.out))
    # Distance by bandwidth: from the sweeps over bandwidth (others run at their own settings).
    over_bandwidth = [d for d in args.sweeps
                      if "radio.bandwidth_rb" in _swept(pd.read_parquet(d / "results.parquet"), d)]
    print(distance_figure(over_bandwidth or args.sweeps, args.out))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
