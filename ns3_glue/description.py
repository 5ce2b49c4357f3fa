"""The plain network description every network implementation is built from.

``dtoee`` builds it from a scenario (``dtoee.network.describe``); ``ns3_glue`` builds ns-3
objects from it and imports nothing from ``dtoee``, ``optimizer`` or ``inference``. It is
plain data: nodes (edge server + co-located base station) with positions, backhaul links
with rates, delays and loss, UEs with positions and serving node, the radio parameters
(``None`` = no radio: UE legs are instantaneous), ns-3's run number and the backhaul
routing table (next hop per pair of servers).

Endpoints are named ``"node:<name>"`` and ``"ue:<index>"`` (:func:`node_endpoint`,
:func:`ue_endpoint`): the one home of that convention.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping


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
    rlc_mode: str = "um"               # "um" or "am": the RLC mode of every bearer
    rlc_buffer_bytes: int = 1 << 20    # RLC transmit buffer per bearer


@dataclass(frozen=True)
class NetworkDescription:
    nodes: tuple[NodeSpec, ...]
    links: tuple[LinkSpec, ...]
    ues: tuple[UeSpec, ...]
    radio: RadioSpec | None
    run_number: int = 1
    #: {(source, target): next server} for every ordered pair of connected servers (built by
    #: the caller; any read-only mapping, e.g. one computed per source when first asked)
    next_hop: Mapping[tuple[str, str], str] = field(default_factory=dict)

    @property
    def node_names(self) -> list[str]:
        return [node.name for node in self.nodes]

    def link_tuples(self) -> list[tuple[str, str, float, float, float]]:
        return [(l.a, l.b, l.rate_bps, l.delay_s, l.loss) for l in self.links]
