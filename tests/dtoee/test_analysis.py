"""dtoee.analysis: the one mean-with-interval and the one windowed delay that tables, plots and
the settling time all use."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from dtoee.analysis import mean_ci, windowed_mean_delay


def test_mean_ci_is_the_student_t_interval_and_none_from_one_value():
    mean, ci = mean_ci([50.0, 60.0, 70.0])
    assert mean == pytest.approx(60.0)
    assert ci == pytest.approx(4.302653 * 10.0 / math.sqrt(3), rel=1e-6)  # t(0.975, 2) s / sqrt(n)
    mean, ci = mean_ci(np.array([0.3, float("nan")]))  # one value left: no interval, not a zero one
    assert mean == pytest.approx(0.3) and math.isnan(ci)
    assert all(math.isnan(v) for v in mean_ci([None, float("nan")]))
    assert mean_ci(pd.Series([1.0, 3.0]))[1] == pytest.approx(12.706205 * math.sqrt(2) / math.sqrt(2), rel=1e-6)


def _tasks(created, delay, status=None):
    return pd.DataFrame({"created_s": created, "delay_s": delay,
                         "status": status or ["completed"] * len(created)})


def test_disjoint_windows_to_a_horizon_and_overlapping_full_windows_by_default():
    tasks = _tasks([0.1, 0.9, 1.0, 2.5, 3.2, 3.3], [1.0, 3.0, 5.0, 7.0, 9.0, 11.0],
                   ["completed", "completed", "completed", "completed", "lost", "completed"])
    disjoint = windowed_mean_delay(tasks, 1.0, step_s=1.0, end_s=5.0)
    assert disjoint["start_s"].tolist() == [0.0, 1.0, 2.0, 3.0, 4.0]
    assert disjoint["tasks"].tolist() == [2, 1, 1, 1, 0]  # [t, t + 1): 1.0 opens the second window
    assert disjoint["mean_delay_s"].tolist()[:4] == [2.0, 5.0, 7.0, 11.0] and math.isnan(disjoint["mean_delay_s"].iloc[4])
    # Default: windows every window/2 that end by the last completed creation time (3.3 s).
    full = windowed_mean_delay(tasks, 2.0)
    assert full["start_s"].tolist() == [0.0, 1.0]
    assert full["end_s"].tolist() == [2.0, 3.0]
    assert full["mean_delay_s"].tolist() == pytest.approx([3.0, 6.0])
    assert windowed_mean_delay(tasks.iloc[0:0], 1.0).empty


def test_window_starts_do_not_drift():
    created = np.arange(0, 100, 0.01)
    windows = windowed_mean_delay(_tasks(created, np.ones_like(created)), 0.1, step_s=0.1, end_s=100.0)
    assert len(windows) == 1000 and windows["start_s"].iloc[-1] == pytest.approx(99.9, abs=1e-12)
    assert windows["tasks"].sum() == len(created)
