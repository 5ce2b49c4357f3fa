"""The policy contract: what the co-simulation asks of any offloading/early-exit policy.

A policy answers two questions for node ``i`` and stage ``k`` (1-based, as in the paper):

* ``offload_probabilities(i, k)`` -> ``{j: x_ij^k}`` over the hosts ``j`` in ``H_k``;
  the values are a probability distribution (non-negative, sum 1). ``j == i`` means
  "run stage k here".
* ``threshold(j, k)`` -> ``theta_j^k`` in [0, 1]: a task that finished stage ``k`` at
  node ``j`` exits when its exit confidence is ``>= theta_j^k``.

Adaptive policies (DTO-EE) also implement :class:`AdaptivePolicy`: every ``period_s`` of
simulated time the co-simulation hands each node its local measurements and the
messages its neighbours sent it, and the node returns the messages to send on. The
co-simulation carries those messages as real packets; it never lets one node read
another node's state directly.

Per-task dispatchers (shortest expected delay, join-the-shortest-queue, ...) also implement
:class:`TaskDispatcher`: each time a task leaves a node for its next stage the
co-simulation asks ``choose(decision, rng)`` for the host, instead of drawing one from
``offload_probabilities`` (which then reports the shares of recent choices).

Admission (:class:`AdmissionControl`, optional): ``admit_probability(i)`` is the share of
the new tasks from node ``i``'s own UEs that ``i`` admits now; the rest are rejected at the
entry node (status ``lost``, reason ``rejected``, an ``admission`` hop in the trace). A policy
that does not implement it admits every task (:func:`admit_probability`), so the baselines
never reject. DTO-EE uses it to shed, visibly, the load its hosts cannot serve.

Like Gymnasium's ``Env``, the contract is tiny and typed; metrics and logging are added
by wrapping, not by editing a policy.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping, Protocol, runtime_checkable

NodeName = str


@runtime_checkable
class Policy(Protocol):
    """Static view of a policy: offloading probabilities and thresholds."""

    def offload_probabilities(self, node: NodeName, stage: int) -> Mapping[NodeName, float]:
        """x_i^k: distribution over the hosts of ``stage`` for tasks at ``node``."""
        ...

    def threshold(self, node: NodeName, stage: int) -> float:
        """theta_j^k in [0, 1] for exit ``stage`` at ``node``."""
        ...


@dataclass(frozen=True)
class NodeMeasurements:
    """What a node measured locally over the last control period (never an oracle).

    Attributes:
        node: this node's name.
        period_s: length of the measurement window in simulated seconds.
        arrivals_per_s: {stage k: measured stage-k arrival rate Lambda_j^k at this node}.
        external_arrivals_per_s: measured rate of new tasks from this node's own UEs (lambda_i).
        forwarded_per_s: {stage k: rate of tasks this node sent on for stage k} (phi_i^k).
        service_rate_per_s: {stage k: mu_j^k, estimated from the durations of the services
            this node completed (the profile at its configured speed before any)}.
        mean_queue_length: time-averaged number of tasks at this node (queued + in service).
        link_rate_bps: {host j: rate of the path to j, estimated from the transfers on it
            that completed (the configured rate before any)}.
        link_delay_s: {host j: one-way delay of the path to j, from its small transfers
            (control messages, probes)}.
        now_s: simulated time at the end of the window.
        tasks_present: tasks queued or in service at this node at ``now_s``.
    """

    node: NodeName
    period_s: float
    arrivals_per_s: Mapping[int, float] = field(default_factory=dict)
    external_arrivals_per_s: float = 0.0
    forwarded_per_s: Mapping[int, float] = field(default_factory=dict)
    service_rate_per_s: Mapping[int, float] = field(default_factory=dict)
    mean_queue_length: float = 0.0
    link_rate_bps: Mapping[NodeName, float] = field(default_factory=dict)
    link_delay_s: Mapping[NodeName, float] = field(default_factory=dict)
    now_s: float = 0.0
    tasks_present: int = 0


@dataclass(frozen=True)
class ControlMessage:
    """One control message between neighbours; ``payload`` is small plain data.

    ``size_bytes`` is what the co-simulation puts on the wire for it.
    """

    src: NodeName
    dst: NodeName
    payload: Mapping[str, Any]
    size_bytes: int = 64


@runtime_checkable
class AdaptivePolicy(Policy, Protocol):
    """A policy whose nodes update themselves from local measurements and messages."""

    period_s: float

    def reset(self, *, seed: int | None = None) -> None:
        """Return every node to its initial strategy; ``seed`` fixes any randomness."""
        ...

    def step(
        self,
        node: NodeName,
        measurements: NodeMeasurements,
        inbox: list[ControlMessage],
    ) -> list[ControlMessage]:
        """Update ``node``'s own strategy and thresholds; return messages to send."""
        ...


@runtime_checkable
class AdmissionControl(Protocol):
    """A policy that may turn new tasks away at their entry node (load it cannot serve)."""

    def admit_probability(self, node: NodeName) -> float:
        """a_i in [0, 1]: the probability that a new task from ``node``'s own UEs is admitted."""
        ...


def admit_probability(policy: Any, node: NodeName) -> float:
    """a_i of any policy: its own answer clipped to [0, 1], or 1 (admit all) when it has none."""
    admit = getattr(policy, "admit_probability", None)
    if admit is None:
        return 1.0
    value = float(admit(node))
    return min(1.0, max(0.0, value)) if value == value else 1.0


@dataclass(frozen=True)
class TaskDecision:
    """What a node knows when one task leaves it for its next stage (a dispatcher's observation).

    Attributes:
        node: the node routing the task (i).
        stage: the stage the task needs next (k).
        payload_bytes: what an offload of it carries (b_k).
        now_s: simulated time.
        tasks_present: tasks queued or in service at ``node`` now (its own, exact).
        exclude: hosts that crashed under this task; it must not go there again.
    """

    node: NodeName
    stage: int
    payload_bytes: int
    now_s: float
    tasks_present: int = 0
    exclude: frozenset = frozenset()


@runtime_checkable
class TaskDispatcher(AdaptivePolicy, Protocol):
    """An adaptive policy that picks the host of each task as it leaves a node."""

    def choose(self, decision: TaskDecision, rng: Any) -> NodeName | None:
        """The host of ``decision.stage`` for this task (``rng``: a numpy Generator for any
        randomness); None when no host is left to try."""
        ...


class StaticPolicy:
    """Offloading probabilities and thresholds fixed in the scenario.

    Args:
        offload: {(node, stage): {host: probability}}.
        thresholds: {(node, stage): theta}; missing entries use ``default_threshold``.
        default_threshold: theta used where none is given.
    """

    def __init__(
        self,
        offload: Mapping[tuple[NodeName, int], Mapping[NodeName, float]],
        thresholds: Mapping[tuple[NodeName, int], float],
        default_threshold: float,
    ) -> None:
        self._offload = {key: dict(value) for key, value in offload.items()}
        self._thresholds = dict(thresholds)
        self._default_threshold = float(default_threshold)

    def offload_probabilities(self, node: NodeName, stage: int) -> Mapping[NodeName, float]:
        try:
            return self._offload[(node, stage)]
        except KeyError:
            raise KeyError(f"no offloading probabilities for node {node!r}, stage {stage}") from None

    def threshold(self, node: NodeName, stage: int) -> float:
        return self._thresholds.get((node, stage), self._default_threshold)
