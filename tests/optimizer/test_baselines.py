import json
import math

import pytest

import numpy as np

from optimizer.baselines import BASELINES
from optimizer.dispatchers import Dispatcher, tuned_threshold
from optimizer.dtoee import DtoeePolicy, invariant_violation
from optimizer.policy import AdaptivePolicy, ControlMessage, NodeMeasurements, Policy, StaticPolicy, TaskDecision, TaskDispatcher
from optimizer.registry import ALIASES, POLICIES, PolicyOptions, build_policy, canonical, make_policy
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
    for name in ("static-load-proportional", "static-greedy-sed", "static-random", "dispatch-sed"):
        policy = make_policy(name, system, threshold=0.6)
        assert policy.threshold(system.hosts[1][0], 1) == 0.6 or system.num_stages == 1
    with pytest.raises(ValueError, match="threshold"):
        make_policy("static-load-proportional", system, threshold=1.5)


def test_no_early_exit_runs_every_stage(system):
    policy = make_policy("static-no-early-exit", system, rounds=50)
    ev = evaluate(system, *strategy_of_policy(system, policy))
    assert ev.exit_distribution[system.num_stages] == pytest.approx(1.0)


def test_random_offloading_is_seeded(system):
    a = strategy_of_policy(system, make_policy("static-random", system, seed=3))
    b = strategy_of_policy(system, make_policy("static-random", system, seed=3))
    c = strategy_of_policy(system, make_policy("static-random", system, seed=4))
    assert a == b and a != c


def test_load_proportional_follows_service_rates(system):
    policy = make_policy("static-load-proportional", system)
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
    assert evals["static-greedy-sed"].mean_delay_s <= evals["static-random"].mean_delay_s


def test_make_policy_registry(system):
    assert isinstance(make_policy("dtoee", system, period_s=2.0), DtoeePolicy)
    assert set(BASELINES) < set(POLICIES)
    with pytest.raises(ValueError, match="unknown policy"):
        make_policy("nope", system)
    # former names build the same policy as the static-* names they stand for
    for alias, name in ALIASES.items():
        assert canonical(alias) == name
    a = strategy_of_policy(system, make_policy("fixed-threshold-greedy-sed", system, threshold=0.7))
    assert a == strategy_of_policy(system, make_policy("static-greedy-sed", system, threshold=0.7))
    # every policy kind a scenario accepts is in the registry (or is the scenario's own table)
    from dtoee.config import POLICY_KINDS

    assert set(POLICY_KINDS) == {"static"} | set(POLICIES) | set(ALIASES)
    # build_policy passes each entry only the options it takes
    options = PolicyOptions(threshold=0.6, seed=2, period_s=0.5, message_bytes=80)
    for name, entry in POLICIES.items():
        if name in ("optimum", "dtoee-converged", "static-no-early-exit", "dispatch-sed-tuned"):
            continue  # slow solvers, covered elsewhere
        policy = build_policy(name, system, options)
        assert isinstance(policy, AdaptivePolicy) == entry.adaptive, name
    assert build_policy("dispatch-jsq", system, options).period_s == 0.5


# ----- per-task dispatchers ------------------------------------------------------------------


def _line_system():
    """bs0 -> {bs0, bs1} for stage 1 (bs1 twice as fast), one more stage at bs1."""
    from optimizer.exit_curves import synthetic_exit_curves
    from optimizer.system import Link, SystemModel

    curves = synthetic_exit_curves(2, np.random.default_rng(0))
    return SystemModel(
        nodes=("bs0", "bs1"), num_stages=2, hosts={1: ("bs0", "bs1"), 2: ("bs1",)},
        external_rate_per_s={"bs0": 10.0, "bs1": 0.0},
        service_rate_per_s={("bs0", 1): 20.0, ("bs1", 1): 40.0, ("bs1", 2): 40.0},
        links={("bs0", "bs1"): Link(capacity_bytes_per_s=1e6, propagation_s=0.01),
               ("bs1", "bs0"): Link(capacity_bytes_per_s=1e6, propagation_s=0.01)},
        transfer_bytes={1: 1000, 2: 1000}, exit_curves=curves, w=0.5, result_bytes=16,
    )


def _report(src, dst, at_s, queue, rates):
    return ControlMessage(src=src, dst=dst, payload={"kind": "state", "at_s": at_s, "tasks_present": queue,
                                                     "rate_per_s": {str(k): v for k, v in rates.items()}})


def _measure(node, now_s, queue=0, rates=None, paths=None):
    return NodeMeasurements(node=node, period_s=1.0, now_s=now_s, tasks_present=queue,
                            service_rate_per_s=rates or {}, link_rate_bps={j: r for j, (r, _) in (paths or {}).items()},
                            link_delay_s={j: d for j, (_, d) in (paths or {}).items()})


def test_sed_dispatcher_picks_the_least_expected_delay_from_reports():
    system = _line_system()
    sed = Dispatcher(system, rule="sed", threshold=0.5, period_s=1.0)
    assert isinstance(sed, TaskDispatcher)
    rng = np.random.default_rng(0)
    # bs1 reports 10 tasks at 40/s: (10 + 1)/40 + 0.01 + 8 kb/8 Mb/s = 0.276 s; bs0 with 2 tasks
    # at 20/s: 3/20 = 0.15 s -> local
    sed.step("bs0", _measure("bs0", 1.0, rates={1: 20.0}, paths={"bs1": (8e6, 0.01)}),
             [_report("bs1", "bs0", 1.0, 10, {1: 40.0, 2: 40.0})])
    assert sed.choose(TaskDecision("bs0", 1, 1000, 1.1, tasks_present=2), rng) == "bs0"
    # bs0 has 6 tasks: 7/20 = 0.35 s > 0.276 s -> bs1
    assert sed.choose(TaskDecision("bs0", 1, 1000, 1.1, tasks_present=6), rng) == "bs1"
    # the sender counts what it sent since the report: 6 sent -> (17/40 + 0.011) = 0.436 > 0.35
    for _ in range(5):
        assert sed.choose(TaskDecision("bs0", 1, 1000, 1.1, tasks_present=10), rng) == "bs1"
    assert sed.choose(TaskDecision("bs0", 1, 1000, 1.2, tasks_present=6), rng) == "bs0"
    # an empty bs1 on the fast path beats bs0 with 1 task: 1/40 + 0.011 = 0.036 < 2/20 ...
    sed.step("bs0", _measure("bs0", 2.0, rates={1: 20.0}, paths={"bs1": (8e6, 0.01)}),
             [_report("bs1", "bs0", 2.0, 0, {1: 40.0, 2: 40.0})])
    assert sed.choose(TaskDecision("bs0", 1, 1000, 2.1, tasks_present=1), rng) == "bs1"
    # ... but not once bs0 measured the path at 100 kb/s: 1/40 + 0.01 + 0.08 = 0.115 > 0.1
    sed.step("bs0", _measure("bs0", 2.0, rates={1: 20.0}, paths={"bs1": (1e5, 0.01)}),
             [_report("bs1", "bs0", 2.0, 0, {1: 40.0, 2: 40.0})])
    assert sed.choose(TaskDecision("bs0", 1, 1000, 2.1, tasks_present=1), rng) == "bs0"
    # shares of the last period's choices are its offload_probabilities
    probs = sed.offload_probabilities("bs0", 1)
    assert sum(probs.values()) == pytest.approx(1.0)
    # exclude (crashed under the task) and a silent host (no report for 3 periods)
    assert sed.choose(TaskDecision("bs0", 1, 1000, 2.2, tasks_present=50, exclude=frozenset({"bs0"})), rng) == "bs1"
    assert sed.choose(TaskDecision("bs0", 1, 1000, 9.0, tasks_present=50), rng) == "bs0"
    assert sed.choose(TaskDecision("bs0", 1, 1000, 9.0, exclude=frozenset({"bs0", "bs1"})), rng) is None


def test_jsq_and_power_of_two_follow_queue_lengths():
    system = _line_system()
    rng = np.random.default_rng(1)
    for rule in ("jsq", "po2"):  # two candidates: power of two compares both, like JSQ
        policy = Dispatcher(system, rule=rule, threshold=0.5)
        policy.step("bs0", _measure("bs0", 1.0), [_report("bs1", "bs0", 1.0, 4, {1: 40.0})])
        assert policy.choose(TaskDecision("bs0", 1, 1000, 1.0, tasks_present=3), rng) == "bs0"
        assert policy.choose(TaskDecision("bs0", 1, 1000, 1.0, tasks_present=5), rng) == "bs1"
    # a malformed or foreign report is ignored
    policy = Dispatcher(system, rule="jsq")
    policy.step("bs0", _measure("bs0", 1.0), [_report("bs1", "bs9", 1.0, 0, {1: 40.0}),
                                               ControlMessage("bs1", "bs0", {"kind": "state", "at_s": "x"})])
    assert policy._reports["bs0"] == {}


def test_state_reports_go_to_every_upstream_sender():
    system = random_instance(9, 6, 3)
    policy = Dispatcher(system, rule="sed", message_bytes=48)
    for j in system.nodes:
        out = policy.step(j, _measure(j, 1.0, queue=3), [])
        expected = {i for k in system.stages_hosted(j) for i in system.senders(j, k)} - {j}
        assert {m.dst for m in out} == expected and all(m.size_bytes == 48 for m in out)
        assert all(m.payload["tasks_present"] == 3 for m in out)


def test_tuned_threshold_is_the_grid_minimum(system):
    best, scores = tuned_threshold(system, grid=np.linspace(0, 1, 11))
    assert scores[best] == min(scores.values())
    for theta in (0.0, 0.5, 1.0):  # no fixed threshold on the grid does better
        for name in ("static-greedy-sed", "static-load-proportional"):
            ev = evaluate(system, *strategy_of_policy(system, make_policy(name, system, threshold=theta)))
            assert ev.objective >= scores[best] - 1e-12
    tuned = make_policy("dispatch-sed-tuned", system)
    assert tuned.threshold_value == tuned_threshold(system)[0]


def test_optimize_report_is_json_and_consistent():
    system = random_instance(5, 4, 3)
    report = optimize_report(system, 60)
    text = json.dumps(report)
    assert "gap_definition" in report and len(report["rounds"]) == 60
    assert report["optimum"]["status"] == "optimal"
    gaps = [r["gap"] for r in report["rounds"]]
    assert gaps[-1] == pytest.approx(report["dtoee"]["gap"]) and gaps[-1] <= 0.01
    assert report["dtoee"]["rounds_to_gap"] is not None
    scored = report["evaluation"]["policies"]
    assert set(scored) == set(BASELINES) | {"optimum", "dtoee"}
    # one scoring function: raw curves for every policy; the hull figure only where optimised
    for name in BASELINES:
        assert scored[name]["hull_model"] is None
    assert scored["optimum"]["gap"] == 0.0
    assert scored["dtoee"]["hull_model"]["objective"] == pytest.approx(report["dtoee"]["objective"])
    assert scored["dtoee"]["objective"] == pytest.approx(report["dtoee"]["curve_evaluation"]["objective"])
    assert json.loads(text)["dtoee"]["x"]
