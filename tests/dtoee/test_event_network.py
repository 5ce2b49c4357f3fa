"""The analytic mode's pure-Python network: FIFO links with rate and propagation delay,
hop-by-hop routing, link failures; and the layering (ns3_glue imports nothing of ours)."""

from __future__ import annotations

import ast
from pathlib import Path

import numpy as np
import pytest

from dtoee.network import EventNetwork, wire_bytes
from dtoee.topology import NextHops, link_graph
from ns3_glue.description import LinkSpec, NetworkDescription, NodeSpec

ROOT = Path(__file__).resolve().parents[2]


def _line(rate_bps=8e6, delay_s=0.001) -> EventNetwork:
    nodes = tuple(NodeSpec(n, (0.0, 0.0)) for n in ("a", "b", "c"))
    links = (LinkSpec("a", "b", rate_bps, delay_s), LinkSpec("b", "c", rate_bps, delay_s))
    graph = link_graph({n.name: n.position_m for n in nodes}, [(l.a, l.b, l.rate_bps, l.delay_s, l.loss) for l in links])
    return EventNetwork(NetworkDescription(nodes, links, (), None, next_hop=NextHops(graph)))


def test_one_message_pays_transmission_and_propagation_per_hop():
    net = _line()
    arrived = []
    net.send("node:a", "node:c", 10_000, lambda: arrived.append(net.now()))
    net.run(1.0)
    per_hop = 8 * wire_bytes(10_000) / 8e6 + 0.001
    assert arrived == [pytest.approx(2 * per_hop)]
    assert wire_bytes(10_000) == 10_016 + 54 * 8  # 8 segments of <= 1400 B, 54 B of headers each


def test_link_is_a_fifo_queue():
    net = _line()
    arrived = []
    for tag in range(3):
        net.send("node:a", "node:b", 100_000, lambda t=tag: arrived.append((t, net.now())))
    net.run(1.0)
    service = 8 * wire_bytes(100_000) / 8e6
    assert [t for t, _ in arrived] == [0, 1, 2]
    assert [s for _, s in arrived] == pytest.approx([service + 0.001, 2 * service + 0.001, 3 * service + 0.001])
    # the reverse direction is a separate queue
    back = []
    net.send("node:b", "node:a", 100_000, lambda: back.append(net.now()))
    net.run(2.0)
    assert back == [pytest.approx(1.0 + service + 0.001)]


def test_a_down_link_holds_messages_until_it_is_up():
    net = _line()
    arrived = []
    net.set_link_up("a", "b", False)
    net.send("node:a", "node:b", 1000, lambda: arrived.append(net.now()))
    net.call_later(0.5, lambda: net.set_link_up("a", "b", True))
    net.run(1.0)
    assert arrived == [pytest.approx(0.5 + 8 * wire_bytes(1000) / 8e6 + 0.001)]


def test_events_run_in_time_order_and_stop_at_the_horizon():
    net = _line()
    seen = []
    for at in (0.3, 0.1, 0.2, 0.1, 5.0):
        net.call_later(at, lambda at=at: seen.append(at))
    net.run(1.0)
    assert seen == [0.1, 0.1, 0.2, 0.3] and net.now() == 1.0
    net.run(6.0)
    assert seen[-1] == 5.0


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


def test_ns3_glue_imports_nothing_from_dtoee_optimizer_or_inference():
    for path in (ROOT / "ns3_glue").glob("*.py"):
        assert not _imports(path) & {"dtoee", "optimizer", "inference"}, path


def test_the_cosimulation_depends_on_the_network_protocol_only():
    assert "ns3_glue" not in _imports(ROOT / "dtoee" / "cosim.py")
    source = (ROOT / "dtoee" / "control.py").read_text()
    assert "ns3_glue.network" not in source


def test_radio_model_from_hops_per_cell_and_direction():
    import numpy as np
    import pandas as pd

    from dtoee.network import RadioDelayModel, RadioLegs, UePlacement

    ues = [UePlacement(0, (0.0, 0.0), "a", 1.0), UePlacement(1, (0.0, 0.0), "b", 1.0)]
    hops = pd.DataFrame({
        "kind": ["uplink", "uplink", "uplink", "result", "result", "offload"],
        "src": ["ue:0", "ue:0", "ue:1", "node:b", "node:a", "node:a"],
        "dst": ["node:a", "node:a", "node:b", "ue:0", "ue:1", "node:b"],
        "start_s": [0.5, 2.0, 3.0, 4.0, 5.0, 6.0],
        "end_s": [2.5, 2.010, 3.020, 4.004, 5.006, 6.1],
    })
    model = RadioDelayModel.from_hops(hops, ues, "h", from_s=1.0)  # the 2 s attach leg is left out
    assert model.uplink_s == {"a": (pytest.approx(0.010),), "b": (pytest.approx(0.020),)}
    # the result's cell is the receiving UE's serving cell, wherever the result came from
    assert model.downlink_s == {"a": (pytest.approx(0.004),), "b": (pytest.approx(0.006),)}
    assert RadioDelayModel.from_json(model.to_json()) == model
    assert model.mean_s("uplink") == pytest.approx(0.015)
    assert model.draw("uplink", "unknown-cell", np.random.default_rng(0)) in (pytest.approx(0.010), pytest.approx(0.020))
    # wrapped around a network: UE legs take the model's delay, server legs go through
    net = _line()
    legs = RadioLegs(net, model, {0: "a", 1: "b"}, seed=1)
    times = []
    legs.send("ue:1", "node:b", 100, lambda: times.append(net.now()))
    legs.send("node:a", "ue:0", 100, lambda: times.append(net.now()))
    net.run(1.0)
    assert sorted(times) == [pytest.approx(0.004), pytest.approx(0.020)]


def test_radio_hash_ignores_policy_and_seed_but_not_radio_or_ues():
    from dtoee.config import load_scenario
    from dtoee.network import radio_config_hash

    path = ROOT / "scenarios" / "city_small.toml"
    base = radio_config_hash(load_scenario(path))
    assert radio_config_hash(load_scenario(path, ["policy.kind=no-early-exit", "simulation.seed=9"])) == base
    assert radio_config_hash(load_scenario(path, ["radio.bandwidth_rb=50"])) != base
    assert radio_config_hash(load_scenario(path, ["ue_groups.0.count=5"])) != base


def test_routing_cdf_draws_what_generator_choice_draws():
    """The cached routing cdf picks, for the same stream, the host numpy's choice(p=) picks."""
    from dtoee.cosim import routing_cdf

    for trial in range(30):
        shape = np.random.default_rng(trial)
        n = int(shape.integers(1, 400))
        weights = shape.random(n) * (shape.random(n) > 0.3)
        weights[0] += 1e-9
        probabilities = {f"h{i}": float(w) for i, w in enumerate(weights)}
        hosts, cdf = routing_cdf(probabilities)
        a, b = np.random.default_rng([trial, 1]), np.random.default_rng([trial, 1])
        p = weights / weights.sum()
        for _ in range(200):
            assert hosts[int(cdf.searchsorted(a.random(), side="right"))] == f"h{b.choice(n, p=p)}"
    assert routing_cdf({})[0] == [] and routing_cdf({"a": 0.0})[0] == []


def test_routing_cache_follows_probabilities_changed_in_place():
    """A policy that updates its dict in place gets the new split, not the cached one."""
    from dtoee.cosim import CoSimulation

    cosim = CoSimulation.__new__(CoSimulation)  # only the sampler cache is exercised
    cosim._samplers = {}
    split = {"a": 1.0, "b": 0.0}
    assert cosim._sampler("x", 1, split)[1][0] == 1.0
    split["a"], split["b"] = 0.0, 1.0
    hosts, cdf = cosim._sampler("x", 1, split)
    assert hosts[int(cdf.searchsorted(0.5, side="right"))] == "b"
