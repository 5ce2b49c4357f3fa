"""Read the pcap files ns-3 writes (point-to-point devices: DLT_PPP) into a table of IPv4
packets, without third-party packet libraries.
"""

from __future__ import annotations

import struct
from pathlib import Path

import pandas as pd

DLT_PPP = 9
PPP_IPV4 = 0x0021


def read_pcap(path: str | Path) -> pd.DataFrame:
    """One row per IPv4 packet: time_s, src, dst, protocol, ip_bytes, payload_bytes
    (TCP/UDP payload after the transport header), tcp_flags."""
    data = Path(path).read_bytes()
    if len(data) < 24:
        raise ValueError(f"{path}: not a pcap file (too short)")
    magic = struct.unpack("<I", data[:4])[0]
    endian = "<" if magic in (0xA1B2C3D4, 0xA1B23C4D) else ">"
    nano = magic in (0xA1B23C4D, 0x4D3CB2A1)
    linktype = struct.unpack(endian + "I", data[20:24])[0]
    rows = []
    offset = 24
    while offset + 16 <= len(data):
        seconds, fraction, captured, _original = struct.unpack(endian + "IIII", data[offset : offset + 16])
        offset += 16
        frame = data[offset : offset + captured]
        offset += captured
        if linktype == DLT_PPP:
            if len(frame) < 2 or struct.unpack(">H", frame[:2])[0] != PPP_IPV4:
                continue
            ip = frame[2:]
        else:
            ip = frame
        if len(ip) < 20 or ip[0] >> 4 != 4:
            continue
        header_bytes = (ip[0] & 0x0F) * 4
        total = struct.unpack(">H", ip[2:4])[0]
        protocol = ip[9]
        transport = ip[header_bytes:]
        flags = 0
        if protocol == 6 and len(transport) >= 20:
            payload = total - header_bytes - (transport[12] >> 4) * 4
            flags = transport[13]
        elif protocol == 17:
            payload = total - header_bytes - 8
        else:
            payload = total - header_bytes
        rows.append((seconds + fraction * (1e-9 if nano else 1e-6), _ip(ip[12:16]), _ip(ip[16:20]),
                     protocol, total, payload, flags))
    return pd.DataFrame(rows, columns=["time_s", "src", "dst", "protocol", "ip_bytes", "payload_bytes", "tcp_flags"])


def _ip(raw: bytes) -> str:
    return ".".join(str(b) for b in raw)
