"""The backhaul graph (NetworkX) and its routes: least delay, then fewest hops, then the
smallest first-hop name; the same routes as the hand-written Dijkstra they replace."""

from __future__ import annotations

import itertools
import json
import random
from pathlib import Path

import networkx as nx
import pytest

from dtoee.config import load_scenario
from dtoee.system_model import logical_links
from dtoee.topology import backhaul_graph, next_hops, path_figures, route, routes

ROOT = Path(__file__).resolve().parents[2]
# Next hops of every shipped scenario as computed by the hand-written Dijkstra in
# ns3_glue/network.py (backhaul_routes) before it was replaced, recorded from that code.
GOLDEN = json.loads((Path(__file__).parent / "data" / "backhaul_next_hops.json").read_text())


@pytest.mark.parametrize("name", sorted(GOLDEN))
def test_routes_of_the_shipped_scenarios_are_unchanged(name):
    hops = next_hops(backhaul_graph(load_scenario(ROOT / "scenarios" / name)))
    assert {f"{a}>{b}": hop for (a, b), hop in hops.items()} == GOLDEN[name]


def test_scenarios_added_since_are_routed_as_an_exhaustive_search_says():
    """Scenarios shipped after the golden file was recorded (no old-code routes to compare
    with) are checked against every simple path instead; the golden ones must all still exist."""
    shipped = sorted(p.name for p in (ROOT / "scenarios").glob("*.toml"))
    assert set(GOLDEN) <= set(shipped)
    for name in sorted(set(shipped) - set(GOLDEN)):
        graph = backhaul_graph(load_scenario(ROOT / "scenarios" / name))
        assert next_hops(graph) == _brute_force(graph), name


def _brute_force(graph: nx.Graph) -> dict[tuple[str, str], str]:
    """Every simple path, ranked by (delay summed from the source, hops, first hop name)."""
    best = {}
    for source, target in itertools.permutations(graph, 2):
        for path in nx.all_simple_paths(graph, source, target):
            delay = 0.0
            for here, there in zip(path, path[1:]):
                delay = delay + graph.edges[here, there]["delay_s"]
            key = (delay, len(path) - 1, path[1])
            if (source, target) not in best or key < best[(source, target)]:
                best[(source, target)] = key
    return {pair: key[2] for pair, key in best.items()}


@pytest.mark.parametrize("seed", range(40))
def test_next_hops_match_an_exhaustive_search_with_many_ties(seed):
    rng = random.Random(seed)
    names = [f"n{i}" for i in rng.sample(range(20), rng.randint(2, 7))]
    graph = nx.Graph()
    graph.add_nodes_from(names)
    for a, b in itertools.combinations(names, 2):
        if rng.random() < 0.5:  # delays from a small set (0 included): equal-delay paths abound
            graph.add_edge(a, b, delay_s=rng.choice([0.0, 0.001, 0.002, 0.003]), rate_bps=1e9)
    assert next_hops(graph) == _brute_force(graph)


def test_route_and_path_figures_on_a_diamond():
    graph = nx.Graph()
    graph.add_edge("a", "b", rate_bps=1e9, delay_s=0.001)
    graph.add_edge("b", "d", rate_bps=1e8, delay_s=0.001)
    graph.add_edge("a", "c", rate_bps=1e9, delay_s=0.001)
    graph.add_edge("c", "d", rate_bps=1e9, delay_s=0.001)
    graph.add_edge("a", "d", rate_bps=1e9, delay_s=0.005)
    hops = next_hops(graph)
    assert route(hops, "a", "d") == ["a", "b", "d"]  # b and c tie on delay and hops: b's name
    assert route(hops, "d", "a") == ["d", "b", "a"]
    assert route(hops, "a", "a") == ["a"]
    assert path_figures(graph, ["a", "b", "d"]) == (1e8, 0.002)
    assert routes(graph)[("c", "b")] == ["c", "a", "b"]  # c-a-b and c-d-b tie: a < d


def test_graph_carries_names_rates_delays_and_logical_links_follow_the_routes():
    sc = load_scenario(ROOT / "scenarios" / "paper_comparison.toml")
    graph = backhaul_graph(sc)
    assert list(graph) == [node.name for node in sc.nodes]
    assert all({"rate_bps", "delay_s", "loss"} <= set(data) for _, _, data in graph.edges(data=True))
    links = logical_links(sc)
    assert set(links) == set(itertools.permutations(graph, 2))
    for (source, target), link in links.items():
        path = nx.shortest_path(graph, source, target, weight="delay_s")
        delay = sum(graph.edges[u, v]["delay_s"] for u, v in zip(path, path[1:]))
        assert link.propagation_s == pytest.approx(delay)  # a least-delay path
        chosen = route(next_hops(graph), source, target)
        assert link.capacity_bytes_per_s * 8 == min(graph.edges[u, v]["rate_bps"] for u, v in zip(chosen, chosen[1:]))
