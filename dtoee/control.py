"""The control plane: adaptive policies, their messages on the backhaul, scenario events,
what each node estimates, and the policy trace.

Every ``period_s`` each node's agent gets what the node measured itself over the period
(:class:`~optimizer.policy.NodeMeasurements`) and the control messages that reached it;
the messages it returns travel as real packets over the simulated backhaul (hops of kind
``control``), so their delay and any loss shape convergence. What a node knows:

* counts over the period (from ``CoSimulation.take_counters``): the stage-k arrival rate at
  its queue (Lambda_j^k), the rate of tasks it routed per stage (phi_j^k), its UEs' task
  rate (lambda_j), the time-averaged and the current number of tasks present. Rates are
  smoothed over periods (EWMA, ``smoothing``), since one period holds few Poisson arrivals;
* its service rates mu_j^k, estimated from the durations of the services it completed
  (``optimizer.estimators.ServiceRateEstimator``; the profile at its configured speed
  before any);
* the rate and delay of each path it may send on, estimated from the transfers on that
  path that completed (offloads measure the rate; control messages and probes the delay;
  ``optimizer.estimators.PathEstimator``; the configured path before any). A path that
  completed no transfer in a period gets a probe of ``probe_bytes`` (hops of kind
  ``probe``). The receiver time-stamps a transfer's last byte and the sender learns it
  at once (a TCP sender learns it one ACK later; that one-way delay is neglected).

Scenario events go to ``CoSimulation.apply_event``: they change the world, never a node's
knowledge, which moves only when a measurement completes. ``policy.parquet`` records each
node's strategy and its estimates every period (kinds ``offload``, ``threshold``,
``service_rate_per_s``, ``path_rate_bps``, ``path_delay_s``).
"""

from __future__ import annotations

from collections import defaultdict

from dtoee.config import Scenario
from dtoee.cosim import CoSimulation
from dtoee.system_model import logical_links
from optimizer.estimators import PathEstimator, RateMeter, ServiceRateEstimator
from optimizer.policy import ControlMessage, NodeMeasurements

POLICY_COLUMNS = ["time_s", "node", "stage", "kind", "target", "value"]


class PolicyLog:
    """Rows of policy.parquet: every node's offloading probabilities, thresholds and
    estimates over time."""

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

    def estimates(self, now_s: float, knowledge: "NodeKnowledge") -> None:
        for name, estimator in knowledge.services.items():
            for stage, rate in estimator.rates_per_s().items():
                self.rows.append((now_s, name, stage, "service_rate_per_s", "", float(rate)))
        for (i, j), path in knowledge.paths.items():
            self.rows.append((now_s, i, 0, "path_rate_bps", j, float(path.rate_bps)))
            self.rows.append((now_s, i, 0, "path_delay_s", j, float(path.delay_s)))


class NodeKnowledge:
    """Every node's estimators, fed only by completions the co-simulation reports
    (an :class:`~dtoee.cosim.Observer`)."""

    def __init__(self, scenario: Scenario, stage_latency_s: dict[str, list[float]]) -> None:
        """``stage_latency_s``: {node: latency of each stage at speed 1 on that node's device}
        (the profile: each estimator's prior until it has samples)."""
        self.services = {
            node.name: ServiceRateEstimator({k: stage_latency_s[node.name][k - 1] for k in node.stages}, servers=node.servers,
                                            speed_prior=node.speed_factor)
            for node in scenario.nodes if node.stages
        }
        hosts = {node.name for node in scenario.nodes if node.stages}
        # The configured paths at the start: a prior, never updated by events.
        self.paths = {(i, j): PathEstimator(prior_rate_bps=link.capacity_bytes_per_s * 8.0,
                                            prior_delay_s=link.propagation_s)
                      for (i, j), link in sorted(logical_links(scenario).items()) if j in hosts}
        self.completed_on: set[tuple[str, str]] = set()  # paths with a transfer done this period

    def service_done(self, node: str, stage: int, duration_s: float) -> None:
        self.services[node].add(stage, duration_s)

    def transfer_done(self, src: str, dst: str, payload_bytes: int, start_s: float, end_s: float) -> None:
        path = self.paths.get((src, dst))
        if path is not None:
            path.add(payload_bytes, end_s - start_s)
            self.completed_on.add((src, dst))


class ControlPlane:
    """Runs the adaptive policy's agents every ``period_s`` and applies scenario events.

    Uses the co-simulation only through its control-plane interface (``take_counters``,
    ``tasks_present``, ``is_alive``, ``apply_event``, ``send_control``, ``observe``) and the
    network only for time (``now``, ``call_later``). ``scenario`` is read, never changed.
    """

    def __init__(self, *, cosim: CoSimulation, policy, scenario: Scenario, stage_latency_s: dict[str, list[float]], network,
                 policy_log: PolicyLog, adaptive: bool, smoothing: float = 0.5) -> None:
        self.cosim = cosim
        self.policy = policy
        self.scenario = scenario
        self.net = network
        self.log = policy_log
        self.adaptive = adaptive
        self.smoothing = smoothing
        self.inbox: dict[str, list[ControlMessage]] = defaultdict(list)
        # only adaptive policies measure (a static policy's run needs no priors; building them
        # costs one path per ordered pair of servers: a million at 1,000 servers)
        self.knowledge = NodeKnowledge(scenario, stage_latency_s) if adaptive else None
        self._meters: dict[tuple, RateMeter] = {}
        self._period_start_s = 0.0
        if adaptive:
            cosim.observe(self.knowledge)

    @property
    def messages_sent(self) -> int:
        return self.cosim.control_sent

    @property
    def messages_delivered(self) -> int:
        return self.cosim.control_delivered

    def start(self) -> None:
        self.log.snapshot(0.0, self.policy, self.scenario)
        if self.adaptive:
            self.log.estimates(0.0, self.knowledge)
        for event in self.scenario.events:
            self.net.call_later(event.at_s, lambda e=event: self._event(e))
        if self.adaptive:
            self.net.call_later(self.policy.period_s, self._tick)

    def _event(self, event) -> None:
        self.cosim.apply_event(event)
        if event.kind == "node_crash":
            self.inbox[event.node] = []  # a crashed server loses what it had not yet read

    # Periodic update ----------------------------------------------------------------------
    def _tick(self) -> None:
        now = self.net.now()
        period = now - self._period_start_s
        self._period_start_s = now
        for node in self.scenario.nodes:
            name = node.name
            measurements = self._measure(name, node.stages, now, period)
            inbox, self.inbox[name] = self.inbox[name], []
            if not self.cosim.is_alive(name):
                continue  # a crashed server neither computes nor sends
            for message in self.policy.step(name, measurements, inbox):
                self._send(message)
        self._probe_idle_paths()
        self.log.snapshot(now, self.policy, self.scenario)
        self.log.estimates(now, self.knowledge)
        if now + self.policy.period_s <= self.scenario.simulation.duration_s:  # no updates while draining
            self.net.call_later(self.policy.period_s, self._tick)
            rounds = getattr(self.policy, "rounds_per_period", 1)
            for r in range(1, rounds):  # extra message rounds between two measurements
                self.net.call_later(r * self.policy.period_s / rounds, self._exchange)

    def _exchange(self) -> None:
        """An exchange-only round (``policy.rounds_per_period > 1``): no new measurement."""
        now = self.net.now()
        for node in self.scenario.nodes:
            name = node.name
            inbox, self.inbox[name] = self.inbox[name], []
            if not self.cosim.is_alive(name):
                continue
            for message in self.policy.exchange(name, now, inbox):
                self._send(message)
        self.log.snapshot(now, self.policy, self.scenario)

    def _rate(self, key: tuple, count: float, period: float) -> float:
        meter = self._meters.setdefault(key, RateMeter(self.smoothing))
        return meter.add(count, period)

    def _measure(self, name: str, stages: list[int], now: float, period: float) -> NodeMeasurements:
        counters = self.cosim.take_counters(name, period)
        arrivals = {k: self._rate((name, "arrivals", k), counters.stage_arrivals.get(k, 0), period) for k in stages}
        routed = {k: self._rate((name, "routed", k), count, period) for k, count in counters.stage_routed.items()}
        external = self._rate((name, "external", 0), counters.external_arrivals, period)
        service = self.knowledge.services.get(name)
        paths = {j: path for (i, j), path in self.knowledge.paths.items() if i == name}
        return NodeMeasurements(
            node=name, period_s=period, arrivals_per_s=arrivals, external_arrivals_per_s=external,
            forwarded_per_s=routed,
            service_rate_per_s=service.rates_per_s() if service is not None else {},
            mean_queue_length=counters.mean_tasks_present,
            link_rate_bps={j: path.rate_bps for j, path in paths.items()},
            link_delay_s={j: path.delay_s for j, path in paths.items()},
            now_s=now, tasks_present=counters.tasks_present,
        )

    def _probe_idle_paths(self) -> None:
        """One probe on every path that completed no transfer this period (its sender up)."""
        size = self.scenario.policy.probe_bytes
        for (i, j) in self.knowledge.paths:
            if (i, j) not in self.knowledge.completed_on and self.cosim.is_alive(i):
                self.cosim.send_control(i, j, size, lambda: None, kind="probe")
        self.knowledge.completed_on = set()

    def _send(self, message: ControlMessage) -> None:
        self.cosim.send_control(message.src, message.dst, message.size_bytes,
                                lambda: self.inbox[message.dst].append(message))
