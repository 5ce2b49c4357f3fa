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


# ----- the grown acceptance set (issue 12): categories beyond random_instance ----------------

import json  # noqa: E402
import math  # noqa: E402
from dataclasses import replace  # noqa: E402
from pathlib import Path  # noqa: E402

from optimizer.exit_curves import ExitCurveData, synthetic_exit_curves  # noqa: E402
from optimizer.system import Link, SystemModel  # noqa: E402

DATA = Path(__file__).parent / "data"
FAMILIES = ("mlp", "resnet", "vit", "llama")
# category -> number of instances; "moderate" is the original 20 (random_instance)
CATEGORIES = {"moderate": 20, "high_load": 16, "real_curves": 12, "slow_links": 10, "w_range": 10}
W_VALUES = (0.0, 0.1, 1.0, 3.0, 10.0)


def real_exit_curves(family: str, num_stages: int = 3) -> dict[int, ExitCurveData]:
    """Measured exit curves of a family's seed-0 model (tests/optimizer/data/exit_curves.json,
    made by make_exit_curve_tables.py). K = 2 uses exits 2 and 3 (stage 1 = blocks of exits 1+2)."""
    table = json.loads((DATA / "exit_curves.json").read_text())["families"][family]
    chosen = table if num_stages == 3 else table[-num_stages:]
    curves = {}
    for k, c in enumerate(chosen, start=1):
        acc = np.array([np.nan if v is None else v for v in c["accuracy_of_exited"]], dtype=float)
        curves[k] = ExitCurveData(stage=k, thresholds=c["thresholds"], exit_share=c["exit_share"],
                                  accuracy_of_exited=acc, test_accuracy=c["test_accuracy"])
    return curves


def stress_instance(category: str, seed: int, load_scale: float = 1.0) -> SystemModel:
    """One instance of a category, built independently of ``random_instance``.

    3-12 nodes, 2-4 stages (3 with real curves), speeds up to 8x apart, each stage hosted by a
    random subset, links with probability 0.7 (repaired). ``slow_links``: 10-100 Mbps links,
    activations 1 kB - 2 MB, stage work 20-200 ms; otherwise 0.2-1 Gbps, 10-400 kB, 4-12 ms.
    ``real_curves``: the exit curves of a model family (non-concave); ``w_range``: w from
    W_VALUES. The total arrival rate is ``load_scale`` times a base rate (half the no-exit
    capacity); the acceptance table (stress_scales.json) holds the scale that puts the
    optimum's busiest node at the category's target utilisation.
    """
    if category == "moderate":
        return acceptance_instance(seed)
    rng = np.random.default_rng([12, list(CATEGORIES).index(category), seed])
    n = int(rng.integers(3, 13))
    family = FAMILIES[seed % len(FAMILIES)]
    K = 3 if category == "real_curves" else int(rng.integers(2, 5))
    nodes = tuple(f"n{i}" for i in range(n))
    speed = np.exp(rng.uniform(0.0, np.log(8.0), size=n))
    slow = category == "slow_links"
    work_s = rng.uniform(0.02, 0.2, size=K) if slow else rng.uniform(0.004, 0.012, size=K)
    hosts = {}
    for k in range(1, K + 1):
        chosen = [v for v in nodes if rng.random() < 0.6] or [nodes[int(rng.integers(n))]]
        hosts[k] = tuple(chosen)
    count = {v: sum(v in hosts[k] for k in hosts) for v in nodes}
    mu = {(j, k): float(speed[nodes.index(j)] / work_s[k - 1]) for k in hosts for j in hosts[k]}
    base = 0.5 * min(sum(mu[(j, k)] / count[j] for j in hosts[k]) for k in range(1, K + 1))
    share = rng.dirichlet(np.full(n, 1.0))
    lam = {v: float(base * load_scale * s) for v, s in zip(nodes, share)}
    if slow:
        transfer = {k: float(np.exp(rng.uniform(np.log(1e3), np.log(2e6)))) for k in range(1, K + 1)}
    else:
        transfer = {k: float(rng.uniform(10e3, 400e3)) for k in range(1, K + 1)}
    rate_bps = (10e6, 100e6) if slow else (200e6, 1e9)

    def link():
        return Link(capacity_bytes_per_s=float(rng.uniform(*rate_bps) / 8), propagation_s=float(rng.uniform(0.001, 0.01)))

    links = {(i, j): link() for i in nodes for j in nodes if i != j and rng.random() < 0.7}
    for k in range(1, K + 1):
        for i in (nodes if k == 1 else hosts[k - 1]):
            if i not in hosts[k] and not any((i, j) in links for j in hosts[k]):
                links[(i, hosts[k][int(rng.integers(len(hosts[k])))])] = link()
    if category == "real_curves":
        curves = real_exit_curves(family, K)
    else:
        curves = synthetic_exit_curves(K, rng)
    w = W_VALUES[seed % len(W_VALUES)] if category == "w_range" else 0.5
    return SystemModel(nodes=nodes, num_stages=K, hosts=hosts, external_rate_per_s=lam, service_rate_per_s=mu,
                       links=links, transfer_bytes=transfer, exit_curves=curves, w=w, result_bytes=1e3)


# target utilisation of the optimum's busiest node (or link) per category
TARGET_RHO = {"high_load": (0.85, 0.97), "real_curves": (0.6, 0.95), "slow_links": (0.6, 0.95), "w_range": (0.6, 0.95)}


def busiest(category: str, system, solution) -> float:
    """Utilisation of the optimum's busiest queue (node or link)."""
    from optimizer.system import evaluate_exit_shares

    ev = evaluate_exit_shares(system, solution.x, solution.exit_share)
    return max([*ev.rho.values(), *ev.link_utilisation.values()])


def tune_load_scale(category: str, seed: int, target: float) -> float:
    """Scale lambda until the optimum's busiest queue sits at ``target`` (secant on log scale)."""
    from optimizer.centralized import solve_centralized

    scale, lo, hi = 1.0, 0.0, math.inf
    for _ in range(30):
        system = stress_instance(category, seed, scale)
        sol = solve_centralized(system)
        m = busiest(category, system, sol) if sol.status == "optimal" else math.inf
        if abs(m - target) <= 0.005:
            return scale
        if m > target:
            hi = scale
        else:
            lo = scale
        if math.isfinite(m) and m > 0:
            guess = scale * (target / m) ** 1.5 if m < 1 else scale * 0.7
        else:
            guess = scale * 0.5
        if not lo < guess < hi:
            guess = (lo + hi) / 2 if math.isfinite(hi) else 2 * scale
        scale = guess
    return scale


def stress_scales() -> dict[str, dict[int, float]]:
    """The tuned load scales (tests/optimizer/data/stress_scales.json)."""
    raw = json.loads((DATA / "stress_scales.json").read_text())
    return {cat: {int(s): v for s, v in table.items()} for cat, table in raw.items()}


def acceptance_set(categories=None):
    """[(category, seed, system)] for every instance of the grown acceptance set."""
    scales = stress_scales()
    out = []
    for cat, count in CATEGORIES.items():
        if categories is not None and cat not in categories:
            continue
        for seed in range(count):
            if cat != "moderate" and seed not in scales.get(cat, {}):
                continue
            out.append((cat, seed, stress_instance(cat, seed, scales[cat][seed] if cat != "moderate" else 1.0)))
    return out


def main(argv: list[str]) -> int:
    """Regenerate stress_scales.json: ``PYTHONPATH=. python tests/optimizer/optimizer_testkit.py
    [CATEGORY ...]`` (all categories, or only those named; the others are kept)."""
    path = DATA / "stress_scales.json"
    table = json.loads(path.read_text()) if path.exists() else {}
    for cat, count in CATEGORIES.items():
        if cat == "moderate" or (argv and cat not in argv):
            continue
        lo, hi = TARGET_RHO[cat]
        table[cat] = {}
        for seed in range(count):
            target = float(np.random.default_rng([99, seed, len(cat)]).uniform(lo + 0.01, hi - 0.01))
            table[cat][str(seed)] = round(tune_load_scale(cat, seed, target), 6)
            print(cat, seed, target, table[cat][str(seed)], flush=True)
    path.write_text(json.dumps(table, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    import sys

    raise SystemExit(main(sys.argv[1:]))


def run_periods(system, policy, periods):
    """Drive a DtoeePolicy like the control plane: one measurement per period, then
    ``rounds_per_period - 1`` exchange rounds; messages arrive one round later. Returns the
    objective after every period and the largest invariant violation seen after any round."""
    R = policy.rounds_per_period
    pending = []
    objectives, worst = [], 0.0
    for t in range(periods):
        for r in range(R):
            now = t + (r + 1) / R
            inbox = {n: [m for m in pending if m.dst == n] for n in system.nodes}
            pending = []
            if r == 0:
                measurements = measure(system, policy, now, 1.0)
                for node in system.nodes:
                    pending += policy.step(node, measurements[node], inbox[node])
            else:
                for node in system.nodes:
                    pending += policy.exchange(node, now, inbox[node])
            x, theta = strategy_of_policy(system, policy)
            worst = max(worst, invariant_violation(x, theta))
        objectives.append(evaluate(system, x, theta).objective)
    return np.array(objectives), worst
