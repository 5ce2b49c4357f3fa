"""Static (offline) baselines: a strategy computed once from the prior, never changed in a run.

All return a :class:`~optimizer.policy.StaticPolicy` covering every decision point of the
system (``SystemModel.decision_keys``); the last exit's threshold is 0 (it takes everything).
The per-task dispatchers that react to state reports are in :mod:`optimizer.dispatchers`;
every policy is built by name through :mod:`optimizer.registry`.

* ``static-load-proportional`` (alias ``fixed-threshold-load-proportional``): every exit
  uses one threshold (a scenario parameter, default 0.8); node i splits its stage-k tasks
  over the hosts it reaches in proportion to their service rates ``mu_j^k``.
* ``static-greedy-sed`` (alias ``fixed-threshold-greedy-sed``): same threshold; offloading
  is the static equilibrium of a greedy *shortest expected delay* dispatcher: the flow is
  handed out in small increments, round-robin over the senders, each increment to the
  host with the least expected delay ``(b_k/C_ij)/(1 - u_ij) + p_ij + (1/mu_j^k)/(1 - rho_j)``
  under the load so far.
* ``static-no-early-exit`` (alias ``no-early-exit``): thresholds 1 (no early exit: every
  task runs every stage), offloading optimised by DTO-EE with the thresholds frozen.
* ``static-random`` (alias ``random-offloading``): fixed threshold; each x_i^k drawn
  uniformly at random (seeded).
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any, Callable

import numpy as np

from optimizer.dtoee import DtoeeConfig, run_in_memory
from optimizer.exit_curves import exit_share_at
from optimizer.policy import StaticPolicy
from optimizer.system import NodeName, SystemModel

DEFAULT_THRESHOLD = 0.8


def _check_threshold(threshold: float) -> float:
    threshold = float(threshold)
    if not 0.0 <= threshold <= 1.0:
        raise ValueError(f"threshold must lie in [0, 1], got {threshold!r}")
    return threshold


def fixed_thresholds(system: SystemModel, threshold: float) -> dict[tuple[NodeName, int], float]:
    """theta_j^k = threshold for k < K and 0 for the last exit."""
    threshold = _check_threshold(threshold)
    K = system.num_stages
    return {(j, k): (0.0 if k == K else threshold) for k in range(1, K + 1) for j in system.hosts[k]}


def load_proportional(system: SystemModel, *, threshold: float = DEFAULT_THRESHOLD) -> StaticPolicy:
    """Fixed threshold, x_ij^k proportional to mu_j^k over the hosts node i reaches."""
    offload = {}
    for i, k in system.decision_keys():
        targets = system.targets(i, k)
        weights = np.array([system.service_rate_per_s[(j, k)] for j in targets])
        offload[(i, k)] = {j: float(v) for j, v in zip(targets, weights / weights.sum())}
    return StaticPolicy(offload, fixed_thresholds(system, threshold), default_threshold=threshold)


def greedy_shortest_expected_delay(
    system: SystemModel, *, threshold: float = DEFAULT_THRESHOLD, increments: int = 100
) -> StaticPolicy:
    """Fixed threshold, offloading = equilibrium of a greedy shortest-expected-delay dispatcher."""
    threshold = _check_threshold(threshold)
    if increments < 1:
        raise ValueError(f"increments must be >= 1, got {increments!r}")
    K = system.num_stages
    rho = {j: 0.0 for j in system.nodes}
    util = {key: 0.0 for key in system.links}
    phi = {(i, 1): system.external_rate_per_s[i] for i in system.offloaders(1)}
    offload: dict[tuple[NodeName, int], dict[NodeName, float]] = {}
    for k in range(1, K + 1):
        senders = [(i, k) for (i, kk) in system.decision_keys() if kk == k]
        sent = {key: {j: 0.0 for j in system.targets(*key)} for key in senders}
        for _ in range(increments):
            for i, _k in senders:
                chunk = phi.get((i, k), 0.0) / increments
                if chunk <= 0:
                    continue
                j = min(system.targets(i, k), key=lambda j: _expected_delay_s(system, rho, util, i, j, k))
                sent[(i, k)][j] += chunk
                rho[j] += chunk / system.service_rate_per_s[(j, k)]
                if j != i:
                    util[(i, j)] += chunk * system.transfer_bytes[k] / system.links[(i, j)].capacity_bytes_per_s
        arrival = {j: 0.0 for j in system.hosts[k]}
        for (i, _k), out in sent.items():
            total = sum(out.values())
            targets = system.targets(i, k)
            if total > 0:
                offload[(i, k)] = {j: v / total for j, v in out.items()}
            else:  # no flow: where the first task would go
                j = min(targets, key=lambda j: _expected_delay_s(system, rho, util, i, j, k))
                offload[(i, k)] = {t: (1.0 if t == j else 0.0) for t in targets}
            for j, v in out.items():
                arrival[j] += v
        if k < K:
            e = exit_share_at(system.exit_curves[k], threshold)
            for j in system.hosts[k]:
                phi[(j, k + 1)] = arrival[j] * (1.0 - e)
    return StaticPolicy(offload, fixed_thresholds(system, threshold), default_threshold=threshold)


def _expected_delay_s(system: SystemModel, rho, util, i: NodeName, j: NodeName, k: int) -> float:
    """Expected delay of one more stage-k task from i at host j (M/M/1 sojourn + link)."""
    service_s = 1.0 / system.service_rate_per_s[(j, k)]
    node = service_s / (1.0 - rho[j]) if rho[j] < 1 else 1e9 * (1 + rho[j])
    if j == i:
        return node
    link = system.links[(i, j)]
    transfer_s = system.transfer_bytes[k] / link.capacity_bytes_per_s
    u = util[(i, j)]
    net = transfer_s / (1.0 - u) if u < 1 else 1e9 * (1 + u)
    return node + net + link.propagation_s


def no_early_exit(system: SystemModel, *, rounds: int = 300, config: Any = None) -> StaticPolicy:
    """Thresholds 1 (last exit 0); offloading from DTO-EE run with the thresholds frozen."""
    config = replace(config or DtoeeConfig(), early_exit=False)
    history = run_in_memory(system, rounds, config=config)
    return StaticPolicy(history.x, fixed_thresholds(system, 1.0), default_threshold=1.0)


def random_offloading(
    system: SystemModel, *, threshold: float = DEFAULT_THRESHOLD, seed: int | np.random.Generator | None = 0
) -> StaticPolicy:
    """Fixed threshold; x_i^k = normalised independent U(0, 1) draws (seeded)."""
    rng = np.random.default_rng(seed)
    offload = {}
    for i, k in system.decision_keys():
        targets = system.targets(i, k)
        weights = rng.uniform(0.0, 1.0, size=len(targets)) + 1e-12
        offload[(i, k)] = {j: float(v) for j, v in zip(targets, weights / weights.sum())}
    return StaticPolicy(offload, fixed_thresholds(system, threshold), default_threshold=threshold)


BASELINES: dict[str, Callable[..., StaticPolicy]] = {
    "static-load-proportional": load_proportional,
    "static-greedy-sed": greedy_shortest_expected_delay,
    "static-no-early-exit": no_early_exit,
    "static-random": random_offloading,
}
"""The offline baselines: a strategy computed once from the prior, never changed in a run."""
