#include "dtoee_glue.h"

#include "ns3/point-to-point-module.h"

#include <algorithm>
#include <cmath>
#include <cstring>

using namespace ns3;

namespace dtoee
{
namespace
{

std::function<void(int64_t)> g_dispatch;

/// One frame still to be written into a TCP socket: the header bytes first, then zeros.
struct OutFrame
{
    uint8_t header[kHeaderBytes];
    uint32_t headerLeft;   // header bytes not yet written
    uint64_t payloadLeft;  // payload bytes not yet written
};

/// Reassembly state of one accepted connection.
struct InStream
{
    uint8_t header[kHeaderBytes];
    uint32_t headerHave = 0;
    uint64_t payloadLeft = 0;
    int64_t msgId = 0;
};

struct Connection
{
    Ptr<Socket> socket;
    std::deque<OutFrame> pending;
    uint64_t backlogBytes = 0;
};

struct Endpoint
{
    Ptr<Node> node;
    Ipv4Address address;
    Ptr<Socket> listener;
    std::map<int32_t, Connection> out;                 // by destination endpoint
    std::map<Socket*, InStream> in;                    // by accepted socket
    std::vector<Ptr<Socket>> accepted;                 // keeps accepted sockets alive
    uint64_t bytesSent = 0;
    uint64_t bytesReceived = 0;
    uint64_t messagesDelivered = 0;
};

std::vector<Endpoint> g_endpoints;
std::vector<Ptr<PcapFileWrapper>> g_pcaps;

void Dispatch(int64_t id)
{
    if (g_dispatch && id >= 0) // negative ids: traffic that no Python code waits for
    {
        g_dispatch(id);
    }
}

void WriteHeader(OutFrame& frame, int64_t msgId, uint32_t payload)
{
    uint32_t magic = kMagic;
    std::memcpy(frame.header, &magic, 4);
    std::memcpy(frame.header + 4, &payload, 4);
    std::memcpy(frame.header + 8, &msgId, 8);
    frame.headerLeft = kHeaderBytes;
    frame.payloadLeft = payload;
}

/// Push as much of the pending frames into the socket as its send buffer takes.
void Pump(int32_t src, int32_t dst)
{
    Endpoint& ep = g_endpoints[src];
    Connection& conn = ep.out[dst];
    while (!conn.pending.empty())
    {
        uint32_t room = conn.socket->GetTxAvailable();
        if (room == 0)
        {
            return; // the send callback calls Pump again when room frees up
        }
        OutFrame& frame = conn.pending.front();
        Ptr<Packet> packet;
        uint32_t n;
        if (frame.headerLeft > 0)
        {
            n = std::min(room, frame.headerLeft);
            packet = Create<Packet>(frame.header + (kHeaderBytes - frame.headerLeft), n);
        }
        else
        {
            n = static_cast<uint32_t>(std::min<uint64_t>(room, frame.payloadLeft));
            packet = Create<Packet>(n); // zero-filled payload of the real size
        }
        int sent = conn.socket->Send(packet);
        if (sent <= 0)
        {
            return;
        }
        ep.bytesSent += sent;
        conn.backlogBytes -= sent;
        if (frame.headerLeft > 0)
        {
            frame.headerLeft -= sent;
        }
        else
        {
            frame.payloadLeft -= sent;
        }
        if (frame.headerLeft == 0 && frame.payloadLeft == 0)
        {
            conn.pending.pop_front();
        }
    }
}

/// Consume bytes of one accepted stream; call Python once per completed frame.
void Consume(int32_t self, InStream& st, const uint8_t* data, uint32_t size)
{
    Endpoint& ep = g_endpoints[self];
    uint32_t pos = 0;
    while (pos < size)
    {
        if (st.headerHave < kHeaderBytes)
        {
            uint32_t n = std::min(size - pos, kHeaderBytes - st.headerHave);
            std::memcpy(st.header + st.headerHave, data + pos, n);
            st.headerHave += n;
            pos += n;
            if (st.headerHave == kHeaderBytes)
            {
                uint32_t magic;
                uint32_t payload;
                std::memcpy(&magic, st.header, 4);
                std::memcpy(&payload, st.header + 4, 4);
                std::memcpy(&st.msgId, st.header + 8, 8);
                NS_ABORT_MSG_IF(magic != kMagic, "dtoee: corrupt frame header on the stream");
                st.payloadLeft = payload;
            }
        }
        else
        {
            uint64_t n = std::min<uint64_t>(size - pos, st.payloadLeft);
            st.payloadLeft -= n;
            pos += static_cast<uint32_t>(n);
        }
        if (st.headerHave == kHeaderBytes && st.payloadLeft == 0)
        {
            st.headerHave = 0;
            ep.messagesDelivered += 1;
            Dispatch(st.msgId);
        }
    }
}

void HandleRead(int32_t self, Ptr<Socket> socket)
{
    Endpoint& ep = g_endpoints[self];
    InStream& st = ep.in[PeekPointer(socket)];
    std::vector<uint8_t> buffer;
    Ptr<Packet> packet;
    while ((packet = socket->Recv()))
    {
        uint32_t size = packet->GetSize();
        if (size == 0)
        {
            break;
        }
        ep.bytesReceived += size;
        buffer.resize(size);
        packet->CopyData(buffer.data(), size);
        Consume(self, st, buffer.data(), size);
    }
}

void HandleAccept(int32_t self, Ptr<Socket> socket, const Address&)
{
    Endpoint& ep = g_endpoints[self];
    ep.accepted.push_back(socket);
    ep.in[PeekPointer(socket)] = InStream{};
    socket->SetRecvCallback(Callback<void, Ptr<Socket>>(
        std::function<void(Ptr<Socket>)>([self](Ptr<Socket> s) { HandleRead(self, s); })));
}

Connection& OpenConnection(int32_t src, int32_t dst)
{
    Endpoint& ep = g_endpoints[src];
    auto it = ep.out.find(dst);
    if (it != ep.out.end())
    {
        return it->second;
    }
    Connection& conn = ep.out[dst];
    conn.socket = Socket::CreateSocket(ep.node, TcpSocketFactory::GetTypeId());
    conn.socket->Bind();
    conn.socket->Connect(InetSocketAddress(g_endpoints[dst].address, kPort));
    conn.socket->SetSendCallback(Callback<void, Ptr<Socket>, uint32_t>(
        std::function<void(Ptr<Socket>, uint32_t)>([src, dst](Ptr<Socket>, uint32_t) { Pump(src, dst); })));
    conn.socket->SetConnectCallback(
        Callback<void, Ptr<Socket>>(std::function<void(Ptr<Socket>)>([src, dst](Ptr<Socket>) { Pump(src, dst); })),
        MakeNullCallback<void, Ptr<Socket>>());
    return conn;
}

bool Valid(int32_t id)
{
    return id >= 0 && static_cast<size_t>(id) < g_endpoints.size();
}

} // namespace

void SetDispatcher(std::function<void(int64_t)> dispatcher)
{
    g_dispatch = std::move(dispatcher);
}

void ScheduleIn(double delay_s, int64_t id)
{
    int64_t ns = std::llround(std::max(0.0, delay_s) * 1e9);
    Simulator::Schedule(NanoSeconds(ns), &Dispatch, id);
}

void EnablePcap(Ptr<NetDevice> device, const std::string& filename)
{
    PcapHelper helper;
    Ptr<PcapFileWrapper> file = helper.CreateFile(filename, std::ios::out, PcapHelper::DLT_PPP);
    helper.HookDefaultSink<PointToPointNetDevice>(DynamicCast<PointToPointNetDevice>(device), "PromiscSniffer", file);
    g_pcaps.push_back(file);
}

void Reset()
{
    for (auto& file : g_pcaps)
    {
        file->Close();
    }
    g_pcaps.clear();
    g_dispatch = nullptr;
    g_endpoints.clear();
}

int32_t RegisterEndpoint(Ptr<Node> node, Ipv4Address address)
{
    int32_t id = static_cast<int32_t>(g_endpoints.size());
    g_endpoints.emplace_back();
    Endpoint& ep = g_endpoints.back();
    ep.node = node;
    ep.address = address;
    ep.listener = Socket::CreateSocket(node, TcpSocketFactory::GetTypeId());
    ep.listener->Bind(InetSocketAddress(Ipv4Address::GetAny(), kPort));
    ep.listener->Listen();
    ep.listener->SetAcceptCallback(
        MakeNullCallback<bool, Ptr<Socket>, const Address&>(),
        Callback<void, Ptr<Socket>, const Address&>(std::function<void(Ptr<Socket>, const Address&)>(
            [id](Ptr<Socket> s, const Address& from) { HandleAccept(id, s, from); })));
    return id;
}

bool SendMessage(int32_t src, int32_t dst, int64_t msg_id, uint64_t payload_bytes)
{
    if (!Valid(src) || !Valid(dst) || payload_bytes > 0xFFFFFFFFull)
    {
        return false;
    }
    Connection& conn = OpenConnection(src, dst);
    OutFrame frame;
    WriteHeader(frame, msg_id, static_cast<uint32_t>(payload_bytes));
    conn.pending.push_back(frame);
    conn.backlogBytes += kHeaderBytes + payload_bytes;
    Pump(src, dst);
    return true;
}

void ScheduleSendAt(double at_s, int32_t src, int32_t dst, uint64_t payload_bytes)
{
    int64_t ns = std::llround(std::max(0.0, at_s - Simulator::Now().GetSeconds()) * 1e9);
    Simulator::Schedule(NanoSeconds(ns), [src, dst, payload_bytes]() { SendMessage(src, dst, -1, payload_bytes); });
}

uint64_t BytesSent(int32_t endpoint)
{
    return Valid(endpoint) ? g_endpoints[endpoint].bytesSent : 0;
}

uint64_t BytesReceived(int32_t endpoint)
{
    return Valid(endpoint) ? g_endpoints[endpoint].bytesReceived : 0;
}

uint64_t MessagesDelivered(int32_t endpoint)
{
    return Valid(endpoint) ? g_endpoints[endpoint].messagesDelivered : 0;
}

uint64_t BacklogBytes(int32_t src, int32_t dst)
{
    if (!Valid(src))
    {
        return 0;
    }
    auto it = g_endpoints[src].out.find(dst);
    return it == g_endpoints[src].out.end() ? 0 : it->second.backlogBytes;
}

} // namespace dtoee
