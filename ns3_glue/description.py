"""The plain network description every network implementation is built from.

``dtoee`` builds it from a scenario (``dtoee.network.describe``); ``ns3_glue`` builds ns-3
objects from it and imports nothing from ``dtoee``, ``optimizer`` or ``inference``. It is
plain data: nodes (edge server + co-located base station) with positions, backhaul links
with rates, delays and loss, UEs with positions and serving node, the radio parameters
(``None`` = no radio: UE legs are instantaneous) and ns-3's run number.

Endpoints are named ``"node:<name>"`` and ``"ue:<index>"`` (:func:`node_endpoint`,
:func:`ue_endpoint`): the one home of that convention.
"""

from __future__ import annotations

import heapq
import math
from dataclasses import dataclass


def node_endpoint(name: str) -> str:
    return f"node:{name}"


def ue_endpoint(index: int) -> str:
    return f"ue:{index}"


@dataclass(frozen=True)
class NodeSpec:
    name: str
    position_m: tuple[float, float]


@dataclass(frozen=True)
class LinkSpec:
    """Backhaul link a-b, both directions: rate, one-way propagation delay, packet loss."""

    a: str
    b: str
    rate_bps: float
    delay_s: float
    loss: float = 0.0


@dataclass(frozen=True)
class UeSpec:
    index: int
    position_m: tuple[float, float]
    serving_node: str


@dataclass(frozen=True)
class RadioSpec:
    """LTE/EPC parameters; ``pathloss_type`` and ``scheduler_type`` are ns-3 TypeId names."""

    bandwidth_rb: int
    enb_tx_power_dbm: float
    ue_tx_power_dbm: float
    pathloss_type: str
    scheduler_type: str
    dl_earfcn: int
    access_loss: float
    core_rate_bps: float
    core_delay_s: float


@dataclass(frozen=True)
class NetworkDescription:
    nodes: tuple[NodeSpec, ...]
    links: tuple[LinkSpec, ...]
    ues: tuple[UeSpec, ...]
    radio: RadioSpec | None
    run_number: int = 1

    @property
    def node_names(self) -> list[str]:
        return [node.name for node in self.nodes]

    def link_tuples(self) -> list[tuple[str, str, float, float, float]]:
        return [(l.a, l.b, l.rate_bps, l.delay_s, l.loss) for l in self.links]


def neighbour_lists(names: list[str], links: list[tuple]) -> dict[str, list[tuple[str, float]]]:
    """{server: [(neighbour, link delay)]} from (a, b, rate_bps, delay_s, loss) tuples."""
    neighbours: dict[str, list[tuple[str, float]]] = {name: [] for name in names}
    for a, b, _rate, delay, _loss in links:
        neighbours[a].append((b, delay))
        neighbours[b].append((a, delay))
    for name in neighbours:
        neighbours[name].sort()
    return neighbours


def next_hops_from(source: str, neighbours: dict[str, list[tuple[str, float]]]) -> dict[str, str]:
    """{target: first hop} on the shortest path by link delay from ``source`` (Dijkstra);
    ties break by hop count, then by name, so routes are deterministic."""
    best: dict[str, tuple[float, int, str]] = {source: (0.0, 0, "")}
    queue = [(0.0, 0, "", source)]
    while queue:
        delay, hops, first, here = heapq.heappop(queue)
        if best.get(here, (math.inf,))[:3] < (delay, hops, first):
            continue
        for other, link_delay in neighbours[here]:
            candidate = (delay + link_delay, hops + 1, first or other)
            if candidate < best.get(other, (math.inf, 0, "")):
                best[other] = candidate
                heapq.heappush(queue, (*candidate, other))
    return {target: first for target, (_d, _h, first) in best.items() if target != source}


def backhaul_routes(names: list[str], links: list[tuple]) -> dict[tuple[str, str], str]:
    """Next hop for every ordered pair (src, dst) of servers, shortest path by link delay.

    ``links``: (a, b, rate_bps, delay_s, loss) tuples. Ties break by hop count, then by
    name, so routes are deterministic.
    """
    neighbours = neighbour_lists(names, links)
    return {(source, target): first for source in names
            for target, first in next_hops_from(source, neighbours).items()}


class LazyRoutes(dict):
    """``backhaul_routes`` computed one source at a time, when first asked (large networks)."""

    def __init__(self, names: list[str], links: list[tuple]) -> None:
        super().__init__()
        self._neighbours = neighbour_lists(names, links)
        self._done: set[str] = set()

    def __missing__(self, key: tuple[str, str]) -> str:
        source = key[0]
        if source in self._done:
            raise KeyError(key)
        self._done.add(source)
        for target, first in next_hops_from(source, self._neighbours).items():
            self[(source, target)] = first
        return self[key]


def route(next_hop: dict[tuple[str, str], str], source: str, target: str) -> list[str]:
    """The servers a message from ``source`` to ``target`` visits, both ends included."""
    path = [source]
    while path[-1] != target:
        path.append(next_hop[(path[-1], target)])
    return path
