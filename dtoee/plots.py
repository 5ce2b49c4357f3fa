"""Figures (matplotlib, PNG) of a run, a sweep or a comparison; ``dtoee plot DIR`` picks
which (``dtoee.experiments.plot_directory``).

* run (``summary.json``): delay CDF, windowed mean delay over time, exit share per stage,
  utilisation per node, thresholds over time (``policy.parquet``), where the delay went
  (radio, backhaul, queues, compute: ``dtoee.analysis.delay_breakdown`` of ``hops.parquet``);
* sweep (``results.parquet``): mean delay and accuracy against each swept value (95%
  interval over seeds), one line per combination of the other swept values; the delay
  breakdown per swept value (and per policy, when ``policy.kind`` is swept);
* comparison: the figure functions below take plain frames and arrays;
  ``dtoee.compare.comparison_plots`` reads the runs and calls them (delay and accuracy vs
  load, delay CDF, exit share per stage, per-node utilisation, delay breakdown per policy,
  convergence, adaptation).

Means and intervals come from ``dtoee.analysis.mean_ci`` (no interval from one seed: no bar),
windowed delays from ``dtoee.analysis.windowed_mean_delay``.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from dtoee.analysis import mean_ci, windowed_mean_delay
from dtoee.trace import measured_completed


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    _plt().close(fig)
    return path


def _columns(frame: pd.DataFrame, prefix: str) -> list[str]:
    return [c for c in frame.columns if c.startswith(prefix)]




def _errorbar(ax, xs, stats, label: str) -> np.ndarray:
    """Means with their real 95% t-intervals, mean +- half-width, never clipped (a NaN
    half-width draws no bar). Returns the means drawn."""
    means = np.array([m for m, _ in stats], float)
    half_widths = np.nan_to_num(np.array([c for _, c in stats], float))
    ax.errorbar(xs, means, yerr=half_widths, marker="o", capsize=3, label=label)
    return means


def _interval_lows(ax) -> np.ndarray:
    """Lower ends of every interval bar drawn on ``ax`` (``errorbar``, and ``bar`` with yerr)."""
    from matplotlib.container import ErrorbarContainer

    lows = []
    for container in ax.containers:
        if isinstance(container, ErrorbarContainer):
            for collection in container.lines[2]:
                lows.extend(float(segment[:, 1].min()) for segment in collection.get_segments())
    return np.asarray(lows, float)


def _log_if_wide(ax, means, span: float = 10.0) -> None:
    """Logarithmic y when the plotted means span more than ``span`` times (an overloaded
    baseline's seconds next to others' milliseconds). A log axis cannot show an interval that
    reaches zero or below: then the axis is symlog instead (linear within the smallest
    positive mean of zero, so such intervals are drawn as they are) and the plot says so."""
    values = np.asarray(means, float).ravel()
    values = values[np.isfinite(values) & (values > 0)]
    if not (len(values) and values.max() / values.min() > span):
        return
    lows = _interval_lows(ax)
    if np.all(lows[np.isfinite(lows)] > 0):
        ax.set_yscale("log")
        return
    linear_within = float(values.min())
    ax.set_yscale("symlog", linthresh=linear_within)
    ax.text(0.01, 0.01, f"symlog axis (linear within +-{linear_within:.3g}): some 95% intervals reach 0 or below",
            transform=ax.transAxes, fontsize=6, va="bottom", ha="left", color="0.3")


# Single run ------------------------------------------------------------------------------

def run_plots(run_dir: Path, out: Path) -> list[Path]:
    plt = _plt()
    summary = json.loads((run_dir / "summary.json").read_text())
    tasks = pd.read_parquet(run_dir / "tasks.parquet")
    warmup_s = summary.get("measured_from_s", 0.0)
    measured = measured_completed(tasks, warmup_s)  # the tasks summary.json describes
    paths = []
    if not measured.empty:
        fig, ax = plt.subplots(figsize=(5, 3.5))
        delay = np.sort(measured["delay_s"].to_numpy() * 1e3)
        ax.plot(delay, np.arange(1, len(delay) + 1) / len(delay))
        title = f"{summary['scenario']} seed {summary['seed']}" + (f", after {warmup_s:g} s warm-up" if warmup_s else "")
        ax.set(xlabel="response delay (ms)", ylabel="CDF", title=title)
        ax.grid(alpha=0.3)
        paths.append(_save(fig, out / "delay_cdf.png"))
    if (tasks["status"] == "completed").any():  # over time: the warm-up too, it is the transient
        fig, ax = plt.subplots(figsize=(6, 3.5))
        duration = float(tasks["created_s"].max()) if len(tasks) else 1.0
        window = max(duration / 40, 0.25)
        last_s = float(tasks.loc[tasks["status"] == "completed", "created_s"].max())
        windows = windowed_mean_delay(tasks, window, step_s=window, end_s=last_s + window)
        ax.plot(windows["start_s"], windows["mean_delay_s"] * 1e3, drawstyle="steps-post")
        ax.set(xlabel="task creation time (s)", ylabel=f"mean delay (ms), {window:g} s windows")
        ax.grid(alpha=0.3)
        paths.append(_save(fig, out / "delay_over_time.png"))

    shares = summary.get("exit_share_by_stage", {})
    if shares:
        fig, ax = plt.subplots(figsize=(4.5, 3.5))
        ax.bar(list(shares), list(shares.values()))
        ax.set(xlabel="exit stage", ylabel="share of completed tasks", ylim=(0, 1))
        paths.append(_save(fig, out / "exit_share.png"))
    utilisation = summary.get("utilisation_by_node", {})
    if utilisation:
        fig, ax = plt.subplots(figsize=(5, 3.5))
        ax.bar(list(utilisation), list(utilisation.values()))
        ax.set(xlabel="node", ylabel="utilisation")
        paths.append(_save(fig, out / "utilisation.png"))
    policy_path = run_dir / "policy.parquet"
    if policy_path.exists():
        policy = pd.read_parquet(policy_path)
        if policy["time_s"].nunique() > 1:
            paths.append(policy_plot(policy, out / "policy_over_time.png", title=summary.get("policy", "")))
    hops_path = run_dir / "hops.parquet"
    if hops_path.exists() and not measured.empty:
        from dtoee.analysis import delay_breakdown

        parts = delay_breakdown(pd.read_parquet(hops_path), tasks, warmup_s)["mean_s"]
        fig, ax = plt.subplots(figsize=(6.5, 2.6))
        breakdown_bars(ax, [f"{summary.get('policy', 'run')}"], [parts], summary.get("stage_figures_estimated", False))
        ax.set_ylabel(f"{summary['scenario']} seed {summary['seed']}", fontsize=7)
        paths.append(_save(fig, out / "delay_breakdown.png"))
    return paths


BREAKDOWN_COLOURS = {"radio": "tab:blue", "backhaul": "tab:orange", "queue": "tab:red", "compute": "tab:green",
                     "other": "tab:gray"}


def breakdown_bars(ax, labels: list[str], parts: list[dict], estimated: bool = False) -> None:
    """Horizontal stacked bars, one per label: mean ms per task on the radio (LTE up and down,
    with the core link), the backhaul, in queues and in compute (``delay_breakdown``'s parts)."""
    from dtoee.analysis import BREAKDOWN_PARTS

    left = np.zeros(len(labels))
    for part in BREAKDOWN_PARTS:
        values = np.array([p.get(part) if p.get(part) is not None else np.nan for p in parts], float) * 1e3
        values = np.nan_to_num(values)
        if part == "other" and np.all(np.abs(values) < 1e-6):
            continue
        name = "compute (ESTIMATED service times)" if part == "compute" and estimated else part
        ax.barh(range(len(labels)), values, left=left, color=BREAKDOWN_COLOURS[part], label=name)
        left += values
    ax.set_yticks(range(len(labels)), labels, fontsize=7)
    ax.set_xlabel("mean delay per task (ms)")
    ax.legend(fontsize=7, ncol=3, loc="lower center", bbox_to_anchor=(0.5, 1.0), frameon=False)
    ax.grid(alpha=0.3, axis="x")


def policy_plot(policy: pd.DataFrame, path: Path, title: str = "") -> Path:
    """Thresholds (left) and offloading probabilities (right) of every node over time."""
    plt = _plt()
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 3.8))
    thresholds = policy[policy["kind"] == "threshold"]
    last_stage = int(policy["stage"].max()) if len(policy) else 0
    for (node, stage), rows in thresholds[thresholds["stage"] < last_stage].groupby(["node", "stage"]):
        left.plot(rows["time_s"], rows["value"], drawstyle="steps-post", label=f"{node} exit {stage}")
    left.set(xlabel="simulated time (s)", ylabel="confidence threshold", title=f"{title} thresholds".strip())
    offload = policy[(policy["kind"] == "offload")]
    varying = offload.groupby(["node", "stage", "target"])["value"].transform(lambda v: v.max() - v.min()) > 1e-9
    for (node, stage, target), rows in offload[varying].groupby(["node", "stage", "target"]):
        right.plot(rows["time_s"], rows["value"], drawstyle="steps-post", label=f"{node}->{target} s{stage}")
    right.set(xlabel="simulated time (s)", ylabel="offloading probability", title="offloading (entries that change)")
    for ax in (left, right):
        ax.grid(alpha=0.3)
        if ax.lines and len(ax.lines) <= 12:
            ax.legend(fontsize=6, ncol=2)
    return _save(fig, path)


# Sweep -----------------------------------------------------------------------------------

SUMMARY_PREFIXES = ("delay_s.", "counts_by_status.", "exit_share_by_stage.", "utilisation_by_node.", "loss_reasons.")


def swept_keys(results: pd.DataFrame, sweep_info: dict | None) -> list[str]:
    if sweep_info and sweep_info.get("runs"):
        keys = list(dict.fromkeys(k for run in sweep_info["runs"] for k in run["params"]))
    else:
        keys = []
    return [k for k in keys if k in results.columns and results[k].nunique() > 1]


def sweep_plots(results: pd.DataFrame, out: Path, sweep_info: dict | None = None) -> list[Path]:
    """For each swept key: mean delay and accuracy against it, one line per combination of
    the other swept keys, mean over seeds with 95% interval."""
    plt = _plt()
    frame = results[results["status"] == "complete"]
    keys = swept_keys(frame, sweep_info)
    paths = []
    for key in keys:
        others = [k for k in keys if k != key]
        fig, axes = plt.subplots(1, 2, figsize=(10, 3.8))
        values = list(dict.fromkeys(frame[key]))
        numeric = all(isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, bool) for v in values)
        if numeric:
            values = sorted(values)
        groups = frame.groupby(others, sort=True) if others else [((), frame)]
        delay_means: list[float] = []
        for label, rows in groups:
            label = label if isinstance(label, tuple) else (label,)
            name = ", ".join(f"{k}={v}" for k, v in zip(others, label)) or "all"
            for ax, column, scale in ((axes[0], "delay_s.mean", 1e3), (axes[1], "accuracy", 1.0)):
                stats = [mean_ci(rows.loc[rows[key] == v, column].to_numpy(float) * scale) for v in values]
                xs = values if numeric else list(range(len(values)))
                drawn = _errorbar(ax, xs, stats, name)
                if column == "delay_s.mean":
                    delay_means.extend(drawn)
        _log_if_wide(axes[0], delay_means)
        for ax, ylabel in ((axes[0], "mean delay (ms)"), (axes[1], "accuracy")):
            ax.set(xlabel=key, ylabel=ylabel)
            if numeric and min(values) > 0 and max(values) / min(values) >= 100:
                ax.set_xscale("log")  # e.g. backhaul.rate_bps over decades
            if not numeric:
                ax.set_xticks(range(len(values)), [str(v) for v in values], rotation=20, fontsize=7)
            ax.grid(alpha=0.3)
        if len(axes[0].lines) > 1:
            axes[0].legend(fontsize=7)
        safe = "".join(ch if ch.isalnum() or ch in "._-" else "-" for ch in key)
        paths.append(_save(fig, out / f"sweep_{safe}.png"))
        if key != "policy.kind" and "delay_breakdown_s.compute" in frame.columns:
            paths.append(_sweep_breakdown(frame, key, values, others, out / f"breakdown_{safe}.png"))
    return paths


def _sweep_breakdown(frame: pd.DataFrame, key: str, values: list, others: list[str], path: Path) -> Path:
    """Mean (over seeds) delay breakdown for each value of ``key`` x combination of the others."""
    from dtoee.analysis import BREAKDOWN_PARTS

    plt = _plt()
    labels, parts = [], []
    groups = frame.groupby(others, sort=True) if others else [((), frame)]
    for label, rows in groups:
        label = label if isinstance(label, tuple) else (label,)
        name = ", ".join(f"{v}" for v in label)
        for value in values:
            at = rows[rows[key] == value]
            if at.empty:
                continue
            shown = f"{value:g}" if isinstance(value, (int, float)) and not isinstance(value, bool) else value
            labels.append(f"{key.split('.')[-1]}={shown}" + (f" | {name}" if name else ""))
            parts.append({p: float(at[f"delay_breakdown_s.{p}"].mean()) if f"delay_breakdown_s.{p}" in at.columns
                          else None for p in BREAKDOWN_PARTS})
    estimated = bool(frame["stage_figures_estimated"].any()) if "stage_figures_estimated" in frame.columns else False
    fig, ax = plt.subplots(figsize=(8.5, 1.4 + 0.3 * len(labels)))
    breakdown_bars(ax, labels, parts, estimated)
    ax.set_ylabel("mean over seeds", fontsize=7)
    return _save(fig, path)


# Comparison (figures from plain data; dtoee/compare.py reads the runs and calls these) ----

def metric_vs_load_plot(steady: pd.DataFrame, policies: list[str], column: str, scale: float, ylabel: str,
                        path: Path) -> Path:
    """``column`` x ``scale`` against load, one line per policy: mean over seeds with its
    95% interval (no bar where one seed); a delay axis goes logarithmic when wide."""
    plt = _plt()
    loads = sorted(steady["load"].unique())
    fig, ax = plt.subplots(figsize=(5.5, 4))
    drawn = []
    for policy in policies:
        rows = steady[steady["policy.kind"] == policy]
        stats = [mean_ci(rows.loc[rows["load"] == load, column].to_numpy(float) * scale) for load in loads]
        drawn.extend(_errorbar(ax, loads, stats, policy))
    if column == "delay_s.mean":
        _log_if_wide(ax, drawn)
    ax.set(xlabel="load factor (x every UE rate)", ylabel=ylabel)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    return _save(fig, path)


def delay_cdf_plot(delays_s: dict[str, np.ndarray], title: str, path: Path) -> Path:
    """Empirical CDF of response delay (log ms axis), one line per policy (``{policy: delays}``)."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(5.5, 4))
    for policy, delays in delays_s.items():
        if len(delays):
            values = np.sort(np.asarray(delays, float)) * 1e3
            ax.plot(values, np.arange(1, len(values) + 1) / len(values), label=policy)
    ax.set(xlabel="response delay (ms)", ylabel="CDF", xscale="log", title=title)
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=7)
    return _save(fig, path)


def breakdown_by_policy_plot(runs: pd.DataFrame, policies: list[str], title: str, path: Path) -> Path | None:
    """Where the delay goes (radio, backhaul, queues, compute), one bar per policy: the mean
    over ``runs`` of each part of ``delay_breakdown_s``. None if the runs carry no breakdown."""
    from dtoee.analysis import BREAKDOWN_PARTS

    if "delay_breakdown_s.compute" not in runs.columns:
        return None
    plt = _plt()
    parts = [{p: float(runs.loc[runs["policy.kind"] == policy, f"delay_breakdown_s.{p}"].mean())
              for p in BREAKDOWN_PARTS if f"delay_breakdown_s.{p}" in runs.columns} for policy in policies]
    estimated = bool(runs["stage_figures_estimated"].any()) if "stage_figures_estimated" in runs.columns else False
    fig, ax = plt.subplots(figsize=(7.5, 1.4 + 0.3 * len(policies)))
    breakdown_bars(ax, policies, parts, estimated)
    ax.set_ylabel(title, fontsize=7)
    return _save(fig, path)


def grouped_bars_plot(runs: pd.DataFrame, policies: list[str], prefix: str, xlabel: str, ylabel: str, title: str,
                      path: Path) -> Path | None:
    """One group of bars per ``prefix*`` column (e.g. ``exit_share_by_stage.1``), one bar
    per policy: mean over its runs with its real 95% interval. None if no
    such column has a value."""
    columns = [c for c in _columns(runs, prefix) if runs[c].notna().any()]
    if not columns:
        return None
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6.5, 4))
    width = 0.8 / max(len(policies), 1)
    for index, policy in enumerate(policies):
        rows = runs[runs["policy.kind"] == policy]
        stats = [mean_ci(rows[c].to_numpy(float)) for c in columns]
        xs = np.arange(len(columns)) + (index - (len(policies) - 1) / 2) * width
        means = np.array([m for m, _ in stats], float)
        half_widths = np.nan_to_num(np.array([c for _, c in stats], float))
        ax.bar(xs, means, width, yerr=half_widths, capsize=2, label=policy)  # real 95% intervals
    ax.set_xticks(range(len(columns)), [c[len(prefix):] for c in columns])
    ax.set(xlabel=xlabel, ylabel=ylabel, title=title)
    ax.legend(fontsize=7)
    return _save(fig, path)


def adaptation_plot(windowed_s: dict[str, pd.Series], event_times_s: list[float], window_s: float, path: Path) -> Path:
    """Windowed mean delay over creation time (``{policy: series indexed by window start}``),
    with the scenario's events as dashed lines."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6.5, 4))
    for policy, mean in windowed_s.items():
        ax.plot(mean.index.astype(float), mean.to_numpy() * 1e3, drawstyle="steps-post", label=policy)
    for at_s in event_times_s:
        ax.axvline(at_s, color="k", linestyle="--", linewidth=0.8)
    ax.set(xlabel="task creation time (s)", ylabel=f"mean delay (ms), {window_s:g} s windows",
           title="adaptation after the scenario's events (dashed)", yscale="log")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=7)
    return _save(fig, path)
