"""The live data every open page shows, polled once per dashboard process, not once per viewer.

While at least one page is open, the feed asks DeployEx for its status twice a second and for new
metric samples (host, DeployEx, every replica) once a second, and keeps the samples for the
retention window. Pages read it on their own periodic callbacks; they never ask DeployEx for
status themselves. With nobody watching, the feed sleeps.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable

from dashboards.gateway import Gateway, Unreachable
from deployex_actors.core.metrics import DEPLOYEX, HOST, Sample, Series
from deployex_actors.core.status import DeployexSnapshot
from deployex_actors.errors import DeployexError

log = logging.getLogger(__name__)
STATUS_PERIOD_S = 0.5
METRICS_PERIOD_S = 1.0
MAX_BACKOFF_S = 5.0


class Feed:
    def __init__(self, gateway: Gateway, retention_s: float, period_s: float = 1.0) -> None:
        self.gateway = gateway
        self.snapshot: DeployexSnapshot | None = None
        self.revision = 0  # grows whenever the snapshot changes
        self.metrics = Series(retention_s, period_s)
        self.metrics_problem: str | None = None
        self._viewers = 0
        self._someone = asyncio.Event()
        self._metrics_due = 0.0
        self._task: asyncio.Task | None = None

    # -- viewers ---------------------------------------------------------------------------------

    def join(self) -> Callable[[], None]:
        """A page opened; call the returned function when it closes."""
        self._viewers += 1
        self._someone.set()
        left = False

        def leave() -> None:
            nonlocal left
            if not left:
                left = True
                self._viewers -= 1

        return leave

    @property
    def viewers(self) -> int:
        return self._viewers

    @property
    def problem(self) -> str | None:
        return self.gateway.problem

    # -- polling ---------------------------------------------------------------------------------

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self.run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def run(self) -> None:
        backoff = STATUS_PERIOD_S
        while True:
            if self._viewers <= 0:
                self._someone.clear()
                await self._someone.wait()
            started = time.monotonic()
            try:
                await self.poll()
                backoff = STATUS_PERIOD_S
            except Unreachable:
                backoff = min(backoff * 2, MAX_BACKOFF_S)
            except Exception:  # a bug here must not stop the feed of every page
                log.exception("polling DeployEx failed")
                backoff = MAX_BACKOFF_S
            await asyncio.sleep(max(backoff - (time.monotonic() - started), 0.05))

    async def poll(self) -> None:
        await self.refresh_status()
        if time.monotonic() >= self._metrics_due:
            self._metrics_due = time.monotonic() + METRICS_PERIOD_S
            await self.refresh_metrics()

    async def refresh_status(self) -> DeployexSnapshot:
        snapshot = await self.gateway.call(lambda dx: dx.status())
        if snapshot != self.snapshot:
            self.snapshot = snapshot
            self.revision += 1
        return snapshot

    async def refresh_metrics(self) -> None:
        """New samples of every target since the last one kept (the whole window at first),
        in one request for all targets."""
        since = {}
        for target in self.targets():
            latest = self.metrics.latest(target)
            since[target] = latest.at if latest else 0.0
        try:
            batch = await self.gateway.call(lambda dx: dx.metrics_since(since))
        except Unreachable:
            raise
        except DeployexError as exc:  # no Watchdog (yet), or it is restarting
            self.metrics_problem = str(exc)
            return
        for target, samples in batch.items():
            for sample in samples:
                self.metrics.add(target, sample)
        self.metrics_problem = None
        self.metrics.prune(time.time())

    def targets(self) -> list[str]:
        replicas = (
            [r.sname for a in self.snapshot.apps for r in a.replicas] if self.snapshot else []
        )
        return [HOST, DEPLOYEX, *replicas]

    def latest(self, target: str) -> Sample | None:
        return self.metrics.latest(target)

    def samples_since(self, target: str, at: float) -> list[Sample]:
        return self.metrics.since(target, at)
