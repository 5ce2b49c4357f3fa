"""Exit shares and accuracy conditional on survival: the per-sample model against a
Monte-Carlo of the exit rule, and the self-consistent optimum."""

from __future__ import annotations

import numpy as np
import pytest

from optimizer.centralized import solve_self_consistent
from optimizer.exit_curves import SampleTable, conditional_exit_curve, exit_share_at
from optimizer.system import evaluate, random_instance, sample_flows


def _table(rng, n=400, k=3):
    # later exits are more confident and more often right; confidences correlated across exits
    base = rng.random(n)
    confidence = np.clip(np.stack([base * 0.6 + 0.4 * rng.random(n) * (j + 1) / k for j in range(k)], 1), 0, 1)
    correct = rng.random((n, k)) < np.clip(0.5 + 0.5 * confidence, 0, 1)
    return SampleTable(confidence=confidence, correct=correct)


def _strategy(system, rng):
    x = {}
    for (i, k) in system.decision_keys():
        targets = system.targets(i, k)
        p = rng.dirichlet(np.ones(len(targets)))
        x[(i, k)] = dict(zip(targets, p))
    theta = {(j, k): float(rng.uniform(0.3, 0.8)) for k in range(1, system.num_stages + 1) for j in system.hosts[k]}
    return x, theta


def _monte_carlo(system, x, theta, table, rng, tasks=60_000):
    """Simulate the exit rule task by task: entry by lambda, route by x, exit iff c >= theta."""
    names = list(system.nodes)
    lam = np.array([system.external_rate_per_s[n] for n in names])
    K = system.num_stages
    right, exits = 0, np.zeros(K)
    for _ in range(tasks):
        s = rng.integers(table.num_samples)
        here = names[rng.choice(len(names), p=lam / lam.sum())]
        for k in range(1, K + 1):
            probs = x[(here, k)]
            hosts = list(probs)
            here = hosts[rng.choice(len(hosts), p=np.array(list(probs.values())) / sum(probs.values()))]
            if k == K or table.confidence[s, k - 1] >= theta[(here, k)]:
                right += table.correct[s, k - 1]
                exits[k - 1] += 1
                break
    return right / tasks, exits / tasks


@pytest.mark.parametrize("seed", [0, 1])
def test_sample_flows_match_a_monte_carlo_of_the_exit_rule(seed):
    rng = np.random.default_rng(seed)
    system = random_instance(seed, n_nodes=4, n_stages=3)
    table = _table(rng)
    x, theta = _strategy(system, rng)
    exact = sample_flows(system, x, theta, table)
    accuracy, exits = _monte_carlo(system, x, theta, table, np.random.default_rng(100 + seed), tasks=20_000)
    # binomial standard error at 20k tasks is < 0.0036; 4 sigma
    assert abs(exact.accuracy - accuracy) < 0.015
    assert np.allclose([exact.exit_stage_share[k] for k in (1, 2, 3)], exits, atol=0.015)
    assert sum(exact.exit_stage_share.values()) == pytest.approx(1.0)
    # conservation: what reaches stage k+1 is what reached k and did not exit
    assert exact.reach[:, 0] == pytest.approx(np.ones(table.num_samples))
    for k in (1, 2):
        assert exact.reach[:, k].mean() == pytest.approx(exact.reach[:, k - 1].mean() - exact.exit_stage_share[k])


def test_unconditional_curves_carry_the_selection_effect_the_samples_do_not():
    rng = np.random.default_rng(3)
    system = random_instance(3, n_nodes=3, n_stages=3)
    # exit 3 is right exactly on the samples exit 1 lets through least: a strong selection effect
    n = 500
    c1 = rng.random(n)
    confidence = np.stack([c1, rng.random(n), np.ones(n)], 1)
    correct = np.stack([c1 > 0.2, rng.random(n) < 0.7, c1 > 0.5], 1)
    table = SampleTable(confidence, correct)
    curves = {k: conditional_exit_curve(table, k, np.ones(n)) for k in (1, 2, 3)}
    from dataclasses import replace

    model = replace(system, exit_curves=curves)
    x = {key: {model.targets(*key)[0]: 1.0} for key in model.decision_keys()}
    theta = {(j, k): 0.5 for k in (1, 2, 3) for j in model.hosts[k]}
    exact = sample_flows(model, x, theta, table)
    # brute force: exit 1 takes c1 >= .5 (right iff c1 > .2, i.e. all); survivors c1 < .5 go on
    stage2 = confidence[:, 1] >= 0.5
    truth = np.where(c1 >= 0.5, correct[:, 0], np.where(stage2, correct[:, 1], correct[:, 2])).mean()
    assert exact.accuracy == pytest.approx(truth)
    # the unconditional curves credit exit 3 with its all-sample accuracy (c1 > .5: ~50%),
    # but its survivors all have c1 < .5 and are all wrong there
    assert evaluate(model, x, theta).accuracy > truth + 0.02


def test_conditional_curve_with_unit_weights_is_the_empirical_curve():
    rng = np.random.default_rng(5)
    table = _table(rng, n=300)
    curve = conditional_exit_curve(table, 2, np.ones(300))
    for theta in [0.0, *np.sort(table.confidence[:, 1])[[75, 150, 225]]]:  # grid points: exact
        assert exit_share_at(curve, theta) == pytest.approx((table.confidence[:, 1] >= theta).mean(), abs=1e-9)
    # weights zero on half the samples: the curve is the other half's
    weight = (np.arange(300) % 2).astype(float)
    half = conditional_exit_curve(table, 2, weight)
    odd = table.confidence[1::2, 1]
    cut = float(np.sort(odd)[50])
    assert exit_share_at(half, cut) == pytest.approx((odd >= cut).mean(), abs=1e-9)


def test_self_consistent_optimum_is_the_optimum_of_the_curves_it_hands_on():
    from optimizer.centralized import solve_centralized

    rng = np.random.default_rng(7)
    system = random_instance(7, n_nodes=3, n_stages=3)
    table = _table(rng, n=300)
    result = solve_self_consistent(system, table, max_rounds=15, tol=1e-3)
    # this instance cycles: damped from round 3, residuals shrinking towards half the cycle's
    # width, not converged in 15 rounds (the real models converge: test_prediction.py)
    assert result.rounds == len(result.residuals) >= 2 and result.converged == (result.residuals[-1] <= 1e-3)
    assert result.residuals[0] > 0.05  # round 1: the all-sample curves are off
    # the solution is the exact optimum of the model handed on (oracle and DTO-EE share it)
    again = solve_centralized(result.system)
    assert again.objective == pytest.approx(result.solution.objective, rel=1e-6)
    exact = sample_flows(system, result.solution.x, result.solution.theta, table)
    assert result.exact.accuracy == pytest.approx(exact.accuracy)
    assert result.residual_accuracy == pytest.approx(result.solution.accuracy - exact.accuracy)
    # the curves handed on are those of survivors (of the round before the returned one):
    # closer to the samples at the returned strategy than the all-sample curves
    conditional = evaluate(result.system, result.solution.x, result.solution.theta).accuracy
    unconditional = evaluate(system, result.solution.x, result.solution.theta).accuracy
    assert abs(conditional - exact.accuracy) < abs(unconditional - exact.accuracy)


def test_self_consistent_never_returns_worse_than_the_old_models_optimum():
    """Stopped before converging, it returns the best round on the sample-exact objective:
    never worse than round 1, the optimum of the old all-sample curves."""
    from optimizer.centralized import conditional_system, solve_centralized
    from optimizer.system import evaluate_on_samples

    for seed in (7, 8, 9):
        system = random_instance(seed, n_nodes=3, n_stages=3)
        table = _table(np.random.default_rng(seed), n=300)
        result = solve_self_consistent(system, table, max_rounds=3, tol=0.0)
        assert not result.converged and result.rounds == 3
        old = solve_centralized(conditional_system(system, table, np.ones((300, 3))))
        old_exact = evaluate_on_samples(system, old.x, old.theta, table)
        assert result.exact.objective <= old_exact.objective + 1e-12


def test_self_consistent_damps_a_cycle():
    """A 2-cycle of the undamped map is averaged: after the first round whose residual does
    not fall, the weights are a running mean and the residual report says where it ended."""
    found = False
    for seed in range(12):
        system = random_instance(seed, n_nodes=4, n_stages=3)
        table = _table(np.random.default_rng(seed), n=200)
        result = solve_self_consistent(system, table, max_rounds=12, tol=1e-6)
        assert result.rounds == len(result.residuals)
        if result.damped_from is not None:
            found = True
            assert all(result.residuals[i] < result.residuals[i - 1] for i in range(1, result.damped_from - 1))
            assert result.residuals[result.damped_from - 1] >= result.residuals[result.damped_from - 2]
    assert found, "no instance needed damping: the test covers nothing"


def test_mg_number_is_pollaczek_khinchine_and_mm1_where_exact():
    from optimizer.queueing import mm1_number
    from optimizer.system import mg_number

    for rho in (0.3, 0.5, 0.8):
        # exponential, one class, one server: M/M/1
        assert mg_number({1: rho * 100}, {1: 0.01}, 1.0) == pytest.approx(mm1_number(rho))
        # deterministic: M/D/1, N = rho + rho^2 / (2 (1 - rho))
        assert mg_number({1: rho * 100}, {1: 0.01}, 0.0) == pytest.approx(rho + rho**2 / (2 * (1 - rho)))
    # a mix of two deterministic classes: E[S^2] of the mixture, not of the mean
    lam, s = {1: 20.0, 2: 20.0}, {1: 0.005, 2: 0.02}
    es, es2 = 0.0125, (0.005**2 + 0.02**2) / 2
    rho = 40 * es
    assert mg_number(lam, s, 0.0) == pytest.approx(rho + 40**2 * es2 / (2 * (1 - rho)))
    # c workers, exponential: Allen-Cunneen is exact for M/M/c
    from math import factorial

    c, a = 3, 2.1  # offered load, rho = 0.7
    p0 = 1 / (sum(a**n / factorial(n) for n in range(c)) + a**c / factorial(c) / (1 - a / c))
    lq = p0 * a**c * (a / c) / (factorial(c) * (1 - a / c) ** 2)
    assert mg_number({1: a / 0.01}, {1: 0.01}, 1.0, servers=c) == pytest.approx(lq + a)
    assert mg_number({1: 100.0}, {1: 0.01}, 0.0) == float("inf")


def test_overloaded_system_gets_conditional_curves_calibrated_at_a_load_it_can_serve():
    """Offered load above capacity (no feasible strategy: the admission test's case) must not
    stop DTO-EE from being built: its curves are calibrated at a halved load, the real rates
    kept; the oracle itself stays undefined (infeasible)."""
    from dataclasses import replace

    from optimizer.centralized import InfeasibleProblem
    from optimizer.registry import conditional_curves, make_policy

    rng = np.random.default_rng(3)
    feasible = random_instance(3, n_nodes=3, n_stages=3)
    feasible = replace(feasible, calibration_samples=_table(rng, n=300))
    over = replace(feasible, external_rate_per_s={i: 6 * lam for i, lam in feasible.external_rate_per_s.items()})
    with pytest.raises(InfeasibleProblem):
        solve_self_consistent(over)
    curves = conditional_curves(over)
    assert dict(curves.external_rate_per_s) == dict(over.external_rate_per_s)
    assert curves.exit_curves != over.exit_curves  # conditional, not the all-sample ones
    policy = make_policy("dtoee", over)
    assert 0.0 <= policy.threshold(over.hosts[1][0], 1) <= 1.0
