import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from optimizer_testkit import (
    FAMILIES,
    acceptance_instance,
    acceptance_set,
    real_exit_curves,
    run_lossy,
    stress_instance,
    stress_scales,
)
from optimizer.centralized import gap_to_optimum, solve_centralized
from optimizer.exit_curves import concave_hull
from optimizer.dtoee import (
    make_agents,
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


def _acceptance_run(category, seed, system, rounds=300):
    """Run DTO-EE, checking the invariants after every round; return (gaps per round, overloaded rounds > 5)."""
    optimum = solve_centralized(system)
    assert optimum.status.startswith("optimal"), (category, seed, optimum.status)
    history = run_in_memory(system, rounds, callback=_check_round(system))
    assert np.all(history.invariant_violation <= 1e-12)
    gaps = (history.objective - optimum.objective) / optimum.mean_delay_s
    assert gaps[-1] >= -1e-5, f"{category} {seed}: below the optimum by {gaps[-1]:.2e} (model mismatch)"
    overloaded = [t + 1 for t in range(5, rounds) if not np.isfinite(history.objective[t]) or history.max_rho[t] >= 1]
    return gaps, overloaded


def test_dtoee_on_the_20_moderate_instances(acceptance_cases):
    """ACCEPTANCE (moderate load, 3-10 nodes, 2-4 stages): within 5% after 30 rounds and 1% after
    100 on every instance, no node or link overloaded after round 5, invariants every round."""
    for seed, system, _ in acceptance_cases:
        gaps, overloaded = _acceptance_run("moderate", seed, system, 100)
        assert gaps[29] <= 0.05 and gaps[99] <= GAP, (seed, gaps[29], gaps[99])
        assert not overloaded, (seed, overloaded[:5])
    sizes = {(len(s.nodes), s.num_stages) for _, s, _ in acceptance_cases}
    assert {n for n, _ in sizes} == set(range(3, 11)) and {k for _, k in sizes} == {2, 3, 4}


STRESS_SUBSET = [(cat, seed) for cat in ("high_load", "real_curves", "slow_links", "w_range") for seed in (0, 1)]


@pytest.mark.parametrize("category, seed", STRESS_SUBSET)
def test_dtoee_reaches_one_percent_on_stress_instances(category, seed):
    """High load (optimum's busiest queue at 0.85-0.97), real non-concave exit curves of every
    family, 10-100 Mbps links with 1 kB-2 MB activations, w from 0 to 10: within 1% after 300
    rounds (the first two instances of each category; the full set is the slow test below)."""
    system = stress_instance(category, seed, stress_scales()[category][seed])
    gaps, _ = _acceptance_run(category, seed, system)
    assert gaps[-1] <= GAP, (category, seed, gaps[-1])


def test_the_stress_set_has_what_it_claims():
    """>= 60 instances; high-load optima really sit at 0.85-0.97; every family's real curves are
    non-concave somewhere (their hull drops points); w spans 0-10; slow links really are slow."""
    cases = acceptance_set()
    assert len(cases) >= 60
    from optimizer_testkit import busiest

    for cat, seed, system in cases:
        if cat == "high_load" and seed < 4:
            assert 0.85 <= busiest(cat, system, solve_centralized(system)) <= 0.97, seed
    for family in FAMILIES:
        curves = real_exit_curves(family)
        below = max(float(np.max([concave_hull(c).value(e) for e in c.exit_share] - c.correct_share))
                    for c in curves.values())
        assert below > 1e-3, family  # the raw curve lies below its hull somewhere: not concave
    assert {s.w for c, _, s in cases if c == "w_range"} == {0.0, 0.1, 1.0, 3.0, 10.0}
    slow = [s for c, _, s in cases if c == "slow_links"]
    assert all(10e6 / 8 <= l.capacity_bytes_per_s <= 100e6 / 8 for s in slow for l in s.links.values())
    assert max(b for s in slow for b in s.transfer_bytes.values()) > 1e6


# The hardest high-load instances of the set (before the transit swaps and the downstream
# headroom bound: seed 6 was 3% off after 300 rounds, 0 / 13 / 15 took 33-45 rounds to 5%, 4 took
# 185 rounds to 1%, 0 overloaded a node in round 7), and the slowest w_range instance (w = 10).
HARD_SUBSET = [("high_load", 0), ("high_load", 4), ("high_load", 6), ("high_load", 13), ("high_load", 15),
               ("w_range", 4)]


@pytest.mark.parametrize("category, seed", HARD_SUBSET)
def test_dtoee_meets_the_round_budget_on_the_hardest_instances(category, seed):
    """ACCEPTANCE (issue 12, CI subset of the full set below): within 5% after 30 rounds and 1%
    after 100, no node or link overloaded after round 5, invariants after every round."""
    system = stress_instance(category, seed, stress_scales()[category][seed])
    gaps, overloaded = _acceptance_run(category, seed, system, 100)
    assert gaps[29] <= 0.05 and gaps[99] <= GAP, (category, seed, gaps[29], gaps[99])
    assert not overloaded, (category, seed, overloaded[:5])


def test_transit_swaps_are_what_unsticks_circulating_work():
    """high_load seed 6 (7 nodes, every node at ~0.94 at the optimum): without transit swaps
    stage-1 work keeps flowing i -> j -> l (node loads already right) and DTO-EE is still
    above 1% after 100 rounds; with them it is within 1%, and it routes no more stage-1 work
    between hosts than the optimum does (+2%)."""
    from optimizer.system import propagate

    system = stress_instance("high_load", 6, stress_scales()["high_load"][6])
    optimum = solve_centralized(system)
    gap = lambda h: (h.objective[-1] - optimum.objective) / optimum.mean_delay_s  # noqa: E731
    without = run_in_memory(system, 100, config=DtoeeConfig(transit_swaps=False))
    with_swaps = run_in_memory(system, 100)
    assert gap(without) > GAP and gap(with_swaps) <= GAP, (gap(without), gap(with_swaps))

    def transferred(x, shares):
        flows = propagate(system, x, shares)
        return sum(v for (i, j, k), v in flows.offload.items() if k == 1 and i != j)

    assert transferred(with_swaps.x, with_swaps.exit_share) <= 1.02 * transferred(optimum.x, optimum.exit_share)
    assert transferred(without.x, without.exit_share) > 1.2 * transferred(optimum.x, optimum.exit_share)


def test_swap_messages_round_trip_and_reject_junk():
    from optimizer.dtoee import SwapOffer

    offer = SwapOffer("a", "b", 1, "c", 2.5, 3.0)
    assert SwapOffer.from_payload("a", "b", offer.to_payload()) == offer
    assert SwapOffer.from_payload("a", "b", {"kind": "dtoee/swap", "stage": 1}) is None
    assert SwapOffer.from_payload("a", "b", {**offer.to_payload(), "flow": float("nan")}) is None
    report = ReceiverReport("b", 1, 0.1, 2.0, 3, 4.0, 5.0, out_flows=(("c", 1.0, 0.01, 1e-4),), accepted=(("c", 0.5),))
    assert ReceiverReport.from_payload("b", report.to_payload()) == report
    bad = {**report.to_payload(), "out": [["c", float("inf"), 0.0, 0.0]]}
    assert ReceiverReport.from_payload("b", bad) is None


@pytest.fixture(scope="module")
def full_set_results():
    """(category, seed, gaps per round, overloaded rounds > 5) for the whole acceptance set."""
    return [(category, seed, *_acceptance_run(category, seed, system)) for category, seed, system in acceptance_set()]


def test_dtoee_full_acceptance_set(full_set_results):
    """ACCEPTANCE (issue 12) over the >= 60 instances: per category, within 5% after 30 rounds and
    1% after 100 on >= 90%; within 1% after 300 on all."""
    failures = []
    by_category: dict[str, list] = {}
    for category, seed, gaps, _ in full_set_results:
        by_category.setdefault(category, []).append((gaps[29] <= 0.05 and gaps[99] <= GAP))
        if gaps[-1] > GAP:
            failures.append((category, seed, "gap", float(gaps[-1])))
    for category, ok in by_category.items():
        if sum(ok) < 0.9 * len(ok):
            failures.append((category, "fast", f"{sum(ok)}/{len(ok)}"))
    assert len(full_set_results) >= 60 and not failures, failures


def test_dtoee_never_overloads_after_round_five(full_set_results):
    """ACCEPTANCE (issue 12): no node or link overloaded after round 5 on any instance."""
    overloaded = [(category, seed, rounds[:3]) for category, seed, _, rounds in full_set_results if rounds]
    assert not overloaded, overloaded


def test_headroom_is_shared_among_the_nodes_that_can_send_work():
    """A host's per-sender headroom is its spare rate up to rho_bar over the nodes that can send
    it work (summed over its stages); a stage no node can send to adds no share (n_j^k, the
    Jacobi count, still counts it as 1). high_load seed 14: n5 hosts stages 1 and 3, and no
    stage-2 host reaches it."""
    system = stress_instance("high_load", 14, stress_scales()["high_load"][14])
    node = "n5"
    assert set(system.stages_hosted(node)) == {1, 3}
    real = {k: len(system.senders(node, k)) for k in (1, 3)}
    assert real[1] >= 2 and real[3] == 0
    mu = {k: system.service_rate_per_s[(node, k)] for k in (1, 3)}
    load = 500.0
    for flag, sharers in ((True, real[1]), (False, real[1] + 1)):
        agent = make_agents(system, DtoeeConfig(headroom_real_senders=flag))[node]
        assert agent.sender_count == {1: real[1], 3: 1}
        agent.observe({1: load, 3: 0.0}, {})
        for k in (1, 3):
            report = agent.report(k, 0.0)  # k = 1 with no stage-2 reports: no downstream bound
            spare = (0.99 - load / mu[1]) * mu[k]
            assert math.isclose(report.headroom_per_s, spare / sharers, rel_tol=1e-12), (flag, k)


def test_headroom_among_real_senders_is_what_ends_the_warm_up_overload():
    """high_load seed 14: node n2 has ~5x its stage-1 capacity in external demand and its work
    can go only to n1 and n4, which fill up; n4 empties only as its other senders move to n5,
    each within its share of n5's spare. Shared among n5's three real senders, nothing is
    overloaded after round 5; shared among four (a phantom stage-3 sender), n2 stays
    overloaded until round 8."""
    system = stress_instance("high_load", 14, stress_scales()["high_load"][14])
    on = run_in_memory(system, 30)
    off = run_in_memory(system, 30, config=DtoeeConfig(headroom_real_senders=False))
    assert on.max_rho[0] > 3 and max(on.max_rho[5:]) < 1.0
    assert max(off.max_rho[5:]) > 1.2


def test_no_early_exit_mode_keeps_thresholds_at_one():
    system = random_instance(3, 5, 3)
    history = run_in_memory(system, 20, config=DtoeeConfig(early_exit=False))
    assert all(theta == 1.0 for (j, k), theta in history.theta.items() if k < system.num_stages)
    assert history.objective[-1] < history.initial_objective  # it still routes


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


def _stale_and_foreign_inbox(system, node, now_s, max_age_s):
    """Messages a node must not act on, each with a marginal that would move it if used."""
    k = 1
    target = next(j for j in system.targets(node, k) if j != node)
    outsider = next(j for j in system.nodes if j not in system.targets(node, k) and j != node) \
        if any(j not in system.targets(node, k) and j != node for j in system.nodes) else "nobody"
    stale = ReceiverReport(target, k, -50.0, 1e-6, 1, 1e9, now_s - 2 * max_age_s)
    return [
        ControlMessage(target, node, stale.to_payload()),  # stale: older than max_report_age_s
        ControlMessage(outsider, node, ReceiverReport(outsider, k, -50.0, 1e-6, 1, 1e9, now_s).to_payload()),
        ControlMessage("nobody", node, ReceiverReport("nobody", k, -50.0, 1e-6, 1, 1e9, now_s).to_payload()),
        ControlMessage(target, system.nodes[-1] if system.nodes[-1] != node else system.nodes[-2],
                       ReceiverReport(target, k, -50.0, 1e-6, 1, 1e9, now_s).to_payload()),  # not for this node
        ControlMessage(target, node, {"kind": "other"}),
        ControlMessage(target, node, {"kind": "dtoee/marginal", "stage": "x"}),
        ControlMessage(target, node, {"kind": "dtoee/marginal", "stage": 1, "delta_s": float("nan"),
                                      "curv": 1.0, "headroom": 1.0, "sent_s": now_s}),
    ]


def _step_with(policy_factory, system, inbox_for):
    """Two periods of every node: the first with no messages, the second with ``inbox_for(node)``."""
    policy = policy_factory()
    from optimizer_testkit import measure

    for t, inbox in ((1.0, lambda n: []), (2.0, inbox_for)):
        m = measure(system, policy, t, 1.0)
        for node in system.nodes:
            policy.step(node, m[node], inbox(node))
    return strategy_of_policy(system, policy)


@pytest.mark.parametrize("seed", [4, 6])
def test_policy_ignores_stale_malformed_and_foreign_messages(seed):
    """A node given stale, foreign, misaddressed and malformed reports ends exactly where it ends
    with no messages; the same reports sent fresh and from a real host do move it (so a broken
    filter would fail this test)."""
    system = random_instance(seed, 4, 2)
    make = lambda: DtoeePolicy(system, period_s=1.0)  # noqa: E731
    max_age = make()._max_age_s
    node = next(n for n in system.hosts[1] if any(j != n for j in system.targets(n, 1))
                and system.external_rate_per_s[n] > 0)
    junk = lambda n: _stale_and_foreign_inbox(system, node, 2.0, max_age) if n == node else []  # noqa: E731
    assert _step_with(make, system, junk) == _step_with(make, system, lambda n: [])

    # the same stale report counts when the age filter is off: the check above can fail
    def no_age_filter():
        policy = make()
        policy._max_age_s = None
        return policy

    assert _step_with(no_age_filter, system, junk) != _step_with(no_age_filter, system, lambda n: [])


def test_reset_restores_the_initial_strategy():
    system = acceptance_instance(3)
    policy = DtoeePolicy(system, period_s=1.0)
    x0, theta0 = strategy_of_policy(system, policy)
    run_lossy(system, policy, 10, drop=0.0)
    assert strategy_of_policy(system, policy) != (x0, theta0)
    policy.reset(seed=1)
    assert strategy_of_policy(system, policy) == (x0, theta0)


@pytest.mark.parametrize("seed", [2, 5])
def test_more_rounds_per_period_converge_in_fewer_periods(acceptance_cases, seed):
    """rounds_per_period = 4 (exchange rounds between measurements, loads corrected by the
    senders' flow announcements) reaches the optimum's neighbourhood in fewer measurement
    periods than 1 round per period, and every round keeps the invariants."""
    from optimizer_testkit import run_periods

    _, system, optimum = acceptance_cases[seed]
    one, worst1 = run_periods(system, DtoeePolicy(system, period_s=1.0), 40)
    four, worst4 = run_periods(system, DtoeePolicy(system, period_s=1.0, rounds_per_period=4), 40)
    assert max(worst1, worst4) <= 1e-12
    gap1 = np.array([gap_to_optimum(v, optimum) for v in one])
    gap4 = np.array([gap_to_optimum(v, optimum) for v in four])
    first = lambda g: int(np.argmax(g <= 0.01)) if np.any(g <= 0.01) else len(g)  # noqa: E731
    assert first(gap4) < first(gap1), (first(gap4), first(gap1))
    assert gap4[-1] <= 0.01
    with pytest.raises(ValueError, match="rounds_per_period"):
        DtoeePolicy(system, rounds_per_period=0)
