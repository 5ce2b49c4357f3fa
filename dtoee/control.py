"""The control plane: adaptive policies, their messages on the backhaul, scenario events,
and the policy trace.

Every ``period_s`` each node's agent gets what the node measured itself over the period
(:class:`~optimizer.policy.NodeMeasurements`) and the control messages that reached it;
the messages it returns travel as real packets over the simulated backhaul (hops of kind
``control``), so their delay and any loss shape convergence. What a node measures: the
stage-k arrival rate at its queue (Lambda_j^k), the rate of tasks it routed per stage
(phi_j^k), its UEs' task rate (lambda_j), the time-averaged number of tasks present, its own
service rates (its speed and the stage profile) and the provisioned rates of the backhaul
paths it sends on. Rates are smoothed over periods (EWMA, ``smoothing``), since one period
holds few Poisson arrivals.
"""

from __future__ import annotations

from collections import defaultdict

from dtoee.config import Scenario, backhaul_pairs
from dtoee.system_model import logical_links
from ns3_glue.network import backhaul_routes, node_endpoint
from optimizer.policy import ControlMessage, NodeMeasurements

POLICY_COLUMNS = ["time_s", "node", "stage", "kind", "target", "value"]


class PolicyLog:
    """Rows of policy.parquet: every node's offloading probabilities and thresholds over time."""

    def __init__(self) -> None:
        self.rows: list[tuple] = []

    def snapshot(self, now_s: float, policy, scenario: Scenario) -> None:
        num_stages = scenario.model.num_stages
        for node in scenario.nodes:
            for stage in range(1, num_stages + 1):
                try:
                    probabilities = policy.offload_probabilities(node.name, stage)
                except KeyError:
                    probabilities = {}
                for target, value in probabilities.items():
                    self.rows.append((now_s, node.name, stage, "offload", target, float(value)))
                if stage in node.stages:
                    self.rows.append((now_s, node.name, stage, "threshold", "", float(policy.threshold(node.name, stage))))


class ControlPlane:
    def __init__(self, *, cosim, policy, scenario: Scenario, stage_latency_s: dict[str, list[float]], network,
                 policy_log: PolicyLog, adaptive: bool, smoothing: float = 0.5) -> None:
        self.cosim = cosim
        self.policy = policy
        self.scenario = scenario
        self.stage_latency_s = stage_latency_s
        self.net = network
        self.log = policy_log
        self.adaptive = adaptive
        self.smoothing = smoothing
        self.inbox: dict[str, list[ControlMessage]] = defaultdict(list)
        self._estimates: dict[tuple[str, str, int], float] = {}
        self.down_intervals: dict[frozenset, list[list]] = {}
        names = [node.name for node in scenario.nodes]
        self._next_hop = backhaul_routes(names, backhaul_pairs(scenario))
        self._period_start_s = 0.0
        self.messages_sent = 0
        self.messages_delivered = 0

    def start(self) -> None:
        self.log.snapshot(0.0, self.policy, self.scenario)
        for event in self.scenario.events:
            self.net.call_later(event.at_s, lambda e=event: self._apply(e))
        if self.adaptive:
            self.net.call_later(self.policy.period_s, self._tick)

    # Events -----------------------------------------------------------------------------
    def _apply(self, event) -> None:
        if event.kind == "ue_rate":
            group_start = sum(g.count for g in self.scenario.ue_groups[: event.ue_group])
            for ue in self.cosim.ues[group_start : group_start + self.scenario.ue_groups[event.ue_group].count]:
                self.cosim.set_ue_rate(ue, event.rate_per_s)
        elif event.kind == "node_speed":
            self.cosim.nodes[event.node].speed_factor = event.speed_factor
        elif event.kind == "node_crash":
            self.cosim.crash(event.node)
            self.inbox[event.node] = []
        elif event.kind == "node_recover":
            self.cosim.recover(event.node)
        elif event.kind in ("link_down", "link_up"):
            key = frozenset((event.a, event.b))
            if event.kind == "link_down":
                self.down_intervals.setdefault(key, []).append([self.net.now(), None])
            else:
                for interval in self.down_intervals.get(key, []):
                    if interval[1] is None:
                        interval[1] = self.net.now()
            self.net.set_link_up(event.a, event.b, event.kind == "link_up")
        elif event.kind == "link_rate":
            self.net.set_link_rate(event.a, event.b, event.rate_bps)
            links = [l.model_copy(update={"rate_bps": event.rate_bps}) if {l.a, l.b} == {event.a, event.b} else l
                     for l in self.scenario.backhaul.links]
            if not any({l.a, l.b} == {event.a, event.b} for l in links):
                from dtoee.config import LinkConfig

                links.append(LinkConfig(a=event.a, b=event.b, rate_bps=event.rate_bps))
            backhaul = self.scenario.backhaul.model_copy(update={"links": links})
            self.scenario = self.scenario.model_copy(update={"backhaul": backhaul})

    # Periodic update ----------------------------------------------------------------------
    def _tick(self) -> None:
        now = self.net.now()
        period = now - self._period_start_s
        self._period_start_s = now
        paths = logical_links(self.scenario)  # provisioned path rates (change with events)
        for name, node in self.cosim.nodes.items():
            measurements = self._measure(name, node, now, period, paths)
            inbox, self.inbox[name] = self.inbox[name], []
            if not node.alive:
                continue  # a crashed server neither computes nor sends
            for message in self.policy.step(name, measurements, inbox):
                self._send(message)
        self.log.snapshot(now, self.policy, self.scenario)
        if now + self.policy.period_s <= self.cosim.duration_s:  # no updates while draining
            self.net.call_later(self.policy.period_s, self._tick)

    def path_was_down(self, src: str, dst: str, since_s: float) -> bool:
        """Was any backhaul link on the route between endpoints src and dst down at some
        time in [since_s, now]? (UE legs cross no backhaul link.)"""
        if not (src.startswith("node:") and dst.startswith("node:")):
            return False
        here, target = src[5:], dst[5:]
        while here != target:
            hop = self._next_hop[(here, target)]
            for start, end in self.down_intervals.get(frozenset((here, hop)), []):
                if end is None or end >= since_s:
                    return True
            here = hop
        return False

    def _smoothed(self, key: tuple, sample: float) -> float:
        previous = self._estimates.get(key)
        value = sample if previous is None else self.smoothing * sample + (1 - self.smoothing) * previous
        self._estimates[key] = value
        return value

    def _measure(self, name: str, node, now: float, period: float, paths) -> NodeMeasurements:
        node.note_change(now)
        config = self.scenario.node(name)
        arrivals = {k: self._smoothed((name, "arrivals", k), node.stage_arrivals.get(k, 0) / period)
                    for k in config.stages}
        routed = {k: self._smoothed((name, "routed", k), count / period) for k, count in node.stage_routed.items()}
        external = self._smoothed((name, "external", 0), node.external_arrivals / period)
        queue_length = node.tasks_present_area / period
        node.stage_arrivals, node.stage_routed, node.external_arrivals = {}, {}, 0
        node.tasks_present_area = 0.0
        return NodeMeasurements(
            node=name, period_s=period, arrivals_per_s=arrivals, external_arrivals_per_s=external,
            forwarded_per_s=routed,
            service_rate_per_s={k: node.speed_factor * node.servers / self.stage_latency_s[name][k - 1]
                                for k in config.stages},
            mean_queue_length=queue_length,
            link_rate_bps={j: link.capacity_bytes_per_s * 8.0 for (i, j), link in paths.items() if i == name},
            now_s=now,
        )

    def _send(self, message: ControlMessage) -> None:
        src, dst = node_endpoint(message.src), node_endpoint(message.dst)
        start_s = self.net.now()
        self.messages_sent += 1

        def delivered() -> None:
            self.messages_delivered += 1
            self.cosim.trace.hop(-1, "control", src, dst, 0, message.size_bytes, start_s, self.net.now())
            if self.cosim.nodes[message.dst].alive:
                self.inbox[message.dst].append(message)

        self.net.send(src, dst, message.size_bytes, delivered)
