"""Analysis of traces: windowed delay and settling after a change (pure pandas)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd


def windowed_mean_delay(tasks: pd.DataFrame, window_s: float, step_s: float | None = None) -> pd.DataFrame:
    """Mean delay of completed tasks by creation time, in windows [t, t + window_s).

    Returns columns ``start_s, end_s, tasks, mean_delay_s`` (windows every ``step_s``,
    default ``window_s / 2``)."""
    done = tasks[tasks["status"] == "completed"]
    step_s = step_s or window_s / 2
    created, delay = done["created_s"].to_numpy(), done["delay_s"].to_numpy()
    rows = []
    if len(created) == 0:
        return pd.DataFrame(rows, columns=["start_s", "end_s", "tasks", "mean_delay_s"])
    start = 0.0
    while start + window_s <= created.max() + 1e-9:
        inside = (created >= start) & (created < start + window_s)
        rows.append((start, start + window_s, int(inside.sum()), float(delay[inside].mean()) if inside.any() else math.nan))
        start += step_s
    return pd.DataFrame(rows, columns=["start_s", "end_s", "tasks", "mean_delay_s"])


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
