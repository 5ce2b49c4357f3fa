"""The simulated network: ns-3 LTE/EPC radio access plus a backhaul graph between edge servers.

:class:`Ns3Network` is the one owner object of everything C++ may still point at (nodes,
devices, helpers, the dispatcher callable). It offers the co-simulation four things:

* ``now()`` simulated seconds;
* ``call_later(delay_s, fn)`` run ``fn()`` at ``now() + delay_s`` (one C++ dispatcher);
* ``send(src, dst, payload_bytes, on_delivered)`` move a message reliably over ns-3 TCP
  (framing and reassembly in C++; Python is called once, when all of it has arrived);
* ``run(until_s)``.

Topology (addresses in brackets)::

    UE (7.0.0.x) ~~LTE~~ eNB_i --S1-U-- SGW/PGW --core_i [10.100.i.0/30]-- server_i
                                                    server_i --backhaul [10.200.x.0/30]-- server_j

Each base station i has an eNB and a co-located edge server ``server_i``. UE traffic reaches
its server through the EPC (ns-3's LTE model has no local breakout), so the core link stands
for the short path from the eNB site to its server. Offloads between servers take the
backhaul graph along the shortest path by delay, installed as static host routes.
Endpoints are named ``"node:<name>"`` and ``"ue:<index>"``.
"""

from __future__ import annotations

import itertools
import time
from pathlib import Path
from typing import Callable

from ns3_glue.description import (  # noqa: F401  (re-exported: the endpoint convention and routes)
    NetworkDescription,
    node_endpoint,
    ue_endpoint,
)


class Ns3Network:
    """Builds a :class:`~ns3_glue.description.NetworkDescription` in ns-3 and carries
    messages across it."""

    def __init__(self, description: NetworkDescription, pcap_dir: Path | None = None):
        from ns3_glue.build import load_glue

        self.ns, self.glue = load_glue()
        self.description = description
        self._pending: dict[int, Callable[[], None]] = {}
        self._ids = itertools.count(1)
        self._error: BaseException | None = None
        #: wall time spent in Python callbacks, and how many ran (the co-simulation's own cost)
        self.python_callback_wall_s = 0.0
        self.python_callbacks = 0
        self._endpoint_ids: dict[str, int] = {}
        self._keep: list = []  # every ns-3 object and callable C++ may still point at
        self.server_addresses: dict[str, str] = {}
        self._pcap_devices: list[tuple[str, object]] = []  # (file name, device)
        ns = self.ns
        ns.RngSeedManager.SetSeed(1)
        ns.RngSeedManager.SetRun(description.run_number)
        # Large socket buffers: activations of hundreds of kB go out as one stream write.
        ns.Config.SetDefault("ns3::TcpSocket::SndBufSize", ns.UintegerValue(4 << 20))
        ns.Config.SetDefault("ns3::TcpSocket::RcvBufSize", ns.UintegerValue(4 << 20))
        ns.Config.SetDefault("ns3::TcpSocket::SegmentSize", ns.UintegerValue(1400))
        self._dispatcher = self._dispatch  # one reference for the whole run
        self.glue.SetDispatcher(self._dispatcher)
        self._build(pcap_dir)

    # The co-simulation's four verbs ---------------------------------------------------------
    def now(self) -> float:
        return self.ns.Simulator.Now().GetSeconds()

    def call_later(self, delay_s: float, fn: Callable[[], None]) -> None:
        event_id = next(self._ids)
        self._pending[event_id] = fn
        self.glue.ScheduleIn(float(delay_s), event_id)

    def send(self, src: str, dst: str, payload_bytes: int, on_delivered: Callable[[], None]) -> None:
        """Send ``payload_bytes`` from endpoint ``src`` to ``dst``; ``on_delivered()`` runs when
        the last byte has arrived. Without radio, UE legs are instantaneous."""
        if src.startswith("ue:") or dst.startswith("ue:"):
            if self.description.radio is None:
                self.call_later(0.0, on_delivered)
                return
        message_id = next(self._ids)
        self._pending[message_id] = on_delivered
        if not self.glue.SendMessage(self._endpoint_ids[src], self._endpoint_ids[dst], message_id, int(payload_bytes)):
            raise ValueError(f"cannot send {payload_bytes} B from {src} to {dst}")

    def send_at(self, at_s: float, src: str, dst: str, payload_bytes: int) -> None:
        """Schedule a message at ``at_s`` that no Python code waits for (benchmarks)."""
        self.glue.ScheduleSendAt(float(at_s), self._endpoint_ids[src], self._endpoint_ids[dst], int(payload_bytes))

    def run(self, until_s: float) -> None:
        """Run the simulation to ``until_s``; re-raise the first exception a callback raised."""
        self.ns.Simulator.Stop(self.ns.Seconds(until_s))
        self.ns.Simulator.Run()
        if self._error is not None:
            raise self._error

    def set_link_rate(self, a: str, b: str, rate_bps: float) -> None:
        """Change the data rate of backhaul link a-b (both directions) from now on."""
        devices = self.backhaul_devices[frozenset((a, b))]
        for d in range(2):
            devices.Get(d).SetAttribute("DataRate", self.ns.DataRateValue(self.ns.DataRate(int(rate_bps))))

    def set_link_up(self, a: str, b: str, up: bool) -> None:
        """Take backhaul link a-b down (every packet on it is dropped, both ways) or up again
        (back to its configured loss). Routes stay: a failed link is not routed around,
        as with the static routes of a backhaul without a routing protocol; TCP retransmits
        until it is repaired or the transfer times out."""
        key = frozenset((a, b))
        for model in self.link_error_models[key]:
            model.SetAttribute("ErrorRate", self.ns.DoubleValue(1.0 if not up else self.link_loss[key]))

    def stop_now(self) -> None:
        self.ns.Simulator.Stop()

    def close(self) -> None:
        self.glue.Reset()
        self.ns.Simulator.Destroy()

    def _dispatch(self, event_id: int) -> None:
        # The whole Python side of the event loop: C++ calls this with the id it was given.
        fn = self._pending.pop(event_id, None)
        if fn is None or self._error is not None:
            return
        started = time.perf_counter()
        try:
            fn()
        except BaseException as error:  # surface after Run(), traces intact
            self._error = error
            self.ns.Simulator.Stop()
        finally:
            self.python_callback_wall_s += time.perf_counter() - started
            self.python_callbacks += 1

    # Counters from the C++ side -------------------------------------------------------------
    def bytes_sent(self, endpoint: str) -> int:
        return int(self.glue.BytesSent(self._endpoint_ids[endpoint]))

    def bytes_received(self, endpoint: str) -> int:
        return int(self.glue.BytesReceived(self._endpoint_ids[endpoint]))

    # Building: servers, radio access, backhaul, routes, endpoints, pcap ----------------------
    def _build(self, pcap_dir: Path | None) -> None:
        names = self.description.node_names
        routing = self._build_servers(names)
        if self.description.radio is not None:
            self._build_access(names, routing)
        link_address, link_subnets = self._build_backhaul()
        self._install_routes(names, routing, link_address, link_subnets)
        self._register_endpoints(names)
        if pcap_dir is not None:
            self._enable_pcap(pcap_dir)

    def _build_servers(self, names: list[str]) -> dict:
        """One ns-3 node with an Internet stack per edge server; returns its static routing."""
        ns = self.ns
        servers = ns.NodeContainer()
        servers.Create(len(names))
        internet = ns.InternetStackHelper()
        internet.Install(servers)
        self._keep += [servers, internet]
        self.servers = {name: servers.Get(i) for i, name in enumerate(names)}
        static = ns.Ipv4StaticRoutingHelper()
        self._keep.append(static)
        return {name: static.GetStaticRouting(self.servers[name].GetObject[ns.Ipv4]()) for name in names}

    def _build_access(self, names: list[str], routing: dict) -> None:
        """LTE/EPC plus a core link PGW -- server_i per base station [10.100.i.0/30]."""
        ns, radio = self.ns, self.description.radio
        pgw = self._build_lte(names)
        core = self._p2p(radio.core_rate_bps, radio.core_delay_s, 0.0)
        for i, name in enumerate(names):
            devices = core.Install(pgw, self.servers[name])
            addresses = self._assign(devices, f"10.100.{i}.0")
            self.server_addresses[name] = addresses[1]
            self._pcap_devices += [(f"core_{name}_at_pgw.pcap", devices.Get(0)),
                                   (f"core_{name}_at_{name}.pcap", devices.Get(1))]
            interface = self.servers[name].GetObject[ns.Ipv4]().GetInterfaceForDevice(devices.Get(1))
            routing[name].AddNetworkRouteTo(ns.Ipv4Address("7.0.0.0"), ns.Ipv4Mask("255.0.0.0"), interface)
            if radio.access_loss > 0:
                # ns-3's LTE devices take no error model; the core link carries exactly the
                # UE <-> server packets, so the access-path loss is applied there, both ways.
                for d in range(2):
                    self._add_loss(devices.Get(d), radio.access_loss)
        self._core_helper = core

    def _build_backhaul(self) -> tuple[dict, dict]:
        """Point-to-point links [10.200.x.0/30]; returns (here, there) -> (there's address, my
        interface) and subnet -> (a, b)."""
        ns = self.ns
        link_address: dict[tuple[str, str], tuple[str, int]] = {}
        self._backhaul_helpers = []
        self.backhaul_devices: dict[frozenset, object] = {}
        self.link_loss: dict[frozenset, float] = {}
        self.link_error_models: dict[frozenset, list] = {}
        link_subnets: dict[str, tuple[str, str]] = {}
        for index, link in enumerate(self.description.links):
            a, b = link.a, link.b
            helper = self._p2p(link.rate_bps, link.delay_s, link.loss)
            devices = helper.Install(self.servers[a], self.servers[b])
            key = frozenset((a, b))
            self.link_loss[key], self.link_error_models[key] = link.loss, []
            for d in range(2):  # packet loss (and link failures: rate 1) on receive, both ends
                self.link_error_models[key].append(self._add_loss(devices.Get(d), link.loss))
            subnet = f"10.{200 + index // 256}.{index % 256}.0"
            link_subnets[subnet] = (a, b)
            addresses = self._assign(devices, subnet)
            ipv4_a = self.servers[a].GetObject[ns.Ipv4]()
            ipv4_b = self.servers[b].GetObject[ns.Ipv4]()
            link_address[(a, b)] = (addresses[1], ipv4_a.GetInterfaceForDevice(devices.Get(0)))
            link_address[(b, a)] = (addresses[0], ipv4_b.GetInterfaceForDevice(devices.Get(1)))
            self._backhaul_helpers.append(helper)
            self.backhaul_devices[key] = devices
            self._pcap_devices += [(f"backhaul_{a}-{b}_at_{a}.pcap", devices.Get(0)),
                                   (f"backhaul_{a}-{b}_at_{b}.pcap", devices.Get(1))]
            for name in (a, b):
                self.server_addresses.setdefault(name, addresses[0] if name == a else addresses[1])
        return link_address, link_subnets

    def _install_routes(self, names: list[str], routing: dict, link_address: dict, link_subnets: dict) -> None:
        """Static routes along the shortest backhaul paths: a host route to every other
        server's endpoint address, and a network route to every link subnet that is not
        attached (ns-3 TCP takes the outgoing interface's address as the source, so replies
        must find their way back to backhaul addresses too)."""
        ns = self.ns
        next_hop = self.description.next_hop
        for (source, target), hop in next_hop.items():
            gateway, interface = link_address[(source, hop)]
            routing[source].AddHostRouteTo(
                ns.Ipv4Address(self.server_addresses[target]), ns.Ipv4Address(gateway), interface
            )
        for subnet, (a, b) in link_subnets.items():
            for source in names:
                if source not in (a, b):
                    gateway, interface = link_address[(source, next_hop[(source, a)])]
                    routing[source].AddNetworkRouteTo(
                        ns.Ipv4Address(subnet), ns.Ipv4Mask("255.255.255.252"), ns.Ipv4Address(gateway), interface
                    )

    def _register_endpoints(self, names: list[str]) -> None:
        ns = self.ns
        for name in names:
            if name not in self.server_addresses:
                continue  # a lone server without radio: nothing can reach it, nothing needs to
            self._endpoint_ids[node_endpoint(name)] = self.glue.RegisterEndpoint(
                self.servers[name], ns.Ipv4Address(self.server_addresses[name])
            )
        if self.description.radio is not None:
            for ue in self.description.ues:
                self._endpoint_ids[ue_endpoint(ue.index)] = self.glue.RegisterEndpoint(
                    self.ue_nodes.Get(ue.index), self.ue_addresses[ue.index]
                )

    def _enable_pcap(self, pcap_dir: Path) -> None:
        """One file per device, named after the link and the side it was captured on."""
        pcap_dir.mkdir(parents=True, exist_ok=True)
        for filename, device in self._pcap_devices:
            self.glue.EnablePcap(device, str(pcap_dir / filename))

    def _add_loss(self, device, loss: float):
        """Drop each packet this device receives with probability ``loss`` (ns-3 RateErrorModel)."""
        ns = self.ns
        model = ns.CreateObject[ns.RateErrorModel]()
        model.SetAttribute("ErrorRate", ns.DoubleValue(loss))
        model.SetAttribute("ErrorUnit", ns.StringValue("ERROR_UNIT_PACKET"))
        device.SetAttribute("ReceiveErrorModel", ns.PointerValue(model))
        self._keep.append(model)
        return model

    def _p2p(self, rate_bps: float, delay_s: float, loss: float):
        ns = self.ns
        helper = ns.PointToPointHelper()
        helper.SetDeviceAttribute("DataRate", ns.DataRateValue(ns.DataRate(int(rate_bps))))
        helper.SetDeviceAttribute("Mtu", ns.UintegerValue(1500))
        helper.SetChannelAttribute("Delay", ns.TimeValue(ns.NanoSeconds(int(round(delay_s * 1e9)))))
        self._keep.append(helper)
        return helper

    def _assign(self, devices, base: str) -> list[str]:
        ns = self.ns
        helper = ns.Ipv4AddressHelper()
        helper.SetBase(ns.Ipv4Address(base), ns.Ipv4Mask("255.255.255.252"))
        interfaces = helper.Assign(devices)
        self._keep += [devices, interfaces]
        return [_address_text(interfaces.GetAddress(i)) for i in range(2)]

    def _build_lte(self, names: list[str]):
        ns, radio = self.ns, self.description.radio
        ns.Config.SetDefault("ns3::LteEnbPhy::TxPower", ns.DoubleValue(radio.enb_tx_power_dbm))
        ns.Config.SetDefault("ns3::LteUePhy::TxPower", ns.DoubleValue(radio.ue_tx_power_dbm))
        # With uplink power control (ns-3's default) the PUSCH power is capped by Pcmax, not
        # by LteUePhy::TxPower: without this the UE's transmit power changed nothing.
        ns.Config.SetDefault("ns3::LteUePowerControl::Pcmax", ns.DoubleValue(radio.ue_tx_power_dbm))
        for rlc in ("ns3::LteRlcUm", "ns3::LteRlcAm"):
            ns.Config.SetDefault(f"{rlc}::MaxTxBufferSize", ns.UintegerValue(radio.rlc_buffer_bytes))
        ns.Config.SetDefault("ns3::LteEnbRrc::EpsBearerToRlcMapping",
                             ns.StringValue("RlcAmAlways" if radio.rlc_mode == "am" else "RlcUmAlways"))
        lte = ns.CreateObject[ns.LteHelper]()
        epc = ns.CreateObject[ns.PointToPointEpcHelper]()
        lte.SetEpcHelper(epc)
        lte.SetAttribute("PathlossModel", ns.StringValue(radio.pathloss_type))
        lte.SetSchedulerType(radio.scheduler_type)
        lte.SetEnbDeviceAttribute("DlBandwidth", ns.UintegerValue(radio.bandwidth_rb))
        lte.SetEnbDeviceAttribute("UlBandwidth", ns.UintegerValue(radio.bandwidth_rb))
        lte.SetEnbDeviceAttribute("DlEarfcn", ns.UintegerValue(radio.dl_earfcn))
        lte.SetEnbDeviceAttribute("UlEarfcn", ns.UintegerValue(radio.dl_earfcn + 18000))
        enbs = ns.NodeContainer()
        enbs.Create(len(names))
        ue_nodes = ns.NodeContainer()
        ue_nodes.Create(len(self.description.ues))
        positions = ns.CreateObject[ns.ListPositionAllocator]()
        for node in self.description.nodes:
            positions.Add(ns.Vector(node.position_m[0], node.position_m[1], 30.0))
        for ue in self.description.ues:
            positions.Add(ns.Vector(ue.position_m[0], ue.position_m[1], 1.5))
        mobility = ns.MobilityHelper()
        mobility.SetMobilityModel("ns3::ConstantPositionMobilityModel")
        mobility.SetPositionAllocator(positions)
        mobility.Install(enbs)
        mobility.Install(ue_nodes)
        enb_devices = lte.InstallEnbDevice(enbs)
        ue_devices = lte.InstallUeDevice(ue_nodes)
        internet = ns.InternetStackHelper()
        internet.Install(ue_nodes)
        ue_interfaces = epc.AssignUeIpv4Address(ns.NetDeviceContainer(ue_devices))
        static = ns.Ipv4StaticRoutingHelper()
        self.ue_addresses = {}
        for ue in self.description.ues:
            node = ue_nodes.Get(ue.index)
            static.GetStaticRouting(node.GetObject[ns.Ipv4]()).SetDefaultRoute(epc.GetUeDefaultGatewayAddress(), 1)
            self.ue_addresses[ue.index] = ue_interfaces.GetAddress(ue.index)
            lte.Attach(ue_devices.Get(ue.index), enb_devices.Get(names.index(ue.serving_node)))
        self.ue_nodes = ue_nodes
        self._keep += [lte, epc, enbs, ue_nodes, positions, mobility, enb_devices, ue_devices, internet,
                       ue_interfaces, static]
        self.lte = lte
        return epc.GetPgwNode()


def _address_text(address) -> str:
    import io

    out = io.StringIO()
    # Ipv4Address prints as dotted quad through operator<<; cppyy maps it to str().
    out.write(str(address))
    return out.getvalue()
