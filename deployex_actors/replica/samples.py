"""The sample channel: Monitors send their replica's readings to the Watchdog as datagrams.

A thespian message costs one to two milliseconds of CPU (pickle, a TCP exchange); a reading
every second from every replica is the hottest path of an idle DeployEx. So readings travel as
small datagrams on a UNIX socket in `var_path` (see the catalog), which the Watchdog watches
like any other descriptor. A Monitor's readings are packed (`ReadingPacker`: one struct.pack,
where json.dumps took ~0.3 ms of CPU per sample on a busy host); other messages are JSON. The
socket is a file in DeployEx's private folder, so no other user can send to it or take its name
(an abstract socket would let anyone do both). A reading sent while the Watchdog is restarting
is simply lost: a gap.

Any process of the actor system also reports here how many unauthenticated frames it dropped
(see `actors.wire`): the Watchdog counts, logs and journals them.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import select
import socket
import struct
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from deployex_actors.core.metrics import REPLICA_KEYS

MAX_DATAGRAM = 65536
SEND_TIMEOUT_S = 0.25
MAX_SOCKET_PATH = 100  # sun_path holds 108 bytes; longer folders are reached through an fd


@contextlib.contextmanager
def _reachable(path: Path) -> Iterator[str]:
    """A name for `path` that fits in sun_path, however deep its folder is."""
    if len(os.fsencode(path)) < MAX_SOCKET_PATH:
        yield str(path)
        return
    folder = os.open(path.parent, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        yield f"/proc/self/fd/{folder}/{path.name}"
    finally:
        os.close(folder)


@dataclass(frozen=True)
class Reading:
    app: str
    sname: str
    at: float
    values: dict[str, float | None]
    ready_after_s: float


# A packed reading: b"R", then at, ready_after_s, the integer values of REPLICA_KEYS (-1: a
# gap), cpu_percent (NaN: a gap), the byte lengths of app and sname, then app and sname.
PACKED = b"R"  # JSON datagrams start with "{"
_INTEGER_KEYS, _FLOAT_KEY = REPLICA_KEYS[:-1], REPLICA_KEYS[-1]
_LAYOUT = struct.Struct(f"<dd{len(_INTEGER_KEYS)}qdHH")


class ReadingPacker:
    """Readings of one replica as packed datagrams; values come in REPLICA_KEYS order."""

    def __init__(self, app: str, sname: str, ready_after_s: float) -> None:
        self._app, self._sname = app.encode(), sname.encode()
        self._ready_after_s = ready_after_s

    def pack(self, at: float, values: Sequence[float | None]) -> bytes:
        *integers, cpu = values
        numbers = [v if type(v) is int and v >= 0 else -1 for v in integers]
        numbers.append(math.nan if cpu is None else cpu)
        head = _LAYOUT.pack(at, self._ready_after_s, *numbers, len(self._app), len(self._sname))
        return b"".join((PACKED, head, self._app, self._sname))


def unpack_reading(data: bytes) -> Reading:
    at, ready_after_s, *numbers = _LAYOUT.unpack_from(data, 1)
    *integers, cpu, app_size, sname_size = numbers
    values: dict[str, float | None] = {
        key: None if value < 0 else value
        for key, value in zip(_INTEGER_KEYS, integers, strict=True)
    }
    values[_FLOAT_KEY] = None if math.isnan(cpu) else cpu
    names = data[1 + _LAYOUT.size :]
    if len(names) != app_size + sname_size:
        raise ValueError("a packed reading of the wrong size")
    app, sname = names[:app_size].decode(), names[app_size:].decode()
    return Reading(app, sname, at, values, ready_after_s)


@dataclass(frozen=True)
class RejectedFrames:
    """Process `pid` has dropped `total` unauthenticated frames since it started."""

    pid: int
    total: int
    at: float


class Sender:
    """`timeout`: how long a send may wait for room; 0 never waits (drops instead)."""

    def __init__(self, path: Path, timeout: float = SEND_TIMEOUT_S) -> None:
        self._path = path
        self._timeout = timeout
        self._socket: socket.socket | None = None

    def _connected(self) -> socket.socket:
        if self._socket is None:
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
            # Connected, so that waiting for room waits on the Watchdog's queue (short:
            # net.unix.max_dgram_qlen, 10 by default, and every Monitor sends at the same
            # instant); unconnected, the wait would spin.
            # Non-blocking, and we wait for room ourselves: a socket with a timeout polls
            # before every send, one more system call per reading.
            sock.setblocking(False)
            try:
                with _reachable(self._path) as name:
                    sock.connect(name)
            except OSError:
                sock.close()
                raise
            self._socket = sock
        return self._socket

    def send(self, reading: Reading | RejectedFrames) -> bool:
        # vars, not dataclasses.asdict: asdict's fields() leaves a tuple on CPython's free list
        # per call (up to 2000).
        return self.send_bytes(json.dumps(vars(reading)).encode())

    def send_bytes(self, data: bytes) -> bool:
        """Send one datagram (e.g. from `ReadingPacker`); False when nobody could take it."""
        try:
            sock = self._connected()
            deadline = None
            while True:
                try:
                    sock.send(data)
                    return True
                except BlockingIOError:  # the Watchdog's queue is full: wait a little for room
                    now = time.monotonic()
                    deadline = deadline or now + self._timeout
                    if now >= deadline or not select.select([], [sock], [], deadline - now)[1]:
                        raise
        except OSError:  # no Watchdog listening right now (a new one binds anew), or too busy
            self.close()
            return False

    def close(self) -> None:
        if self._socket is not None:
            self._socket.close()
            self._socket = None


class Receiver:
    def __init__(self, path: Path) -> None:
        self._socket = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
        with contextlib.suppress(FileNotFoundError):  # a predecessor's: it is gone or going
            path.unlink()
        try:
            with _reachable(path) as name:
                self._socket.bind(name)
        except OSError:
            self._socket.close()
            raise
        self._socket.setblocking(False)

    def fileno(self) -> int:
        return self._socket.fileno()

    def drain(self) -> list[Reading | RejectedFrames]:
        received: list[Reading | RejectedFrames] = []
        while True:
            try:
                data = self._socket.recv(MAX_DATAGRAM)
            except BlockingIOError:
                return received
            with contextlib.suppress(ValueError, TypeError, struct.error):
                if data[:1] == PACKED:
                    received.append(unpack_reading(data))
                    continue
                fields = json.loads(data)
                kind = RejectedFrames if "total" in fields else Reading
                received.append(kind(**fields))

    def close(self) -> None:
        self._socket.close()
