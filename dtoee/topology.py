"""The backhaul between edge servers as a graph (NetworkX), and its routes.

:func:`backhaul_graph` builds an undirected :class:`networkx.Graph` from the scenario: one
node per edge server (attribute ``position_m``), one edge per backhaul link (attributes
``rate_bps``, ``delay_s``, ``loss``; the layout plus explicit links, ``backhaul_pairs``).
Everything that needs the backhaul reads it from this graph: the routes installed in ns-3,
the logical links i -> j of the optimizer's system model, the control plane's link-down
bookkeeping.

Routes: the path of least total propagation delay sum(delay_s); among paths of equal delay
the one with the fewest hops, then the one whose first hop has the smallest name, so routes
are deterministic (the ns-3 static routes, the optimizer's path figures and the fault
bookkeeping all agree on the same path).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping

import networkx as nx

from dtoee.config import Scenario, backhaul_pairs


def backhaul_graph(scenario: Scenario) -> nx.Graph:
    """Servers and backhaul links of ``scenario`` as a graph (see the module docstring)."""
    return link_graph({node.name: tuple(node.position_m) for node in scenario.nodes}, backhaul_pairs(scenario))


def link_graph(positions_m: dict[str, tuple[float, float]], links) -> nx.Graph:
    """The graph of servers ``{name: position}`` and ``(a, b, rate_bps, delay_s, loss)`` links."""
    graph = nx.Graph()
    for name, position in positions_m.items():
        graph.add_node(name, position_m=position)
    for a, b, rate_bps, delay_s, loss in links:
        graph.add_edge(a, b, rate_bps=rate_bps, delay_s=delay_s, loss=loss)
    return graph


def first_hops(graph: nx.Graph, source: str) -> dict[str, str]:
    """{target: first hop} of the route from ``source`` to every server it reaches.

    NetworkX's Dijkstra gives every predecessor on a least-delay path (the shortest-path
    DAG); a breadth-first walk over that DAG then picks, per target, the fewest hops and,
    among those, the smallest first-hop name."""
    predecessors, _delay_s = nx.dijkstra_predecessor_and_distance(graph, source, weight="delay_s")
    successors: dict[str, list[str]] = defaultdict(list)
    for node, before in predecessors.items():
        for previous in before:
            successors[previous].append(node)
    best: dict[str, tuple[int, str]] = {source: (0, "")}  # node -> (hops, first hop)
    frontier = [source]
    while frontier:
        layer: dict[str, tuple[int, str]] = {}
        for here in frontier:
            count, first = best[here]
            for there in successors[here]:
                if there not in best:
                    candidate = (count + 1, first or there)
                    layer[there] = min(layer.get(there, candidate), candidate)
        best.update(layer)
        frontier = list(layer)
    return {target: first for target, (_count, first) in best.items() if target != source}


def next_hops(graph: nx.Graph) -> dict[tuple[str, str], str]:
    """The first hop of the route for every ordered pair (source, target) of connected servers."""
    return {(source, target): first for source in graph for target, first in first_hops(graph, source).items()}


class NextHops(Mapping):
    """:func:`next_hops` as a read-only mapping computed one source at a time, when first
    asked: a 1,000-server analytic city routes only between the pairs its tasks use."""

    def __init__(self, graph: nx.Graph) -> None:
        self._graph = graph
        self._by_source: dict[str, dict[str, str]] = {}

    def from_source(self, source: str) -> dict[str, str]:
        """{target: first hop} of the routes from ``source`` (one Dijkstra, the first time)."""
        hops = self._by_source.get(source)
        if hops is None:
            hops = self._by_source[source] = first_hops(self._graph, source) if source in self._graph else {}
        return hops

    def __getitem__(self, key: tuple[str, str]) -> str:
        return self.from_source(key[0])[key[1]]

    def __iter__(self):
        for source in self._graph:
            for target in self.from_source(source):
                yield source, target

    def __len__(self) -> int:
        return sum(len(self.from_source(source)) for source in self._graph)


def route(next_hop: dict[tuple[str, str], str], source: str, target: str) -> list[str]:
    """The servers on the route from ``source`` to ``target``, both included (``[source]``
    when they are the same)."""
    path = [source]
    while path[-1] != target:
        path.append(next_hop[(path[-1], target)])
    return path


def routes(graph: nx.Graph) -> dict[tuple[str, str], list[str]]:
    """The route (list of servers) for every ordered pair of connected servers."""
    next_hop = next_hops(graph)
    return {pair: route(next_hop, *pair) for pair in next_hop}


def path_figures(graph: nx.Graph, path: list[str]) -> tuple[float, float]:
    """(bottleneck rate in bit/s, total propagation delay in s) along ``path``:
    min over its links of rate_bps, and the sum of their delay_s."""
    links = [graph.edges[here, there] for here, there in zip(path, path[1:])]
    return min((link["rate_bps"] for link in links), default=float("inf")), sum(link["delay_s"] for link in links)
