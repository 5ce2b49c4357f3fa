"""Admission control: DTO-EE sheds, visibly, the load its hosts cannot serve.

Unit tests of the contract and of DtoeePolicy's admission rule (milliseconds), and two real
ns-3 runs: far above capacity tasks are rejected at their entry node (status ``lost``,
reason ``rejected``, one ``admission`` hop), every task ends once and the queues stop
growing; below capacity nothing is rejected.
"""

from __future__ import annotations

import pandas as pd
import pytest

from optimizer.dtoee import DtoeePolicy, ReceiverReport
from optimizer.policy import AdmissionControl, ControlMessage, NodeMeasurements, StaticPolicy, admit_probability
from optimizer.system import random_instance

from .scenarios import scenario
from .test_policies_e2e import LINE


def test_a_policy_without_admission_admits_everything():
    static = StaticPolicy({("a", 1): {"a": 1.0}}, {}, 0.5)
    assert not isinstance(static, AdmissionControl)
    assert admit_probability(static, "a") == 1.0

    class Odd:
        def __init__(self, value):
            self.value = value

        def admit_probability(self, node):
            return self.value

    assert admit_probability(Odd(1.7), "a") == 1.0
    assert admit_probability(Odd(-0.2), "a") == 0.0
    assert admit_probability(Odd(float("nan")), "a") == 1.0
    assert admit_probability(Odd(0.25), "a") == 0.25


def _entry_and_hosts():
    system = random_instance(seed=3)
    policy = DtoeePolicy(system)
    assert isinstance(policy, AdmissionControl)
    entry = next(name for name in system.nodes if 1 in policy.agents[name].offload_stages)
    return system, policy, entry, policy.agents[entry].targets[1]


def _step_with_reports(policy, entry, hosts, offered, shed, headroom, now=1.0, forwarded=None):
    """Give ``entry`` one report per stage-1 host (shed share, per-sender headroom), then one step."""
    inbox = []
    for j in hosts:
        if j != entry:
            report = ReceiverReport(j, 1, 0.05, 1.0, 1, headroom, now, shed_share=shed, spare_per_s=headroom)
            inbox.append(ControlMessage(src=j, dst=entry, payload=report.to_payload()))
    m = NodeMeasurements(node=entry, period_s=1.0, external_arrivals_per_s=offered,
                         forwarded_per_s={1: offered if forwarded is None else forwarded}, now_s=now)
    policy.step(entry, m, inbox)
    return policy.admit_probability(entry)


def test_dtoee_admits_all_while_a_host_has_room():
    _, policy, entry, hosts = _entry_and_hosts()
    for t in range(1, 6):
        assert _step_with_reports(policy, entry, hosts, offered=20.0, shed=0.0, headroom=5.0, now=float(t)) == 1.0


def test_dtoee_never_cuts_unless_a_host_asks_to_shed():
    """Hosts at rho_bar with no headroom but no shed request, and an offered rate above the
    routed one (the two are measured over different windows): nothing is rejected."""
    _, policy, entry, hosts = _entry_and_hosts()
    for t in range(1, 6):
        share = _step_with_reports(policy, entry, hosts, offered=40.0, shed=0.0, headroom=0.0, now=float(t),
                                   forwarded=30.0)
        assert share == 1.0


def test_dtoee_sheds_what_no_host_can_take_and_recovers():
    """Every stage-1 host past rho_bar asks for a 50% cut and has no headroom: the entry's
    admitted share falls toward what the hosts take (halfway per round), and climbs back to
    1 once they report room again."""
    _, policy, entry, hosts = _entry_and_hosts()
    shares = [_step_with_reports(policy, entry, hosts, offered=40.0, shed=0.5, headroom=0.0, now=float(t))
              for t in range(1, 8)]
    assert shares[-1] < 0.6
    assert all(b <= a + 1e-12 for a, b in zip(shares, shares[1:]))  # monotone, no oscillation
    for t in range(8, 30):
        share = _step_with_reports(policy, entry, hosts, offered=40.0, shed=0.0, headroom=20.0, now=float(t))
    assert share == 1.0
    policy.reset()
    assert policy.admit_probability(entry) == 1.0


OVERLOAD = dict(LINE, ue_groups=[{"node": "bs0", "count": 2, "rate_per_s": 60.0},
                                 {"node": "bs2", "count": 2, "rate_per_s": 60.0}])


@pytest.mark.ns3
def test_far_above_capacity_dtoee_rejects_visibly_and_queues_stay_bounded(ns3_session, tmp_path):
    """240 tasks/s offered to stage-1 hosts that serve ~150/s (no feasible strategy)."""
    from dtoee.run import run_isolated

    sim = {"duration_s": 6.0, "drain_s": 4.0, "seed": 2, "progress": False, "warmup_s": 0.0}
    runs = {}
    for kind in ("dtoee", "static"):
        out = tmp_path / kind
        summary = run_isolated(scenario(**OVERLOAD, simulation=sim, policy={"kind": kind}), out)
        runs[kind] = (summary, pd.read_parquet(out / "tasks.parquet"), pd.read_parquet(out / "hops.parquet"))
    summary, tasks, hops = runs["dtoee"]
    rejected = tasks[tasks["loss_reason"] == "rejected"]
    assert len(rejected) > 0.15 * len(tasks)
    assert summary["loss_reasons"]["rejected"] == len(rejected)
    # conservation: every task once, in exactly one state
    assert tasks["task_id"].is_unique and len(tasks) == summary["tasks_generated"]
    assert sum(summary["counts_by_status"].values()) == len(tasks)
    assert (rejected["status"] == "lost").all()
    admission = hops[hops["kind"] == "admission"]
    assert sorted(admission["task_id"]) == sorted(rejected["task_id"])  # one admission hop each
    served = set(hops.loc[hops["kind"] == "service", "task_id"])
    assert not served & set(rejected["task_id"])  # a rejected task never used a server
    # queues bounded: the static policy's backlog grows all run long; DTO-EE's does not
    static_summary, static_tasks, _ = runs["static"]
    assert "rejected" not in static_summary["loss_reasons"]
    assert max(summary["max_queue_length_by_node"].values()) < 0.5 * max(static_summary["max_queue_length_by_node"].values())
    late = tasks[(tasks["created_s"] >= 4.0) & (tasks["status"] == "completed")]
    static_late = static_tasks[(static_tasks["created_s"] >= 4.0) & (static_tasks["status"] == "completed")]
    assert len(late) > 0
    assert late["delay_s"].mean() < 0.5 * static_late["delay_s"].mean() or len(static_late) == 0


@pytest.mark.ns3
def test_below_capacity_dtoee_rejects_nothing(ns3_session, tmp_path):
    from dtoee.run import run_isolated

    sim = {"duration_s": 5.0, "drain_s": 2.0, "seed": 2, "progress": False}
    summary = run_isolated(scenario(**LINE, simulation=sim, policy={"kind": "dtoee", "rounds_per_period": 2}), tmp_path)
    tasks = pd.read_parquet(tmp_path / "tasks.parquet")
    hops = pd.read_parquet(tmp_path / "hops.parquet")
    assert "rejected" not in summary["loss_reasons"]
    assert not (hops["kind"] == "admission").any()
    assert (tasks["status"] == "completed").mean() > 0.9
