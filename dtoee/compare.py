"""The paper's comparison in one command: DTO-EE against every baseline over loads and seeds.

Runs (one sweep, resumable, in ``OUT/runs/``):

* ``steady``: every policy x load factor x seed, with the scenario's ``[[events]]`` removed;
  ``load`` multiplies every UE rate of the scenario (``dtoee.config.scale_load``);
* ``step``: every policy x seed at load 1 with the scenario's ``[[events]]`` (e.g. a
  ``ue_rate`` step), for the adaptation plot.

Writes ``OUT/comparison.csv``: per load and policy, mean delay and accuracy (mean over seeds
of each run's figure, with the 95% t-interval over seeds), and for every policy other than
the reference (the first, DTO-EE by default) the reference's delay reduction in % and its
accuracy gain in points against it, per seed (same seed = same workload, common random
numbers) and then averaged, with their 95% intervals. Plots go to ``OUT/plots/``.
"""

from __future__ import annotations

import copy
import json
import math
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable

from dtoee.config import ScenarioError, apply_overrides, parse_value, read_toml
from dtoee.grid import RunSpec, expand, parse_seeds, run_id, split_values
from dtoee.sweep import run_sweep

if TYPE_CHECKING:  # annotations only: pandas and numpy are imported where the data is read
    import numpy as np
    import pandas as pd

# numpy, pandas, matplotlib (dtoee.plots) and the trace readers are imported where used:
# every `dtoee` command imports this module for its defaults, and should start fast.

DEFAULT_SCENARIO = "scenarios/paper_comparison.toml"
DEFAULT_LOADS = (0.6, 1.0, 1.4)
DEFAULT_SEEDS = "1-3"
DEFAULT_POLICIES = ("dtoee", "dispatch-sed-tuned", "dispatch-sed", "dispatch-jsq", "dispatch-po2", "static-greedy-sed",
                    "static-load-proportional", "static-no-early-exit")
COMPARISON_COLUMNS = [
    "load", "policy", "seeds", "mean_delay_ms", "mean_delay_ci95_ms", "p95_delay_ms", "accuracy", "accuracy_ci95",
    "completed_share", "reference", "delay_reduction_pct", "delay_reduction_ci95_pct", "accuracy_gain_pts",
    "accuracy_gain_ci95_pts", "predicted_delay_ms", "predicted_accuracy", "fidelity", "realised_split_delay_ms",
]


def _list(value: str | Iterable, parse=parse_value) -> list:
    """``"0.6,1,1.4"`` -> [0.6, 1, 1.4] (split as --grid values are); a list as is."""
    if isinstance(value, str):
        return [parse(part) for part in split_values(value) if part]
    return list(value)


def comparison_runs(base: dict, loads: list[float], seeds: list[int], policies: list[str], *,
                    step: bool = True) -> list[RunSpec]:
    """The steady runs (no events) over loads, and the step runs (with the scenario's events)
    at load 1, for every policy and seed."""
    def tag(runs: list[RunSpec], experiment: str) -> list[RunSpec]:
        tagged = []
        for run in runs:
            params = {"experiment": experiment, **run.params}
            tagged.append(RunSpec(run_id(params, run.seed), params, run.seed, run.scenario))
        return tagged

    def no_events(data: dict, params: dict) -> None:
        data["events"] = []

    grid = [("policy.kind", list(policies)), ("load", [float(v) for v in loads])]
    runs = tag(expand(base, grid, seeds, extra=no_events), "steady")
    if step and base.get("events"):
        runs += tag(expand(base, [("policy.kind", list(policies)), ("load", [1.0])], seeds), "step")
    return runs


def comparison_table(results, reference: str | None = None):
    """comparison.csv from a sweep's results table (rows of the ``steady`` experiment)."""
    import pandas as pd

    from dtoee.analysis import mean_ci

    frame = results[results["status"] == "complete"].copy()
    if "experiment" in frame.columns:
        frame = frame[frame["experiment"] == "steady"]
    if frame.empty:
        return pd.DataFrame(columns=COMPARISON_COLUMNS)
    policies = list(dict.fromkeys(frame["policy.kind"]))
    reference = reference or ("dtoee" if "dtoee" in policies else policies[0])
    frame["completed_share"] = frame["counts_by_status.completed"] / frame["tasks_generated"].clip(lower=1)
    rows = []
    for load in sorted(frame["load"].unique()):
        at_load = frame[frame["load"] == load]
        ref = at_load[at_load["policy.kind"] == reference].set_index("seed")
        for policy in policies:
            runs = at_load[at_load["policy.kind"] == policy].set_index("seed")
            if runs.empty:
                continue
            delay, delay_ci = mean_ci(runs["delay_s.mean"] * 1e3)
            accuracy, accuracy_ci = mean_ci(runs["accuracy"])
            row = {"load": float(load), "policy": policy, "seeds": int(len(runs)), "mean_delay_ms": delay,
                   "mean_delay_ci95_ms": delay_ci, "p95_delay_ms": float((runs["delay_s.p95"] * 1e3).mean()),
                   "accuracy": accuracy, "accuracy_ci95": accuracy_ci,
                   "completed_share": float(runs["completed_share"].mean()), "reference": reference,
                   # what the system model predicts for the policy as it ran (summary.json "predicted")
                   "predicted_delay_ms": _mean_of(runs, "predicted.mean_delay_s", 1e3),
                   "predicted_accuracy": _mean_of(runs, "predicted.accuracy"),
                   # the same delay model fed the split each run measured (a per-task dispatcher's
                   # only delay figure: its own "predicted" delay is left empty, not predicted)
                   "realised_split_delay_ms": _mean_of(runs, "predicted_realised_split.mean_delay_s", 1e3),
                   "fidelity": ",".join(sorted(set(runs["fidelity"].dropna()))) if "fidelity" in runs else "packet"}
            if policy != reference and not ref.empty:
                common = runs.index.intersection(ref.index)
                reduction = 100.0 * (runs.loc[common, "delay_s.mean"] - ref.loc[common, "delay_s.mean"]) / runs.loc[common, "delay_s.mean"]
                gain = 100.0 * (ref.loc[common, "accuracy"] - runs.loc[common, "accuracy"])
                row["delay_reduction_pct"], row["delay_reduction_ci95_pct"] = mean_ci(reduction)
                row["accuracy_gain_pts"], row["accuracy_gain_ci95_pts"] = mean_ci(gain)
            rows.append(row)
    return pd.DataFrame(rows, columns=COMPARISON_COLUMNS)


def _mean_of(runs, column: str, scale: float = 1.0) -> float:
    """Mean of a summary column over seeds (NaN where runs predate the column)."""
    if column not in runs:
        return math.nan
    values = runs[column].dropna()
    return float(values.mean() * scale) if len(values) else math.nan


def format_table(table) -> str:
    """The comparison as a Markdown table (delays in ms, CI as +-)."""
    def pm(value, ci, fmt):
        if value is None or (isinstance(value, float) and math.isnan(value)):
            return ""
        text = format(value, fmt)
        return text + (f" ± {format(ci, fmt)}" if ci is not None and not math.isnan(ci) else "")

    lines = ["| load | policy | seeds | mean delay (ms) | predicted (ms) | p95 (ms) | accuracy | predicted accuracy "
             "| completed | delay reduction by reference (%) | accuracy gain of reference (pts) |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for row in table.itertuples(index=False):
        lines.append(f"| {row.load:g} | {row.policy} | {row.seeds} | {pm(row.mean_delay_ms, row.mean_delay_ci95_ms, '.1f')} | "
                     f"{pm(row.predicted_delay_ms, None, '.1f')} | "
                     f"{row.p95_delay_ms:.1f} | {pm(row.accuracy, row.accuracy_ci95, '.3f')} | "
                     f"{pm(row.predicted_accuracy, None, '.3f')} | {row.completed_share:.3f} | "
                     f"{pm(row.delay_reduction_pct, row.delay_reduction_ci95_pct, '.1f')} | "
                     f"{pm(row.accuracy_gain_pts, row.accuracy_gain_ci95_pts, '.2f')} |")
    return "\n".join(lines)


def comparison_meta(out: Path) -> dict:
    """What the comparison asked for (policies, loads, reference, events): comparison.json,
    else the copy in sweep.json."""
    for name in ("comparison.json", "sweep.json"):
        path = Path(out) / name
        if path.exists():
            info = json.loads(path.read_text())
            info.pop("runs", None)
            return info
    return {}


# The plots' data, read from the runs (figures in dtoee/plots.py) ---------------------------

def ordered_policies(frame: pd.DataFrame, meta: dict) -> list[str]:
    """The policies found in ``frame``, in the order the comparison asked for them."""
    found = list(dict.fromkeys(frame["policy.kind"]))
    ordered = [p for p in meta.get("policies", []) if p in found]
    return ordered + [p for p in found if p not in ordered]


def middle_load(loads) -> float:
    """The load nearest 1 (the lower one on a tie): where CDF, bars and convergence are drawn."""
    loads = sorted(set(float(v) for v in loads))
    return min(loads, key=lambda v: (abs(v - 1.0), v))


def split_experiments(results: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(steady, step) rows of the complete runs; a plain sweep is all steady."""
    frame = results[results["status"] == "complete"]
    if "experiment" not in frame.columns:
        return frame, frame.iloc[0:0]
    return frame[frame["experiment"] == "steady"], frame[frame["experiment"] == "step"]


def pooled_delays_s(root: Path, runs: pd.DataFrame) -> np.ndarray:
    """Measured delays (s) of the completed tasks of ``runs`` (after each run's warm-up, the
    tasks its summary describes), every seed pooled."""
    import numpy as np
    import pandas as pd

    from dtoee.trace import measured_completed

    warmups = runs["measured_from_s"] if "measured_from_s" in runs.columns else pd.Series(0.0, index=runs.index)
    delays = [np.empty(0)]
    for name, warmup_s in zip(runs["run_id"], warmups.fillna(0.0)):
        tasks = pd.read_parquet(Path(root) / "runs" / name / "tasks.parquet", columns=["status", "created_s", "delay_s"])
        delays.append(measured_completed(tasks, float(warmup_s))["delay_s"].to_numpy())
    return np.concatenate(delays)


def mean_windowed_delay_s(root: Path, run_ids, window_s: float, horizon_s: float | None = None) -> pd.Series | None:
    """Mean over ``run_ids`` of each run's windowed mean delay (s), disjoint ``window_s``
    windows from 0 to ``horizon_s`` (default: the first run's last creation time, rounded
    up to a whole second); index: window start (s). None without runs."""
    import numpy as np
    import pandas as pd

    from dtoee.analysis import windowed_mean_delay

    series = []
    for name in run_ids:
        tasks = pd.read_parquet(Path(root) / "runs" / name / "tasks.parquet", columns=["status", "delay_s", "created_s"])
        horizon_s = horizon_s or float(np.ceil(tasks["created_s"].max()))
        windows = windowed_mean_delay(tasks, window_s, step_s=window_s, end_s=horizon_s)
        series.append(windows.set_index("start_s")["mean_delay_s"])
    return pd.concat(series, axis=1).astype(float).mean(axis=1) if series else None


def comparison_plots(root: Path, results: pd.DataFrame, out: Path, meta: dict | None = None) -> list[Path]:
    """The comparison's figures in ``out``: delay and accuracy vs load, and at the middle
    load the delay CDF, exit share per stage, utilisation per node and the reference's
    convergence; the adaptation in the step runs. ``meta``: :func:`comparison_meta`."""
    import pandas as pd

    from dtoee import plots as figures

    root, out = Path(root), Path(out)
    meta = comparison_meta(root) if meta is None else meta
    steady, step = split_experiments(results)
    if steady.empty:
        return []
    policies = ordered_policies(results[results["status"] == "complete"], meta)
    middle = middle_load(steady["load"].unique())
    at_middle = steady[steady["load"] == middle]
    paths = [figures.metric_vs_load_plot(steady, policies, "delay_s.mean", 1e3, "mean response delay (ms)",
                                         out / "delay_vs_load.png"),
             figures.metric_vs_load_plot(steady, policies, "accuracy", 1.0, "accuracy", out / "accuracy_vs_load.png")]
    delays = {policy: pooled_delays_s(root, at_middle[at_middle["policy.kind"] == policy]) for policy in policies}
    paths.append(figures.delay_cdf_plot(delays, f"load {middle:g}, all seeds", out / "delay_cdf.png"))
    for prefix, xlabel, ylabel, name in (("exit_share_by_stage.", "exit stage", "share of completed tasks", "exit_share.png"),
                                         ("utilisation_by_node.", "node", "utilisation", "utilisation.png")):
        path = figures.grouped_bars_plot(at_middle, policies, prefix, xlabel, ylabel, f"load {middle:g}",
                                         out / name)
        if path is not None:
            paths.append(path)
    path = figures.breakdown_by_policy_plot(at_middle, policies, f"load {middle:g}, mean over seeds",
                                            out / "delay_breakdown.png")
    if path is not None:
        paths.append(path)
    # Convergence: the reference's thresholds and offloading over time (first seed, middle load).
    reference = meta.get("reference", policies[0])
    adaptive = at_middle[at_middle["policy.kind"] == reference].sort_values("seed")
    if not adaptive.empty:
        policy_path = root / "runs" / adaptive["run_id"].iloc[0] / "policy.parquet"
        if policy_path.exists():
            trace = pd.read_parquet(policy_path)
            if trace["time_s"].nunique() > 1:
                paths.append(figures.policy_plot(trace, out / "convergence.png",
                                                 title=f"{reference}, load {middle:g}, seed {adaptive['seed'].iloc[0]}"))
    # Adaptation after the scenario's events: 1 s windowed mean delay, mean over seeds.
    if not step.empty:
        window_s, horizon_s, windowed = 1.0, None, {}
        for policy in policies:
            run_ids = list(step.loc[step["policy.kind"] == policy, "run_id"])
            mean = mean_windowed_delay_s(root, run_ids, window_s, horizon_s)
            if mean is not None:
                windowed[policy] = mean
                # every policy on the first one's time axis (window starts 0 .. horizon - window)
                horizon_s = horizon_s or float(mean.index.max()) + window_s
        event_times_s = [event.get("at_s", 0.0) for event in meta.get("events", [])]
        paths.append(figures.adaptation_plot(windowed, event_times_s, window_s, out / "adaptation.png"))
    return paths


def write_comparison(out: Path, results, *, plots: bool = True, plots_dir: Path | None = None) -> dict[str, Any]:
    """comparison.csv (+ comparison.md) in ``out`` and the plots in ``plots_dir`` (default
    ``out/plots``), from a finished sweep's results."""
    meta = comparison_meta(out)
    table = comparison_table(results, meta.get("reference"))
    tmp = out / ".comparison.csv.tmp"
    table.to_csv(tmp, index=False, float_format="%.6g")
    tmp.replace(out / "comparison.csv")
    text = format_table(table)
    (out / "comparison.md").write_text(text + "\n")
    paths = comparison_plots(out, results, plots_dir or out / "plots", meta) if plots else []
    return {"table": table, "table_text": text, "csv": out / "comparison.csv", "plots": paths}


def run_comparison(scenario_path: str | Path = DEFAULT_SCENARIO, out: str | Path = "runs/paper_comparison", *,
                   loads: str | Iterable[float] = DEFAULT_LOADS, seeds: str | Iterable[int] = DEFAULT_SEEDS,
                   policies: str | Iterable[str] = DEFAULT_POLICIES, overrides: list[str] | None = None,
                   workers: int = 2, dask: str | None = None, progress: bool = True, step: bool = True,
                   plots: bool = True) -> dict[str, Any]:
    """Run (or resume) the comparison sweep, then write comparison.csv and the plots."""
    out = Path(out)
    base = apply_overrides(read_toml(scenario_path), list(overrides or []))
    load_list = [float(v) for v in _list(loads)]
    policy_list = [str(p) for p in _list(policies, str)]
    if not policy_list:
        raise ScenarioError("--policies: empty; allowed: policy.kind values, the reference first")
    seed_list = parse_seeds(seeds)
    runs = comparison_runs(base, load_list, seed_list, policy_list, step=step)
    meta = {"kind": "comparison", "scenario_file": str(scenario_path), "overrides": list(overrides or []),
            "loads": load_list, "seeds": seed_list, "policies": policy_list, "reference": policy_list[0],
            "events": copy.deepcopy(base.get("events", []))}
    out.mkdir(parents=True, exist_ok=True)
    (out / "comparison.json").write_text(json.dumps(meta, indent=2) + "\n")
    sweep = run_sweep(runs, out, workers=workers, dask=dask, progress=progress, meta=meta)
    written = write_comparison(out, sweep.results, plots=plots)
    return {"sweep": sweep, **written}
