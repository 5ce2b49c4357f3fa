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
    # fixed fields, plus 28 bytes per out-flow and 12 per accepted swap a report lists
    extra = control["bytes"] - sc.policy.control_message_bytes
    assert (extra >= 0).all() and extra.map(lambda b: any((b - 12 * a) % 28 == 0 for a in range(b // 12 + 1))).all()
    assert (extra > 0).any()  # bs1 forwards its own work: its reports list where
    assert (control["end_s"] > control["start_s"]).all()  # they take real network time
    # bs2's only link is bs1-bs2: its pcap there holds exactly the frames bs2 sent (to bs1 and,
    # forwarded by bs1, to bs0): control messages, path probes and offloads, each with its 16-byte header.
    _, glue = load_glue()
    capture = read_pcap(tmp_path / "pcap" / "backhaul_bs1-bs2_at_bs2.pcap")
    bs2_address = "10.200.1.2"  # line layout: link index 1, second end
    sent_payload = int(capture.loc[(capture["src"] == bs2_address) & (capture["protocol"] == 6), "payload_bytes"].sum())
    frames = hops[(hops["src"] == "node:bs2") & hops["kind"].isin(["control", "offload", "probe"])]
    assert (frames["kind"] == "control").any()
    assert sent_payload == int((frames["bytes"] + glue.kHeaderBytes).sum())
    policy = pd.read_parquet(tmp_path / "policy.parquet")
    assert policy["time_s"].nunique() > 5
    thresholds = policy[policy["kind"] == "threshold"]
    assert thresholds["value"].between(0, 1).all()
    sums = policy[policy["kind"] == "offload"].groupby(["time_s", "node", "stage"])["value"].sum()
    assert ((sums - 1).abs() < 1e-6).all()


@pytest.mark.parametrize("kind", ["static-load-proportional", "static-greedy-sed", "static-no-early-exit",
                                  "static-random", "optimum", "fixed-threshold-greedy-sed", "dispatch-sed-tuned"])
def test_every_policy_kind_runs_and_conserves_tasks(ns3_session, tmp_path, kind):
    sc = scenario(**LINE, simulation={"duration_s": 4.0, "drain_s": 2.0, "seed": 3, "progress": False},
                  policy={"kind": kind})
    summary = run_isolated(sc, tmp_path)
    counts = summary["counts_by_status"]
    assert sum(counts.values()) == summary["tasks_generated"] > 20
    tasks = pd.read_parquet(tmp_path / "tasks.parquet")
    if kind == "static-no-early-exit":
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


@pytest.mark.parametrize("kind", ["dispatch-sed", "dispatch-jsq", "dispatch-po2"])
def test_dispatchers_send_state_reports_as_packets_and_shift_after_a_load_step(ns3_session, tmp_path, kind):
    """Each per-task dispatcher on a real run: every node's state report to its upstream
    senders is a control packet (hops and pcap agree), and when bs0's own load quadruples
    at 5 s (2 UEs x 10 -> 40 tasks/s, beyond bs0's stage-1 capacity of 50/s), bs0 sends a
    larger share of its stage-1 tasks to bs1."""
    sc = scenario(**LINE, simulation={"duration_s": 12.0, "drain_s": 3.0, "seed": 5, "progress": False},
                  policy={"kind": kind, "period_s": 0.5, "fixed_threshold": 0.8}, output={"pcap": True},
                  events=[{"at_s": 5.0, "kind": "ue_rate", "ue_group": 0, "rate_per_s": 40.0}])
    summary = run_isolated(sc, tmp_path)
    counts = summary["counts_by_status"]
    assert sum(counts.values()) == summary["tasks_generated"] and counts.get("lost", 0) == 0
    hops = pd.read_parquet(tmp_path / "hops.parquet")
    control = hops[hops["kind"] == "control"]
    assert summary["control_messages_delivered"] == len(control) > 20
    assert (control["bytes"] >= sc.policy.control_message_bytes).all()
    # reports go to the nodes that may send to the reporter: bs2 hosts stage 3, routed by
    # the stage-2 hosts bs0 and bs1; bs1 hosts every stage, so everyone sends to it
    assert set(control.loc[control["src"] == "node:bs2", "dst"]) == {"node:bs0", "node:bs1"}
    assert set(control.loc[control["src"] == "node:bs1", "dst"]) == {"node:bs0", "node:bs2"}
    _, glue = load_glue()
    capture = read_pcap(tmp_path / "pcap" / "backhaul_bs1-bs2_at_bs2.pcap")
    sent_payload = int(capture.loc[(capture["src"] == "10.200.1.2") & (capture["protocol"] == 6), "payload_bytes"].sum())
    frames = hops[(hops["src"] == "node:bs2") & hops["kind"].isin(["control", "offload", "probe"])]
    assert sent_payload == int((frames["bytes"] + glue.kHeaderBytes).sum())
    # choices: the shares bs0 actually sent to bs1 for stage 1, period by period
    policy = pd.read_parquet(tmp_path / "policy.parquet")
    to_bs1 = policy[(policy["kind"] == "offload") & (policy["node"] == "bs0") & (policy["stage"] == 1)
                    & (policy["target"] == "bs1")].set_index("time_s")["value"]
    before = to_bs1[(to_bs1.index > 1.0) & (to_bs1.index <= 5.0)].mean()
    after = to_bs1[(to_bs1.index > 6.0) & (to_bs1.index <= 12.0)].mean()
    assert after > before + 0.15, (before, after)
    # the per-task choices are what tasks did: bs0's stage-1 offloads to bs1 per period
    offloads = hops[(hops["kind"] == "offload") & (hops["src"] == "node:bs0") & (hops["stage"] == 1)]
    assert (offloads["dst"] == "node:bs1").sum() > 0
