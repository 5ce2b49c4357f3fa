"""Per-task dispatchers: the baselines a practitioner would deploy, fed by state reports.

Each node j sends every node that may offload to it a *state report* every ``period_s``
(a real control message on the backhaul, so its staleness is DTO-EE's): the tasks queued or
in service at j (Q_j) and its estimated service rates mu_j^k. When a stage-k task leaves
node i, i picks its host j among the hosts it reaches (``SystemModel.targets(i, k)``):

* ``sed`` -- shortest expected delay::

      j* = argmin_j (Q_j + 1) / mu_j^k + T_ij(b_k),   T_ij(b) = p_ij + 8 b / C_ij  (0 if j = i)

  with Q_i exact for i itself, Q_j = reported + tasks i sent to j since that report (so i
  does not herd every task onto the host that looked empty one report ago), and p_ij, C_ij
  i's own path estimates (``optimizer.estimators.PathEstimator``).
* ``jsq`` -- join the shortest queue: argmin_j Q_j (ties by SED).
* ``po2`` -- power of two choices: two distinct hosts drawn uniformly, the shorter queue of
  the two (ties by SED).

Thresholds are fixed: theta_j^k = ``threshold`` for k < K (0 for the last exit). A host
that reported once and then stayed silent for ``3 x period_s`` is presumed down and avoided
while another host is left (a health check); a host that never reported counts as empty.

``offload_probabilities(i, k)`` reports the shares of i's choices over its last control
period in which it routed stage-k tasks (load-proportional before any), so
``policy.parquet`` shows where the dispatcher actually sent work.
"""

from __future__ import annotations

import math
from collections import defaultdict
from typing import Any, Mapping

import numpy as np

from optimizer.baselines import DEFAULT_THRESHOLD, fixed_thresholds, greedy_shortest_expected_delay, load_proportional
from optimizer.policy import ControlMessage, NodeMeasurements, TaskDecision
from optimizer.system import NodeName, SystemModel, evaluate_on_samples, evaluate_policy, strategy_of_policy

RULES = ("sed", "jsq", "po2")
STATE_KIND = "state"


class Dispatcher:
    """A per-task dispatcher (rule ``sed``, ``jsq`` or ``po2``) with one fixed threshold;
    implements :class:`~optimizer.policy.TaskDispatcher`."""

    def __init__(self, system: SystemModel, *, rule: str, threshold: float = DEFAULT_THRESHOLD,
                 period_s: float = 1.0, message_bytes: int = 64) -> None:
        if rule not in RULES:
            raise ValueError(f"rule must be one of {RULES}, got {rule!r}")
        if not (math.isfinite(period_s) and period_s > 0):
            raise ValueError(f"period_s must be finite and > 0, got {period_s!r}")
        self.system = system
        self.rule = rule
        self.threshold_value = float(threshold)
        self.period_s = float(period_s)
        self.message_bytes = int(message_bytes)
        self._thresholds = fixed_thresholds(system, threshold)
        self._prior = {key: dict(load_proportional(system, threshold=threshold).offload_probabilities(*key))
                       for key in system.decision_keys()}
        self.reset()

    # Policy -----------------------------------------------------------------------------
    def offload_probabilities(self, node: NodeName, stage: int) -> Mapping[NodeName, float]:
        key = (node, stage)
        if key not in self._prior:
            raise KeyError(f"node {node!r} never routes stage {stage}")
        return self._shares.get(key) or self._prior[key]

    def threshold(self, node: NodeName, stage: int) -> float:
        return self._thresholds.get((node, stage), self.threshold_value)

    # AdaptivePolicy -----------------------------------------------------------------------
    def reset(self, *, seed: int | None = None) -> None:
        """Forget every report and choice (the rule itself is memoryless)."""
        self._reports: dict[NodeName, dict[NodeName, tuple[float, int, dict[int, float]]]] = defaultdict(dict)
        self._sent_since: dict[NodeName, dict[NodeName, int]] = defaultdict(lambda: defaultdict(int))
        self._paths: dict[NodeName, dict[NodeName, tuple[float, float]]] = {}
        self._own_rates: dict[NodeName, dict[int, float]] = {}
        self._counts: dict[tuple[NodeName, int], dict[NodeName, int]] = defaultdict(lambda: defaultdict(int))
        self._shares: dict[tuple[NodeName, int], dict[NodeName, float]] = {}

    def step(self, node: NodeName, measurements: NodeMeasurements, inbox: list[ControlMessage]) -> list[ControlMessage]:
        """Store the reports that reached ``node``, take its own estimates, and send its state
        report to every node that may offload to it."""
        for message in inbox:
            report = _parse_report(message, node)
            if report is not None:
                self._reports[node][message.src] = report
                self._sent_since[node][message.src] = 0
        self._own_rates[node] = {k: float(v) for k, v in measurements.service_rate_per_s.items()}
        self._paths[node] = {j: (float(rate), float(measurements.link_delay_s.get(j, math.nan)))
                             for j, rate in measurements.link_rate_bps.items()}
        for key in [key for key in self._counts if key[0] == node]:
            counts = self._counts.pop(key)
            total = sum(counts.values())
            if total:  # a period without tasks keeps the shares of the last one with some
                self._shares[key] = {j: counts.get(j, 0) / total for j in self._prior[key]}
        payload = {"kind": STATE_KIND, "at_s": float(measurements.now_s),
                   "tasks_present": int(measurements.tasks_present),
                   "rate_per_s": {str(k): float(v) for k, v in measurements.service_rate_per_s.items()}}
        receivers = sorted({i for k in self.system.stages_hosted(node) for i in self.system.senders(node, k)} - {node})
        return [ControlMessage(src=node, dst=i, payload=payload, size_bytes=self.message_bytes) for i in receivers]

    # TaskDispatcher -----------------------------------------------------------------------
    def choose(self, decision: TaskDecision, rng: Any) -> NodeName | None:
        i, k = decision.node, decision.stage
        candidates = [j for j in self.system.targets(i, k) if j not in decision.exclude]
        now = decision.now_s
        alive = [j for j in candidates if j == i or not self._silent(i, j, now)]
        candidates = alive or candidates
        if not candidates:
            return None
        queue = {j: self._queue(decision, j) for j in candidates}
        sed = {j: (queue[j] + 1) / self._rate(i, j, k) + self._transfer_s(i, j, decision.payload_bytes)
               for j in candidates}
        if self.rule == "po2" and len(candidates) > 2:
            picks = rng.choice(len(candidates), size=2, replace=False)
            candidates = [candidates[int(n)] for n in sorted(picks)]
        if self.rule == "sed":
            target = min(candidates, key=lambda j: (sed[j], j != i, j))
        else:
            target = min(candidates, key=lambda j: (queue[j], sed[j], j != i, j))
        self._counts[(i, k)][target] += 1
        if target != i:
            self._sent_since[i][target] += 1
        return target

    # Local view -----------------------------------------------------------------------------
    def _queue(self, decision: TaskDecision, j: NodeName) -> float:
        if j == decision.node:
            return float(decision.tasks_present)
        report = self._reports[decision.node].get(j)
        reported = report[1] if report is not None else 0
        return float(reported + self._sent_since[decision.node][j])

    def _rate(self, i: NodeName, j: NodeName, k: int) -> float:
        if j == i:
            rate = self._own_rates.get(i, {}).get(k)
        else:
            report = self._reports[i].get(j)
            rate = report[2].get(k) if report is not None else None
        return rate if rate and rate > 0 else self.system.service_rate_per_s[(j, k)]

    def _transfer_s(self, i: NodeName, j: NodeName, payload_bytes: int) -> float:
        if j == i:
            return 0.0
        link = self.system.links[(i, j)]
        rate_bps, delay_s = self._paths.get(i, {}).get(j, (math.nan, math.nan))
        rate_bps = rate_bps if rate_bps > 0 else link.capacity_bytes_per_s * 8.0
        delay_s = delay_s if math.isfinite(delay_s) else link.propagation_s
        return delay_s + 8.0 * payload_bytes / rate_bps

    def _silent(self, i: NodeName, j: NodeName, now_s: float) -> bool:
        report = self._reports[i].get(j)
        return report is not None and now_s - report[0] > 3.0 * self.period_s


def _parse_report(message: ControlMessage, node: NodeName) -> tuple[float, int, dict[int, float]] | None:
    """(at_s, tasks_present, {k: mu}) of a well-formed state report addressed to ``node``."""
    payload = message.payload
    if message.dst != node or not isinstance(payload, Mapping) or payload.get("kind") != STATE_KIND:
        return None
    try:
        at_s, queue = float(payload["at_s"]), int(payload["tasks_present"])
        rates = {int(k): float(v) for k, v in payload["rate_per_s"].items()}
    except (KeyError, TypeError, ValueError):
        return None
    if not math.isfinite(at_s) or queue < 0:
        return None
    return at_s, queue, rates


def tuned_threshold(system: SystemModel, grid: np.ndarray | None = None) -> tuple[float, dict[float, float]]:
    """The single global threshold that minimises the objective on ``system``: every value of
    ``grid`` (default 0, 0.05, ..., 1) is scored by ``evaluate`` with the offloading of the
    better of the two static dispatcher models (greedy shortest-expected-delay equilibrium,
    load-proportional); ties go to the lower threshold. Where the system carries its
    calibration samples, accuracy and exit shares are scored on them (``evaluate_on_samples``:
    conditional on survival, as DTO-EE's curves are) instead of the all-sample curves.

    Returns (threshold, {threshold: best objective}).
    """
    grid = np.linspace(0.0, 1.0, 21) if grid is None else np.asarray(grid, float)
    scores = {}
    table = system.calibration_samples

    def score(policy) -> float:
        if table is None:
            return evaluate_policy(system, policy).objective
        return evaluate_on_samples(system, *strategy_of_policy(system, policy), table).objective

    for theta in grid:
        theta = float(theta)
        scores[theta] = min(score(build(system, threshold=theta))
                            for build in (greedy_shortest_expected_delay, load_proportional))
    best = min(scores, key=lambda t: (scores[t], t))
    return best, scores
