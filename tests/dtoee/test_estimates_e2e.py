"""What nodes know inside a real ns-3 run: estimates move only with their own completed
measurements, never with a scenario event (issue #11, item 1)."""

from __future__ import annotations

import pandas as pd
import pytest

from dtoee.run import run_isolated
from optimizer.estimators import PathEstimator

from .scenarios import scenario

pytestmark = pytest.mark.ns3

EVENT_S = 5.5
OLD_RATE_BPS, NEW_RATE_BPS = 2e7, 2e6
STAGE_LATENCY_S = [0.02, 0.025, 0.025]


@pytest.fixture(scope="module")
def run(ns3_session, tmp_path_factory):
    """A line bs0 - bs1 - bs2 whose activations are large enough to measure a rate (the
    gpt2 stage figures at 16 tokens); bs0 hosts stage 1 only, so its stage-2 work must cross
    bs0-bs1 whatever the policy decides; at 5.5 s that link drops 10x and bs1 slows 2.0 -> 0.8.
    bs0 serves 6 UEs: with exit curves conditional on survival DTO-EE lets ~80% of tasks exit
    at stage 1 (on the survivors, later exits add little accuracy), so it takes that many
    tasks for more than 20 activations to cross."""
    out = tmp_path_factory.mktemp("estimates")
    sc = scenario(
        radio={"enabled": False},
        backhaul={"layout": "line", "rate_bps": OLD_RATE_BPS, "delay_s": 0.002},
        nodes=[{"name": "bs0", "stages": [1]}, {"name": "bs1", "stages": [1, 2, 3], "speed_factor": 2.0},
               {"name": "bs2", "stages": [3]}],
        ue_groups=[{"node": "bs0", "count": 6, "rate_per_s": 10.0}, {"node": "bs2", "count": 2, "rate_per_s": 10.0}],
        model={"family": "mlp", "num_stages": 3, "stage_latency_s": STAGE_LATENCY_S, "large_model": "gpt2",
               "seq_len": 16},
        simulation={"duration_s": 10.0, "drain_s": 2.0, "seed": 4, "progress": False},
        policy={"kind": "dtoee", "period_s": 1.0, "w": 10.0},  # accuracy dear: few exit at stage 1
        events=[{"at_s": EVENT_S, "kind": "link_rate", "a": "bs0", "b": "bs1", "rate_bps": NEW_RATE_BPS},
                {"at_s": EVENT_S, "kind": "node_speed", "node": "bs1", "speed_factor": 0.8}],
    )
    run_isolated(sc, out)
    return pd.read_parquet(out / "policy.parquet"), pd.read_parquet(out / "hops.parquet")


def test_path_estimate_changes_only_with_completed_transfers(run):
    policy, hops = run
    logged = (policy[(policy["kind"] == "path_rate_bps") & (policy["node"] == "bs0") & (policy["target"] == "bs1")]
              .set_index("time_s")["value"])
    # Replay bs0's estimator over the bs0 -> bs1 transfers that completed, in order: the logged
    # estimate at every period is exactly what those transfers (and nothing else) imply.
    transfers = hops[(hops["src"] == "node:bs0") & (hops["dst"] == "node:bs1")].sort_values("end_s")
    assert len(transfers[transfers["bytes"] > PathEstimator(1.0).small_bytes]) > 20
    replay = PathEstimator(prior_rate_bps=OLD_RATE_BPS, prior_delay_s=0.002)
    rows = iter(transfers.itertuples())
    pending = next(rows, None)
    for time_s, value in logged.items():
        while pending is not None and pending.end_s <= time_s:
            replay.add(int(pending.bytes), pending.end_s - pending.start_s)
            pending = next(rows, None)
        assert value == pytest.approx(replay.rate_bps, rel=1e-9), time_s
    before = logged[logged.index < EVENT_S].iloc[-1]
    assert before == pytest.approx(OLD_RATE_BPS, rel=0.3)  # it measured the old rate roughly
    # the event itself moved nothing: no omniscient jump to the new rate at the next period
    first_after = logged[logged.index > EVENT_S].iloc[0]
    assert first_after > 1.5 * NEW_RATE_BPS
    # transfers that saw the slower link did teach it: by the end it is far below the old rate
    assert logged.iloc[-1] < 0.5 * OLD_RATE_BPS


def test_service_rate_estimate_reaches_the_new_speed_within_50_services(run):
    policy, hops = run
    logged = (policy[(policy["kind"] == "service_rate_per_s") & (policy["node"] == "bs1") & (policy["stage"] == 1)]
              .set_index("time_s")["value"])
    old_rate, new_rate = 2.0 / STAGE_LATENCY_S[0], 0.8 / STAGE_LATENCY_S[0]
    assert logged[logged.index < EVENT_S].iloc[-1] == pytest.approx(old_rate, rel=1e-6)
    services = hops[(hops["kind"] == "service") & (hops["src"] == "bs1") & (hops["end_s"] > EVENT_S)]
    fiftieth_s = services["end_s"].sort_values().iloc[49]
    reported = logged[logged.index >= fiftieth_s]
    assert len(reported) > 0 and reported.iloc[0] == pytest.approx(new_rate, rel=0.10)
    # ... and not before any service at the new speed completed
    first_slow_s = services[services["start_s"] >= EVENT_S]["end_s"].min()
    assert ((logged[logged.index < first_slow_s] - old_rate).abs() < 1e-6 * old_rate).all()
