"""The delay breakdown from hops.parquet, on a synthetic trace whose answer is known."""
import math

import numpy as np
import pandas as pd
import pytest

from dtoee.analysis import BREAKDOWN_PARTS, delay_breakdown
from dtoee.trace import HOP_COLUMNS, TASK_COLUMNS


def _hop(task, kind, start, end, enqueue=math.nan, nbytes=0):
    return (task, kind, "a", "b", 1, nbytes, start, end, enqueue, math.nan, None)


def _task(task, created, finished, status="completed"):
    delay = finished - created if status == "completed" else math.nan
    return (task, 0, "a", created, finished, delay, status, "", 1, "a", 0.9, 1, 1, True)


def synthetic():
    # Task 0 (created 1.0): uplink 10 ms, queue 5 ms, compute 20 ms, offload 30 ms, queue 0,
    #   compute 25 ms, result 15 ms -> delay 105 ms.
    # Task 1 (created 2.0): uplink 12 ms, queue 0, compute 20 ms, result 8 ms -> 40 ms.
    # Task 2: created before the warm-up (0.5): excluded. Task 3: lost: excluded.
    # A control hop (task -1) must be ignored.
    hops = [
        _hop(0, "uplink", 1.000, 1.010), _hop(0, "service", 1.015, 1.035, enqueue=1.010),
        _hop(0, "offload", 1.035, 1.065, nbytes=2 << 20), _hop(0, "service", 1.065, 1.090, enqueue=1.065),
        _hop(0, "result", 1.090, 1.105),
        _hop(1, "uplink", 2.000, 2.012), _hop(1, "service", 2.012, 2.032, enqueue=2.012),
        _hop(1, "result", 2.032, 2.040),
        _hop(2, "uplink", 0.5, 0.6), _hop(2, "service", 0.6, 5.0, enqueue=0.6), _hop(2, "result", 5.0, 5.1),
        _hop(3, "uplink", 3.0, 3.1),
        _hop(-1, "control", 1.0, 2.0, nbytes=64),
    ]
    tasks = [_task(0, 1.0, 1.105), _task(1, 2.0, 2.040), _task(2, 0.5, 5.1), _task(3, 3.0, math.nan, "lost")]
    return pd.DataFrame(hops, columns=HOP_COLUMNS), pd.DataFrame(tasks, columns=TASK_COLUMNS)


def test_known_breakdown():
    hops, tasks = synthetic()
    out = delay_breakdown(hops, tasks, measured_from_s=0.9)
    assert out["tasks"] == 2
    expected = {"radio": (0.025 + 0.020) / 2, "backhaul": 0.030 / 2, "queue": 0.005 / 2,
                "compute": (0.045 + 0.020) / 2, "other": 0.0}
    for part in BREAKDOWN_PARTS:
        assert out["mean_s"][part] == pytest.approx(expected[part], abs=1e-12), part
    assert out["mean_delay_s"] == pytest.approx((0.105 + 0.040) / 2)
    assert sum(out["share"].values()) == pytest.approx(1.0)
    assert out["share"]["backhaul"] == pytest.approx(0.015 / 0.0725)


def test_warmup_and_gaps():
    hops, tasks = synthetic()
    everything = delay_breakdown(hops, tasks)  # task 2 now counted: 4.4 s of compute
    assert everything["tasks"] == 3
    assert everything["mean_s"]["compute"] == pytest.approx((0.045 + 0.020 + 4.4) / 3)
    # A gap no hop explains (e.g. waiting for a re-offload) lands in "other".
    hops.loc[(hops["task_id"] == 1) & (hops["kind"] == "result"), "start_s"] = 2.035
    gap = delay_breakdown(hops, tasks, measured_from_s=0.9)
    assert gap["mean_s"]["other"] == pytest.approx(0.003 / 2)
    assert sum(gap["share"].values()) == pytest.approx(1.0)


def test_no_tasks_gives_nan():
    hops, tasks = synthetic()
    out = delay_breakdown(hops, tasks, measured_from_s=100.0)
    assert out["tasks"] == 0 and all(np.isnan(v) for v in out["mean_s"].values())
