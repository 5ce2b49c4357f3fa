import json
import math

import pytest

from optimizer.baselines import BASELINES, POLICIES, make_policy
from optimizer.dtoee import DtoeePolicy, invariant_violation
from optimizer.policy import Policy, StaticPolicy
from optimizer.report import optimize_report
from optimizer.system import evaluate, random_instance, strategy_of_policy


@pytest.fixture(scope="module")
def system():
    return random_instance(9, 6, 3)


@pytest.mark.parametrize("name", sorted(BASELINES))
def test_baselines_return_valid_policies(system, name):
    policy = make_policy(name, system)
    assert isinstance(policy, Policy) and isinstance(policy, StaticPolicy)
    x, theta = strategy_of_policy(system, policy)
    assert invariant_violation(x, theta) <= 1e-12
    for (i, k), probs in x.items():
        assert set(probs) <= set(system.targets(i, k))
    ev = evaluate(system, x, theta)
    assert math.isfinite(ev.accuracy)


def test_fixed_threshold_is_a_parameter(system):
    for name in ("fixed-threshold-load-proportional", "fixed-threshold-greedy-sed", "random-offloading"):
        policy = make_policy(name, system, threshold=0.6)
        assert policy.threshold(system.hosts[1][0], 1) == 0.6 or system.num_stages == 1
    with pytest.raises(ValueError, match="threshold"):
        make_policy("fixed-threshold-load-proportional", system, threshold=1.5)


def test_no_early_exit_runs_every_stage(system):
    policy = make_policy("no-early-exit", system, rounds=50)
    ev = evaluate(system, *strategy_of_policy(system, policy))
    assert ev.exit_distribution[system.num_stages] == pytest.approx(1.0)


def test_random_offloading_is_seeded(system):
    a = strategy_of_policy(system, make_policy("random-offloading", system, seed=3))
    b = strategy_of_policy(system, make_policy("random-offloading", system, seed=3))
    c = strategy_of_policy(system, make_policy("random-offloading", system, seed=4))
    assert a == b and a != c


def test_load_proportional_follows_service_rates(system):
    policy = make_policy("fixed-threshold-load-proportional", system)
    i, k = system.decision_keys()[0]
    probs = policy.offload_probabilities(i, k)
    rates = {j: system.service_rate_per_s[(j, k)] for j in system.targets(i, k)}
    for j in probs:
        assert probs[j] == pytest.approx(rates[j] / sum(rates.values()))


def test_dtoee_beats_the_baselines_and_optimum_beats_all(system):
    evals = {name: evaluate(system, *strategy_of_policy(system, make_policy(name, system))) for name in BASELINES}
    dtoee = evaluate(system, *strategy_of_policy(system, make_policy("dtoee-converged", system, rounds=150)))
    best = evaluate(system, *strategy_of_policy(system, make_policy("optimum", system)))
    for name, ev in evals.items():
        assert dtoee.objective <= ev.objective + 1e-9, name
    assert best.objective <= dtoee.objective + 1e-6 * best.mean_delay_s
    # greedy SED balances load better than blind random splitting
    assert evals["fixed-threshold-greedy-sed"].mean_delay_s <= evals["random-offloading"].mean_delay_s


def test_make_policy_registry(system):
    assert isinstance(make_policy("dtoee", system, period_s=2.0), DtoeePolicy)
    assert set(BASELINES) < set(POLICIES)
    with pytest.raises(ValueError, match="unknown policy"):
        make_policy("nope", system)


def test_optimize_report_is_json_and_consistent():
    system = random_instance(5, 4, 3)
    report = optimize_report(system, 60)
    text = json.dumps(report)
    assert "gap_definition" in report and len(report["rounds"]) == 60
    assert report["optimum"]["status"] == "optimal"
    gaps = [r["gap"] for r in report["rounds"]]
    assert gaps[-1] == pytest.approx(report["dtoee"]["gap"]) and gaps[-1] <= 0.01
    assert report["dtoee"]["rounds_to_gap"] is not None
    assert set(report["baselines"]) == set(BASELINES)
    assert json.loads(text)["dtoee"]["x"]
