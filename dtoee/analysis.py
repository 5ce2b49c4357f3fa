"""Analysis of traces and of runs over seeds (pure numpy/pandas, no plotting, no I/O).

One home each for the figures that tables and plots share: the windowed mean delay over
creation time, the settling time after a change, and the mean over seeds with its 95%
t-interval; and where a run's delay went (radio, backhaul, queues, compute).
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

WINDOW_COLUMNS = ["start_s", "end_s", "tasks", "mean_delay_s"]


def t95(n: int) -> float:
    """t_{0.975, n-1}: the two-sided 95% Student-t quantile for a mean of ``n`` values (NaN for n < 2)."""
    if n < 2:
        return math.nan
    from scipy import stats

    return float(stats.t.ppf(0.975, n - 1))


def mean_ci(values) -> tuple[float, float]:
    """Mean of ``values`` (None and NaN left out) and the half-width of its 95% t-interval,
    t_{0.975, n-1} * s / sqrt(n) with s the sample standard deviation.

    n = 0 gives (NaN, NaN); n = 1 gives (the value, NaN): one run says nothing about the
    spread, so there is no interval (plots draw no bar, tables print no +-)."""
    clean = np.asarray([v for v in values if v is not None and not (isinstance(v, float) and math.isnan(v))], float)
    clean = clean[~np.isnan(clean)]
    if len(clean) == 0:
        return math.nan, math.nan
    mean = float(clean.mean())
    if len(clean) < 2:
        return mean, math.nan
    return mean, t95(len(clean)) * float(clean.std(ddof=1)) / math.sqrt(len(clean))


def windowed_mean_delay(tasks: pd.DataFrame, window_s: float, step_s: float | None = None,
                        end_s: float | None = None) -> pd.DataFrame:
    """Mean delay of completed tasks by creation time, in windows [t, t + window_s) for
    t = 0, step_s, 2 step_s, ... (default step ``window_s / 2``) that end by ``end_s``
    (default: the last completed task's creation time, so only full windows).

    Returns columns ``start_s, end_s, tasks, mean_delay_s`` (NaN mean for an empty window).
    Plots use ``step_s = window_s`` (disjoint windows) and ``end_s`` = the horizon drawn."""
    done = tasks[tasks["status"] == "completed"]
    step_s = step_s or window_s / 2
    created, delay = done["created_s"].to_numpy(float), done["delay_s"].to_numpy(float)
    if len(created) == 0:
        return pd.DataFrame([], columns=WINDOW_COLUMNS)
    end_s = float(created.max()) if end_s is None else float(end_s)
    count = int(math.floor((end_s - window_s + 1e-9) / step_s)) + 1 if end_s + 1e-9 >= window_s else 0
    starts = np.arange(count) * step_s
    ratio = window_s / step_s  # window a whole number of steps: ends on the same grid, so
    ends = ((np.arange(count) + round(ratio)) * step_s if abs(ratio - round(ratio)) < 1e-9  # disjoint
            else starts + window_s)                                                      # windows tile
    rows = []
    for start, end in zip(starts, ends):
        inside = (created >= start) & (created < end)
        mean_s = float(delay[inside].mean()) if inside.any() else math.nan
        rows.append((float(start), float(end), int(inside.sum()), mean_s))
    return pd.DataFrame(rows, columns=WINDOW_COLUMNS)


def settling_time(tasks: pd.DataFrame, change_s: float, window_s: float = 5.0, tolerance: float = 0.10,
                  steady_from_s: float | None = None) -> dict:
    """Time after ``change_s`` until the windowed mean delay stays within ``tolerance`` of the
    new steady state (mean delay of tasks created from ``steady_from_s``, default: the last
    third of the time after the change, to the end of arrivals).

    Returns ``{"steady_delay_s", "settling_s"}``; ``settling_s`` is None if it never settles,
    0 if the first full window after the change is already within tolerance.
    """
    done = tasks[tasks["status"] == "completed"]
    end_s = float(done["created_s"].max())
    steady_from_s = steady_from_s if steady_from_s is not None else change_s + 2 * (end_s - change_s) / 3
    steady = float(done.loc[done["created_s"] >= steady_from_s, "delay_s"].mean())
    windows = windowed_mean_delay(tasks, window_s)
    after = windows[windows["start_s"] >= change_s - 1e-9]
    within = (after["mean_delay_s"] - steady).abs() <= tolerance * steady
    settled_s = None
    for index in range(len(after)):
        if within.iloc[index:].all():
            settled_s = float(after["start_s"].iloc[index] - change_s)
            break
    return {"steady_delay_s": steady, "settling_s": settled_s, "window_s": window_s, "tolerance": tolerance,
            "windows": after.assign(within=within.to_numpy())}


BREAKDOWN_PARTS = ("radio", "backhaul", "queue", "compute", "other")


def delay_breakdown(hops: pd.DataFrame, tasks: pd.DataFrame, measured_from_s: float = 0.0) -> dict:
    """Where the response delay of the completed tasks went, from ``hops.parquet``.

    For each completed task created at or after ``measured_from_s`` (the summary's tasks)::

        radio    = sum over its uplink and result hops of (end_s - start_s)
                   (UE <-> eNB over LTE plus the site's core link to its server)
        backhaul = sum over its offload hops of (end_s - start_s)   (activations between servers)
        queue    = sum over its service hops of (start_s - enqueue_s)
        compute  = sum over its service hops of (end_s - start_s)
        other    = delay_s - (radio + backhaul + queue + compute)

    ``other`` is 0 up to rounding when every hop follows the previous one at once (the
    co-simulation's normal path); waits for a re-offload after a crash show up there.

    Returns ``{"tasks": n, "mean_s": {part: mean seconds per task}, "share": {part: share of
    the mean delay}, "mean_delay_s": ...}``; shares sum to 1. With no such task, means and
    shares are NaN.
    """
    done = tasks[(tasks["status"] == "completed") & (tasks["created_s"] >= measured_from_s)]
    ids = done["task_id"].to_numpy()
    mine = hops[hops["task_id"].isin(ids)]
    duration = mine["end_s"] - mine["start_s"]
    part = pd.Series(np.select([mine["kind"].isin(["uplink", "result"]), mine["kind"] == "offload",
                                mine["kind"] == "service"], ["radio", "backhaul", "compute"], "none"),
                     index=mine.index)
    per_task = pd.DataFrame(0.0, index=pd.Index(ids, name="task_id"), columns=list(BREAKDOWN_PARTS))
    for name in ("radio", "backhaul", "compute"):
        rows = part == name
        per_task[name] = duration[rows].groupby(mine.loc[rows, "task_id"]).sum().reindex(ids, fill_value=0.0).to_numpy()
    services = mine[mine["kind"] == "service"]
    waits = (services["start_s"] - services["enqueue_s"]).groupby(services["task_id"]).sum()
    per_task["queue"] = waits.reindex(ids, fill_value=0.0).to_numpy()
    delay = done.set_index("task_id")["delay_s"].reindex(ids).to_numpy()
    per_task["other"] = delay - per_task[["radio", "backhaul", "queue", "compute"]].sum(axis=1).to_numpy()
    n = len(ids)
    mean_delay = float(delay.mean()) if n else math.nan
    means = {p: (float(per_task[p].mean()) if n else math.nan) for p in BREAKDOWN_PARTS}
    shares = {p: (means[p] / mean_delay if n and mean_delay > 0 else math.nan) for p in BREAKDOWN_PARTS}
    return {"tasks": n, "mean_delay_s": mean_delay, "mean_s": means, "share": shares}
