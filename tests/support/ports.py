"""Ports for the tests: a free one, and which addresses the servers listen on (from /proc)."""

from __future__ import annotations

import ipaddress
import os
import socket
from pathlib import Path

TCP_LISTEN = "0A"  # the state column of /proc/net/tcp


def free_port() -> int:
    """A loopback port nothing listens on: bound by the OS, then closed again (a server a
    test starts may take it; a client sent there is refused at once)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _address(hex_address: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    """/proc/net/tcp{,6} writes addresses as 32-bit words in host (little-endian) order."""
    raw = bytes.fromhex(hex_address)
    return ipaddress.ip_address(b"".join(raw[i:i + 4][::-1] for i in range(0, len(raw), 4)))


def listening_sockets() -> dict[str, tuple[str, int]]:
    """socket inode -> (address, port) of every listening TCP socket of this network namespace."""
    found = {}
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            if fields[3] == TCP_LISTEN:
                hex_address, hex_port = fields[1].split(":")
                found[fields[9]] = (str(_address(hex_address)), int(hex_port, 16))
    return found


def process_tree(pid: int) -> set[int]:
    """The process and all its descendants."""
    parents = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:
            continue  # exited meanwhile
        parents[int(stat.parent.name)] = int(text.rsplit(")", 1)[1].split()[1])
    tree, frontier = {pid}, [pid]
    while frontier:
        children = [child for child, parent in parents.items() if parent in frontier]
        tree.update(children)
        frontier = children
    return tree


def listening_addresses(pid: int) -> set[tuple[str, int]]:
    sockets = listening_sockets()
    found = set()
    for process in process_tree(pid):
        try:
            descriptors = list(Path(f"/proc/{process}/fd").iterdir())
        except OSError:
            continue
        for descriptor in descriptors:
            try:
                target = os.readlink(descriptor)
            except OSError:
                continue
            if target.startswith("socket:[") and target[8:-1] in sockets:
                found.add(sockets[target[8:-1]])
    return found


def is_loopback(address: str) -> bool:
    ip = ipaddress.ip_address(address)
    mapped = getattr(ip, "ipv4_mapped", None)
    return (mapped or ip).is_loopback
