"""The analytical system model of collaborative early-exit inference (what DTO-EE reasons with).

Symbols (paper's notation, 1-based stages k = 1..K):

* ``lambda_i``  external task rate entering at base station i (tasks/s);
* ``H_k``       nodes hosting stage k;
* ``phi_i^k``   rate of tasks at node i that need stage k next, ``phi_i^1 = lambda_i``;
* ``x_ij^k``    probability that node i sends its stage-k tasks to host j in H_k
                (``sum_j x_ij^k = 1``; ``j == i`` runs it locally);
* ``f_ij^k = phi_i^k x_ij^k``  offloaded flow; ``Lambda_j^k = sum_i f_ij^k`` arrivals;
* ``theta_j^k`` threshold of exit k at node j; ``e_k(theta)`` exit share and
  ``alpha_k(theta)`` accuracy of exited tasks (from the exit curves);
* ``phi_j^{k+1} = Lambda_j^k (1 - e_k(theta_j^k))`` continuing flow (``e_K = 1``: the last
  exit takes everything, whatever theta_j^K says);
* ``mu_j^k``    service rate of stage k at node j; node j has one server shared by its stages,
  ``rho_j = sum_k Lambda_j^k / mu_j^k``;
* link (i, j), capacity ``C_ij`` bytes/s, propagation ``p_ij``: byte rate
  ``F_ij = sum_k b_k f_ij^k``, utilisation ``u_ij = F_ij / C_ij``; ``b_k`` = bytes sent when a
  task goes to a stage-k host (k = 1 the input, k > 1 the stage k-1 activation).

Mean response delay (Little's law over M/M/1 queues)::

    D = [ sum_j rho_j/(1-rho_j) + sum_(i,j) u_ij/(1-u_ij) + sum_(i,j) p_ij sum_k f_ij^k ]
        / sum_i lambda_i  +  result_delay_s

Accuracy (share of all tasks answered correctly)::

    A = sum_(j,k) Lambda_j^k e_k(theta_j^k) alpha_k(theta_j^k) / sum_i lambda_i

Objective: ``J = D - w A`` (w in seconds per unit of accuracy), feasible iff every
``rho_j < 1`` and ``u_ij < 1``. ``result_bytes`` is carried for the co-simulation; the
analytical model charges the result return as the constant ``result_delay_s``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from types import MappingProxyType
from typing import Any, Callable, Mapping

import math

import numpy as np

from optimizer.exit_curves import (
    ConcaveHull,
    ExitCurveData,
    concave_hull,
    correct_share_at,
    exit_share_at,
    synthetic_exit_curves,
)
from optimizer.queueing import mm1_number

NodeName = str
Offloading = Mapping[tuple[NodeName, int], Mapping[NodeName, float]]
Thresholds = Mapping[tuple[NodeName, int], float]

PROBABILITY_TOL = 1e-6


@dataclass(frozen=True)
class Link:
    """A logical directed link i -> j used to offload tasks."""

    capacity_bytes_per_s: float
    propagation_s: float = 0.0

    def __post_init__(self) -> None:
        if not (math.isfinite(self.capacity_bytes_per_s) and self.capacity_bytes_per_s > 0):
            raise ValueError(
                f"capacity_bytes_per_s must be finite and > 0, got {self.capacity_bytes_per_s!r}"
            )
        if not (math.isfinite(self.propagation_s) and self.propagation_s >= 0):
            raise ValueError(f"propagation_s must be finite and >= 0, got {self.propagation_s!r}")


def _frozen(mapping: Mapping) -> Mapping:
    return MappingProxyType(dict(mapping))


def _check_nodes(value) -> tuple[NodeName, ...]:
    nodes = tuple(value)
    if not nodes or len(set(nodes)) != len(nodes) or not all(isinstance(n, str) and n for n in nodes):
        raise ValueError(f"nodes must be unique non-empty strings, got {value!r}")
    return nodes


def _check_num_stages(value) -> int:
    if not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"num_stages must be an integer >= 1, got {value!r}")
    return int(value)


def _check_hosts(value, K: int, node_set: set) -> dict[int, tuple[NodeName, ...]]:
    stages = set(range(1, K + 1))
    if set(value) != stages:
        raise ValueError(f"hosts must have exactly the keys {sorted(stages)}, got {sorted(value)}")
    hosts = {}
    for k in range(1, K + 1):
        h = tuple(value[k])
        if not h or len(set(h)) != len(h) or not set(h) <= node_set:
            raise ValueError(f"hosts[{k}] must be a non-empty set of known nodes, got {h!r}")
        hosts[k] = h
    return hosts


def _check_rates(value, nodes: tuple[NodeName, ...]) -> dict[NodeName, float]:
    rates = {}
    for i, lam in value.items():
        if i not in nodes:
            raise ValueError(f"external_rate_per_s has unknown node {i!r}; allowed: {nodes}")
        lam = float(lam)
        if not (math.isfinite(lam) and lam >= 0):
            raise ValueError(f"external_rate_per_s[{i!r}] must be finite and >= 0, got {lam!r}")
        rates[i] = lam
    rates = {i: rates.get(i, 0.0) for i in nodes}
    if sum(rates.values()) <= 0:
        raise ValueError("external_rate_per_s must have a positive total (sum of lambda_i > 0)")
    return rates


def _check_service_rates(value, hosts: Mapping[int, tuple]) -> dict[tuple[NodeName, int], float]:
    expected = {(j, k) for k, h in hosts.items() for j in h}
    if set(value) != expected:
        extra = sorted(set(value) - expected)
        missing = sorted(expected - set(value))
        raise ValueError(
            f"service_rate_per_s must have one entry per (host, stage); missing {missing}, extra {extra}"
        )
    mu = {}
    for key, rate in value.items():
        rate = float(rate)
        if not (math.isfinite(rate) and rate > 0):
            raise ValueError(f"service_rate_per_s[{key!r}] must be finite and > 0, got {rate!r}")
        mu[key] = rate
    return mu


def _check_links(value, nodes: tuple[NodeName, ...]) -> dict[tuple[NodeName, NodeName], "Link"]:
    links = {}
    for key, link in value.items():
        if not (isinstance(key, tuple) and len(key) == 2):
            raise ValueError(f"links keys must be (src, dst) pairs, got {key!r}")
        i, j = key
        if i not in nodes or j not in nodes or i == j:
            raise ValueError(f"links key {key!r} must join two distinct known nodes {nodes}")
        if not isinstance(link, Link):
            raise ValueError(f"links[{key!r}] must be a Link, got {link!r}")
        links[key] = link
    return links


def _check_per_stage(name: str, value, K: int) -> dict[int, float]:
    stages = set(range(1, K + 1))
    if set(value) != stages:
        raise ValueError(f"{name} must have exactly the keys {sorted(stages)}, got {sorted(value)}")
    out = {}
    for k, b in value.items():
        b = float(b)
        if not (math.isfinite(b) and b >= 0):
            raise ValueError(f"{name}[{k}] must be finite and >= 0, got {b!r}")
        out[k] = b
    return out


def _check_curves(value, K: int) -> dict[int, ExitCurveData]:
    stages = set(range(1, K + 1))
    if set(value) != stages:
        raise ValueError(f"exit_curves must have exactly the keys {sorted(stages)}, got {sorted(value)}")
    return {k: ExitCurveData.from_any(c, stage=k) for k, c in value.items()}


def _non_negative(name: str, value) -> float:
    value = float(value)
    if not (math.isfinite(value) and value >= 0):
        raise ValueError(f"{name} must be finite and >= 0, got {value!r}")
    return value


@dataclass(frozen=True, eq=False)
class SystemModel:
    """Static description of the edge system (the *prior* a DTO-EE node starts from).

    Args:
        nodes: node names.
        num_stages: K.
        hosts: {k: H_k}, the nodes hosting stage k (non-empty, for every k = 1..K).
        external_rate_per_s: {i: lambda_i >= 0}; missing nodes have 0; sum > 0.
        service_rate_per_s: {(j, k): mu_j^k > 0} for every j in H_k (and nothing else).
        links: {(i, j): Link}, i != j, directed.
        transfer_bytes: {k: b_k >= 0} for k = 1..K.
        exit_curves: {k: exit curve} for k = 1..K (any object with the ExitCurve fields).
        w: seconds per unit of accuracy, >= 0.
        result_bytes: size of the result sent back (co-simulation only).
        result_delay_s: constant result-return delay added to D.
        calibration_samples: optional :class:`~optimizer.exit_curves.SampleTable` of the split
            the exit curves were measured on (the validation split): per-sample confidences
            and correctness, from which exit curves conditional on survival are measured
            (:func:`optimizer.centralized.solve_self_consistent`). A model property, like
            the curves; None if not known.

    Raises:
        ValueError: naming the field, the value and what is allowed.
    """

    nodes: tuple[NodeName, ...]
    num_stages: int
    hosts: Mapping[int, tuple[NodeName, ...]]
    external_rate_per_s: Mapping[NodeName, float]
    service_rate_per_s: Mapping[tuple[NodeName, int], float]
    links: Mapping[tuple[NodeName, NodeName], Link]
    transfer_bytes: Mapping[int, float]
    exit_curves: Mapping[int, ExitCurveData]
    w: float = 0.5
    result_bytes: float = 0.0
    result_delay_s: float = 0.0
    calibration_samples: Any = None

    def __post_init__(self) -> None:
        """Validate and normalise every field (one checker per field below), then freeze."""
        nodes = _check_nodes(self.nodes)
        K = _check_num_stages(self.num_stages)
        hosts = _check_hosts(self.hosts, K, set(nodes))
        normalised = {
            "nodes": nodes,
            "num_stages": K,
            "hosts": _frozen(hosts),
            "external_rate_per_s": _frozen(_check_rates(self.external_rate_per_s, nodes)),
            "service_rate_per_s": _frozen(_check_service_rates(self.service_rate_per_s, hosts)),
            "links": _frozen(_check_links(self.links, nodes)),
            "transfer_bytes": _frozen(_check_per_stage("transfer_bytes", self.transfer_bytes, K)),
            "exit_curves": _frozen(_check_curves(self.exit_curves, K)),
            **{name: _non_negative(name, getattr(self, name)) for name in ("w", "result_bytes", "result_delay_s")},
        }
        table = self.calibration_samples
        if table is not None and getattr(table, "num_stages", None) != K:
            raise ValueError(f"calibration_samples must be a SampleTable with {K} exits, got {table!r}")
        for name, value in normalised.items():
            object.__setattr__(self, name, value)  # the one way to set a frozen dataclass's field
        self._check_reachable()

    def _check_reachable(self) -> None:
        """Every node that can hold stage-k work must reach a stage-k host."""
        for k in range(1, self.num_stages + 1):
            for i in self.offloaders(k):
                if not self.targets(i, k):
                    raise ValueError(
                        f"node {i!r} has stage-{k} tasks but no stage-{k} host it can reach "
                        f"(hosts[{k}]={self.hosts[k]}, links from {i!r}: "
                        f"{sorted(j for (s, j) in self.links if s == i)})"
                    )

    # ----- topology (static, derived) -------------------------------------------------
    @property
    def total_external_rate_per_s(self) -> float:
        """sum_i lambda_i."""
        return float(sum(self.external_rate_per_s.values()))

    def offloaders(self, k: int) -> tuple[NodeName, ...]:
        """Nodes that may hold stage-k tasks: those with lambda_i > 0 (k = 1), H_{k-1} (k > 1)."""
        if k == 1:
            return tuple(i for i in self.nodes if self.external_rate_per_s[i] > 0)
        return tuple(self.hosts[k - 1])

    def targets(self, i: NodeName, k: int) -> tuple[NodeName, ...]:
        """Hosts j in H_k that node i can send stage-k tasks to (itself, or over a link)."""
        return self._targets[(i, k)]

    def senders(self, j: NodeName, k: int) -> tuple[NodeName, ...]:
        """Nodes that may send stage-k tasks to host j (DTO-R sends its marginals to them)."""
        return self._senders.get((j, k), ())

    def stages_hosted(self, j: NodeName) -> tuple[int, ...]:
        return tuple(k for k in range(1, self.num_stages + 1) if j in self.hosts[k])

    def hull(self, k: int) -> ConcaveHull:
        """Upper concave hull of the correct share A_k(e) of exit k."""
        return self._hulls[k]

    @cached_property
    def _hulls(self) -> dict[int, ConcaveHull]:
        return {k: concave_hull(c) for k, c in self.exit_curves.items()}

    @cached_property
    def _targets(self) -> dict[tuple[NodeName, int], tuple[NodeName, ...]]:
        result = {}
        for k in range(1, self.num_stages + 1):
            for i in self.nodes:
                result[(i, k)] = tuple(
                    j for j in self.hosts[k] if j == i or (i, j) in self.links
                )
        return result

    @cached_property
    def _senders(self) -> dict[tuple[NodeName, int], tuple[NodeName, ...]]:
        result: dict[tuple[NodeName, int], list[NodeName]] = {}
        for i, k in self.decision_keys():
            for j in self.targets(i, k):
                result.setdefault((j, k), []).append(i)
        return {key: tuple(v) for key, v in result.items()}

    def decision_keys(self) -> tuple[tuple[NodeName, int], ...]:
        """Every (i, k) a policy must give x_i^k for: nodes that reach a stage-1 host (k = 1,
        whatever their prior lambda_i) and the hosts of stage k-1 (k > 1)."""
        keys = [(i, 1) for i in self.nodes if self.targets(i, 1)]
        for k in range(2, self.num_stages + 1):
            keys.extend((i, k) for i in self.hosts[k - 1])
        return tuple(keys)

    def neighbours(self, i: NodeName) -> tuple[NodeName, ...]:
        """Nodes joined to i by a link in either direction."""
        out = {j for (s, j) in self.links if s == i} | {s for (s, j) in self.links if j == i}
        return tuple(sorted(out))


# ----- flows ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Flows:
    """Stationary flows for a strategy.

    phi[(i, k)]: phi_i^k; arrival[(j, k)]: Lambda_j^k; offload[(i, j, k)]: f_ij^k;
    exit_share[(j, k)]: e_k(theta_j^k) used (1 for k = K).
    """

    phi: dict[tuple[NodeName, int], float]
    arrival: dict[tuple[NodeName, int], float]
    offload: dict[tuple[NodeName, NodeName, int], float]
    exit_share: dict[tuple[NodeName, int], float]


def check_distribution(system: SystemModel, i: NodeName, k: int, probs: Mapping[NodeName, float]) -> None:
    """ValueError unless ``probs`` is a distribution over the stage-k targets of node i."""
    allowed = system.targets(i, k)
    for j, p in probs.items():
        if j not in allowed:
            raise ValueError(f"x[({i!r}, {k})] puts mass on {j!r}; allowed hosts: {allowed}")
        if not (math.isfinite(p) and p >= -PROBABILITY_TOL):
            raise ValueError(f"x[({i!r}, {k})][{j!r}] must be >= 0, got {p!r}")
    total = sum(probs.values())
    if abs(total - 1.0) > PROBABILITY_TOL:
        raise ValueError(f"x[({i!r}, {k})] must sum to 1, got {total!r}")


def checked_distribution(system: SystemModel, x: Offloading, i: NodeName, k: int,
                         context: str = "") -> Mapping[NodeName, float]:
    """``x[(i, k)]``, checked by :func:`check_distribution`; ``ValueError`` if absent
    (``context`` is appended to that message)."""
    probs = x.get((i, k))
    if probs is None:
        raise ValueError(f"x has no distribution for node {i!r}, stage {k}{context}")
    check_distribution(system, i, k, probs)
    return probs


def propagate(system: SystemModel, x: Offloading, exit_share: Mapping[tuple[NodeName, int], float]) -> Flows:
    """Forward flows: ``Lambda_j^k = sum_i phi_i^k x_ij^k``, ``phi_j^{k+1} = Lambda_j^k (1 - e_j^k)``.

    ``x`` must hold a distribution for every (i, k) with phi_i^k > 0.
    """
    K = system.num_stages
    phi = {(i, 1): system.external_rate_per_s[i] for i in system.offloaders(1)}
    arrival: dict[tuple[NodeName, int], float] = {}
    offload: dict[tuple[NodeName, NodeName, int], float] = {}
    shares: dict[tuple[NodeName, int], float] = {}
    for k in range(1, K + 1):
        for j in system.hosts[k]:
            arrival[(j, k)] = 0.0
        for i in system.offloaders(k):
            rate = phi.get((i, k), 0.0)
            if rate <= 0:
                continue
            probs = checked_distribution(system, x, i, k, f" (phi = {rate:g}/s)")
            for j, p in probs.items():
                if p > 0:
                    flow = rate * p
                    offload[(i, j, k)] = offload.get((i, j, k), 0.0) + flow
                    arrival[(j, k)] += flow
        for j in system.hosts[k]:
            e = 1.0 if k == K else float(exit_share[(j, k)])
            if not (math.isfinite(e) and -PROBABILITY_TOL <= e <= 1 + PROBABILITY_TOL):
                raise ValueError(f"exit share of ({j!r}, {k}) must lie in [0, 1], got {e!r}")
            e = min(max(e, 0.0), 1.0)
            shares[(j, k)] = e
            if k < K:
                phi[(j, k + 1)] = arrival[(j, k)] * (1.0 - e)
    return Flows(phi=phi, arrival=arrival, offload=offload, exit_share=shares)


def node_utilisation(system: SystemModel, arrival: Mapping[tuple[NodeName, int], float]) -> dict[NodeName, float]:
    """rho_j = sum_k Lambda_j^k / mu_j^k (0 for nodes hosting nothing)."""
    rho = {j: 0.0 for j in system.nodes}
    for (j, k), lam in arrival.items():
        rho[j] += lam / system.service_rate_per_s[(j, k)]
    return rho


def link_utilisation(
    system: SystemModel, offload: Mapping[tuple[NodeName, NodeName, int], float]
) -> dict[tuple[NodeName, NodeName], float]:
    """u_ij = sum_k b_k f_ij^k / C_ij for every link."""
    util = {key: 0.0 for key in system.links}
    for (i, j, k), flow in offload.items():
        if i != j:
            util[(i, j)] += system.transfer_bytes[k] * flow / system.links[(i, j)].capacity_bytes_per_s
    return util


@dataclass(frozen=True)
class Evaluation:
    """What a strategy costs in the analytical model.

    mean_delay_s: D; accuracy: A; objective: J = D - w A (``inf`` if infeasible);
    rho: {node: rho_j}; link_utilisation: {(i, j): u_ij}; feasible: all rho, u < 1;
    compute_delay_s / network_delay_s: parts of D; exit_distribution: {k: share of all
    tasks exiting at k}.
    """

    mean_delay_s: float
    accuracy: float
    objective: float
    rho: dict[NodeName, float]
    link_utilisation: dict[tuple[NodeName, NodeName], float]
    feasible: bool
    compute_delay_s: float = 0.0
    network_delay_s: float = 0.0
    exit_distribution: dict[int, float] = field(default_factory=dict)


def assess_flows(
    system: SystemModel, flows: Flows, correct_share: Mapping[tuple[NodeName, int], float]
) -> Evaluation:
    """D, A and J of given flows; ``correct_share[(j, k)]`` = A_k at that node's exit share."""
    total = system.total_external_rate_per_s
    rho = node_utilisation(system, flows.arrival)
    util = link_utilisation(system, flows.offload)
    feasible = all(r < 1 for r in rho.values()) and all(u < 1 for u in util.values())
    compute = sum(mm1_number(r) for r in rho.values()) / total
    queueing = sum(mm1_number(u) for u in util.values())
    propagation = sum(
        system.links[(i, j)].propagation_s * flow for (i, j, k), flow in flows.offload.items() if i != j
    )
    network = (queueing + propagation) / total
    correct = sum(flows.arrival[key] * correct_share[key] for key in flows.arrival)
    accuracy = correct / total
    exits: dict[int, float] = {}
    for (j, k), lam in flows.arrival.items():
        exits[k] = exits.get(k, 0.0) + lam * flows.exit_share[(j, k)] / total
    delay = compute + network + system.result_delay_s if feasible else math.inf
    objective = delay - system.w * accuracy if feasible else math.inf
    return Evaluation(
        mean_delay_s=delay,
        accuracy=accuracy,
        objective=objective,
        rho=rho,
        link_utilisation=util,
        feasible=feasible,
        compute_delay_s=compute if feasible else math.inf,
        network_delay_s=network if feasible else math.inf,
        exit_distribution=exits,
    )


def strategy_of_policy(system: SystemModel, policy: Any) -> tuple[dict, dict]:
    """(x, theta) of any :class:`~optimizer.policy.Policy` on every decision point of ``system``."""
    x = {key: dict(policy.offload_probabilities(*key)) for key in system.decision_keys()}
    theta = {
        (j, k): float(policy.threshold(j, k))
        for k in range(1, system.num_stages + 1)
        for j in system.hosts[k]
    }
    return x, theta


def evaluate_policy(system: SystemModel, policy: Any) -> Evaluation:
    """:func:`evaluate` of a Policy's current offloading and thresholds."""
    return evaluate(system, *strategy_of_policy(system, policy))


def evaluate(system: SystemModel, x: Offloading, theta: Thresholds) -> Evaluation:
    """Evaluate offloading ``x`` {(i,k): {j: x_ij^k}} and thresholds ``theta`` {(j,k): theta_j^k}.

    Uses the measured exit curves (linear in theta between grid points): e_k(theta_j^k) and
    A_k = e_k alpha_k. theta_j^K is ignored (the last exit takes everything).
    """
    K = system.num_stages
    shares: dict[tuple[NodeName, int], float] = {}
    correct: dict[tuple[NodeName, int], float] = {}
    for k in range(1, K + 1):
        curve = system.exit_curves[k]
        for j in system.hosts[k]:
            if k == K:
                shares[(j, k)] = 1.0
                correct[(j, k)] = curve.full_correct_share
                continue
            try:
                t = float(theta[(j, k)])
            except KeyError:
                raise ValueError(f"theta has no threshold for node {j!r}, stage {k}") from None
            if not (math.isfinite(t) and 0.0 <= t <= 1.0):
                raise ValueError(f"theta[({j!r}, {k})] must lie in [0, 1], got {t!r}")
            shares[(j, k)] = exit_share_at(curve, t)
            correct[(j, k)] = correct_share_at(curve, t)
    flows = propagate(system, x, shares)
    return assess_flows(system, flows, correct)


def evaluate_exit_shares(
    system: SystemModel, x: Offloading, exit_share: Mapping[tuple[NodeName, int], float]
) -> Evaluation:
    """Evaluate with exit shares e_j^k as decision variables and the concave-hull A_k(e).

    This is the model the convex program and DTO-EE optimise; it equals :func:`evaluate` at
    the read-back thresholds wherever the curve is concave (e.g. synthetic curves).
    """
    K = system.num_stages
    shares = {}
    correct = {}
    for k in range(1, K + 1):
        hull = system.hull(k)
        for j in system.hosts[k]:
            e = 1.0 if k == K else float(exit_share[(j, k)])
            shares[(j, k)] = e
            correct[(j, k)] = hull.value(e)
    flows = propagate(system, x, shares)
    return assess_flows(system, flows, correct)


# ----- per-sample evaluation (exit shares and accuracy conditional on survival) ----------


@dataclass(frozen=True)
class SampleFlows:
    """What a strategy does to each sample of a :class:`~optimizer.exit_curves.SampleTable`.

    flows: the stationary flows with the conditional exit shares (Lambda, phi, f);
    exit_share / correct_share: {(j, k)}: among tasks reaching exit k at node j, the share
    that exits there and the share that exits there correctly;
    reach: (N, K) P(sample s reaches exit k) (the survival weights of the conditional curves);
    exit_stage_share: {k: share of all tasks exiting at k}; accuracy: share of all tasks right;
    correct_by_sample: (N,) q_s = P(sample s is answered right) over the routing draws
    (accuracy = mean of q_s; q_s is 0 or 1 where every host of a stage has one threshold).
    """

    flows: Flows
    exit_share: dict[tuple[NodeName, int], float]
    correct_share: dict[tuple[NodeName, int], float]
    reach: np.ndarray
    exit_stage_share: dict[int, float]
    accuracy: float
    correct_by_sample: np.ndarray


def sample_flows(system: SystemModel, x: Offloading, theta: Thresholds, table: Any) -> SampleFlows:
    """Propagate every sample of ``table`` through the strategy, exactly.

    Each sample s enters at node i with probability lambda_i / sum lambda; m_s(i, k) is the
    probability that s is at node i needing stage k. Routing is independent of the sample,
    exits are not::

        a_s(j, k)     = sum_i m_s(i, k) x_ij^k                 (reaches exit k at j)
        exits_s(j, k) = a_s(j, k) [c_s^k >= theta_j^k]         (all of it at k = K)
        m_s(j, k+1)   = a_s(j, k) - exits_s(j, k)

    The conditional exit share of (j, k) is sum_s exits_s / sum_s a_s; with it,
    :func:`propagate` gives the exact mean flows. Accuracy is
    sum_(s,j,k) exits_s(j, k) correct_s^k / N: no selection effect, because each exit sees
    only the samples that survived the thresholds upstream of it on their own paths.
    The exit rule is the simulator's: exit iff confidence >= threshold.
    """
    K = system.num_stages
    if table.num_stages != K:
        raise ValueError(f"the sample table has {table.num_stages} exits, the system {K} stages")
    names = list(system.nodes)
    index = {n: i for i, n in enumerate(names)}
    n_nodes, n_samples = len(names), table.num_samples
    total = system.total_external_rate_per_s
    entry = np.array([system.external_rate_per_s[n] / total for n in names])
    mass = np.tile(entry, (n_samples, 1))  # m_s(i, 1)
    reach = np.zeros((n_samples, K))
    shares: dict[tuple[NodeName, int], float] = {}
    correct_share: dict[tuple[NodeName, int], float] = {}
    exit_stage: dict[int, float] = {}
    right = np.zeros(n_samples)
    for k in range(1, K + 1):
        route = np.zeros((n_nodes, n_nodes))
        at = mass.sum(axis=0)
        for i in system.offloaders(k):
            if at[index[i]] <= 0:
                continue
            probs = checked_distribution(system, x, i, k)
            for j, p in probs.items():
                route[index[i], index[j]] += p
        arrive = mass @ route  # a_s(j, k)
        reach[:, k - 1] = arrive.sum(axis=1)
        conf = table.confidence[:, k - 1]
        ok = table.correct[:, k - 1]
        exits = np.zeros_like(arrive)
        for j in system.hosts[k]:
            column = arrive[:, index[j]]
            if k == K:
                leaving = column
            else:
                t = float(theta[(j, k)])
                leaving = column * (conf >= t)
            exits[:, index[j]] = leaving
            arrived = column.sum()
            shares[(j, k)] = float(leaving.sum() / arrived) if arrived > 0 else (1.0 if k == K else 0.0)
            correct_share[(j, k)] = float((leaving * ok).sum() / arrived) if arrived > 0 else 0.0
        exit_stage[k] = float(exits.sum() / n_samples)
        right += exits.sum(axis=1) * ok
        mass = arrive - exits
    flows = propagate(system, x, shares)
    return SampleFlows(flows, shares, correct_share, reach, exit_stage, float(right.mean()), right)


def evaluate_on_samples(system: SystemModel, x: Offloading, theta: Thresholds, table: Any) -> Evaluation:
    """:func:`evaluate` with exit shares and accuracy from the samples (:func:`sample_flows`)
    instead of the unconditional exit curves."""
    result = sample_flows(system, x, theta, table)
    return assess_flows(system, result.flows, result.correct_share)


# ----- the delay a task sees in the simulator (queue discipline, shared links) -------------


@dataclass(frozen=True)
class SimulatorDelayModel:
    """What the simulator does that the optimizer's M/M/1 model leaves out.

    service_scv: squared coefficient of variation of a stage's service time (0 for the
        simulator's deterministic service, 1 for exponential);
    servers: {node: c_j} parallel workers (default 1); the node's rate mu_j^k is c_j times one
        worker's;
    routes: {(i, j): ((a, b), ...)} the physical directed hops of logical link i -> j (None:
        each logical link is its own queue, as in :func:`assess_flows`);
    hop_capacity_bytes_per_s / hop_propagation_s: per physical hop (a, b);
    hop_overhead: bytes on the wire per payload byte (headers), e.g. 1 + 54/1400;
    access_delay_s: mean radio legs per task (uplink of the input + return of the result);
    visits: True (default): a task staying on at a node for its next stage brings that work
        in one lump (:func:`visit_number`); False: passes as independent arrivals (:func:`mg_number`);
    service_scv_by_class: {(j, k): c_w^2} the variability of stage k's mean service time at j
        over the tasks' sizes (a decoder's prompt lengths; 0 when every task is alike);
    transfer_scv: {k: scv of b_k} over the tasks' sizes (0: fixed messages);
    arrivals: "qna" (default): a node's arrival variability from where its tasks come from
        (:func:`arrival_scv`; stage k > 1 arrives as an upstream server's departures, smoother
        than Poisson when service is deterministic), or "poisson": every node M/G/c.
    """

    service_scv: float = 0.0
    servers: Mapping[NodeName, int] = field(default_factory=dict)
    routes: Mapping[tuple[NodeName, NodeName], tuple[tuple[NodeName, NodeName], ...]] | None = None
    hop_capacity_bytes_per_s: Mapping[tuple[NodeName, NodeName], float] = field(default_factory=dict)
    hop_propagation_s: Mapping[tuple[NodeName, NodeName], float] = field(default_factory=dict)
    hop_overhead: float = 1.0
    access_delay_s: float = 0.0
    arrivals: str = "qna"
    visits: bool = True
    service_scv_by_class: Mapping[tuple[NodeName, int], float] = field(default_factory=dict)
    transfer_scv: Mapping[int, float] = field(default_factory=dict)

    def class_scv(self, j: NodeName, k: int) -> float:
        """scv of stage k's service at node j: task sizes that vary (workload scv c_w^2) times
        the service distribution's (c_d^2): 1 + scv = (1 + c_w^2)(1 + c_d^2)."""
        return (1.0 + self.service_scv_by_class.get((j, k), 0.0)) * (1.0 + self.service_scv) - 1.0

    def __post_init__(self) -> None:
        if self.arrivals not in ("qna", "poisson"):
            raise ValueError(f"arrivals must be 'qna' or 'poisson', got {self.arrivals!r}")


def _erlang_c(c: int, offered: float) -> float:
    """P(wait) in M/M/c with offered load a = lambda/mu_one (a < c)."""
    term, total = 1.0, 1.0
    for n in range(1, c):
        term *= offered / n
        total += term
    term *= offered / c
    tail = term * c / (c - offered)
    return tail / (total + tail)


def _service_moments(arrival: Mapping[int, float], service_s: Mapping[int, float], scv: float | Mapping[int, float]):
    """(Lambda, E[S], scv_mix) of a node's class mix: E[S] = sum Lambda^k S_k / Lambda,
    E[S^2] = sum Lambda^k (1 + scv_k) S_k^2 / Lambda, scv_mix = E[S^2] / E[S]^2 - 1
    (``scv``: one figure for every class, or {k: scv_k})."""
    total = sum(arrival.values())
    if total <= 0:
        return 0.0, 0.0, 0.0
    per_class = scv if isinstance(scv, Mapping) else {k: scv for k in arrival}
    mean_s = sum(lam * service_s[k] for k, lam in arrival.items()) / total
    second = sum(lam * (1.0 + per_class.get(k, 0.0)) * service_s[k] ** 2 for k, lam in arrival.items()) / total
    return total, mean_s, (second / mean_s**2 - 1.0 if mean_s > 0 else 0.0)


def mg_number(arrival: Mapping[int, float], service_s: Mapping[int, float], scv: float | Mapping[int, float],
              servers: int = 1, arrival_scv: float = 1.0) -> float:
    """Mean number of tasks at a FIFO node serving a mix of task classes.

    Class k arrives at Lambda^k and takes S_k on one of c workers (mean S_k, squared
    coefficient of variation ``scv``, or ``scv[k]`` per class). With Lambda = sum Lambda^k, E[S], scv_mix
    (:func:`_service_moments`), rho = Lambda E[S] / c and c_a^2 = ``arrival_scv`` the squared
    coefficient of variation of the interarrival times (1: Poisson):

    * c = 1: W_q = rho E[S] (c_a^2 + scv_mix) / (2 (1 - rho)); for Poisson arrivals this is
      Pollaczek-Khinchine exactly, N = Lambda E[S] + Lambda^2 E[S^2] / (2 (1 - rho)); otherwise
      the Kramer-Langenbach-Belz / Kingman two-moment form Whitt's QNA uses;
    * c > 1, the Allen-Cunneen approximation: W_q = C(c, a) E[S] / (c (1 - rho)) x
      (c_a^2 + scv_mix) / 2 with C the Erlang-C probability of waiting (exact for M/M/c).

    N = Lambda (E[S] + W_q); ``inf`` when rho >= 1.
    """
    total, mean_s, scv_mix = _service_moments(arrival, service_s, scv)
    if total <= 0:
        return 0.0
    rho = total * mean_s / servers
    if rho >= 1.0:
        return math.inf
    if servers == 1:
        wait = rho * mean_s * (arrival_scv + scv_mix) / (2.0 * (1.0 - rho))
    else:
        wait = _erlang_c(servers, total * mean_s) * mean_s / (servers * (1.0 - rho)) * (arrival_scv + scv_mix) / 2.0
    return total * (mean_s + wait)


def visit_number(fresh: Mapping[int, float], stay: Mapping[int, float], service_s: Mapping[int, float],
                 size_scv: Mapping[int, float], scv: float, servers: int = 1, arrival_scv: float = 1.0) -> float:
    """Mean number of tasks at a FIFO node where a task may stay on for its next stage.

    A task that finishes stage k at node j and continues there (probability ``stay[k]``)
    rejoins the end of j's queue at once. The stage-mix P-K of :func:`mg_number` treats such
    passes as independent Poisson arrivals, which under-costs their wait: a staying task
    queues again behind the work that arrived while it waited and was served. A *visit*
    starts at stage k0 at rate ``fresh[k0]`` (from the UEs or another node); pass class
    c = (k0, k) reaches stage k with P_c = prod_{m=k0}^{k-1} stay[m] (rate r_c = fresh[k0] P_c).
    Mean-value analysis of the FIFO queue (one worker), with rho = sum_c r_c s_c:

    * a visit's first pass waits, by PASTA, the queued work plus the residual service:
      W_f = sum_c r_c s_c W_c + R, R = sum_c r_c s_c^2 (c_a^2 + c_s,c^2) / 2
      (c_s,c^2 = (1 + ``size_scv[k]``)(1 + ``scv``) - 1; c_a^2 = 1 gives M/G/1 exactly);
    * a later pass waits the work that arrived during the task's previous sojourn:
      W_(k0,k) = rho (W_(k0,k-1) + s_(k-1)).

    Each W_c is affine in W_f, so W_f solves one linear equation. N = sum_c r_c (s_c + W_c);
    with no stay this is Pollaczek-Khinchine (Kingman for c_a^2 != 1). Checked against a
    simulation of the queue (tests). With ``servers`` > 1 it falls back to :func:`mg_number`.
    ``inf`` when rho >= 1.
    """
    stages = sorted(service_s)
    classes = []  # (rate, k, first pass of its visit?)
    for k0 in stages:
        rate = fresh.get(k0, 0.0)
        for k in stages[stages.index(k0):]:
            if rate <= 0:
                break
            classes.append((rate, k, k == k0))
            rate *= stay.get(k, 0.0)
    if servers != 1:
        arrival = {k: 0.0 for k in stages}
        for rate, k, _ in classes:
            arrival[k] += rate
        return mg_number(arrival, service_s, {k: (1 + size_scv.get(k, 0.0)) * (1 + scv) - 1 for k in stages},
                         servers, arrival_scv)
    if not classes:
        return 0.0
    cw = {k: math.sqrt(max(size_scv.get(k, 0.0), 0.0)) for k in stages}
    rho = sum(rate * service_s[k] for rate, k, _ in classes)
    if rho >= 1.0:
        return math.inf
    # W_c = a_c W_f + b_c along each visit (W_next = rho (W + S_prev)); the queued work of a
    # class is E[W_c S_c] = s_c (a_c W_f + e_c): a task long at one stage (its size) waits
    # longer for its next pass, where it is long too, so e_next = rho (e + s_prev (1 + c_w c_w')).
    filled, prev = [], None
    for rate, k, is_first in classes:
        if is_first:
            a_c, b_c, e_c = 1.0, 0.0, 0.0
        else:
            pa, pb, pe, pk = prev
            a_c, b_c = rho * pa, rho * (pb + service_s[pk])
            e_c = rho * (pe + service_s[pk] * (1 + cw[pk] * cw[k]))
        c2 = (1 + cw[k] ** 2) * (1 + scv) - 1
        filled.append((rate, service_s[k], c2, a_c, b_c, e_c))
        prev = (a_c, b_c, e_c, k)
    residual = sum(rate * s_c**2 * (arrival_scv + c2) / 2.0 for rate, s_c, c2, *_ in filled)
    first = (sum(rate * s_c * e_c for rate, s_c, _, _, _, e_c in filled) + residual) / (
        1.0 - sum(rate * s_c * a_c for rate, s_c, _, a_c, _, _ in filled))
    return sum(rate * (s_c + a_c * first + b_c) for rate, s_c, _, a_c, b_c, _ in filled)


def arrival_scv(system: SystemModel, flows: Flows, scv: float | Callable[[NodeName, int], float],
                servers: Mapping[NodeName, int] | None = None, rounds: int = 50) -> dict[NodeName, float]:
    """c_a^2 of every node's arrivals by Whitt's Queueing Network Analyzer (QNA, 1983).

    Stage-1 flows are Bernoulli splits of the UEs' Poisson arrivals: c^2 = 1. A stage-k flow
    (k > 1) i -> j is the share p = f_ij^k / Lambda_i of node i's departures, whose
    variability is c_d^2 = 1 + (1 - rho_i^2)(c_a,i^2 - 1) + rho_i^2 (scv_mix,i - 1) / sqrt(c_i)
    (a busy deterministic server sends out a smoother stream than it received); splitting
    gives c^2 = p c_d^2 + 1 - p. A node's arrivals superpose the flows that start a
    visit there (from the UEs or another node; a task staying on for its next stage is part
    of its visit, :func:`visit_number`): c_a,j^2 = sum_f (rate_f / sum_f rate_f) c_f^2.
    The equations couple nodes that feed each other, so they are iterated from c_a^2 = 1
    (a contraction: each step mixes with weights p rho^2 < 1). Backhaul hops are taken not
    to change a flow's variability.
    """
    servers = servers or {}
    moments = {}
    for j in system.nodes:
        stages = system.stages_hosted(j)
        c = int(servers.get(j, 1))
        class_scv = {k: (scv(j, k) if callable(scv) else scv) for k in stages}
        moments[j] = _service_moments({k: flows.arrival.get((j, k), 0.0) for k in stages},
                                      {k: c / system.service_rate_per_s[(j, k)] for k in stages}, class_scv)
    ca = {j: 1.0 for j in system.nodes}
    for _ in range(rounds):
        departures = {}
        for i, (total, mean_s, scv_mix) in moments.items():
            c = int(servers.get(i, 1))
            rho = min(total * mean_s / c, 1.0)
            departures[i] = 1.0 + (1 - rho**2) * (ca[i] - 1.0) + rho**2 * (scv_mix - 1.0) / math.sqrt(c)
        weighted = {j: 0.0 for j in system.nodes}
        fresh = {j: 0.0 for j in system.nodes}
        for (i, j, k), flow in flows.offload.items():
            if flow <= 0 or (k > 1 and i == j):  # a task staying on at j is part of its visit, not an arrival
                continue
            fresh[j] += flow
            if k == 1:
                weighted[j] += flow
            else:
                p = min(flow / moments[i][0], 1.0)
                weighted[j] += flow * (p * departures[i] + 1.0 - p)
        new = {j: (weighted[j] / fresh[j] if fresh[j] > 0 else 1.0) for j in system.nodes}
        if max(abs(new[j] - ca[j]) for j in ca) < 1e-9:
            return new
        ca = new
    return ca


def simulator_delay(system: SystemModel, flows: Flows, model: SimulatorDelayModel) -> dict[str, float]:
    """Mean response delay of ``flows`` as the simulator produces it (Little's law)::

        D = [ sum_j N_j + sum_hops N_h + sum_(i,j,k) f_ij^k p_ij ] / sum_i lambda_i + access

    N_j: :func:`visit_number` of node j's visits (a task staying on at j for its next stage
    rejoins the queue with its work; ``model.visits``) or :func:`mg_number` of its stage
    mix, its workers each 1/c_j of mu_j^k, with the arrival variability c_a,j^2 of
    :func:`arrival_scv` (``model.arrivals = "qna"``) or 1;
    N_h: each physical hop h = (a, b) is one FIFO queue carrying every logical flow whose
    route crosses it (links shared by several paths), M/G/1 with the deterministic
    per-stage message sizes b_k x overhead; p_ij the route's propagation. Returns the parts
    and ``mean_delay_s`` (``inf`` if a queue is unstable): ``compute_delay_s`` (nodes) =
    ``service_delay_s`` (sum_jk Lambda_j^k S_jk / sum lambda) + ``queue_delay_s`` (the wait),
    ``network_delay_s`` (backhaul) and ``access_delay_s`` (radio legs), the parts the run's
    ``delay_breakdown_s`` measures.
    """
    total = system.total_external_rate_per_s
    ca = (arrival_scv(system, flows, model.class_scv, model.servers) if model.arrivals == "qna"
          else {j: 1.0 for j in system.nodes})
    compute = in_service = 0.0
    for j in system.nodes:
        stages = system.stages_hosted(j)
        if not stages:
            continue
        c = int(model.servers.get(j, 1))
        arrival = {k: flows.arrival.get((j, k), 0.0) for k in stages}
        service = {k: c / system.service_rate_per_s[(j, k)] for k in stages}
        if model.visits:
            fresh = {k: arrival[k] - (flows.offload.get((j, j, k), 0.0) if k > 1 else 0.0) for k in stages}
            stay = {k: (flows.offload.get((j, j, k + 1), 0.0) / arrival[k] if arrival[k] > 0 else 0.0) for k in stages}
            sizes = {k: model.service_scv_by_class.get((j, k), 0.0) for k in stages}
            compute += visit_number(fresh, stay, service, sizes, model.service_scv, c, ca[j])
        else:
            compute += mg_number(arrival, service, {k: model.class_scv(j, k) for k in stages}, c, ca[j])
        in_service += sum(arrival[k] * service[k] for k in stages)
    hop_flows: dict[tuple, dict[int, float]] = {}
    propagation = 0.0
    for (i, j, k), flow in flows.offload.items():
        if i == j or flow <= 0:
            continue
        hops = model.routes[(i, j)] if model.routes is not None else ((i, j),)
        for hop in hops:
            hop_flows.setdefault(hop, {})
            hop_flows[hop][k] = hop_flows[hop].get(k, 0.0) + flow
            if model.routes is not None:
                propagation += flow * model.hop_propagation_s[hop]
        if model.routes is None:
            propagation += flow * system.links[(i, j)].propagation_s
    network = 0.0
    for hop, arrival in hop_flows.items():
        capacity = (model.hop_capacity_bytes_per_s[hop] if model.routes is not None
                    else system.links[hop].capacity_bytes_per_s)
        service = {k: model.hop_overhead * system.transfer_bytes[k] / capacity for k in arrival}
        network += mg_number(arrival, service, {k: model.transfer_scv.get(k, 0.0) for k in arrival}, 1)
    compute_s = compute / total
    network_s = (network + propagation) / total
    return {"mean_delay_s": compute_s + network_s + model.access_delay_s, "compute_delay_s": compute_s,
            "service_delay_s": in_service / total, "queue_delay_s": (compute - in_service) / total,
            "network_delay_s": network_s, "access_delay_s": model.access_delay_s}


# ----- random instances -------------------------------------------------------------------


def random_instance(
    seed: int | np.random.Generator | None,
    n_nodes: int = 5,
    n_stages: int = 3,
    *,
    w: float = 0.5,
    target_load: float = 0.6,
    link_prob: float = 1.0,
    host_prob: float = 0.6,
    speed_spread: float = 4.0,
) -> SystemModel:
    """A feasible heterogeneous instance (for tests and benchmarks).

    Node speeds differ by up to ``speed_spread`` (log-uniform); each stage is hosted by a
    random subset (each node with probability ``host_prob``, at least one); links exist with
    probability ``link_prob`` (repaired so every offloader reaches a host); the total
    external rate is ``target_load`` times the no-early-exit capacity (each host gives an
    equal share of its speed to each stage it hosts), so the instance is feasible even
    without early exits.
    """
    rng = np.random.default_rng(seed)
    if not 1 <= n_nodes or not 1 <= n_stages:
        raise ValueError(f"n_nodes and n_stages must be >= 1, got {n_nodes}, {n_stages}")
    if not 0 < target_load < 1:
        raise ValueError(f"target_load must lie in (0, 1), got {target_load}")
    if not 0 <= link_prob <= 1 or not 0 < host_prob <= 1:
        raise ValueError(f"link_prob must lie in [0, 1] and host_prob in (0, 1], got {link_prob}, {host_prob}")
    if speed_spread < 1:
        raise ValueError(f"speed_spread must be >= 1, got {speed_spread}")
    nodes = tuple(f"n{i}" for i in range(n_nodes))
    speed = np.exp(rng.uniform(0.0, np.log(speed_spread), size=n_nodes))  # relative speeds
    work_s = rng.uniform(0.004, 0.012, size=n_stages)  # stage latency on a speed-1 node

    hosts: dict[int, tuple[str, ...]] = {}
    for k in range(1, n_stages + 1):
        chosen = [n for n in nodes if rng.random() < host_prob]
        if not chosen:
            chosen = [nodes[int(rng.integers(n_nodes))]]
        hosts[k] = tuple(chosen)
    stage_count = {n: sum(n in hosts[k] for k in hosts) for n in nodes}
    index = {n: idx for idx, n in enumerate(nodes)}
    mu = {(j, k): float(speed[index[j]] / work_s[k - 1]) for k in hosts for j in hosts[k]}
    stage_capacity = [
        sum(mu[(j, k)] / stage_count[j] for j in hosts[k]) for k in range(1, n_stages + 1)
    ]
    total_rate = target_load * min(stage_capacity)
    share = rng.dirichlet(np.full(n_nodes, 2.0))
    lam = {n: float(total_rate * s) for n, s in zip(nodes, share)}

    transfer = {1: float(rng.uniform(50e3, 200e3))}
    for k in range(2, n_stages + 1):
        transfer[k] = float(rng.uniform(50e3, 400e3))
    per_node_rate = total_rate / n_nodes
    links = {}
    for i in nodes:
        for j in nodes:
            if i != j and rng.random() < link_prob:
                links[(i, j)] = _random_link(rng, per_node_rate, max(transfer.values()))
    # repair: every possible offloader must reach a host of the next stage
    for k in range(1, n_stages + 1):
        candidates = [n for n in nodes if lam[n] > 0] if k == 1 else list(hosts[k - 1])
        for i in candidates:
            if i not in hosts[k] and not any((i, j) in links for j in hosts[k]):
                j = hosts[k][int(rng.integers(len(hosts[k])))]
                links[(i, j)] = _random_link(rng, per_node_rate, max(transfer.values()))
    return SystemModel(
        nodes=nodes,
        num_stages=n_stages,
        hosts=hosts,
        external_rate_per_s=lam,
        service_rate_per_s=mu,
        links=links,
        transfer_bytes=transfer,
        exit_curves=synthetic_exit_curves(n_stages, rng),
        w=w,
        result_bytes=1e3,
        result_delay_s=0.0,
    )


def _random_link(rng: np.random.Generator, per_node_rate: float, max_bytes: float) -> Link:
    capacity = max_bytes * per_node_rate * rng.uniform(2.0, 8.0)
    return Link(capacity_bytes_per_s=float(capacity), propagation_s=float(rng.uniform(0.001, 0.01)))
