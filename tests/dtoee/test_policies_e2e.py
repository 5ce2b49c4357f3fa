"""Policies inside real ns-3 runs: DTO-EE's control messages travel as packets, every policy
kind runs, and scenario events take effect."""

from __future__ import annotations

import pandas as pd
import pytest

from dtoee.run import run_isolated
from ns3_glue.build import load_glue
from ns3_glue.pcap import read_pcap

from .scenarios import scenario

pytestmark = pytest.mark.ns3

LINE = dict(
    radio={"enabled": False},
    backhaul={"layout": "line", "rate_bps": 1e8, "delay_s": 0.002},
    nodes=[{"name": "bs0", "stages": [1, 2]}, {"name": "bs1", "stages": [1, 2, 3], "speed_factor": 2.0},
           {"name": "bs2", "stages": [3]}],
    ue_groups=[{"node": "bs0", "count": 2, "rate_per_s": 10.0}, {"node": "bs2", "count": 2, "rate_per_s": 10.0}],
)


def test_dtoee_control_messages_are_packets_on_the_backhaul(ns3_session, tmp_path):
    sc = scenario(**LINE, policy={"kind": "dtoee", "period_s": 0.5}, output={"pcap": True})
    summary = run_isolated(sc, tmp_path)
    hops = pd.read_parquet(tmp_path / "hops.parquet")
    control = hops[hops["kind"] == "control"]
    assert len(control) > 10
    assert summary["control_messages_delivered"] == len(control)
    assert (control["bytes"] == sc.policy.control_message_bytes).all()
    assert (control["end_s"] > control["start_s"]).all()  # they take real network time
    # bs2's only link is bs1-bs2: its pcap there holds exactly the frames bs2 sent (to bs1 and,
    # forwarded by bs1, to bs0): control messages and offloads, each with its 16-byte header.
    _, glue = load_glue()
    capture = read_pcap(tmp_path / "pcap" / "backhaul_bs1-bs2_at_bs2.pcap")
    bs2_address = "10.200.1.2"  # line layout: link index 1, second end
    sent_payload = int(capture.loc[(capture["src"] == bs2_address) & (capture["protocol"] == 6), "payload_bytes"].sum())
    frames = hops[(hops["src"] == "node:bs2") & hops["kind"].isin(["control", "offload"])]
    assert (frames["kind"] == "control").any()
    assert sent_payload == int((frames["bytes"] + glue.kHeaderBytes).sum())
    policy = pd.read_parquet(tmp_path / "policy.parquet")
    assert policy["time_s"].nunique() > 5
    thresholds = policy[policy["kind"] == "threshold"]
    assert thresholds["value"].between(0, 1).all()
    sums = policy[policy["kind"] == "offload"].groupby(["time_s", "node", "stage"])["value"].sum()
    assert ((sums - 1).abs() < 1e-6).all()


@pytest.mark.parametrize("kind", ["fixed-threshold-load-proportional", "fixed-threshold-greedy-sed",
                                  "no-early-exit", "random-offloading", "optimum"])
def test_every_policy_kind_runs_and_conserves_tasks(ns3_session, tmp_path, kind):
    sc = scenario(**LINE, simulation={"duration_s": 4.0, "drain_s": 2.0, "seed": 3, "progress": False},
                  policy={"kind": kind})
    summary = run_isolated(sc, tmp_path)
    counts = summary["counts_by_status"]
    assert sum(counts.values()) == summary["tasks_generated"] > 20
    tasks = pd.read_parquet(tmp_path / "tasks.parquet")
    if kind == "no-early-exit":
        assert (tasks.loc[tasks["status"] == "completed", "exit_stage"] == 3).all()


def test_events_change_load_and_speed(ns3_session, tmp_path):
    sc = scenario(**LINE, simulation={"duration_s": 10.0, "drain_s": 2.0, "seed": 4, "progress": False},
                  events=[{"at_s": 5.0, "kind": "ue_rate", "ue_group": 0, "rate_per_s": 30.0},
                          {"at_s": 5.0, "kind": "node_speed", "node": "bs1", "speed_factor": 0.5},
                          {"at_s": 5.0, "kind": "link_rate", "a": "bs0", "b": "bs1", "rate_bps": 1e7}])
    run_isolated(sc, tmp_path)
    tasks = pd.read_parquet(tmp_path / "tasks.parquet")
    group0 = tasks[tasks["ue"] < 2]
    before, after = (group0["created_s"] < 5).sum(), (group0["created_s"] >= 5).sum()
    assert after > 2 * before  # 2 UEs x 10/s -> 2 UEs x 30/s
    hops = pd.read_parquet(tmp_path / "hops.parquet")
    services = hops[(hops["kind"] == "service") & (hops["src"] == "bs1")]
    duration = services["end_s"] - services["start_s"]
    early, late = duration[services["start_s"] < 4.9], duration[services["start_s"] > 5.1]
    assert late.min() == pytest.approx(4 * early.min(), rel=1e-6)  # speed 2.0 -> 0.5
