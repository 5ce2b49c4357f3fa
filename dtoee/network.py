"""The network a co-simulation runs on: one interface, three implementations.

``simulation.fidelity`` picks the implementation (every one built from the same plain
:class:`~ns3_glue.description.NetworkDescription` that :func:`describe` makes from a
scenario):

* ``packet``: :class:`ns3_glue.network.Ns3Network`: ns-3 LTE/EPC radio and TCP over the
  point-to-point backhaul, packet by packet.
* ``hybrid``: the same ns-3 backhaul, no LTE (no eNB or UE devices, the cost that grows with
  eNBs x UEs); UE legs take a delay drawn from the per-cell radio model
  (:class:`RadioDelayModel`, calibrated by a short packet-level run and cached by the radio
  configuration's hash).
* ``analytic``: :class:`EventNetwork`, a discrete-event simulation in pure Python (an event
  heap; no ns-3): every backhaul direction is a FIFO queue with the link's rate and
  propagation delay, messages move hop by hop along the same shortest-delay routes, UE legs
  from the same radio model.

The co-simulation (:mod:`dtoee.cosim`) sees only ``now``, ``call_later`` and ``send``;
the run loop and the control plane also use ``run``, ``stop_now``, ``close``,
``set_link_rate`` and ``set_link_up`` (:class:`SimulatedNetwork`).
"""

from __future__ import annotations

import hashlib
import heapq
import itertools
import json
import math
import time
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Callable, Protocol

import numpy as np

from dtoee.topology import NextHops, backhaul_graph, link_graph
from ns3_glue.description import (
    LinkSpec,
    NetworkDescription,
    NodeSpec,
    RadioSpec,
    UeSpec,
    node_endpoint,
    ue_endpoint,
)

__all__ = ["Network", "SimulatedNetwork", "UePlacement", "node_endpoint", "ue_endpoint", "describe", "EventNetwork", "RadioDelayModel",
           "make_network", "FIDELITIES"]

FIDELITIES = ("packet", "hybrid", "analytic")

#: Bytes on the wire per TCP segment of 1400 payload bytes: TCP/IP headers (40, + 12 of
#: timestamps option) and the point-to-point header (2). The analytic mode charges them.
SEGMENT_PAYLOAD_BYTES = 1400
SEGMENT_OVERHEAD_BYTES = 54
#: the framing header the C++ glue puts in front of every message
MESSAGE_HEADER_BYTES = 16


@dataclass(frozen=True)
class UePlacement:
    index: int
    position_m: tuple[float, float]
    serving_node: str        # nearest base station: where its tasks enter the system
    rate_per_s: float


def place_ues(scenario, rng: np.random.Generator) -> list[UePlacement]:
    """UE positions (around their group's node, uniform in a disk, or explicit); each UE is
    served by its nearest base station (by the group's node when radio is off)."""
    placements = []
    for group in scenario.ue_groups:
        centre = scenario.node(group.node).position_m
        for n in range(group.count):
            if group.placement == "explicit":
                position = tuple(group.positions_m[n])
            else:
                radius = group.radius_m * math.sqrt(rng.random())
                angle = 2 * math.pi * rng.random()
                position = (centre[0] + radius * math.cos(angle), centre[1] + radius * math.sin(angle))
            if scenario.radio.enabled:
                serving = min(scenario.nodes, key=lambda node: (math.dist(node.position_m, position), node.name)).name
            else:
                serving = group.node
            placements.append(UePlacement(len(placements), position, serving, group.rate_per_s))
    return placements


class Network(Protocol):
    """What the co-simulation (``dtoee/cosim.py``) needs of a network: time, timers, messages,
    and the scenario events' link changes (``CoSimulation.apply_event``)."""

    def now(self) -> float: ...
    def call_later(self, delay_s: float, fn: Callable[[], None]) -> None: ...
    def send(self, src: str, dst: str, payload_bytes: int, on_delivered: Callable[[], None]) -> None: ...
    def set_link_rate(self, a: str, b: str, rate_bps: float) -> None: ...
    def set_link_up(self, a: str, b: str, up: bool) -> None: ...


class SimulatedNetwork(Network, Protocol):
    """A :class:`Network` the runner drives: run to a time, stop early, release it."""

    def run(self, until_s: float) -> None: ...
    def stop_now(self) -> None: ...
    def close(self) -> None: ...


def describe(scenario, ues: list[UePlacement], *, radio: bool | None = None) -> NetworkDescription:
    """The plain description of ``scenario``'s network (``radio=False`` leaves LTE out)."""
    from dtoee.config import PATHLOSS_MODELS, SCHEDULERS, backhaul_pairs
    from dtoee.seeding import ns3_run_number

    config = scenario.radio
    with_radio = config.enabled if radio is None else (radio and config.enabled)
    radio_spec = RadioSpec(
        bandwidth_rb=config.bandwidth_rb, enb_tx_power_dbm=config.enb_tx_power_dbm,
        ue_tx_power_dbm=config.ue_tx_power_dbm, pathloss_type=PATHLOSS_MODELS[config.pathloss_model],
        scheduler_type=SCHEDULERS[config.scheduler], dl_earfcn=config.dl_earfcn, access_loss=config.access_loss,
        core_rate_bps=scenario.backhaul.core_rate_bps, core_delay_s=scenario.backhaul.core_delay_s,
        rlc_mode=config.rlc_mode, rlc_buffer_bytes=config.rlc_buffer_bytes,
    ) if with_radio else None
    return NetworkDescription(
        nodes=tuple(NodeSpec(n.name, tuple(n.position_m)) for n in scenario.nodes),
        links=tuple(LinkSpec(a, b, rate, delay, loss) for a, b, rate, delay, loss in backhaul_pairs(scenario)),
        ues=tuple(UeSpec(u.index, tuple(u.position_m), u.serving_node) for u in ues),
        radio=radio_spec,
        run_number=ns3_run_number(scenario.simulation.seed),
        next_hop=NextHops(backhaul_graph(scenario)),
    )


# ----- the per-cell radio model ----------------------------------------------------------


@dataclass(frozen=True)
class RadioDelayModel:
    """UE legs as delays drawn from what a packet-level run measured, per cell and direction.

    ``uplink_s[cell]`` / ``downlink_s[cell]``: the measured delays of the input's uplink
    (UE -> its serving server, through eNB, EPC and core link) and of the result's return
    (exit server -> core -> EPC -> eNB -> UE) of the UEs that cell serves. A leg draws one
    of them uniformly (the empirical distribution: mean, spread and tail as measured at that
    cell's load and message sizes). A cell with no measurement uses all cells' pooled.
    ``config_hash``: hash of everything the radio legs depend on (:func:`radio_config_hash`).
    """

    uplink_s: dict[str, tuple[float, ...]]
    downlink_s: dict[str, tuple[float, ...]]
    config_hash: str

    def _pool(self, table: dict[str, tuple[float, ...]], cell: str) -> np.ndarray:
        values = table.get(cell) or tuple(v for vs in table.values() for v in vs)
        return np.asarray(values if values else (0.0,), dtype=float)

    @cached_property
    def _pools(self) -> dict[tuple[str, str], np.ndarray]:
        """{(direction, cell): its delays as an array}, filled as legs ask (a draw per UE leg
        must not rebuild the array)."""
        return {}

    def draw(self, direction: str, cell: str, rng: np.random.Generator) -> float:
        values = self._pools.get((direction, cell))
        if values is None:
            values = self._pools[(direction, cell)] = self._pool(
                self.uplink_s if direction == "uplink" else self.downlink_s, cell)
        return float(values[rng.integers(len(values))])

    def mean_s(self, direction: str, cell: str | None = None) -> float:
        table = self.uplink_s if direction == "uplink" else self.downlink_s
        if cell is None:
            values = [v for vs in table.values() for v in vs]
            return float(np.mean(values)) if values else 0.0
        return float(self._pool(table, cell).mean())

    def to_json(self) -> str:
        return json.dumps({"uplink_s": self.uplink_s, "downlink_s": self.downlink_s, "config_hash": self.config_hash})

    @classmethod
    def from_json(cls, text: str) -> "RadioDelayModel":
        data = json.loads(text)
        return cls({k: tuple(v) for k, v in data["uplink_s"].items()},
                   {k: tuple(v) for k, v in data["downlink_s"].items()}, data["config_hash"])

    @classmethod
    def from_hops(cls, hops, ues: list[UePlacement], config_hash: str, *, from_s: float = 0.0) -> "RadioDelayModel":
        """From a packet-level run's ``hops`` frame: uplink and result hops of tasks whose leg
        started at or after ``from_s`` (leaves LTE's attach transient out)."""
        serving = {ue_endpoint(u.index): u.serving_node for u in ues}
        legs = hops[hops["start_s"] >= from_s]
        up, down = {}, {}
        for row in legs[legs["kind"] == "uplink"].itertuples():
            up.setdefault(serving[row.src], []).append(float(row.end_s - row.start_s))
        for row in legs[legs["kind"] == "result"].itertuples():
            down.setdefault(serving[row.dst], []).append(float(row.end_s - row.start_s))
        return cls({k: tuple(v) for k, v in up.items()}, {k: tuple(v) for k, v in down.items()}, config_hash)


#: share of the calibration run left out at its start: LTE's RRC connection set-up holds a
#: UE's first packets for up to ~2 s (measured on paper_comparison), not a steady-state leg
CALIBRATION_SKIP_SHARE = 0.4


def radio_config_hash(scenario) -> str:
    """What the radio legs depend on: radio and core-link settings, base-station positions,
    the UE groups (count, rate, placement), the input and result sizes' source (model), the
    calibration length. Not the policy, the backhaul or the seed."""
    keys = {
        "radio": scenario.radio.model_dump(mode="json"),
        "core": [scenario.backhaul.core_rate_bps, scenario.backhaul.core_delay_s],
        "nodes": [[n.name, list(n.position_m)] for n in scenario.nodes],
        "ue_groups": [g.model_dump(mode="json") for g in scenario.ue_groups],
        "model": [scenario.model.family, scenario.model.large_model, scenario.model.seq_len,
                  scenario.model.train_seed],
        "calibration_s": scenario.simulation.radio_calibration_s,
        "skip_share": CALIBRATION_SKIP_SHARE,
    }
    return hashlib.sha256(json.dumps(keys, sort_keys=True).encode()).hexdigest()[:16]


def _cache_dir() -> Path:
    import os

    return Path(os.environ.get("DTOEE_CACHE", Path.home() / ".cache" / "dtoee")) / "radio"


def cached_radio_model(scenario) -> RadioDelayModel | None:
    """The cached calibration of ``scenario``'s radio, or None (nothing is run)."""
    path = _cache_dir() / f"{radio_config_hash(scenario)}.json"
    return RadioDelayModel.from_json(path.read_text()) if path.exists() else None


def calibrated_radio_model(scenario, run_packet: Callable[[object, str], dict]) -> RadioDelayModel:
    """The radio model for ``scenario``: from the cache, or calibrated now by a packet-level
    run of ``simulation.radio_calibration_s`` simulated seconds of the same scenario (seed 1,
    no events, no faults), legs that start after its first ``CALIBRATION_SKIP_SHARE`` (the
    attach transient). ``run_packet(scenario, out_dir)`` runs it (``dtoee.run.run_isolated``:
    a forked child; passed in, so this module does not import the runner that imports it).
    Legs are assigned to cells by the calibration run's own UE placement (seed 1), not by
    the caller's: a run with another seed places its UEs elsewhere."""
    key = radio_config_hash(scenario)
    path = _cache_dir() / f"{key}.json"
    cached = cached_radio_model(scenario)
    if cached is not None:
        return cached
    import tempfile

    import pandas as pd

    length_s = scenario.simulation.radio_calibration_s
    calibration = scenario.model_copy(update={
        "simulation": scenario.simulation.model_copy(update={
            "fidelity": "packet", "duration_s": length_s, "drain_s": 2.0, "warmup_s": 0.0, "seed": 1,
            "progress": False, "checkpoint_wall_s": 0.0}),
        "events": [], "output": scenario.output.model_copy(update={"pcap": False, "csv": False}),
    })
    with tempfile.TemporaryDirectory(prefix="dtoee-radio-") as tmp:
        run_packet(calibration, tmp)
        hops = pd.read_parquet(Path(tmp) / "hops.parquet")
    from dtoee.seeding import numpy_streams

    placed = place_ues(calibration, numpy_streams(1, sum(g.count for g in calibration.ue_groups))["placement"])
    model = RadioDelayModel.from_hops(hops, placed, key, from_s=CALIBRATION_SKIP_SHARE * length_s)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp_path = path.with_name(f".{path.name}.{id(model)}.tmp")
    tmp_path.write_text(model.to_json())
    tmp_path.replace(path)
    return model


class RadioLegs:
    """Wraps a network without LTE: UE legs take a delay from the radio model (or none
    without radio); server-to-server messages go to the wrapped network."""

    def __init__(self, inner, radio: RadioDelayModel | None, serving: dict[int, str], seed: int) -> None:
        self.inner = inner
        self.radio = radio
        self.serving = serving
        self.rng = np.random.default_rng([seed, 0x7AD10])  # its own stream: others stay as they are
        # called per event: bound here, not looked up through __getattr__ each time
        self.now, self.call_later = inner.now, inner.call_later

    def __getattr__(self, name):
        return getattr(self.inner, name)

    def send(self, src: str, dst: str, payload_bytes: int, on_delivered: Callable[[], None]) -> None:
        if src.startswith("ue:") or dst.startswith("ue:"):
            if self.radio is None:
                self.inner.call_later(0.0, on_delivered)
                return
            direction = "uplink" if src.startswith("ue:") else "downlink"
            cell = self.serving[int((src if direction == "uplink" else dst)[3:])]
            self.inner.call_later(self.radio.draw(direction, cell, self.rng), on_delivered)
            return
        self.inner.send(src, dst, payload_bytes, on_delivered)


# ----- the pure-Python discrete-event network -----------------------------------------------


class _Link:
    """One direction of a backhaul link: a FIFO queue served at ``rate_bps``."""

    __slots__ = ("rate_bps", "delay_s", "up", "free_at_s", "waiting")

    def __init__(self, rate_bps: float, delay_s: float) -> None:
        self.rate_bps, self.delay_s, self.up = rate_bps, delay_s, True
        self.free_at_s = 0.0
        self.waiting: list = []  # messages held while the link is down


def wire_bytes(payload_bytes: int) -> int:
    """Bytes a message puts on a link: payload + framing header, in 1400-byte TCP segments,
    each with its headers."""
    data = payload_bytes + MESSAGE_HEADER_BYTES
    return data + SEGMENT_OVERHEAD_BYTES * max(1, math.ceil(data / SEGMENT_PAYLOAD_BYTES))


class EventNetwork:
    """The ``analytic`` network: a discrete-event simulation with no ns-3.

    Events sit in a heap of ``(time, insertion, fn, args)``; ``run`` pops them in order. A
    message between servers goes hop by hop, each server forwarding it to its next hop towards
    the destination (the same shortest-delay routes as the ns-3 mode's static routes): at
    each hop it waits for the link direction to be free (FIFO), occupies it for
    ``8 wire_bytes / rate_bps`` and arrives ``delay_s`` later (store-and-forward of the whole
    message: a message crossing h hops pays its transmission time h times, where TCP over
    ns-3 pipelines segments). Not modelled: TCP's handshake, slow start and
    acknowledgements, packet loss (TCP would recover it). A link that is down holds its
    queue until it is up again. UE legs: :class:`RadioLegs` around it.

    Cost: one heap event per hop and per timer; routes are looked up per hop (one Dijkstra
    per forwarding server, the first time it forwards), never stored per pair, so a 1,000-server
    city's memory does not grow with the pairs its tasks use.
    """

    def __init__(self, description: NetworkDescription) -> None:
        self.description = description
        self._heap: list = []
        self._seq = itertools.count()
        self._now = 0.0
        self._stop_at = math.inf
        self._stopped = False
        #: the whole loop is Python here: its wall time and event count
        self.python_callback_wall_s = 0.0
        self.python_callbacks = 0
        next_hop = description.next_hop  # NextHops: computed per source when first used
        self._next_hop = next_hop if isinstance(next_hop, NextHops) else NextHops(link_graph(
            {n.name: n.position_m for n in description.nodes},
            [(l.a, l.b, l.rate_bps, l.delay_s, l.loss) for l in description.links]))
        self._links: dict[tuple[str, str], _Link] = {}
        for link in description.links:
            self._links[(link.a, link.b)] = _Link(link.rate_bps, link.delay_s)
            self._links[(link.b, link.a)] = _Link(link.rate_bps, link.delay_s)

    def now(self) -> float:
        return self._now

    def call_later(self, delay_s: float, fn: Callable[[], None]) -> None:
        heapq.heappush(self._heap, (self._now + max(0.0, float(delay_s)), next(self._seq), fn, ()))

    def send(self, src: str, dst: str, payload_bytes: int, on_delivered: Callable[[], None]) -> None:
        if src.startswith("ue:") or dst.startswith("ue:"):
            self.call_later(0.0, on_delivered)  # no radio here; RadioLegs adds it
            return
        self._hop(src[5:], dst[5:], wire_bytes(payload_bytes), on_delivered)

    def _hop(self, here: str, target: str, size: int, on_delivered) -> None:
        """The message is at server ``here``: delivered, or onto the link to its next hop."""
        if here == target:
            return on_delivered()
        there = self._next_hop.from_source(here)[target]
        link = self._links[(here, there)]
        if not link.up:
            link.waiting.append((here, target, size, on_delivered))
            return
        start = link.free_at_s if link.free_at_s > self._now else self._now
        link.free_at_s = start + 8.0 * size / link.rate_bps
        heapq.heappush(self._heap, (link.free_at_s + link.delay_s, next(self._seq), self._hop,
                                    (there, target, size, on_delivered)))

    def run(self, until_s: float) -> None:
        self._stop_at, self._stopped = until_s, False
        heap, pop, events = self._heap, heapq.heappop, 0
        started = time.perf_counter()
        try:
            while heap and not self._stopped:
                if heap[0][0] > until_s:
                    break
                self._now, _seq, fn, args = pop(heap)
                events += 1
                fn(*args)
        finally:
            self.python_callback_wall_s += time.perf_counter() - started
            self.python_callbacks += events
        if not self._stopped:
            self._now = max(self._now, until_s)

    def stop_now(self) -> None:
        self._stopped = True

    def close(self) -> None:
        self._heap.clear()

    def set_link_rate(self, a: str, b: str, rate_bps: float) -> None:
        for key in ((a, b), (b, a)):
            self._links[key].rate_bps = float(rate_bps)

    def set_link_up(self, a: str, b: str, up: bool) -> None:
        for key in ((a, b), (b, a)):
            link = self._links[key]
            link.up = up
            if up:
                waiting, link.waiting = link.waiting, []
                for here, target, size, on_delivered in waiting:
                    self._hop(here, target, size, on_delivered)


def make_network(scenario, ues: list[UePlacement], pcap_dir: Path | None = None, *,
                 run_packet: Callable[[object, str], dict] | None = None):
    """(network, radio model or None) for ``scenario.simulation.fidelity``; ``run_packet``
    calibrates the radio model when the cache has none (:func:`calibrated_radio_model`)."""
    fidelity = scenario.simulation.fidelity
    if fidelity == "packet":
        from ns3_glue.network import Ns3Network

        return Ns3Network(describe(scenario, ues), pcap_dir), None
    radio = calibrated_radio_model(scenario, run_packet) if scenario.radio.enabled else None
    serving = {u.index: u.serving_node for u in ues}
    if fidelity == "hybrid":
        from ns3_glue.network import Ns3Network

        inner = Ns3Network(describe(scenario, ues, radio=False), pcap_dir)
    else:
        inner = EventNetwork(describe(scenario, ues, radio=False))
    return RadioLegs(inner, radio, serving, scenario.simulation.seed), radio
