"""Test helpers: the acceptance instances and a tiny lossy exchange driving DtoeePolicy
like the co-simulation would."""

from __future__ import annotations

import numpy as np

from optimizer.dtoee import invariant_violation
from optimizer.exit_curves import exit_share_at
from optimizer.policy import NodeMeasurements
from optimizer.system import evaluate, propagate, random_instance, strategy_of_policy

ACCEPTANCE_SEEDS = tuple(range(20))


def acceptance_instance(seed: int):
    """3-10 nodes, 2-4 stages, heterogeneous speeds (log-uniform over 4x)."""
    return random_instance(seed, n_nodes=3 + seed % 8, n_stages=2 + seed % 3)


def measure(system, policy, now_s, period_s):
    """Analytical 'measurements' of the policy's current strategy, per node."""
    x, theta = strategy_of_policy(system, policy)
    K = system.num_stages
    shares = {key: (1.0 if key[1] == K else exit_share_at(system.exit_curves[key[1]], t)) for key, t in theta.items()}
    flows = propagate(system, x, shares)
    out = {}
    for node in system.nodes:
        out[node] = NodeMeasurements(
            node=node,
            period_s=period_s,
            arrivals_per_s={k: flows.arrival[(node, k)] for k in system.stages_hosted(node)},
            external_arrivals_per_s=system.external_rate_per_s[node],
            forwarded_per_s={k: flows.phi.get((node, k), 0.0) for k in range(1, K + 1) if (node, k) in x},
            service_rate_per_s={k: system.service_rate_per_s[(node, k)] for k in system.stages_hosted(node)},
            now_s=now_s,
        )
    return out


def run_lossy(system, policy, periods, *, drop=0.3, late=0.2, seed=0, check=None):
    """Step every node each period; drop a share of messages, delay others 1-3 periods."""
    rng = np.random.default_rng(seed)
    period = policy.period_s
    pending: list[tuple[int, object]] = []
    objectives = []
    for t in range(periods):
        now = (t + 1) * period
        due = [m for (at, m) in pending if at <= t]
        pending = [(at, m) for (at, m) in pending if at > t]
        inbox = {n: [m for m in due if m.dst == n] for n in system.nodes}
        measurements = measure(system, policy, now, period)
        for node in system.nodes:
            for message in policy.step(node, measurements[node], inbox[node]):
                if rng.random() < drop:
                    continue
                delay = 1 + (int(rng.integers(1, 4)) if rng.random() < late else 0)
                pending.append((t + delay, message))
        x, theta = strategy_of_policy(system, policy)
        if check is not None:
            check(invariant_violation(x, theta))
        objectives.append(evaluate(system, x, theta).objective)
    return np.array(objectives)
