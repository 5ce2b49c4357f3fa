"""The paper's comparison in one command: DTO-EE against every baseline over loads and seeds.

Runs (one sweep, resumable, in ``OUT/runs/``):

* ``steady``: every policy x load factor x seed, with the scenario's ``[[events]]`` removed;
  ``load`` multiplies every UE rate of the scenario (``dtoee.sweep.scale_load``);
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
from typing import Any, Iterable

from dtoee.config import ScenarioError, apply_overrides
from dtoee.sweep import RunSpec, expand, parse_seeds, parse_value, read_toml, run_id, run_sweep

DEFAULT_SCENARIO = "scenarios/paper_comparison.toml"
DEFAULT_LOADS = (0.6, 1.0, 1.4)
DEFAULT_SEEDS = "1-3"
DEFAULT_POLICIES = ("dtoee", "fixed-threshold-load-proportional", "fixed-threshold-greedy-sed",
                    "no-early-exit", "random-offloading")
COMPARISON_COLUMNS = [
    "load", "policy", "seeds", "mean_delay_ms", "mean_delay_ci95_ms", "p95_delay_ms", "accuracy", "accuracy_ci95",
    "completed_share", "reference", "delay_reduction_pct", "delay_reduction_ci95_pct", "accuracy_gain_pts",
    "accuracy_gain_ci95_pts", "predicted_delay_ms", "predicted_accuracy", "fidelity",
]


def _list(value: str | Iterable, parse=parse_value) -> list:
    if isinstance(value, str):
        return [parse(part.strip()) for part in value.split(",") if part.strip()]
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


def _t95(n: int) -> float:
    if n < 2:
        return math.nan
    from scipy import stats

    return float(stats.t.ppf(0.975, n - 1))


def _mean_ci(values) -> tuple[float, float]:
    import numpy as np

    values = np.asarray([v for v in values if v is not None and not (isinstance(v, float) and math.isnan(v))], float)
    if len(values) == 0:
        return math.nan, math.nan
    mean = float(values.mean())
    if len(values) < 2:
        return mean, math.nan
    return mean, _t95(len(values)) * float(values.std(ddof=1)) / math.sqrt(len(values))


def comparison_table(results, reference: str | None = None):
    """comparison.csv from a sweep's results table (rows of the ``steady`` experiment)."""
    import pandas as pd

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
            delay, delay_ci = _mean_ci(runs["delay_s.mean"] * 1e3)
            accuracy, accuracy_ci = _mean_ci(runs["accuracy"])
            row = {"load": float(load), "policy": policy, "seeds": int(len(runs)), "mean_delay_ms": delay,
                   "mean_delay_ci95_ms": delay_ci, "p95_delay_ms": float((runs["delay_s.p95"] * 1e3).mean()),
                   "accuracy": accuracy, "accuracy_ci95": accuracy_ci,
                   "completed_share": float(runs["completed_share"].mean()), "reference": reference,
                   # what the system model predicts for the policy as it ran (summary.json "predicted")
                   "predicted_delay_ms": _mean_of(runs, "predicted.mean_delay_s", 1e3),
                   "predicted_accuracy": _mean_of(runs, "predicted.accuracy"),
                   "fidelity": ",".join(sorted(set(runs["fidelity"].dropna()))) if "fidelity" in runs else "packet"}
            if policy != reference and not ref.empty:
                common = runs.index.intersection(ref.index)
                reduction = 100.0 * (runs.loc[common, "delay_s.mean"] - ref.loc[common, "delay_s.mean"]) / runs.loc[common, "delay_s.mean"]
                gain = 100.0 * (ref.loc[common, "accuracy"] - runs.loc[common, "accuracy"])
                row["delay_reduction_pct"], row["delay_reduction_ci95_pct"] = _mean_ci(reduction)
                row["accuracy_gain_pts"], row["accuracy_gain_ci95_pts"] = _mean_ci(gain)
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
    paths = []
    if plots:
        from dtoee.plots import comparison_plots

        paths = comparison_plots(out, results, plots_dir or out / "plots")
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
