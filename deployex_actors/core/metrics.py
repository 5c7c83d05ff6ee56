"""Metric series: samples kept for the retention window, bounded in memory.

A target is `host`, `deployex`, or a replica's sname. A sample holds the values read at one
time; a value of None is a gap (the node did not answer), never a zero.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass

HOST = "host"
DEPLOYEX = "deployex"
HOST_KEYS = (
    "cpu_percent", "memory_total", "memory_available", "memory_percent", "swap_percent",
    "load1", "uptime_s",
)  # fmt: skip
REPLICA_KEYS = (
    "process_count", "process_limit", "port_count", "port_limit", "atom_count", "atom_limit",
    "beam_memory", "rss", "cpu_percent",
)  # fmt: skip
DEPLOYEX_KEYS = ("rss", "cpu_percent", "actors")


def next_tick(now: float, period_s: float) -> float:
    """The next multiple of the period on the wall clock: samplers share one schedule (every
    Monitor samples at the same instants as the Watchdog), and it never drifts."""
    return (math.floor(now / period_s) + 1) * period_s


@dataclass(frozen=True)
class Sample:
    at: float  # wall clock, seconds
    values: dict[str, float | None]


class Series:
    """Samples per target for `retention_s`, at most `max_samples` each (oldest dropped)."""

    def __init__(self, retention_s: float, period_s: float) -> None:
        self._data: dict[str, deque[Sample]] = {}
        self.keep(retention_s, period_s)

    def keep(self, retention_s: float, period_s: float) -> None:
        """(A new) retention: a shorter one drops the older samples now."""
        self.retention_s = retention_s
        self.max_samples = max(int(retention_s / max(period_s, 0.001)) + 2, 2)
        for target, samples in self._data.items():
            self._data[target] = deque(samples, maxlen=self.max_samples)
            if samples:
                self._expire(target, samples[-1].at)

    def add(self, target: str, sample: Sample) -> None:
        samples = self._data.setdefault(target, deque(maxlen=self.max_samples))
        samples.append(sample)
        self._expire(target, sample.at)

    def _expire(self, target: str, now: float) -> None:
        samples = self._data[target]
        while samples and samples[0].at < now - self.retention_s:
            samples.popleft()

    def since(self, target: str, at: float = 0.0) -> list[Sample]:
        return [s for s in self._data.get(target, ()) if s.at > at]

    def latest(self, target: str) -> Sample | None:
        samples = self._data.get(target)
        return samples[-1] if samples else None

    def targets(self) -> list[str]:
        return sorted(self._data)

    def forget(self, target: str) -> None:
        """A replica gone for good: its series leaves with it after the retention window."""
        self._data.pop(target, None)

    def prune(self, now: float) -> None:
        for target in list(self._data):
            self._expire(target, now)
            if not self._data[target]:
                del self._data[target]
