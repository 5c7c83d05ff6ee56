"""A client that keeps asking every port slot of an app, as its users would during a rollout."""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Iterator


class Prober:
    """Connects to every port slot every 50 ms and records how many replicas answered."""

    def __init__(self, ports: list[int]) -> None:
        self.ports = ports
        self.counts: list[int] = []
        self.versions: set[str] = set()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _answer(self, port: int) -> str | None:
        # A stopped replica refuses at once; the generous timeouts only keep a slow answer on a
        # loaded machine from being counted as no answer.
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 2) as c:
            c.settimeout(3)
            return c.recv(100).decode().strip() or None
        return None

    def _run(self) -> None:
        while not self._stop.wait(0.05):
            answers = [a for a in map(self._answer, self.ports) if a]
            self.counts.append(len(answers))
            self.versions.update(answers)

    @contextlib.contextmanager
    def running(self) -> Iterator[Prober]:
        self._thread.start()
        try:
            yield self
        finally:
            self._stop.set()
            self._thread.join(5)


def slot_ports(config_entry: dict) -> list[int]:
    base = config_entry["replica_ports"][0]["base"]
    return [base + slot for slot in range(config_entry["replicas"] + 1)]
