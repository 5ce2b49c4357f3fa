// C++ half of ns3_glue: the Python dispatcher and the message transport.
//
// Python is called once per event it scheduled and once per delivered message, never per
// packet. Everything per packet (framing, reassembly, byte counters) happens here.
//
// * Dispatcher: Python sets one std::function<void(int64_t)> with SetDispatcher(). Each
//   ScheduleIn(delay_s, id) later calls it with `id`; Python keeps id -> callable.
// * Transport: RegisterEndpoint(node, addr) gives a node an endpoint id and a listening TCP
//   socket on kPort. SendMessage(src, dst, msg_id, payload_bytes) frames a message
//   (16-byte header + payload_bytes zero bytes) onto a persistent TCP connection src->dst,
//   opened on first use. When the receiver has reassembled all of the frame it calls the
//   dispatcher with msg_id: one Python call per delivered message.
#pragma once

#include "ns3/core-module.h"
#include "ns3/internet-module.h"
#include "ns3/network-module.h"

#include <string>

#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <vector>

namespace dtoee
{

/// Frame header on the wire, little-endian: magic u32 | payload length u32 | msg id i64.
constexpr uint32_t kHeaderBytes = 16;
constexpr uint32_t kMagic = 0xD70EE001;
constexpr uint16_t kPort = 9000;

void SetDispatcher(std::function<void(int64_t)> dispatcher);
/// Schedule a dispatcher call `delay_s` simulated seconds from now (rounded to 1 ns).
void ScheduleIn(double delay_s, int64_t id);
/// Close pcap files, clear the dispatcher and all endpoints (end of a run; C++ must not
/// call Python after this).
void Reset();

/// Capture every packet a point-to-point device sends or receives into `filename` (pcap,
/// DLT_PPP). Unlike PointToPointHelper::EnablePcap, Reset() closes the files, so they are
/// complete even when the process ends with _exit (a forked simulation child does).
void EnablePcap(ns3::Ptr<ns3::NetDevice> device, const std::string& filename);

/// Give `node` an endpoint listening on `address`:kPort; returns its id (0, 1, 2, ...).
int32_t RegisterEndpoint(ns3::Ptr<ns3::Node> node, ns3::Ipv4Address address);
/// Queue a message; returns false when src or dst is unknown.
bool SendMessage(int32_t src, int32_t dst, int64_t msg_id, uint64_t payload_bytes);

/// Send a message at absolute simulated time `at_s` with no Python involved at either end
/// (benchmarks: the same traffic as a co-simulation, without its task logic).
void ScheduleSendAt(double at_s, int32_t src, int32_t dst, uint64_t payload_bytes);

/// Per-endpoint counters, all in bytes or messages of the application stream (TCP payload).
uint64_t BytesSent(int32_t endpoint);
uint64_t BytesReceived(int32_t endpoint);
uint64_t MessagesDelivered(int32_t endpoint);
/// Bytes queued at `src` for `dst` and not yet handed to TCP (backlog behind a full buffer).
uint64_t BacklogBytes(int32_t src, int32_t dst);

} // namespace dtoee
