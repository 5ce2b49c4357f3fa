"""The control plane against the co-simulation's control interface, on an in-process network
with exact transfer times (milliseconds, no ns-3): events change the world, and a node's
estimates move only when its own services and transfers complete."""

from __future__ import annotations

import heapq
import itertools

import numpy as np
import pytest

from dtoee.control import ControlPlane, PolicyLog
from dtoee.cosim import CoSimulation, NodeState
from dtoee.trace import Trace
from dtoee.network import UePlacement
from optimizer.policy import StaticPolicy

from .scenarios import scenario

LATENCY_S = [0.01, 0.01]
PAYLOAD_BYTES = 50_000


class LineNetwork:
    """Time and transfers: delay 2 ms + bytes / rate of the link (one link per pair)."""

    def __init__(self, rate_bps: float) -> None:
        self.rate_bps, self.t, self.queue, self.ids = {}, 0.0, [], itertools.count()
        self.default_rate_bps = rate_bps

    def now(self) -> float:
        return self.t

    def call_later(self, delay_s, fn) -> None:
        heapq.heappush(self.queue, (self.t + delay_s, next(self.ids), fn))

    def send(self, src, dst, payload_bytes, on_delivered) -> None:
        if src.startswith("ue:") or dst.startswith("ue:"):
            return self.call_later(0.0, on_delivered)
        rate = self.rate_bps.get(frozenset((src[5:], dst[5:])), self.default_rate_bps)
        self.call_later(0.002 + payload_bytes * 8 / rate, on_delivered)

    def set_link_rate(self, a, b, rate_bps) -> None:
        self.rate_bps[frozenset((a, b))] = rate_bps

    def set_link_up(self, a, b, up) -> None:
        pass

    def run(self, until_s: float) -> None:
        while self.queue and self.queue[0][0] <= until_s:
            self.t, _, fn = heapq.heappop(self.queue)
            fn()


class Executor:
    num_stages, input_bytes, result_bytes = 2, 200, 16

    def pick_sample(self, rng):
        return 0, 0

    def run(self, task, stage):
        return 0.0, 0, PAYLOAD_BYTES  # never confident: every task runs both stages


class Recorder(StaticPolicy):
    """bs0 sends every stage-2 task to bs1; records what each node was told each period."""

    period_s = 1.0

    def __init__(self) -> None:
        super().__init__({("bs0", 1): {"bs0": 1.0}, ("bs0", 2): {"bs1": 1.0}, ("bs1", 2): {"bs1": 1.0}}, {}, 0.5)
        self.seen = []

    def reset(self, *, seed=None) -> None:
        self.seen = []

    def step(self, node, measurements, inbox):
        self.seen.append(measurements)
        return []


def _run(events, duration_s=8.0):
    sc = scenario(radio={"enabled": False}, backhaul={"layout": "line", "rate_bps": 1e8, "delay_s": 0.002},
                  model={"family": "mlp", "num_stages": 2, "stage_latency_s": LATENCY_S},
                  nodes=[{"name": "bs0", "stages": [1]}, {"name": "bs1", "stages": [2], "speed_factor": 2.0}],
                  ue_groups=[{"node": "bs0", "count": 2, "rate_per_s": 10.0}],
                  simulation={"duration_s": duration_s, "drain_s": 1.0, "seed": 1, "progress": False},
                  events=events)
    before = sc.content_hash()
    net, policy = LineNetwork(1e8), Recorder()
    ues = [UePlacement(i, (0.0, 0.0), "bs0", 10.0) for i in range(2)]
    rngs = {"routing": np.random.default_rng(0), "samples": np.random.default_rng(1),
            "service": np.random.default_rng(2), "task_sizes": np.random.default_rng(3), **{f"arrivals/{i}": np.random.default_rng(10 + i) for i in range(2)}}
    cosim = CoSimulation(network=net, executor=Executor(), policy=policy,
                         nodes=[NodeState(n.name, n.servers, n.speed_factor) for n in sc.nodes], ues=ues,
                         stage_latency_s={n.name: LATENCY_S for n in sc.nodes}, exponential_service=False, duration_s=duration_s, rngs=rngs,
                         trace=Trace(), next_hop={("bs0", "bs1"): "bs1", ("bs1", "bs0"): "bs0"},
                         ue_groups=[[0, 1]])
    log = PolicyLog()
    control = ControlPlane(cosim=cosim, policy=policy, scenario=sc, stage_latency_s={n.name: LATENCY_S for n in sc.nodes}, network=net,
                           policy_log=log, adaptive=True)
    cosim.start()
    control.start()
    net.run(duration_s + 1.0)
    assert sc.content_hash() == before  # the control plane never changes the scenario
    return cosim, policy, log


def _told(policy, node):
    return [m for m in policy.seen if m.node == node]


def test_link_rate_event_reaches_the_estimate_only_through_transfers():
    cosim, policy, _ = _run([{"at_s": 4.5, "kind": "link_rate", "a": "bs0", "b": "bs1", "rate_bps": 1e7}])
    told = {round(m.now_s): m.link_rate_bps["bs1"] for m in _told(policy, "bs0")}
    assert told[1] == pytest.approx(1e8, rel=1e-6)  # exact transfer times: the exact old rate
    assert told[4] == pytest.approx(1e8, rel=1e-6)
    assert told[5] < 0.9e8  # transfers after 4.5 s completed before 5 s and taught it
    assert told[8] == pytest.approx(1e7, rel=0.05)
    # bs1 never sends tasks to bs0: its path there is idle and probed (64 B) each other period
    delay = {round(m.now_s): m.link_delay_s["bs0"] for m in _told(policy, "bs1")}
    assert delay[1] == 0.002  # the configured delay, before any probe came back
    assert delay[3] == pytest.approx(0.002 + 64 * 8 / 1e8, rel=1e-9)
    # a minimum filter: the slower probes after the event show only once the faster ones have
    # left its window (delay_window samples), so a rise in delay shows late (a decrease at once)
    assert delay[8] == delay[3]


def test_node_speed_event_reaches_the_estimate_only_through_services():
    cosim, policy, log = _run([{"at_s": 4.5, "kind": "node_speed", "node": "bs1", "speed_factor": 0.5}])
    told = {round(m.now_s): m.service_rate_per_s[2] for m in _told(policy, "bs1")}
    assert told[4] == pytest.approx(2.0 / 0.01)
    assert told[8] == pytest.approx(0.5 / 0.01, rel=0.10)
    rows = [r for r in log.rows if r[3] == "service_rate_per_s" and r[1] == "bs1"]
    assert [r[5] for r in rows if r[0] < 4.5] == pytest.approx([200.0] * 5)


def test_ue_rate_event_changes_the_group_and_counts_reach_the_node():
    cosim, policy, _ = _run([{"at_s": 4.0, "kind": "ue_rate", "ue_group": 0, "rate_per_s": 40.0}])
    created = np.array([t.created_s for t in cosim.tasks])
    assert (created >= 4.0).sum() > 3 * (created < 4.0).sum()
    told = {round(m.now_s): m for m in _told(policy, "bs0")}
    assert told[8].external_arrivals_per_s > 2 * told[4].external_arrivals_per_s
    assert told[8].arrivals_per_s[1] == pytest.approx(told[8].external_arrivals_per_s, rel=0.3)


def test_control_plane_uses_only_the_cosimulation_interface():
    """control.py reaches the co-simulation through its documented interface only (no
    ``cosim.nodes``, ``cosim.ues``, ``cosim.trace``, ...)."""
    import ast
    import inspect

    import dtoee.control

    tree = ast.parse(inspect.getsource(dtoee.control))
    used = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute):
            owner = node.value
            if (isinstance(owner, ast.Name) and owner.id == "cosim") or (
                    isinstance(owner, ast.Attribute) and owner.attr == "cosim"):
                used.add(node.attr)
    interface = {"take_counters", "tasks_present", "is_alive", "apply_event", "send_control", "observe",
                 "control_sent", "control_delivered", "now"}
    assert used and used <= interface, used - interface
