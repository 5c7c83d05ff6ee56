"""The client facade: typed calls on a running DeployEx, for the dashboard, the shell and the CLI.

    dx = DeployEx.attach()          # probes the admin port first; never starts a system
    dx.status(); dx.versions("myapp"); dx.restart("myapp"); dx.events(app="myapp")
    dx.logs("myapp", since_s=600, grep="error")   # the log history

Every request carries a request id; a late reply to an earlier request is dropped, never taken
for the answer to this one.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from typing import Any

from deployex_actors.actors import messages, system
from deployex_actors.actors.root import GLOBAL_NAME
from deployex_actors.catalog import Catalog
from deployex_actors.config import Config, load_config
from deployex_actors.core.config_diff import ConfigDiff
from deployex_actors.core.config_watch import PendingConfig
from deployex_actors.core.log_history import DEFAULT_LIMIT, STREAMS, HistoryResult, LogService
from deployex_actors.core.status import DeployexSnapshot
from deployex_actors.errors import DeployexError

ROOT_CLASS = "deployex_actors.actors.root.Root"
NOTIFY_TEST_S = 30.0  # one try per channel, each at most notifications.post.TIMEOUT_S


class DeployEx:
    """A connection to the running actor system; thread-safe (one request at a time)."""

    def __init__(self, config: Config, timeout: float = 10.0) -> None:
        catalog = Catalog.from_config(config)
        self.port = config.actor_system_port
        self.timeout = timeout
        self._system = system.attach(self.port, catalog.actor_key, catalog.samples_socket)
        self._root = self._system.createActor(ROOT_CLASS, globalName=GLOBAL_NAME)
        self._lock = threading.Lock()
        self._cycles = system.CycleCollector()  # replies carry addresses too (see there)

    @classmethod
    def attach(cls, config: Config | str | None = None, timeout: float = 10.0) -> DeployEx:
        if not isinstance(config, Config):
            config = load_config(config)
        return cls(config, timeout)

    def _call(self, message: Any, timeout: float | None = None) -> Any:
        with self._lock:
            self._cycles.tick()
            reply = system.request(self._system, self._root, message, timeout or self.timeout)
        if reply.error:
            raise DeployexError(reply.error)
        return reply.value

    def ping(self) -> bool:
        return self._call(messages.Ping(system.request_id())) == "pong"

    def status(self) -> DeployexSnapshot:
        return self._call(messages.StatusQuery(system.request_id()))

    def versions(self, app: str) -> list:
        return self._call(messages.VersionsQuery(system.request_id(), app))

    def events(self, app: str | None = None, kind: str | None = None, limit: int = 100) -> list:
        return self._call(messages.EventsQuery(system.request_id(), app, kind, limit))

    def restart(self, app: str, sname: str | None = None, actor: str = "operator") -> list[str]:
        """Forced restart of one replica, or of all replicas of `app`; returns the snames."""
        return self._call(messages.RestartCommand(system.request_id(), app, sname, actor))

    def full_restart(self, app: str, actor: str = "operator") -> list[str]:
        """Replace every replica of `app` one at a time (fresh snames, same version)."""
        return self._call(messages.FullRestart(system.request_id(), app, actor))

    def set_mode(self, app: str, version: str | None, actor: str = "operator") -> str:
        """Pin `version` (manual mode); None follows current.json again (automatic mode)."""
        return self._call(messages.SetMode(system.request_id(), app, version, actor))

    def shell_command(self, app: str, sname: str) -> tuple[list[str], dict[str, str], str]:
        """argv, environment and folder of a remote shell on a running replica (it holds the
        node's cookie: run it, never show it)."""
        return self._call(messages.ShellCommandQuery(system.request_id(), app, sname))

    def observe(self, app: str, sname: str, call: str, *args: Any, actor: str = "operator") -> Any:
        """One observer call on a replica's node (beam.observer: system, apps, top, process,
        ports, ets, trace_start, trace_fetch, trace_stop); those that act are journaled."""
        request = messages.ObserverCall(system.request_id(), app, sname, call, args, actor)
        return self._call(request)

    def ghosts(self, app: str) -> list:
        return self._call(messages.GhostsQuery(system.request_id(), app))

    def unghost(self, app: str, version: str | None = None, actor: str = "operator") -> int:
        """Remove a ghosted version (all of the app's when None); returns how many."""
        return self._call(messages.Unghost(system.request_id(), app, version, actor))

    def restart_deployex(self, actor: str = "operator") -> str:
        """Restart DeployEx itself within a couple of seconds (the `deployex run` process
        re-executes); replicas keep running and are adopted, counting no crash."""
        return self._call(messages.RestartDeployex(system.request_id(), actor))

    def pending_config(self) -> PendingConfig:
        """The configuration change waiting for approval, or the refused file's errors
        (state `none`, `pending` or `refused`; docs/config-watcher.md)."""
        return self._call(messages.PendingConfigQuery(system.request_id()))

    def apply_config(self, actor: str = "operator", checksum: str | None = None) -> ConfigDiff:
        """Apply the pending change (journaled with `actor`); `checksum`: only if the file still
        holds the content reviewed. Returns what was applied."""
        return self._call(messages.ApplyConfig(system.request_id(), actor, checksum))

    def discard_config(self, actor: str = "operator", checksum: str | None = None) -> str:
        """Drop the pending change; the same file content is not offered again."""
        return self._call(messages.DiscardConfig(system.request_id(), actor, checksum))

    def reload_config(self, actor: str = "operator") -> PendingConfig:
        """Read the configuration file now (what SIGHUP to `deployex run` does)."""
        return self._call(messages.ReloadConfig(system.request_id(), actor))

    def journal(
        self,
        kind: str,
        message: str,
        actor: str,
        app: str | None = None,
        sname: str | None = None,
    ) -> None:
        """Add an entry to the event journal (front ends: logins, logouts, ...)."""
        entry = messages.Journal(kind, message, actor, app, sname)
        self._call(messages.Record(system.request_id(), entry))

    def logs(
        self,
        app: str | None = None,
        sname: str | Sequence[str] | None = None,
        since_s: float = 900.0,
        until: float | None = None,
        grep: str | None = None,
        streams: Sequence[str] = STREAMS,
        limit: int = DEFAULT_LIMIT,
        after_id: int | None = None,
    ) -> HistoryResult:
        """Kept log lines (history) of the last `since_s` seconds (up to `until`, epoch s), of
        one sname or several (None: all; "deployex" is DeployEx's own), or of every replica of
        `app`, containing `grep` (case-insensitive), in chronological order: the newest `limit`
        (at most 10000; `capped` says more matched), or with `after_id` the next after that
        line's id (for following)."""
        snames = (sname,) if isinstance(sname, str) else None if sname is None else tuple(sname)
        request = messages.LogsQuery(system.request_id(), time.time() - since_s, until, snames,
                                     app, tuple(streams), grep, limit, after_id)  # fmt: skip
        return self._call(request)

    def log_services(self) -> list[LogService]:
        """Every service with kept lines: snames, running or gone, and "deployex"."""
        return self._call(messages.LogServicesQuery(system.request_id()))

    def notify_test(self, channel: str | int | None = None) -> tuple:
        """Send a `test` notification to channel `channel` (its number, or an adapter name), or
        to every enabled channel: one try each; a `ChannelTested` per channel (delivered or not,
        and the HTTP status or error)."""
        wanted = None if channel is None else str(channel)
        request = messages.NotifyTest(system.request_id(), wanted)
        return self._call(request, timeout=max(self.timeout, NOTIFY_TEST_S))

    def metrics(self, target: str = "host", since: float = 0.0) -> list:
        """Samples (`core.metrics.Sample`) of `host`, `deployex` or a replica's sname newer than
        `since` (wall-clock seconds), within the retention window."""
        return self._call(messages.MetricsQuery(system.request_id(), target, since))

    def metrics_since(self, since: dict[str, float]) -> dict[str, list]:
        """For each target, its samples newer than the time given: one request for them all."""
        return self._call(messages.MetricsQuery(system.request_id(), None, batch=since))

    def metric_targets(self) -> list[str]:
        return self._call(messages.MetricsQuery(system.request_id(), None))

    def latest_metrics(self) -> dict:
        """The newest sample of every target: {"host": Sample, "deployex": ..., sname: ...}."""
        return self._call(messages.MetricsQuery(system.request_id(), None, latest=True))

    def prometheus(self) -> str:
        """The Prometheus exposition of the status and the latest samples."""
        from deployex_actors.core import prometheus

        return prometheus.render(self.status(), self.latest_metrics())

    def close(self) -> None:
        """Detach (the system keeps running)."""

    def __enter__(self) -> DeployEx:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<DeployEx attached on 127.0.0.1:{self.port}>"
