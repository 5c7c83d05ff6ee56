"""The distribution handshake (protocol version 6, OTP 23+) from the connecting side.

    us -> node   send_name            'N' flags(8) creation(4) nlen(2) name
    node -> us   recv_status          's' "ok" | "ok_simultaneous" | "nok" | "not_allowed" | "alive"
    node -> us   recv_challenge       'N' flags(8) challenge(4) creation(4) nlen(2) name
    us -> node   send_challenge_reply 'r' challenge(4) md5(cookie ++ their challenge)
    node -> us   recv_challenge_ack   'a' md5(cookie ++ our challenge)

Every handshake message is framed with a big-endian length: 2 bytes over TCP, but 4 bytes over
TLS (`inet_tls_dist` runs its handshake in `{packet, 4}` mode; measured on OTP 25).
"""

from __future__ import annotations

import hashlib
import secrets
import socket
import struct
from dataclasses import dataclass

from deployex_actors.errors import HandshakeFailed

# Distribution capability flags (erts dist.hrl).
EXTENDED_REFERENCES = 0x04
DIST_MONITOR = 0x08
FUN_TAGS = 0x10
NEW_FUN_TAGS = 0x80
EXTENDED_PIDS_PORTS = 0x100
EXPORT_PTR_TAG = 0x200
BIT_BINARIES = 0x400
NEW_FLOATS = 0x800
UTF8_ATOMS = 0x10000
MAP_TAG = 0x20000
BIG_CREATION = 0x40000
HANDSHAKE_23 = 0x1000000
UNLINK_ID = 0x2000000
MANDATORY_25_DIGEST = 0x4000000
V4_NC = 0x04 << 32

# What a hidden node that only makes rpc calls needs; no DFLAG_PUBLISHED, so it stays hidden.
OUR_FLAGS = (
    EXTENDED_REFERENCES
    | DIST_MONITOR
    | FUN_TAGS
    | NEW_FUN_TAGS
    | EXTENDED_PIDS_PORTS
    | EXPORT_PTR_TAG
    | BIT_BINARIES
    | NEW_FLOATS
    | UTF8_ATOMS
    | MAP_TAG
    | BIG_CREATION
    | HANDSHAKE_23
    | UNLINK_ID
    | MANDATORY_25_DIGEST
    | V4_NC
)


@dataclass(frozen=True)
class Peer:
    name: str
    flags: int
    creation: int


def digest(cookie: str, challenge: int) -> bytes:
    return hashlib.md5(f"{cookie}{challenge}".encode(), usedforsecurity=False).digest()


def _recv_exact(sock: socket.socket, size: int, node: str, step: str) -> bytes:
    data = b""
    while len(data) < size:
        try:
            chunk = sock.recv(size - len(data))
        except TimeoutError:
            raise HandshakeFailed(f"node {node} did not answer the handshake ({step})") from None
        except OSError as exc:
            raise HandshakeFailed(f"handshake with {node} failed at {step}: {exc}") from None
        if not chunk:
            raise _closed(node, step)
        data += chunk
    return data


def _closed(node: str, step: str) -> HandshakeFailed:
    if step == "challenge ack":
        return HandshakeFailed(
            f"node {node} refused the connection after the challenge: wrong cookie"
        )
    return HandshakeFailed(f"node {node} closed the connection during the handshake ({step})")


class _Framing:
    def __init__(self, sock: socket.socket, node: str, tls: bool) -> None:
        self.sock, self.node = sock, node
        self.length = struct.Struct(">I" if tls else ">H")

    def recv(self, step: str) -> bytes:
        (size,) = self.length.unpack(_recv_exact(self.sock, self.length.size, self.node, step))
        return _recv_exact(self.sock, size, self.node, step)

    def send(self, body: bytes) -> None:
        self.sock.sendall(self.length.pack(len(body)) + body)


def handshake(
    sock: socket.socket, our_name: str, cookie: str, node: str, creation: int, *, tls: bool = False
) -> Peer:
    """Authenticate `sock` (connected to `node`) with the cookie; HandshakeFailed on refusal."""
    wire = _Framing(sock, node, tls)
    name = our_name.encode("utf-8")
    wire.send(b"N" + struct.pack(">QIH", OUR_FLAGS, creation, len(name)) + name)

    status = wire.recv("status")
    if status[:1] != b"s":
        raise HandshakeFailed(f"node {node} sent an unexpected handshake status {status[:20]!r}")
    text = status[1:].decode("utf-8", errors="replace")
    if text == "alive":
        # An older connection under our name is still registered: tell the node to replace it.
        wire.send(b"strue")
    elif text not in ("ok", "ok_simultaneous"):
        raise HandshakeFailed(f"node {node} refused the connection: {text}")

    challenge_msg = wire.recv("challenge")
    if challenge_msg[:1] != b"N" or len(challenge_msg) < 19:
        raise HandshakeFailed(f"node {node} does not speak distribution version 6 (OTP 23+)")
    flags, challenge, peer_creation, nlen = struct.unpack(">QIIH", challenge_msg[1:19])
    peer_name = challenge_msg[19 : 19 + nlen].decode("utf-8", errors="replace")
    if peer_name != node:
        raise HandshakeFailed(f"expected node {node}, but {peer_name} answered on its port")

    ours = secrets.randbits(32)
    wire.send(b"r" + struct.pack(">I", ours) + digest(cookie, challenge))
    ack = wire.recv("challenge ack")
    if ack[:1] != b"a" or ack[1:17] != digest(cookie, ours):
        raise HandshakeFailed(f"node {node} does not share our cookie (its answer did not match)")
    return Peer(peer_name, flags, peer_creation)
