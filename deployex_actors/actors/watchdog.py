"""Watchdog: samples the host and DeployEx itself, receives the replicas' readings from their
Monitors (taken over each Monitor's own distribution link, sent on the sample channel of
`replica.samples`), keeps the metric series, and applies the thresholds: journal on level
changes, forced restarts at critical (see core.thresholds), asked of the replica's Deployer.

It also adds up the unauthenticated frames that any process of the actor system dropped (see
`actors.wire`): a `rejected_frames` value in DeployEx's own series, and a warning in the log and
the journal at most once per `REJECTIONS_REPORT_S`, with what was dropped meanwhile.
"""

from __future__ import annotations

import logging
import os
import time
import uuid
from typing import Any

import psutil

from deployex_actors.actors.base import DeployexActor
from deployex_actors.actors.messages import (
    ConfigChanged,
    Journal,
    MetricsQuery,
    Reply,
    RestartCommand,
    StartWatchdog,
    StorageMoved,
    Timer,
)
from deployex_actors.actors.monitor import STOP_GRACE_S
from deployex_actors.catalog import Catalog
from deployex_actors.config import Config, Monitoring
from deployex_actors.core import thresholds
from deployex_actors.core.metrics import DEPLOYEX, HOST, Sample, Series, next_tick
from deployex_actors.replica import samples

log = logging.getLogger(__name__)
RESCAN_EVERY = 10  # samples between two listings of DeployEx's processes
REJECTIONS_REPORT_S = 60.0  # at most one warning about rejected frames per minute
# reading key -> (current, limit) keys of a replica sample, for the app monitoring types
RESOURCES = {
    "atom": ("atom_count", "atom_limit"),
    "process": ("process_count", "process_limit"),
    "port": ("port_count", "port_limit"),
}


class Watchdog(DeployexActor):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.config: Config | None = None
        self.storage: Any = None
        self.series: Series | None = None
        self.apps: dict[str, str] = {}  # sname -> app, from the readings
        self.levels: dict[tuple[str, str], str] = {}  # (target, type) -> ok|warning|critical
        self.restarted_at: dict[str, float] = {}  # sname (or "host") -> last restart by us
        self.ready_after: dict[str, float] = {}  # sname -> its ready period, from its readings
        # After a host-memory restart, the next one waits for the victim's stop (at most the
        # grace period) and ready period: time for it to come back and for memory to show what
        # the restart freed (else one a second, all of them, while the first is still stopping).
        self.host_cooldown_s = 0.0
        self._processes: dict[int, psutil.Process] = {}
        self._sweeps = 0
        self.readings: samples.Receiver | None = None
        self.rejected: dict[int, int] = {}  # pid -> frames it dropped, as it last told us
        self.rejected_reported = 0
        self.rejected_warned_at = 0.0

    def receiveMsg_StartWatchdog(self, message: StartWatchdog, sender: Any) -> None:
        self.config, self.storage, self.root = message.config, message.storage, sender
        self._known_apps = {app.name for app in message.config.applications}
        self._listen()
        self.period = message.config.watchdog_interval_ms / 1000
        self.series = Series(message.config.metrics_retention_time_ms / 1000, self.period)
        psutil.cpu_percent(None)  # the first reading of a counter is meaningless: prime it
        self.after(next_tick(time.time(), self.period) - time.time(), "sample")

    def receiveMsg_StorageMoved(self, message: StorageMoved, sender: Any) -> None:
        self.storage = message.storage

    def receiveMsg_ConfigChanged(self, message: ConfigChanged, sender: Any) -> None:
        """An approved change: monitoring (levels start again from ok, as upstream resets its
        state) and metrics retention now; the apps added are watched, those removed no more."""
        before, self.config = self.config, message.config
        self._known_apps = {app.name for app in message.config.applications}
        watched = lambda c: (c.monitoring, {a.name: a.monitoring for a in c.applications})  # noqa: E731
        if watched(before) != watched(message.config):
            self.levels.clear()
        self.series.keep(message.config.metrics_retention_time_ms / 1000, self.period)

    # -- host and DeployEx -----------------------------------------------------------------------

    def on_timer(self, timer: Timer) -> None:
        if timer.kind == "listen":
            self._listen()
        if timer.kind == "rejections":
            self._report_rejections()
        if timer.kind != "sample":
            return
        now = time.time()
        self._sample_host(now)
        self._sample_deployex(now)
        self.series.prune(now)
        # Deadline-based on the wall clock: no drift; a missed slot is skipped, not bunched.
        self.after(next_tick(time.time(), self.period) - time.time(), "sample")

    def _sample_host(self, now: float) -> None:
        memory = psutil.virtual_memory()
        values: dict[str, float | None] = {
            "cpu_percent": psutil.cpu_percent(None),
            "memory_total": memory.total,
            "memory_available": memory.available,
            "memory_percent": (memory.total - memory.available) * 100 / memory.total,
            "swap_percent": psutil.swap_memory().percent,
            "load1": os.getloadavg()[0],
            "uptime_s": now - psutil.boot_time(),
        }
        for core, busy in enumerate(psutil.cpu_percent(None, percpu=True)):
            values[f"cpu{core}_percent"] = busy
        self.series.add(HOST, Sample(now, values))
        watched = self.config.monitoring_of("memory")
        if watched is not None:
            used = thresholds.percent(memory.total - memory.available, memory.total)
            cooldown = max(self.period, self.host_cooldown_s)
            self._judge(HOST, "memory", used, watched, None, cooldown)

    def _sample_deployex(self, now: float) -> None:
        """DeployEx's own footprint: every process of the actor system's session."""
        self._sweeps += 1
        if self._sweeps % RESCAN_EVERY == 1:  # listing every process of the host is costly
            self._rescan_processes()
        rss = cpu = 0.0
        count = 0
        for pid, tracked in list(self._processes.items()):
            try:
                rss += tracked.memory_info().rss
                cpu += tracked.cpu_percent(None)
                count += 1
            except psutil.Error:
                del self._processes[pid]
        # the admin and the logger are processes of the system but not actors
        values = {"rss": rss, "cpu_percent": cpu, "actors": max(count - 2, 0),
                  "rejected_frames": sum(self.rejected.values())}  # fmt: skip
        self.series.add(DEPLOYEX, Sample(now, values))

    def _rescan_processes(self) -> None:
        session = os.getsid(0)
        found = {}
        for proc in psutil.process_iter(["pid"]):
            try:
                if os.getsid(proc.pid) == session:
                    found[proc.pid] = self._processes.get(proc.pid, proc)
            except (psutil.Error, ProcessLookupError):
                continue
        self._processes = found

    # -- replicas --------------------------------------------------------------------------------

    def _listen(self) -> None:
        try:
            self.readings = samples.Receiver(Catalog.from_config(self.config).samples_socket)
        except OSError as exc:  # a predecessor still holds the channel: it is about to go
            log.warning("sample channel busy (%s); trying again in 1 s", exc)
            self.after(1.0, "listen")
            return
        self.watch(self.readings.fileno(), self._drain)

    def _drain(self) -> None:
        for received in self.readings.drain():
            if isinstance(received, samples.RejectedFrames):
                self._rejected_frames(received)
            else:
                self._replica_reading(received)

    # -- unauthenticated frames ------------------------------------------------------------------

    def _rejected_frames(self, notice: samples.RejectedFrames) -> None:
        known = self.rejected.get(notice.pid, 0)
        if notice.total <= known:  # notices may arrive out of order; totals only grow
            return
        self.rejected[notice.pid] = notice.total
        wait = self.rejected_warned_at + REJECTIONS_REPORT_S - time.time()
        if wait <= 0:
            self._report_rejections()
        else:
            self.after(wait, "rejections")  # what came meanwhile, once the minute is over

    def _report_rejections(self) -> None:
        total = sum(self.rejected.values())
        new = total - self.rejected_reported
        if new <= 0:
            return
        self.rejected_reported, self.rejected_warned_at = total, time.time()
        self._journal(
            "frames_rejected",
            f"dropped {new} unauthenticated frame(s) sent to the actor system's sockets "
            f"({total} since DeployEx started): another local user or program is trying to "
            "talk to DeployEx",
            None,
            None,
        )

    def _replica_reading(self, message: samples.Reading) -> None:
        if message.app not in self._known_apps:
            return
        self.apps[message.sname] = message.app
        self.ready_after[message.sname] = message.ready_after_s
        self.series.add(message.sname, Sample(message.at, message.values))
        app = self.config.application(message.app)
        for kind, (current_key, limit_key) in RESOURCES.items():
            watched = app.monitoring_of(kind)
            if watched is None:  # a type not listed is not watched
                continue
            value = thresholds.percent(message.values.get(current_key),
                                       message.values.get(limit_key))  # fmt: skip
            self._judge(message.sname, kind, value, watched, message.sname, message.ready_after_s)

    def _judge(
        self,
        target: str,
        kind: str,
        value: int | None,
        watched: Monitoring,
        sname: str | None,
        ready_period_s: float,
    ) -> None:
        key = (target, kind)
        previous = self.levels.get(key, thresholds.OK)
        restart_key = sname or target
        verdict = thresholds.judge(value, watched, previous, self.restarted_at.get(restart_key),
                                   time.time(), ready_period_s)  # fmt: skip
        self.levels[key] = verdict.level
        app = self.apps.get(sname) if sname else None
        if verdict.changed:
            limits = {
                thresholds.WARNING: watched.warning_threshold_percent,
                thresholds.CRITICAL: watched.restart_threshold_percent,
            }
            limit = limits.get(verdict.level)
            against = f" (threshold {limit}%)" if limit else ""
            details = {
                "type": kind,
                "current_percentage": value,
                "warning_threshold_percent": watched.warning_threshold_percent,
                "restart_threshold_percent": watched.restart_threshold_percent,
                "enable_restart": watched.enable_restart,
            }
            self._journal(f"threshold_{verdict.level}",
                          f"{kind} of {target} at {value}%{against}", app, sname,
                          details)  # fmt: skip
        if verdict.restart:
            victim = sname or self._biggest_replica()
            if victim is None:
                log.warning("host memory critical, but no replica to restart")
                return
            self.restarted_at[restart_key] = time.time()
            if sname is None:
                self.host_cooldown_s = STOP_GRACE_S + self.ready_after.get(victim, 0.0)
            self._restart(victim, f"{kind} of {target} at {value}% reached the restart threshold")

    def _biggest_replica(self) -> str | None:
        memory = {}
        for sname in self.apps:
            latest = self.series.latest(sname)
            if latest is not None:
                memory[sname] = latest.values.get("beam_memory") or latest.values.get("rss")
        return thresholds.biggest_replica(memory)

    def _restart(self, sname: str, reason: str) -> None:
        app = self.apps.get(sname)
        if app is None:
            return
        self._journal("watchdog_restart", f"restarting {sname}: {reason}", app, sname)
        # Through the root and the app's Deployer, like an operator's restart.
        command = RestartCommand(uuid.uuid4().hex, app, sname, "watchdog", reason=reason)
        self.send(self.root, command)

    def receiveMsg_Reply(self, message: Reply, sender: Any) -> None:
        if message.error:  # e.g. the replica was replaced meanwhile
            log.info("watchdog restart not done: %s", message.error)

    def _journal(
        self,
        kind: str,
        message: str,
        app: str | None,
        sname: str | None,
        details: dict | None = None,
    ) -> None:
        log.warning("%s: %s", kind, message)
        if self.storage is not None:
            self.send(self.storage, Journal(kind, message, "watchdog", app, sname, details or {}))

    # -- queries ---------------------------------------------------------------------------------

    def receiveMsg_ActorExitRequest(self, message: Any, sender: Any) -> None:
        if self.readings is not None:
            self.readings.close()  # leaving: the watch goes with the process

    def receiveMsg_MetricsQuery(self, message: MetricsQuery, sender: Any) -> None:
        if message.batch is not None:
            value: Any = {t: self.series.since(t, at) for t, at in message.batch.items()}
        elif message.latest:
            value = {t: self.series.latest(t) for t in self.series.targets()}
        elif message.target is None:
            value = self.series.targets()
        else:
            value = self.series.since(message.target, message.since)
        self.send(message.reply_to or sender, Reply(message.request_id, value))
