"""The sample channel: Monitors send their replica's readings to the Watchdog as datagrams.

A thespian message costs one to two milliseconds of CPU (pickle, a TCP exchange); a reading
every second from every replica is the hottest path of an idle DeployEx. So readings travel as
small JSON datagrams on a Linux abstract UNIX socket, named after the actor system's port (no
file to clean up, private to the host), which the Watchdog watches like any other descriptor.
A reading sent while the Watchdog is restarting is simply lost: a gap.
"""

from __future__ import annotations

import contextlib
import json
import socket
from dataclasses import dataclass

MAX_DATAGRAM = 65536
SEND_TIMEOUT_S = 0.25


def address(actor_system_port: int) -> str:
    return f"\0deployex-samples-{actor_system_port}"


@dataclass(frozen=True)
class Reading:
    app: str
    sname: str
    at: float
    values: dict[str, float | None]
    ready_after_s: float


class Sender:
    def __init__(self, actor_system_port: int) -> None:
        self._address = address(actor_system_port)
        self._socket: socket.socket | None = None

    def _connected(self) -> socket.socket:
        if self._socket is None:
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
            # Connected, so that waiting for room waits on the Watchdog's queue (short:
            # net.unix.max_dgram_qlen, 10 by default, and every Monitor sends at the same
            # instant); unconnected, the wait would spin.
            sock.settimeout(SEND_TIMEOUT_S)
            try:
                sock.connect(self._address)
            except OSError:
                sock.close()
                raise
            self._socket = sock
        return self._socket

    def send(self, reading: Reading) -> bool:
        data = json.dumps(reading.__dict__).encode()
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
    def __init__(self, actor_system_port: int) -> None:
        self._socket = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
        self._socket.bind(address(actor_system_port))
        self._socket.setblocking(False)

    def fileno(self) -> int:
        return self._socket.fileno()

    def drain(self) -> list[Reading]:
        readings = []
        while True:
            try:
                data = self._socket.recv(MAX_DATAGRAM)
            except BlockingIOError:
                return readings
            with contextlib.suppress(ValueError, TypeError):
                readings.append(Reading(**json.loads(data)))

    def close(self) -> None:
        self._socket.close()
