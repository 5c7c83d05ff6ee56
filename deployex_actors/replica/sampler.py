"""One replica's reading for the Watchdog: BEAM usage over the Monitor's link, the OS process's
memory and CPU from /proc, sent as a datagram on the sample channel (see `replica.samples`).

A Monitor samples its replica every period, so what a sample costs is what an idle DeployEx
costs per replica. On a small virtual host the price of a sample is the number of times a
thread is woken for it (each wake-up costs a few hundred microseconds of accounted CPU there);
the old path woke threads ~9 times a sample (a thespian timer through the actor's loop, the
link's thread to write the request, again for the answer, the caller for the Future, the GIL).
So:

- the schedule is not a thespian timer: a thread of the sampler keeps it (`start`) while there
  is no link; once the link is up, the link's own thread samples: each answer comes with the
  next question (`NodeLink.stats_at`: the node waits until the next tick to answer), so a
  sample wakes one thread once, when the answer arrives, and that thread also sends the reading;
- the node's figures come in one pre-encoded call;
- memory and CPU come from one `pread` of /proc/PID/stat through a kept descriptor (psutil
  opened, read and closed statm and stat), with psutil's `cpu_percent(None)` semantics;
- the reading is packed with one struct.pack (`samples.ReadingPacker`), not JSON.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from deployex_actors.beam.link import NodeLink, NodeStats
from deployex_actors.core.metrics import next_tick
from deployex_actors.errors import BeamError
from deployex_actors.replica import samples

log = logging.getLogger(__name__)

STATS_TIMEOUT_S = 0.5  # a node slower than this leaves a gap in its series, not a stall
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")
NO_BEAM = (None,) * 7  # the node's seven figures (a NodeStats), when it did not answer

Replica = Callable[[], tuple["int | None", "NodeLink | None"]]


class ProcessUsage:
    """RSS and CPU of one process, from /proc/PID/stat read through a kept descriptor.

    `cpu_percent` is psutil's `Process.cpu_percent(None)`: 0.0 on the first reading, then the
    CPU time used since the previous reading over the wall time between them, in % of one CPU.
    The descriptor stays bound to the process it was opened for: once that process is gone,
    reading fails (ESRCH) even if its pid is reused.
    """

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self._fd = os.open(f"/proc/{pid}/stat", os.O_RDONLY | os.O_CLOEXEC)
        self._last: tuple[int, float] | None = None

    def read(self) -> tuple[int, float]:
        """(rss bytes, cpu percent); OSError when the process is gone."""
        now = time.monotonic()
        data = os.pread(self._fd, 4096, 0)
        fields = data[data.rindex(b")") + 2 :].split()  # the name may hold spaces and ")"
        ticks = int(fields[11]) + int(fields[12])  # utime + stime
        rss = int(fields[21]) * PAGE_SIZE
        last, self._last = self._last, (ticks, now)
        if last is None or now <= last[1]:
            return rss, 0.0
        return rss, round((ticks - last[0]) / CLOCK_TICKS / (now - last[1]) * 100, 1)

    def close(self) -> None:
        os.close(self._fd)


class ReplicaSampler:
    def __init__(
        self, socket_path: Path, app: str, sname: str, period_s: float, ready_after_s: float
    ) -> None:
        self.app, self.sname = app, sname
        self.period_s = period_s
        self.ready_after_s = ready_after_s
        self._socket_path = socket_path
        self._packer = samples.ReadingPacker(app, sname, ready_after_s)
        self._sender: samples.Sender | None = None
        self._usage: ProcessUsage | None = None
        self._replica: Replica | None = None
        self._link: NodeLink | None = None  # the link whose thread samples, see _run
        self._stopped = False
        self._failed = False

    def start(self, replica: Replica) -> None:
        """Sample on the shared schedule (see `next_tick`) for as long as this process lives;
        `replica()` says what to sample: (pid, link), either None. While the link is up, its
        own thread takes the samples; otherwise a thread of ours does."""
        first = self._replica is None
        self._replica = replica
        if first:
            name = f"sampler {self.sname}"
            threading.Thread(target=self._run, name=name, daemon=True).start()

    def stop(self) -> None:
        self._stopped = True

    def _run(self) -> None:
        while not self._stopped:
            time.sleep(max(0.0, next_tick(time.time(), self.period_s) - time.time()))
            if self._stopped:
                return
            pid, link = self._replica()
            self._guarded(self.sample, pid, link)
            if pid is not None and link is not None and link.alive:
                # From now on the link's thread samples (see _ask): we wait, idle, until the
                # link is down, then take over again at the next tick.
                self._link = link
                try:
                    self._ask(link)
                except Exception as exc:  # e.g. it is going already: we sample at the next tick
                    if not isinstance(exc, BeamError):
                        self._failure()
                    continue
                link.wait_closed()

    def _ask(self, link: NodeLink) -> None:
        """Ask the node now for its figures at the next tick (see `NodeLink.stats_at`)."""
        at = next_tick(time.time(), self.period_s)
        link.stats_at(at, self._answered, timeout=min(STATS_TIMEOUT_S, self.period_s))

    def _answered(self, stats: NodeStats | None) -> None:
        """On the link's thread: send the reading, ask for the next one."""
        pid, link = self._replica()
        if link is not self._link or link is None or not link.alive:
            return  # the link is going: our thread takes over at the next tick
        self._guarded(self._send, pid, NO_BEAM if stats is None else stats)
        if not self._stopped:
            with contextlib.suppress(BeamError):
                self._ask(link)

    def _guarded(self, step: Callable[..., None], *args: Any) -> None:
        try:
            step(*args)
        except Exception:  # the schedule must outlive a bad sample
            self._failure()

    def _failure(self) -> None:
        if not self._failed:
            log.exception("sampling %s failed (logged once)", self.sname)
        self._failed = True

    def sample(self, pid: int | None, link: NodeLink | None) -> None:
        """Read what can be read now (None for the rest: a gap, not a zero) and send it."""
        beam: tuple = NO_BEAM
        if pid is not None and link is not None and link.alive:
            with contextlib.suppress(BeamError):  # a gap
                beam = link.stats(timeout=min(STATS_TIMEOUT_S, self.period_s))
        self._send(pid, beam)

    def _send(self, pid: int | None, beam: tuple) -> None:
        rss, cpu = self._read_usage(pid) if pid is not None else (None, None)
        if self._sender is None:
            self._sender = samples.Sender(self._socket_path)
        self._sender.send_bytes(self._packer.pack(time.time(), (*beam, rss, cpu)))

    def _read_usage(self, pid: int) -> tuple[int | None, float | None]:
        try:
            if self._usage is None or self._usage.pid != pid:
                self._drop_usage()
                self._usage = ProcessUsage(pid)
            return self._usage.read()
        except (OSError, ValueError, IndexError):
            self._drop_usage()
            return None, None

    def _drop_usage(self) -> None:
        if self._usage is not None:
            self._usage.close()
            self._usage = None
