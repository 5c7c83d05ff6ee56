"""The sample channel: Monitors send their replica's readings to the Watchdog as datagrams.

A thespian message costs one to two milliseconds of CPU (pickle, a TCP exchange); a reading
every second from every replica is the hottest path of an idle DeployEx. So readings travel as
small JSON datagrams on a UNIX socket in `var_path` (see the catalog), which the Watchdog watches
like any other descriptor. The socket is a file in DeployEx's private folder, so no other user
can send to it or take its name (an abstract socket would let anyone do both). A reading sent
while the Watchdog is restarting is simply lost: a gap.

Any process of the actor system also reports here how many unauthenticated frames it dropped
(see `actors.wire`): the Watchdog counts, logs and journals them.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

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
            sock.settimeout(self._timeout)
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
        # per call (up to 2000), and every Monitor sends a reading each sample period.
        data = json.dumps(vars(reading)).encode()
        try:
            self._connected().send(data)
            return True
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
            with contextlib.suppress(ValueError, TypeError):
                fields = json.loads(data)
                kind = RejectedFrames if "total" in fields else Reading
                received.append(kind(**fields))

    def close(self) -> None:
        self._socket.close()
