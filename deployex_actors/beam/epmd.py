"""EPMD lookup: which port a node's distribution listens on (PORT_PLEASE2_REQ)."""

from __future__ import annotations

import socket
import struct
from dataclasses import dataclass

from deployex_actors.errors import BeamError, NodeNotFound

EPMD_PORT = 4369
PORT_PLEASE2_REQ = 122
PORT2_RESP = 119
NAMES_REQ = 110


@dataclass(frozen=True)
class NodeAddress:
    name: str
    port: int
    highest_version: int
    lowest_version: int


def _recv_exact(sock: socket.socket, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = sock.recv(size - len(data))
        if not chunk:
            raise BeamError("EPMD closed the connection mid-answer")
        data += chunk
    return data


def _ask(host: str, request: bytes, timeout: float, port: int) -> socket.socket:
    try:
        sock = socket.create_connection((host, port), timeout=timeout)
    except OSError as exc:
        raise NodeNotFound(
            f"EPMD on {host}:{port} is not reachable ({exc.strerror or exc}); "
            "no distributed node runs on that host"
        ) from None
    sock.sendall(struct.pack(">H", len(request)) + request)
    return sock


def lookup(name: str, host: str, timeout: float = 5.0, port: int = EPMD_PORT) -> NodeAddress:
    """The distribution port of node `name@host`; NodeNotFound if EPMD does not know it."""
    sock = _ask(host, bytes([PORT_PLEASE2_REQ]) + name.encode("utf-8"), timeout, port)
    with sock:
        try:
            tag, result = _recv_exact(sock, 2)
            if tag != PORT2_RESP:
                raise BeamError(f"EPMD on {host} answered with unexpected tag {tag}")
            if result != 0:
                raise NodeNotFound(f"node {name}@{host} is not registered with EPMD")
            node_port, _type, _proto, high, low, nlen = struct.unpack(
                ">HBBHHH", _recv_exact(sock, 10)
            )
            registered = _recv_exact(sock, nlen).decode("utf-8", errors="replace")
        except (OSError, ValueError) as exc:
            raise BeamError(f"EPMD on {host}: {exc}") from None
    return NodeAddress(registered, node_port, high, low)


def names(host: str = "127.0.0.1", timeout: float = 5.0, port: int = EPMD_PORT) -> dict[str, int]:
    """Every node registered with EPMD on `host`, name -> port (like `epmd -names`)."""
    sock = _ask(host, bytes([NAMES_REQ]), timeout, port)
    with sock:
        _recv_exact(sock, 4)  # EPMD's own port
        body = b""
        while chunk := sock.recv(4096):
            body += chunk
    found: dict[str, int] = {}
    for line in body.decode("utf-8", errors="replace").splitlines():
        # "name NAME at port PORT"
        parts = line.split()
        if len(parts) == 5 and parts[0] == "name" and parts[3] == "port":
            found[parts[1]] = int(parts[4])
    return found
