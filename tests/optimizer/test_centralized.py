import itertools
from dataclasses import replace

import numpy as np
import pytest

from optimizer.centralized import CentralizedSolver, gap_to_optimum, solve_centralized
from optimizer.exit_curves import exit_share_at
from optimizer.system import evaluate, propagate, random_instance

GRID = [(seed, n, K, w) for (seed, n, K) in [(1, 3, 2), (2, 4, 3), (5, 5, 2)] for w in (0.1, 0.5, 2.0)]


@pytest.fixture(scope="module")
def grid_solutions():
    out = {}
    for seed, n, K, w in GRID:
        system = random_instance(seed, n, K, w=w)
        out[(seed, n, K, w)] = (system, solve_centralized(system))
    return out


@pytest.mark.parametrize("case", GRID)
def test_solution_satisfies_the_constraints(grid_solutions, case):
    system, sol = grid_solutions[case]
    assert sol.status == "optimal" and sol.solve_time_s > 0
    assert set(sol.x) == set(system.decision_keys())
    for (i, k), probs in sol.x.items():
        assert set(probs) <= set(system.targets(i, k))
        assert min(probs.values()) >= 0 and sum(probs.values()) == pytest.approx(1.0, abs=1e-9)
    for theta in sol.theta.values():
        assert 0.0 <= theta <= 1.0
    # conservation: stage-1 inflow = external rate; stage k+1 demand = continuing flow
    shares = {key: exit_share_at(system.exit_curves[key[1]], t) if key[1] < system.num_stages else 1.0
              for key, t in sol.theta.items()}
    flows = propagate(system, sol.x, shares)
    assert sum(flows.arrival[(j, 1)] for j in system.hosts[1]) == pytest.approx(system.total_external_rate_per_s)
    for k in range(1, system.num_stages):
        cont = sum(flows.arrival[(j, k)] * (1 - shares[(j, k)]) for j in system.hosts[k])
        assert sum(flows.arrival[(j, k + 1)] for j in system.hosts[k + 1]) == pytest.approx(cont)
    ev = evaluate(system, sol.x, sol.theta)
    assert ev.feasible and max(ev.rho.values()) < 1 and max(ev.link_utilisation.values(), default=0) < 1
    assert ev.objective == pytest.approx(sol.objective, abs=1e-9 * sol.mean_delay_s + 1e-12)
    assert gap_to_optimum(ev.objective, sol) == pytest.approx(0.0, abs=1e-9)


def _perturbations(system, x, theta, eps=1e-3, dtheta=0.01):
    """Every feasible single-coordinate move: eps of probability j -> j', theta +- dtheta."""
    for key, probs in x.items():
        for j, jj in itertools.permutations(probs, 2):
            if probs[j] >= eps:
                new = dict(probs)
                new[j] -= eps
                new[jj] += eps
                yield {**x, key: new}, theta
    for key, t in theta.items():
        if key[1] == system.num_stages:
            continue
        for d in (-dtheta, dtheta):
            if 0 <= t + d <= 1:
                yield x, {**theta, key: t + d}


@pytest.mark.parametrize("case", GRID)
def test_no_single_coordinate_perturbation_improves(grid_solutions, case):
    system, sol = grid_solutions[case]
    tolerance = 1e-6 * sol.mean_delay_s
    count = 0
    for x, theta in _perturbations(system, sol.x, sol.theta):
        ev = evaluate(system, x, theta)
        assert ev.objective >= sol.objective - tolerance
        count += 1
    assert count > 0


def test_trade_off_is_monotone_in_w():
    system = random_instance(4, 6, 3)
    solver = CentralizedSolver(system)
    delays, accuracies = [], []
    for w in (0.02, 0.1, 0.3, 0.6, 1.0, 2.0, 5.0):
        sol = solver.solve(w=w)
        assert sol.status == "optimal"
        delays.append(sol.mean_delay_s)
        accuracies.append(sol.accuracy)
    assert np.all(np.diff(accuracies) >= -1e-6)
    assert np.all(np.diff(delays) >= -1e-6 * max(delays))
    assert accuracies[-1] > accuracies[0] and delays[-1] > delays[0]


def test_resolve_with_parameters_matches_a_fresh_build():
    system = random_instance(6, 5, 3)
    lam = {i: 1.2 * v for i, v in system.external_rate_per_s.items()}
    resolved = CentralizedSolver(system).solve(external_rate_per_s=lam, w=0.8)
    fresh = solve_centralized(replace(system, external_rate_per_s=lam, w=0.8))
    assert resolved.objective == pytest.approx(fresh.objective, rel=1e-6)
    with pytest.raises(ValueError, match="new sources"):
        CentralizedSolver(replace(system, external_rate_per_s={system.nodes[0]: 1.0})).solve(
            external_rate_per_s={system.nodes[1]: 1.0}
        )
