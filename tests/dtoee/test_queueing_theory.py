"""A one-node M/M/1 system on the real simulator agrees with queueing theory."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from dtoee.run import run_isolated

from .scenarios import scenario

pytestmark = pytest.mark.ns3

SERVICE_RATE_PER_S = 100.0


def batch_means_interval(values: np.ndarray, batches: int = 20) -> tuple[float, float]:
    """Mean and 95% half-width by the method of batch means (t, batches - 1 dof)."""
    from scipy import stats

    usable = len(values) - len(values) % batches
    means = values[:usable].reshape(batches, -1).mean(axis=1)
    half = stats.t.ppf(0.975, batches - 1) * means.std(ddof=1) / np.sqrt(batches)
    return float(means.mean()), float(half)


@pytest.mark.parametrize("rho", [0.5, 0.8])
def test_mm1_mean_sojourn_time(ns3_session, tmp_path, rho):
    arrival_rate = rho * SERVICE_RATE_PER_S
    sc = scenario(
        simulation={"duration_s": 400.0, "drain_s": 5.0, "seed": 7, "progress": False},
        model={"family": "mlp", "num_stages": 3, "service_distribution": "exponential",
               "stage_latency_s": [1 / SERVICE_RATE_PER_S, 1.0, 1.0]},
        radio={"enabled": False},
        nodes=[{"name": "solo", "stages": [1, 2, 3]}],
        ue_groups=[{"node": "solo", "count": 1, "rate_per_s": arrival_rate}],
        policy={"thresholds": {"solo": [0.0, 0.0, 0.0]}},  # every task exits after stage 1
    )
    run_isolated(sc, tmp_path)
    tasks = pd.read_parquet(tmp_path / "tasks.parquet")
    assert (tasks["status"] == "completed").all()
    assert (tasks["exit_stage"] == 1).all()
    warm = tasks[tasks["created_s"] > 10.0].sort_values("created_s")
    mean, half_width = batch_means_interval(warm["delay_s"].to_numpy())
    theory = 1.0 / (SERVICE_RATE_PER_S - arrival_rate)
    assert abs(mean - theory) <= half_width, (mean, half_width, theory)
    assert half_width < 0.15 * theory  # the interval is tight enough to mean something
