import math
from dataclasses import replace

import numpy as np
import pytest

from optimizer.exit_curves import ExitCurveData, correct_share_at, exit_share_at
from optimizer.system import (
    Link,
    SystemModel,
    evaluate,
    evaluate_exit_shares,
    random_instance,
)


def curve(stage, top=0.9, final=0.6):
    thresholds = np.linspace(0, 1, 11)
    share = 1 - thresholds
    correct = top * share - (top - (2 * final - top)) * share**2 / 2
    acc = np.where(share > 0, correct / np.maximum(share, 1e-12), top)
    return ExitCurveData(stage, thresholds, share, acc)


def single_node(lam=3.0, mu=5.0, stages=1, mus=None, w=0.5):
    mus = mus or {k: mu for k in range(1, stages + 1)}
    return SystemModel(
        nodes=("a",),
        num_stages=stages,
        hosts={k: ("a",) for k in range(1, stages + 1)},
        external_rate_per_s={"a": lam},
        service_rate_per_s={("a", k): mus[k] for k in range(1, stages + 1)},
        links={},
        transfer_bytes={k: 1000.0 for k in range(1, stages + 1)},
        exit_curves={k: curve(k, final=0.5 + 0.1 * k) for k in range(1, stages + 1)},
        w=w,
    )


def test_single_mm1_node_matches_closed_form():
    system = single_node(lam=3.0, mu=5.0)
    ev = evaluate(system, {("a", 1): {"a": 1.0}}, {})
    assert ev.mean_delay_s == pytest.approx(1 / (5.0 - 3.0))
    assert ev.accuracy == pytest.approx(system.exit_curves[1].full_correct_share)
    assert ev.objective == pytest.approx(ev.mean_delay_s - 0.5 * ev.accuracy)
    assert ev.rho["a"] == pytest.approx(0.6)
    assert ev.feasible


def test_two_stages_on_one_shared_server():
    lam, mu1, mu2, theta = 2.0, 10.0, 6.0, 0.3
    system = single_node(lam=lam, stages=2, mus={1: mu1, 2: mu2})
    c1 = system.exit_curves[1]
    e = exit_share_at(c1, theta)
    ev = evaluate(system, {("a", 1): {"a": 1.0}, ("a", 2): {"a": 1.0}}, {("a", 1): theta, ("a", 2): 0.0})
    rho = lam / mu1 + lam * (1 - e) / mu2
    assert ev.rho["a"] == pytest.approx(rho)
    assert ev.mean_delay_s == pytest.approx(rho / (1 - rho) / lam)
    expected_acc = correct_share_at(c1, theta) + (1 - e) * system.exit_curves[2].full_correct_share
    assert ev.accuracy == pytest.approx(expected_acc)
    assert ev.exit_distribution[1] == pytest.approx(e)


def two_nodes(lam=4.0, mu=10.0, capacity=1e6, prop=0.002, b=50_000.0, local=False):
    hosts = ("a", "b") if local else ("b",)
    return SystemModel(
        nodes=("a", "b"),
        num_stages=1,
        hosts={1: hosts},
        external_rate_per_s={"a": lam},
        service_rate_per_s={(h, 1): mu for h in hosts},
        links={("a", "b"): Link(capacity, prop)},
        transfer_bytes={1: b},
        exit_curves={1: curve(1)},
        result_delay_s=0.01,
    )


def test_offloading_over_a_link_matches_closed_form():
    lam, mu, cap, prop, b = 4.0, 10.0, 1e6, 0.002, 50_000.0
    system = two_nodes(lam, mu, cap, prop, b)
    ev = evaluate(system, {("a", 1): {"b": 1.0}}, {})
    u = lam * b / cap
    expected = 1 / (mu - lam) + (b / cap) / (1 - u) + prop + 0.01
    assert ev.mean_delay_s == pytest.approx(expected)
    assert ev.link_utilisation[("a", "b")] == pytest.approx(u)


def test_split_between_local_and_remote():
    lam, mu, cap, prop, b = 6.0, 10.0, 1e6, 0.002, 50_000.0
    system = two_nodes(lam, mu, cap, prop, b, local=True)
    ev = evaluate(system, {("a", 1): {"a": 0.5, "b": 0.5}}, {})
    half = lam / 2
    u = half * b / cap
    total = (half / mu) / (1 - half / mu) * 2 + u / (1 - u) + prop * half
    assert ev.mean_delay_s == pytest.approx(total / lam + 0.01)


def test_overload_is_infeasible_with_infinite_delay():
    system = single_node(lam=6.0, mu=5.0)
    ev = evaluate(system, {("a", 1): {"a": 1.0}}, {})
    assert not ev.feasible and math.isinf(ev.mean_delay_s) and math.isinf(ev.objective)


@pytest.mark.parametrize(
    "change, word",
    [
        (dict(nodes=("a", "a")), "nodes"),
        (dict(num_stages=0), "num_stages"),
        (dict(hosts={1: ("zz",)}), "hosts"),
        (dict(external_rate_per_s={"a": -1.0}), "external_rate_per_s"),
        (dict(external_rate_per_s={"a": 0.0}), "external_rate_per_s"),
        (dict(service_rate_per_s={("a", 1): 0.0}), "service_rate_per_s"),
        (dict(service_rate_per_s={}), "service_rate_per_s"),
        (dict(links={("a", "a"): Link(1.0)}), "links"),
        (dict(transfer_bytes={1: -5.0}), "transfer_bytes"),
        (dict(exit_curves={}), "exit_curves"),
        (dict(w=-1.0), "w"),
    ],
)
def test_bad_system_raises_value_error_naming_the_field(change, word):
    with pytest.raises(ValueError, match=word):
        replace(single_node(), **change)


def test_unreachable_host_is_rejected():
    with pytest.raises(ValueError, match="no stage-1 host"):
        replace(two_nodes(), links={})


def test_bad_links_and_strategies_raise():
    with pytest.raises(ValueError, match="capacity"):
        Link(0.0)
    system = single_node()
    with pytest.raises(ValueError, match="sum to 1"):
        evaluate(system, {("a", 1): {"a": 0.5}}, {})
    with pytest.raises(ValueError, match="allowed hosts"):
        evaluate(two_nodes(), {("a", 1): {"a": 1.0}}, {})
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        evaluate(single_node(stages=2), {("a", 1): {"a": 1.0}, ("a", 2): {"a": 1.0}}, {("a", 1): 1.5})


def test_random_instances_are_seeded_feasible_and_heterogeneous():
    a = random_instance(7, 6, 3)
    b = random_instance(7, 6, 3)
    assert a.service_rate_per_s == b.service_rate_per_s and a.external_rate_per_s == b.external_rate_per_s
    assert random_instance(8, 6, 3).external_rate_per_s != a.external_rate_per_s
    speeds = [a.service_rate_per_s[(j, 1)] for j in a.hosts[1]]
    assert len(set(speeds)) == len(speeds)


def test_curve_and_hull_evaluations_agree_on_concave_curves():
    system = random_instance(3, 5, 3)
    x = {key: {j: 1.0 / len(system.targets(*key)) for j in system.targets(*key)} for key in system.decision_keys()}
    theta = {(j, k): 0.7 for k in system.hosts for j in system.hosts[k]}
    shares = {key: exit_share_at(system.exit_curves[key[1]], t) for key, t in theta.items()}
    a = evaluate(system, x, theta)
    b = evaluate_exit_shares(system, x, shares)
    assert a.objective == pytest.approx(b.objective, rel=1e-9)
