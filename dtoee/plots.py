"""Plots (matplotlib, PNG) of a run, a sweep or a comparison directory: ``dtoee plot DIR``.

* run (``summary.json``): delay CDF, windowed mean delay over time, exit share per stage,
  utilisation per node, thresholds over time (``policy.parquet``), where the delay went
  (radio, backhaul, queues, compute: ``dtoee.analysis.delay_breakdown`` of ``hops.parquet``);
* sweep (``results.parquet``): mean delay and accuracy against each swept value (95%
  interval over seeds), one line per combination of the other swept values; the delay
  breakdown per swept value (and per policy, when ``policy.kind`` is swept);
* comparison (``comparison.json``): delay and accuracy vs load, delay CDF, exit share per
  stage, per-node utilisation (at the load nearest 1), DTO-EE convergence (thresholds over
  time), adaptation after the scenario's events (windowed mean delay over time).
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd

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


def _mean_ci(values: np.ndarray) -> tuple[float, float]:
    values = np.asarray(values, float)
    values = values[~np.isnan(values)]
    if len(values) == 0:
        return math.nan, math.nan
    if len(values) < 2:
        return float(values.mean()), 0.0
    from scipy import stats

    return float(values.mean()), float(stats.t.ppf(0.975, len(values) - 1) * values.std(ddof=1) / math.sqrt(len(values)))


def _bounded_yerr(stats, floor_fraction: float) -> tuple[np.ndarray, list[np.ndarray]]:
    """Means and asymmetric ``yerr`` from ``(mean, ci95)`` pairs, for quantities that are
    never negative: a positive mean's lower bar stops at ``floor_fraction`` of the mean."""
    means = np.array([m for m, _ in stats], float)
    ci = np.nan_to_num(np.array([c for _, c in stats], float))
    lower = np.minimum(ci, np.where(means > 0, (1.0 - floor_fraction) * means, ci))
    return means, [lower, ci]


def _errorbar(ax, xs, stats, label: str) -> np.ndarray:
    """Means with 95% intervals; a lower bar is clipped at 1% of its mean, so a delay axis can
    go logarithmic when an interval would cross zero. Returns the means drawn."""
    means, yerr = _bounded_yerr(stats, 0.01)
    ax.errorbar(xs, means, yerr=yerr, marker="o", capsize=3, label=label)
    return means


def _log_if_wide(ax, means, span: float = 10.0) -> None:
    """Logarithmic y when the plotted means span more than ``span`` times (an overloaded
    baseline's seconds next to others' milliseconds)."""
    values = np.asarray(means, float).ravel()
    values = values[np.isfinite(values) & (values > 0)]
    if len(values) and values.max() / values.min() > span:
        ax.set_yscale("log")


def windowed_delay(tasks: pd.DataFrame, window_s: float, horizon_s: float | None = None) -> pd.Series:
    """Mean delay (s) of completed tasks by creation-time window (index: window start, s)."""
    done = tasks[tasks["status"] == "completed"]
    if done.empty:
        return pd.Series(dtype=float)
    end = horizon_s if horizon_s is not None else float(done["created_s"].max()) + window_s
    edges = np.arange(0.0, end + window_s, window_s)
    bins = pd.cut(done["created_s"], edges, right=False, labels=edges[:-1])
    return done.groupby(bins, observed=False)["delay_s"].mean()


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
        series = windowed_delay(tasks, window)
        ax.plot(series.index.astype(float), series.to_numpy() * 1e3, drawstyle="steps-post")
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
                stats = [_mean_ci(rows.loc[rows[key] == v, column].to_numpy(float) * scale) for v in values]
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
    ax.set_ylabel(f"mean over seeds", fontsize=7)
    return _save(fig, path)


# Comparison ------------------------------------------------------------------------------

def _policies(frame: pd.DataFrame, meta: dict) -> list[str]:
    found = list(dict.fromkeys(frame["policy.kind"]))
    ordered = [p for p in meta.get("policies", []) if p in found]
    return ordered + [p for p in found if p not in ordered]


def _middle_load(loads) -> float:
    loads = sorted(set(float(v) for v in loads))
    return min(loads, key=lambda v: (abs(v - 1.0), v))


def comparison_plots(root: Path, results: pd.DataFrame, out: Path) -> list[Path]:
    plt = _plt()
    from dtoee.compare import comparison_meta

    meta = comparison_meta(root)
    frame = results[results["status"] == "complete"]
    steady = frame[frame["experiment"] == "steady"] if "experiment" in frame.columns else frame
    step = frame[frame["experiment"] == "step"] if "experiment" in frame.columns else frame.iloc[0:0]
    paths: list[Path] = []
    if steady.empty:
        return paths
    policies = _policies(frame, meta)
    loads = sorted(steady["load"].unique())
    middle = _middle_load(loads)

    # Delay and accuracy against load.
    for column, scale, ylabel, name in (("delay_s.mean", 1e3, "mean response delay (ms)", "delay_vs_load.png"),
                                        ("accuracy", 1.0, "accuracy", "accuracy_vs_load.png")):
        fig, ax = plt.subplots(figsize=(5.5, 4))
        drawn = []
        for policy in policies:
            rows = steady[steady["policy.kind"] == policy]
            stats = [_mean_ci(rows.loc[rows["load"] == load, column].to_numpy(float) * scale) for load in loads]
            drawn.extend(_errorbar(ax, loads, stats, policy))
        if column == "delay_s.mean":
            _log_if_wide(ax, drawn)
        ax.set(xlabel="load factor (x every UE rate)", ylabel=ylabel)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
        paths.append(_save(fig, out / name))

    at_middle = steady[steady["load"] == middle]

    # Delay CDF, tasks of every seed pooled.
    fig, ax = plt.subplots(figsize=(5.5, 4))
    for policy in policies:
        delays = []
        runs = at_middle[at_middle["policy.kind"] == policy]
        warmups = runs["measured_from_s"] if "measured_from_s" in runs.columns else pd.Series(0.0, index=runs.index)
        for run_id, warmup_s in zip(runs["run_id"], warmups.fillna(0.0)):
            tasks = pd.read_parquet(root / "runs" / run_id / "tasks.parquet", columns=["status", "created_s", "delay_s"])
            delays.append(measured_completed(tasks, float(warmup_s))["delay_s"].to_numpy())
        if delays and sum(len(d) for d in delays):
            values = np.sort(np.concatenate(delays)) * 1e3
            ax.plot(values, np.arange(1, len(values) + 1) / len(values), label=policy)
    ax.set(xlabel="response delay (ms)", ylabel="CDF", xscale="log", title=f"load {middle:g}, all seeds")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=7)
    paths.append(_save(fig, out / "delay_cdf.png"))

    # Exit share per stage and utilisation per node (grouped bars, mean over seeds).
    for prefix, xlabel, ylabel, name in (("exit_share_by_stage.", "exit stage", "share of completed tasks", "exit_share.png"),
                                         ("utilisation_by_node.", "node", "utilisation", "utilisation.png")):
        columns = [c for c in _columns(at_middle, prefix) if at_middle[c].notna().any()]
        if not columns:
            continue
        fig, ax = plt.subplots(figsize=(6.5, 4))
        width = 0.8 / max(len(policies), 1)
        for index, policy in enumerate(policies):
            rows = at_middle[at_middle["policy.kind"] == policy]
            stats = [_mean_ci(rows[c].to_numpy(float)) for c in columns]
            xs = np.arange(len(columns)) + (index - (len(policies) - 1) / 2) * width
            means, yerr = _bounded_yerr(stats, 0.0)  # shares and utilisations: no bar below zero
            ax.bar(xs, means, width, yerr=yerr, capsize=2, label=policy)
        ax.set_xticks(range(len(columns)), [c[len(prefix):] for c in columns])
        ax.set(xlabel=xlabel, ylabel=ylabel, title=f"load {middle:g}")
        ax.legend(fontsize=7)
        paths.append(_save(fig, out / name))

    # Where the delay goes, per policy (mean over seeds, middle load).
    if "delay_breakdown_s.compute" in at_middle.columns:
        from dtoee.analysis import BREAKDOWN_PARTS

        parts = [{p: float(at_middle.loc[at_middle["policy.kind"] == policy, f"delay_breakdown_s.{p}"].mean())
                  for p in BREAKDOWN_PARTS if f"delay_breakdown_s.{p}" in at_middle.columns} for policy in policies]
        estimated = bool(at_middle["stage_figures_estimated"].any()) if "stage_figures_estimated" in at_middle else False
        fig, ax = plt.subplots(figsize=(7.5, 1.4 + 0.3 * len(policies)))
        breakdown_bars(ax, policies, parts, estimated)
        ax.set_ylabel(f"load {middle:g}, mean over seeds", fontsize=7)
        paths.append(_save(fig, out / "delay_breakdown.png"))

    # DTO-EE convergence: thresholds and offloading over time (first seed, middle load).
    reference = meta.get("reference", policies[0])
    adaptive = at_middle[at_middle["policy.kind"] == reference].sort_values("seed")
    if not adaptive.empty:
        policy_path = root / "runs" / adaptive["run_id"].iloc[0] / "policy.parquet"
        if policy_path.exists():
            policy = pd.read_parquet(policy_path)
            if policy["time_s"].nunique() > 1:
                paths.append(policy_plot(policy, out / "convergence.png",
                                         title=f"{reference}, load {middle:g}, seed {adaptive['seed'].iloc[0]}"))

    # Adaptation after the scenario's events: windowed mean delay over time, mean over seeds.
    if not step.empty:
        fig, ax = plt.subplots(figsize=(6.5, 4))
        horizon = None
        window = 1.0
        for policy in policies:
            series = []
            for run_id in step.loc[step["policy.kind"] == policy, "run_id"]:
                tasks = pd.read_parquet(root / "runs" / run_id / "tasks.parquet", columns=["status", "delay_s", "created_s"])
                horizon = horizon or float(np.ceil(tasks["created_s"].max()))
                series.append(windowed_delay(tasks, window, horizon))
            if series:
                mean = pd.concat(series, axis=1).astype(float).mean(axis=1)
                ax.plot(mean.index.astype(float), mean.to_numpy() * 1e3, drawstyle="steps-post", label=policy)
        for event in meta.get("events", []):
            ax.axvline(event.get("at_s", 0.0), color="k", linestyle="--", linewidth=0.8)
        ax.set(xlabel="task creation time (s)", ylabel=f"mean delay (ms), {window:g} s windows",
               title="adaptation after the scenario's events (dashed)", yscale="log")
        ax.grid(alpha=0.3, which="both")
        ax.legend(fontsize=7)
        paths.append(_save(fig, out / "adaptation.png"))
    return paths


def plot_directory(directory: Path, out: Path | None = None) -> list[Path]:
    """Draw whatever ``directory`` holds: a comparison, a sweep, or a single run."""
    directory = Path(directory)
    given_out, out = out, out or directory / "plots"
    if (directory / "results.parquet").exists():
        results = pd.read_parquet(directory / "results.parquet")
        info_path = directory / "sweep.json"
        info = json.loads(info_path.read_text()) if info_path.exists() else None
        if (directory / "comparison.json").exists() or (info or {}).get("kind") == "comparison":
            from dtoee.compare import write_comparison

            return write_comparison(directory, results, plots=True, plots_dir=given_out)["plots"]
        return sweep_plots(results, out, info)
    if (directory / "summary.json").exists():
        return run_plots(directory, out)
    raise FileNotFoundError(f"{directory}: neither a run (summary.json) nor a sweep (results.parquet)")
