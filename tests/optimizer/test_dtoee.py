import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from optimizer_testkit import acceptance_instance, run_lossy
from optimizer.centralized import gap_to_optimum
from optimizer.dtoee import (
    DtoeeConfig,
    DtoeePolicy,
    ReceiverReport,
    invariant_violation,
    run_in_memory,
)
from optimizer.marginals import best_exit_share, scaled_simplex_step
from optimizer.policy import AdaptivePolicy, ControlMessage, NodeMeasurements, Policy
from optimizer.system import random_instance, strategy_of_policy

ROUNDS = 150
GAP = 0.01


def _check_round(system):
    def check(round_index, x, theta):
        assert invariant_violation(x, theta) <= 1e-12, f"round {round_index}"
        for (i, k), probs in x.items():
            assert set(probs) <= set(system.targets(i, k))
            assert all(p >= 0 for p in probs.values())
            assert math.isclose(sum(probs.values()), 1.0, abs_tol=1e-12)
        assert all(0.0 <= t <= 1.0 for t in theta.values())

    return check


def test_dtoee_reaches_one_percent_of_the_optimum_on_20_instances(acceptance_cases):
    """ACCEPTANCE: gap = (J - J*) / D* <= 1% on every instance; invariants after every round."""
    gaps, rounds_needed = [], []
    for seed, system, optimum in acceptance_cases:
        assert optimum.status == "optimal", seed
        history = run_in_memory(system, ROUNDS, callback=_check_round(system))
        gap = gap_to_optimum(float(history.objective[-1]), optimum)
        assert gap <= GAP, f"seed {seed}: gap {gap:.4f}"
        assert gap >= -1e-6, f"seed {seed}: below the optimum by {gap:.2e} (model mismatch)"
        assert np.all(history.invariant_violation <= 1e-12)
        gaps.append(gap)
        rounds_needed.append(history.rounds_to_gap(optimum.objective, optimum.mean_delay_s, GAP))
    assert len(gaps) == 20 and all(r is not None for r in rounds_needed)
    sizes = {(len(s.nodes), s.num_stages) for _, s, _ in acceptance_cases}
    assert {n for n, _ in sizes} == set(range(3, 11)) and {k for _, k in sizes} == {2, 3, 4}


def test_no_early_exit_mode_keeps_thresholds_at_one():
    system = random_instance(3, 5, 3)
    history = run_in_memory(system, 20, config=DtoeeConfig(early_exit=False))
    for (j, k), theta in history.theta.items():
        assert theta == (0.0 if k == system.num_stages else 1.0)


def test_run_in_memory_validates_rounds():
    with pytest.raises(ValueError, match="rounds"):
        run_in_memory(random_instance(0, 3, 2), 0)


@pytest.mark.parametrize("field, value", [("step", 0.0), ("rho_bar", 1.0), ("start", "x"), ("min_step", 2.0)])
def test_config_validation(field, value):
    with pytest.raises(ValueError, match=field):
        DtoeeConfig(**{field: value})


# ----- the local solves --------------------------------------------------------------------


@settings(max_examples=80, deadline=None)
@given(
    data=st.lists(
        st.tuples(st.floats(0, 5), st.floats(-2, 2), st.floats(0.1, 10), st.floats(0, 3)), min_size=1, max_size=6
    )
)
def test_scaled_simplex_step_is_the_exact_constrained_minimiser(data):
    f0 = np.array([d[0] for d in data])
    a = np.array([d[1] for d in data])
    H = np.array([d[2] for d in data])
    ub = f0 + np.array([d[3] for d in data])
    total = float(f0.sum())
    f = scaled_simplex_step(f0, a, H, ub, total)
    assert f.sum() == pytest.approx(total, abs=1e-9)
    assert np.all(f >= -1e-12) and np.all(f <= ub + 1e-9)
    value = lambda z: a @ (z - f0) + 0.5 * H @ (z - f0) ** 2
    rng = np.random.default_rng(0)
    for _ in range(30):  # random feasible points are never better
        i, j = rng.choice(len(f), 2) if len(f) > 1 else (0, 0)
        d = min(f[i], ub[j] - f[j]) * rng.uniform()
        z = f.copy()
        z[i] -= d
        z[j] += d
        assert value(z) >= value(f) - 1e-9


def test_best_exit_share_matches_a_grid_search():
    system = random_instance(1, 3, 3)
    hull = system.hull(1)
    grid = np.linspace(hull.min_exit_share, 1.0, 20001)
    for cont, lam, curv, e0 in [(-0.3, 10.0, 1e-3, 0.5), (0.1, 5.0, 0.0, 0.2), (-0.1, 50.0, 1e-4, 0.9)]:
        e = best_exit_share(hull, system.w, cont, lam, curv, e0)
        values = -system.w * np.interp(grid, hull.vertex_exit_share, hull.vertex_correct_share)
        values += (1 - grid) * cont + 0.5 * curv * lam * (grid - e0) ** 2
        ours = -system.w * hull.value(e) + (1 - e) * cont + 0.5 * curv * lam * (e - e0) ** 2
        assert ours <= values.min() + 1e-9


# ----- the co-simulation policy ------------------------------------------------------------


def test_policy_satisfies_the_contract():
    policy = DtoeePolicy(random_instance(0, 4, 3), period_s=0.5)
    assert isinstance(policy, AdaptivePolicy) and isinstance(policy, Policy)
    assert policy.period_s == 0.5
    with pytest.raises(ValueError, match="period_s"):
        DtoeePolicy(random_instance(0, 4, 3), period_s=0.0)


@pytest.mark.parametrize("drop", [0.0, 0.3, 0.7])
def test_policy_with_lost_and_late_messages_stays_valid_and_improves(drop):
    system = acceptance_instance(2)
    policy = DtoeePolicy(system, period_s=0.2)
    violations = []
    objectives = run_lossy(system, policy, 120, drop=drop, seed=11, check=violations.append)
    assert max(violations) <= 1e-12
    x, theta = strategy_of_policy(system, policy)
    assert invariant_violation(x, theta) <= 1e-12
    start = run_lossy(system, DtoeePolicy(system, period_s=0.2), 1, drop=1.0)[0]
    assert objectives[-1] < start


def test_policy_converges_near_the_optimum_despite_losses(acceptance_cases):
    seed, system, optimum = acceptance_cases[5]
    policy = DtoeePolicy(system, period_s=1.0)
    objectives = run_lossy(system, policy, 200, drop=0.3, late=0.3, seed=seed)
    assert gap_to_optimum(objectives[-1], optimum) <= 0.02


def test_policy_ignores_stale_malformed_and_foreign_messages():
    system = random_instance(4, 4, 2)
    policy = DtoeePolicy(system, period_s=1.0)
    node = system.nodes[0]
    before = {k: dict(policy.offload_probabilities(node, k)) for k in policy.agents[node].offload_stages}
    junk = [
        ControlMessage(system.nodes[1], node, {"kind": "other"}),
        ControlMessage(system.nodes[1], node, {"kind": "dtoee/marginal", "stage": "x"}),
        ControlMessage(system.nodes[1], node, {"kind": "dtoee/marginal", "stage": 1, "delta_s": float("nan"),
                                               "curv": 1.0, "headroom": 1.0, "sent_s": 0.0}),
        ControlMessage("nobody", node, ReceiverReport("nobody", 1, -5.0, 1.0, 1, 1.0, 0.0).to_payload()),
        ControlMessage(system.nodes[1], system.nodes[2], {"kind": "dtoee/marginal"}),
    ]
    m = NodeMeasurements(node=node, period_s=1.0, external_arrivals_per_s=system.external_rate_per_s[node], now_s=100.0)
    out = policy.step(node, m, junk)
    for message in out:
        assert message.src == node and message.dst in system.nodes and message.dst != node
        assert ReceiverReport.from_payload(message.src, message.payload) is not None
    for k, probs in before.items():
        after = policy.offload_probabilities(node, k)
        assert math.isclose(sum(after.values()), 1.0)
        assert set(after) == set(probs)


def test_reset_restores_the_initial_strategy():
    system = acceptance_instance(3)
    policy = DtoeePolicy(system, period_s=1.0)
    x0, theta0 = strategy_of_policy(system, policy)
    run_lossy(system, policy, 10, drop=0.0)
    assert strategy_of_policy(system, policy) != (x0, theta0)
    policy.reset(seed=1)
    assert strategy_of_policy(system, policy) == (x0, theta0)
