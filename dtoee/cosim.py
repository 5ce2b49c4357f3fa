"""The co-simulation: the life of every task across UEs, radio, edge servers and backhaul.

One task (docs/design.md, "One task, end to end")::

    arrival at UE --uplink--> serving node i --x_i^1--> host j of stage 1 --queue--> service
      service of stage k at j: exit if confidence >= theta_j^k (or k = K)
        exit:      j --result--> UE                       (status completed on arrival)
        continue:  j --x_j^{k+1}--> host l of stage k+1 (offload of the activation) ...

The network (any :class:`Network`: ``now``, ``call_later``, ``send``; three implementations in
:mod:`dtoee.network`) moves bytes and keeps time; this module holds the task logic only. Each handler is one event.

Accounting: every task ends exactly once, through ``_complete`` or ``_lose`` (with a reason:
``node_crash``, ``queue_full``, ``link_down``, ``timeout``, or ``rejected``: turned away at
its entry node by the policy's admission control, :class:`~optimizer.policy.AdmissionControl`,
with an ``admission`` hop in the trace); a task still moving at the stop
time stays ``in_flight``. Every handler first checks that its task is still in flight, so a
late event (a delivery after a timeout, a service on a node that crashed) changes nothing.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field
from typing import Callable, Mapping, Protocol, Sequence

import numpy as np

from dtoee.topology import route
from dtoee.trace import Trace
from dtoee.workload import TaskSize, Workload
from dtoee.network import Network, UePlacement, node_endpoint, ue_endpoint
from optimizer.policy import Policy, TaskDecision, admit_probability


class StageExecutor(Protocol):
    """Runs stage k of a task's sample; returns (confidence, predicted, output activation bytes)."""

    num_stages: int
    input_bytes: int
    result_bytes: int

    def pick_sample(self, rng: np.random.Generator) -> tuple[int, int]: ...
    def run(self, task: "Task", stage: int) -> tuple[float, int, int]: ...


@dataclass
class Task:
    task_id: int
    ue: int
    entry_node: str
    created_s: float
    sample: int
    label: int
    stage: int = 1                 # the stage it needs next (1-based)
    payload_bytes: int = 0         # what an offload of it carries now
    activation: object = None      # live mode: the tensor that actually travels
    status: str = "in_flight"
    loss_reason: str = ""
    finished_s: float = math.nan
    exit_stage: int = 0
    exit_node: str = ""
    confidence: float = math.nan
    predicted: int = -1
    sender: str = ""               # node that last routed it (re-offloads after a crash)
    avoid: frozenset = frozenset() # hosts that crashed under it
    size: TaskSize | None = None   # drawn per task: input bytes (b_1) and prompt tokens
    uplink_s: float = math.nan     # UE -> serving node transfer time (LTE uplink + core)
    downlink_s: float = math.nan   # exit node -> UE transfer time of the result


@dataclass
class NodeState:
    """One edge server's FIFO compute queue with ``servers`` parallel workers.

    ``queue_capacity`` bounds the tasks waiting (not those in service); None = unbounded.
    """

    name: str
    servers: int
    speed_factor: float
    queue_capacity: int | None = None
    alive: bool = True
    epoch: int = 0                 # bumped by a crash: services started before it are void
    queue: deque = field(default_factory=deque)
    in_service: dict = field(default_factory=dict)  # task_id -> task
    busy_time_s: float = 0.0
    completed_services: int = 0
    max_queue_length: int = 0     # most tasks waiting (not in service) at any time
    # Local counts over the current measurement window; read and reset by
    # CoSimulation.take_counters (the control plane asks for them each period).
    external_arrivals: int = 0                                  # tasks from its own UEs
    stage_arrivals: dict[int, int] = field(default_factory=dict)  # Lambda_j^k counts
    stage_routed: dict[int, int] = field(default_factory=dict)    # phi_j^k counts
    tasks_present_area: float = 0.0                              # integral of tasks at node dt
    last_change_s: float = 0.0

    @property
    def busy(self) -> int:
        return len(self.in_service)

    def tasks_present(self) -> int:
        return len(self.queue) + self.busy

    def note_change(self, now_s: float) -> None:
        """Accumulate the time integral of tasks present before the count changes."""
        self.tasks_present_area += self.tasks_present() * (now_s - self.last_change_s)
        self.last_change_s = now_s


@dataclass(frozen=True)
class FaultHandling:
    """What happens to tasks when a server crashes or a transfer stalls.

    on_crash: "lose" (tasks at the node are lost, reason node_crash) or "reoffload" (the node
        that sent a task there routes it again, avoiding the crashed host, once
        ``reoffload_timeout_s`` has passed since it sent it; tasks with no sender are lost).
    transfer_timeout_s: a message not delivered within this time loses its task (reason
        link_down if a link on its path was down meanwhile, else timeout); None = wait forever.
    """

    on_crash: str = "lose"
    reoffload_timeout_s: float = 0.5
    transfer_timeout_s: float | None = None


@dataclass(frozen=True)
class NodeCounters:
    """What one node counted over a measurement window (``CoSimulation.take_counters``).

    Attributes:
        window_s: length of the window.
        external_arrivals: tasks from the node's own UEs.
        stage_arrivals: {stage k: tasks that joined its stage-k queue} (Lambda_j^k x window).
        stage_routed: {stage k: tasks it routed for stage k, itself included} (phi_j^k x window).
        mean_tasks_present: time average of the tasks queued or in service.
        tasks_present: tasks queued or in service at the end of the window.
    """

    window_s: float
    external_arrivals: int
    stage_arrivals: Mapping[int, int]
    stage_routed: Mapping[int, int]
    mean_tasks_present: float
    tasks_present: int


class Observer(Protocol):
    """Told of each completed service and node-to-node transfer (what a node can measure:
    the server its own service times; the receiver of a transfer its arrival, reported to
    the sender)."""

    def service_done(self, node: str, stage: int, duration_s: float) -> None: ...
    def transfer_done(self, src: str, dst: str, payload_bytes: int, start_s: float, end_s: float) -> None: ...


def routing_cdf(probabilities: Mapping[str, float]) -> tuple[list[str], np.ndarray]:
    """(hosts, normalised cdf) of x_i^k: host ``hosts[cdf.searchsorted(u, "right")]`` for a
    uniform u is what ``Generator.choice(len(hosts), p=weights / weights.sum())`` draws with
    the same u (numpy draws it that way). No hosts when they are none or weigh nothing."""
    weights = np.fromiter(probabilities.values(), float, len(probabilities))
    if not len(weights) or weights.sum() <= 0:
        return [], weights
    cdf = (weights / weights.sum()).cumsum()
    cdf /= cdf[-1]
    return list(probabilities), cdf


class CoSimulation:
    """The task logic, and the one place where scenario events change the world.

    What the control plane may use (and nothing else): ``take_counters``, ``tasks_present``,
    ``is_alive``, ``apply_event``, ``send_control`` (with ``control_sent`` /
    ``control_delivered``), ``observe`` (service and transfer completions), ``now``.
    """

    def __init__(
        self,
        *,
        network: Network,
        executor: StageExecutor,
        policy: Policy,
        nodes: list[NodeState],
        ues: list[UePlacement],
        stage_latency_s: dict[str, list[float]],
        exponential_service: bool,
        duration_s: float,
        rngs: dict[str, np.random.Generator],
        trace: Trace,
        faults: FaultHandling = FaultHandling(),
        next_hop: Mapping[tuple[str, str], str] | None = None,
        ue_groups: Sequence[Sequence[int]] = (),
        before_arrival: Callable[[], None] = lambda: None,
        workload: Workload | None = None,
    ) -> None:
        """``next_hop``: backhaul routing table {(src, dst): next node} (to blame a timeout on
        a link that was down); ``ue_groups``: the UE indices of each scenario UE group (for
        ``ue_rate`` events)."""
        self.net = network
        self.executor = executor
        self.policy = policy
        self.nodes = {node.name: node for node in nodes}
        self.ues = ues
        self.stage_latency_s = stage_latency_s
        self.exponential_service = exponential_service
        self.duration_s = duration_s
        self.rngs = rngs
        self.trace = trace
        self.faults = faults
        self.next_hop = next_hop if next_hop is not None else {}  # kept lazy (NextHops): read on a timeout only
        self.ue_groups = [list(group) for group in ue_groups]
        self.down_intervals: dict[frozenset, list[list]] = {}  # link -> [[down_s, up_s or None]]
        self.control_sent = 0
        self.control_delivered = 0
        self._observers: list[Observer] = []
        self._choose = getattr(policy, "choose", None)  # a per-task dispatcher (TaskDispatcher)
        self._admission = hasattr(policy, "admit_probability")  # may reject (AdmissionControl)
        #: runs before each arrival changes anything (the runner's wall-clock checkpoint check:
        #: tasks are what can swamp a run, so their arrivals keep checkpoints on time)
        self.before_arrival = before_arrival
        # What each task carries and costs; by default every task has the model's own figures.
        self.workload = workload or Workload(
            sample_bytes=executor.input_bytes, stage_latency_s=next(iter(stage_latency_s.values())),
            node_latency_s=stage_latency_s, activation_bytes=[0] * executor.num_stages)
        self.tasks: list[Task] = []
        self.done = 0
        self.lost = 0
        self.ue_rate_per_s = {ue.index: ue.rate_per_s for ue in ues}
        self._samplers: dict[tuple[str, int], tuple[dict, list[str], np.ndarray]] = {}
        self._arrival_epoch = {ue.index: 0 for ue in ues}

    # Arrivals ----------------------------------------------------------------------------
    def start(self) -> None:
        for ue in self.ues:
            self._schedule_arrival(ue)

    def set_ue_rate(self, ue: UePlacement, rate_per_s: float) -> None:
        """Change a UE's Poisson rate now: the pending arrival is redrawn (memoryless, exact)."""
        self.ue_rate_per_s[ue.index] = rate_per_s
        self._arrival_epoch[ue.index] += 1
        self._schedule_arrival(ue)

    def _schedule_arrival(self, ue: UePlacement) -> None:
        rate = self.ue_rate_per_s[ue.index]
        if rate <= 0:
            return
        gap_s = self.rngs[f"arrivals/{ue.index}"].exponential(1.0 / rate)
        epoch = self._arrival_epoch[ue.index]
        if self.net.now() + gap_s < self.duration_s:
            self.net.call_later(gap_s, lambda: self._arrival(ue, epoch))

    def _arrival(self, ue: UePlacement, epoch: int) -> None:
        if epoch != self._arrival_epoch[ue.index]:
            return  # superseded by a rate change
        self.before_arrival()
        self._schedule_arrival(ue)
        sample, label = self.executor.pick_sample(self.rngs["samples"])
        size = self.workload.draw(self.rngs["task_sizes"])  # draws nothing unless [workload] sets sizes
        task = Task(len(self.tasks), ue.index, ue.serving_node, self.net.now(), sample, label,
                    payload_bytes=size.input_bytes, size=size)
        self.tasks.append(task)
        self._transfer("uplink", task, ue_endpoint(ue.index), node_endpoint(ue.serving_node),
                       task.payload_bytes, lambda: self._entered(task, ue.serving_node))

    def _entered(self, task: Task, name: str) -> None:
        node = self.nodes[name]
        if not node.alive:
            return self._lose(task, "node_crash")
        node.external_arrivals += 1  # offered load: rejected tasks count too (the node saw them)
        if self._admission:
            admit = admit_probability(self.policy, name)
            if admit < 1.0 and self.rngs["admission"].random() >= admit:  # no draw while all are admitted
                now = self.net.now()
                self.trace.hop(task.task_id, "admission", node_endpoint(name), node_endpoint(name),
                               task.stage, 0, now, now, exited=False)
                return self._lose(task, "rejected")
        self._route(task, name)

    # Routing: x_i^k picks the host of the next stage ---------------------------------------
    def _route(self, task: Task, here: str) -> None:
        routed = self.nodes[here].stage_routed
        routed[task.stage] = routed.get(task.stage, 0) + 1
        if self._choose is not None:
            decision = TaskDecision(here, task.stage, task.payload_bytes, self.net.now(),
                                    self.nodes[here].tasks_present(), task.avoid)
            target = self._choose(decision, self.rngs["routing"])
            if target is None:
                return self._lose(task, "node_crash")  # every host it could go to crashed under it
            return self._send_to(task, here, target)
        probabilities = self.policy.offload_probabilities(here, task.stage)
        if task.avoid:
            probabilities = {h: p for h, p in probabilities.items() if h not in task.avoid}
        hosts, cdf = self._sampler(here, task.stage, probabilities)
        if not hosts:
            return self._lose(task, "node_crash")  # every host it could go to crashed under it
        # = rng.choice(len(hosts), p=weights / weights.sum()): one uniform draw against the cdf
        self._send_to(task, here, hosts[int(cdf.searchsorted(self.rngs["routing"].random(), side="right"))])

    def _sampler(self, here: str, stage: int, probabilities) -> tuple[list[str], np.ndarray]:
        """(hosts, normalised cdf) of ``probabilities``, rebuilt only when they change (a
        static split over 500 hosts is otherwise re-normalised at every task); no hosts
        when they are empty or sum to zero."""
        cached = self._samplers.get((here, stage))
        if cached is not None and cached[0] == probabilities:
            return cached[1], cached[2]
        hosts, cdf = routing_cdf(probabilities)
        self._samplers[(here, stage)] = (dict(probabilities), hosts, cdf)
        return hosts, cdf

    def _send_to(self, task: Task, here: str, target: str) -> None:
        task.sender = here
        if target == here:
            self._enqueue(task, here)
        else:
            sent_s = self.net.now()
            self._transfer("offload", task, node_endpoint(here), node_endpoint(target),
                           task.payload_bytes, lambda: self._enqueue(task, target, sent_s))

    # Compute queue ------------------------------------------------------------------------
    def _enqueue(self, task: Task, name: str, sent_s: float | None = None) -> None:
        node = self.nodes[name]
        if not node.alive:
            return self._crashed_under(task, node, sent_s if sent_s is not None else self.net.now())
        if node.queue_capacity is not None and len(node.queue) >= node.queue_capacity and node.busy >= node.servers:
            return self._lose(task, "queue_full")
        node.stage_arrivals[task.stage] = node.stage_arrivals.get(task.stage, 0) + 1
        node.note_change(self.net.now())
        node.queue.append((task, self.net.now(), sent_s if sent_s is not None else self.net.now()))
        self._serve_next(node)
        # Tasks waiting once the arrival has settled (a free server takes it at once): never
        # above queue_capacity, as the hops show.
        node.max_queue_length = max(node.max_queue_length, len(node.queue))

    def _serve_next(self, node: NodeState) -> None:
        while node.busy < node.servers and node.queue:
            task, enqueued_s, sent_s = node.queue.popleft()
            node.in_service[task.task_id] = (task, sent_s)
            service_s = self.workload.stage_latency_s(task.size, node.name)[task.stage - 1] / node.speed_factor
            if self.exponential_service:
                service_s = self.rngs["service"].exponential(service_s)
            start_s, epoch = self.net.now(), node.epoch
            self.net.call_later(service_s, lambda t=task, e=enqueued_s, s=start_s, ep=epoch: self._finish(node, t, e, s, ep))

    def _finish(self, node: NodeState, task: Task, enqueued_s: float, start_s: float, epoch: int) -> None:
        if epoch != node.epoch:
            return  # the node crashed while serving it; the crash already handled the task
        now = self.net.now()
        node.note_change(now)
        del node.in_service[task.task_id]
        node.busy_time_s += now - start_s
        node.completed_services += 1
        stage = task.stage
        for observer in self._observers:
            observer.service_done(node.name, stage, now - start_s)
        confidence, predicted, activation_bytes = self.executor.run(task, stage)
        exits = stage == self.executor.num_stages or confidence >= self.policy.threshold(node.name, stage)
        self.trace.hop(task.task_id, "service", node.name, node.name, stage, 0, start_s, now,
                       enqueue_s=enqueued_s, confidence=confidence, exited=exits)
        if exits:
            task.exit_stage, task.exit_node = stage, node.name
            task.confidence, task.predicted = confidence, predicted
            self._transfer("result", task, node_endpoint(node.name), ue_endpoint(task.ue),
                           self.executor.result_bytes, lambda: self._complete(task))
        else:
            if self.workload.token_dist is not None:  # the task's own prompt length sets it
                activation_bytes = self.workload.activation_bytes(task.size)[stage - 1]
            task.stage, task.payload_bytes = stage + 1, activation_bytes
            self._route(task, node.name)
        self._serve_next(node)

    # Faults -------------------------------------------------------------------------------
    def crash(self, name: str) -> None:
        """Server ``name`` stops: its queued and in-service tasks are lost or re-offloaded."""
        node = self.nodes[name]
        now = self.net.now()
        node.note_change(now)
        node.alive, node.epoch = False, node.epoch + 1
        stranded = [(task, sent_s) for task, _enq, sent_s in node.queue] + list(node.in_service.values())
        node.queue.clear()
        node.in_service.clear()
        for task, sent_s in stranded:
            self._crashed_under(task, node, sent_s)

    def recover(self, name: str) -> None:
        node = self.nodes[name]
        node.note_change(self.net.now())
        node.alive = True

    def _crashed_under(self, task: Task, node: NodeState, sent_s: float) -> None:
        sender = self.nodes.get(task.sender)
        if self.faults.on_crash != "reoffload" or sender is None or sender is node:
            return self._lose(task, "node_crash")
        task.avoid = task.avoid | {node.name}
        delay_s = max(0.0, sent_s + self.faults.reoffload_timeout_s - self.net.now())
        self.net.call_later(delay_s, lambda: self._reoffload(task, sender))

    def _reoffload(self, task: Task, sender: NodeState) -> None:
        if task.status != "in_flight":
            return
        if not sender.alive:
            return self._lose(task, "node_crash")
        self._route(task, sender.name)

    # Endings ------------------------------------------------------------------------------
    def _complete(self, task: Task) -> None:
        if task.status != "in_flight":
            return
        task.status, task.finished_s = "completed", self.net.now()
        self.done += 1

    def _lose(self, task: Task, reason: str) -> None:
        if task.status != "in_flight":
            return
        task.status, task.loss_reason, task.finished_s = "lost", reason, self.net.now()
        self.lost += 1

    # Transfers ----------------------------------------------------------------------------
    def _transfer(self, kind: str, task: Task, src: str, dst: str, payload_bytes: int,
                  then: Callable[[], None]) -> None:
        start_s = self.net.now()
        arrived = []

        def delivered() -> None:
            arrived.append(True)
            self._transferred(src, dst, payload_bytes, start_s)
            if task.status != "in_flight":
                return  # lost meanwhile (timeout): a late delivery changes nothing
            self.trace.hop(task.task_id, kind, src, dst, task.stage, payload_bytes, start_s, self.net.now())
            if kind == "uplink":
                task.uplink_s = self.net.now() - start_s
            elif kind == "result":
                task.downlink_s = self.net.now() - start_s
            then()

        def timed_out() -> None:
            if not arrived:
                self._lose(task, "link_down" if self.path_was_down(src, dst, start_s) else "timeout")

        self.net.send(src, dst, payload_bytes, delivered)
        if self.faults.transfer_timeout_s is not None:
            self.net.call_later(self.faults.transfer_timeout_s, timed_out)

    def _transferred(self, src: str, dst: str, payload_bytes: int, start_s: float) -> None:
        if self._observers and src.startswith("node:") and dst.startswith("node:"):
            now = self.net.now()
            for observer in self._observers:
                observer.transfer_done(src[5:], dst[5:], payload_bytes, start_s, now)

    # The control plane's interface ----------------------------------------------------------
    def now(self) -> float:
        return self.net.now()

    def observe(self, observer: Observer) -> None:
        """Tell ``observer`` of every completed service and node-to-node transfer from now on."""
        self._observers.append(observer)

    def is_alive(self, name: str) -> bool:
        return self.nodes[name].alive

    def tasks_present(self, name: str) -> int:
        return self.nodes[name].tasks_present()

    def take_counters(self, name: str, window_s: float) -> NodeCounters:
        """Node ``name``'s counts since the last call (a window of ``window_s``), then reset."""
        node = self.nodes[name]
        node.note_change(self.net.now())
        counters = NodeCounters(
            window_s=window_s, external_arrivals=node.external_arrivals,
            stage_arrivals=dict(node.stage_arrivals), stage_routed=dict(node.stage_routed),
            mean_tasks_present=node.tasks_present_area / window_s if window_s > 0 else 0.0,
            tasks_present=node.tasks_present(),
        )
        node.stage_arrivals, node.stage_routed, node.external_arrivals = {}, {}, 0
        node.tasks_present_area = 0.0
        return counters

    def send_control(self, src: str, dst: str, size_bytes: int, on_delivered: Callable[[], None],
                     kind: str = "control") -> None:
        """Carry a control-plane message of ``size_bytes`` from node ``src`` to node ``dst`` as
        real packets; it appears in the hop trace as ``kind`` (``control``: counted in
        ``control_sent``/``control_delivered``; ``probe``: a path probe). ``on_delivered``
        runs on arrival if ``dst`` is up then."""
        source, target, start_s = node_endpoint(src), node_endpoint(dst), self.net.now()
        if kind == "control":
            self.control_sent += 1

        def delivered() -> None:
            if kind == "control":
                self.control_delivered += 1
            self.trace.hop(-1, kind, source, target, 0, size_bytes, start_s, self.net.now())
            self._transferred(source, target, size_bytes, start_s)
            if self.nodes[dst].alive:
                on_delivered()

        self.net.send(source, target, size_bytes, delivered)

    # Events: the one place where the world changes -------------------------------------------
    def apply_event(self, event) -> None:
        """Apply a scenario event (``dtoee.config.EventConfig``) to the world now. Nobody's
        knowledge changes: agents learn of it only through what they measure afterwards."""
        kind = event.kind
        if kind == "ue_rate":
            for index in self.ue_groups[event.ue_group]:
                self.set_ue_rate(self._ue_by_index[index], event.rate_per_s)
        elif kind == "node_speed":
            node = self.nodes[event.node]
            node.speed_factor = event.speed_factor  # services started from now on
        elif kind == "node_crash":
            self.crash(event.node)
        elif kind == "node_recover":
            self.recover(event.node)
        elif kind in ("link_down", "link_up"):
            intervals = self.down_intervals.setdefault(frozenset((event.a, event.b)), [])
            if kind == "link_down":
                intervals.append([self.net.now(), None])
            else:
                for interval in intervals:
                    if interval[1] is None:
                        interval[1] = self.net.now()
            self.net.set_link_up(event.a, event.b, kind == "link_up")
        elif kind == "link_rate":
            self.net.set_link_rate(event.a, event.b, event.rate_bps)
        else:
            raise ValueError(f"unknown event kind {kind!r}")

    @property
    def _ue_by_index(self) -> dict[int, UePlacement]:
        return {ue.index: ue for ue in self.ues}

    def path_was_down(self, src: str, dst: str, since_s: float) -> bool:
        """Was any backhaul link on the route between endpoints src and dst down at some
        time in [since_s, now]? (UE legs cross no backhaul link.)"""
        if not (src.startswith("node:") and dst.startswith("node:")):
            return False
        path = route(self.next_hop, src[5:], dst[5:])
        for here, hop in zip(path, path[1:]):
            for start, end in self.down_intervals.get(frozenset((here, hop)), []):
                if end is None or end >= since_s:
                    return True
        return False
