"""policy.rounds_per_period on a real ns-3 run: extra DTO-EE message rounds between measurements."""

from __future__ import annotations

import pandas as pd
import pytest

from dtoee.run import run_isolated

from .scenarios import scenario
from .test_policies_e2e import LINE

pytestmark = pytest.mark.ns3


def test_more_rounds_per_period_send_more_rounds_of_messages(ns3_session, tmp_path):
    """R = 3: the policy is stepped three times per period (policy.parquet snapshots at
    period / 3), each round's messages (reports upstream, flow announcements downstream) are
    packets, and the strategy stays valid after every round."""
    runs = {}
    for rounds in (1, 3):
        sc = scenario(**LINE, simulation={"duration_s": 4.0, "drain_s": 1.0, "seed": 3, "progress": False},
                      policy={"kind": "dtoee", "period_s": 0.6, "rounds_per_period": rounds})
        out = tmp_path / f"r{rounds}"
        summary = run_isolated(sc, out)
        hops = pd.read_parquet(out / "hops.parquet")
        policy = pd.read_parquet(out / "policy.parquet")
        runs[rounds] = (summary, hops[hops["kind"] == "control"], policy)
        sums = policy[policy["kind"] == "offload"].groupby(["time_s", "node", "stage"])["value"].sum()
        assert ((sums - 1).abs() < 1e-6).all()
        assert policy.loc[policy["kind"] == "threshold", "value"].between(0, 1).all()
    one, three = runs[1], runs[3]
    assert three[2]["time_s"].nunique() - 1 >= 2.5 * (one[2]["time_s"].nunique() - 1)  # after t = 0
    assert len(three[1]) > 3 * len(one[1])  # three rounds of reports, plus the flow announcements
    assert three[0]["control_messages_delivered"] == len(three[1])


def test_rounds_per_period_is_validated():
    with pytest.raises(Exception, match="rounds_per_period"):
        scenario(**LINE, policy={"kind": "dtoee", "rounds_per_period": 0})
