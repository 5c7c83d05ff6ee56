"""One replica's reading for the Watchdog: BEAM usage over the Monitor's link, the OS process's
memory and CPU from psutil, sent as a datagram on the sample channel (see `replica.samples`)."""

from __future__ import annotations

import time
from pathlib import Path

import psutil

from deployex_actors.beam.link import NodeLink
from deployex_actors.core.metrics import REPLICA_KEYS
from deployex_actors.errors import BeamError
from deployex_actors.replica import samples

STATS_TIMEOUT_S = 0.5  # a node slower than this leaves a gap in its series, not a stall


class ReplicaSampler:
    def __init__(
        self, socket_path: Path, app: str, sname: str, period_s: float, ready_after_s: float
    ) -> None:
        self.app, self.sname = app, sname
        self.period_s = period_s
        self.ready_after_s = ready_after_s
        self._socket_path = socket_path
        self._sender: samples.Sender | None = None
        self._ps: psutil.Process | None = None

    def sample(self, pid: int | None, link: NodeLink | None) -> None:
        """Read what can be read now (None for the rest: a gap, not a zero) and send it."""
        values: dict[str, float | None] = dict.fromkeys(REPLICA_KEYS)
        if pid is not None and link is not None and link.alive:
            try:
                stats = link.stats(timeout=min(STATS_TIMEOUT_S, self.period_s))
            except BeamError:
                pass
            else:
                values.update(stats.as_dict())
                values["beam_memory"] = values.pop("memory_total")
        if pid is not None:
            try:
                if self._ps is None or self._ps.pid != pid:
                    self._ps = psutil.Process(pid)
                values["rss"] = self._ps.memory_info().rss
                values["cpu_percent"] = self._ps.cpu_percent(None)
            except psutil.Error:
                self._ps = None
        if self._sender is None:
            self._sender = samples.Sender(self._socket_path)
        reading = samples.Reading(self.app, self.sname, time.time(), values, self.ready_after_s)
        self._sender.send(reading)
