"""What every page of one dashboard process shares: settings, the gateway to DeployEx, the live
feed, the log follower, the login sessions and the journal."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field

from tornado.ioloop import IOLoop

from dashboards import display
from dashboards.auth import SessionStore
from dashboards.feed import Feed
from dashboards.gateway import Gateway
from dashboards.settings import Settings
from dashboards.tail import LogFollower, LogSource
from dashboards.terminals import Target, Terminals
from deployex_actors.catalog import Catalog
from deployex_actors.config import Application

log = logging.getLogger(__name__)
DEPLOYEX_SERVICE = "deployex"


@dataclass
class DashboardContext:
    settings: Settings
    gateway: Gateway
    feed: Feed
    sessions: SessionStore
    logs: LogFollower = field(default_factory=LogFollower)
    terminals: Terminals | None = None  # None: this process serves none (tests of parts)

    @property
    def catalog(self) -> Catalog:
        return Catalog.from_config(self.settings.config)

    def application(self, name: str) -> Application | None:
        return next((a for a in self.settings.config.applications if a.name == name), None)

    async def journal(self, kind: str, message: str, actor: str) -> None:
        """Record something the dashboard saw (a login); the facade's own calls journal
        themselves with `actor=`."""
        log.info("journal %s by %s: %s", kind, actor, message)
        await self.gateway.call(lambda dx: dx.journal(kind, message, actor))

    # -- terminals -------------------------------------------------------------------------------

    @property
    def terminals_enabled(self) -> bool:
        return self.terminals is not None and self.terminals.enabled

    def close_terminal(self, terminal_id: str, reason: str) -> None:
        """Close it (its whole process group) and journal how long it was open and why."""
        terminal = self.terminals.close(terminal_id, reason) if self.terminals else None
        if terminal is None:
            return
        took = display.ago(time.time() - terminal.opened_at)
        text = f"terminal on {terminal.target.label} closed after {took}: {reason}"
        IOLoop.current().spawn_callback(
            self._journal_quietly, "terminal_close", text, terminal.actor
        )

    def sweep_terminals(self) -> None:
        """Each second: close what is idle, logged out, exited, or on a replica that stopped."""
        if not self.terminals or not self.terminals.open:
            return
        snapshot = self.feed.snapshot

        def running(target: Target) -> bool:
            if snapshot is None:  # DeployEx not answering: keep the shell, the node may be fine
                return True
            app = next((a for a in snapshot.apps if a.app == target.app), None)
            replica = app and next((r for r in app.replicas if r.sname == target.sname), None)
            return replica is not None and replica.status == "running"

        alive = lambda sid: self.sessions.get(sid) is not None  # noqa: E731
        for terminal_id, reason in self.terminals.due(time.time(), alive, running):
            self.close_terminal(terminal_id, reason)

    async def _journal_quietly(self, kind: str, message: str, actor: str) -> None:
        try:
            await self.journal(kind, message, actor)
        except Exception as exc:  # DeployEx away: the dashboard's log still has it
            log.warning("could not journal %s (%s): %s", kind, message, exc)

    # -- log files -------------------------------------------------------------------------------

    def log_sources(self) -> list[LogSource]:
        """DeployEx's own logs and those of every replica the feed knows about."""
        catalog = self.catalog
        sources = [
            LogSource(
                f"{DEPLOYEX_SERVICE}:stdout",
                "DeployEx stdout",
                DEPLOYEX_SERVICE,
                "stdout",
                catalog.deployex_stdout_log,
            ),
            LogSource(
                f"{DEPLOYEX_SERVICE}:stderr",
                "DeployEx stderr",
                DEPLOYEX_SERVICE,
                "stderr",
                catalog.deployex_stderr_log,
            ),
        ]
        snapshot = self.feed.snapshot
        for app in snapshot.apps if snapshot else ():
            for replica in sorted(app.replicas, key=lambda r: r.slot):
                sources += replica_sources(catalog, app.app, replica.sname)
        return sources


def replica_sources(catalog: Catalog, app: str, sname: str) -> list[LogSource]:
    return [
        LogSource(
            f"{sname}:stdout", f"{sname} stdout", sname, "stdout", catalog.stdout_log(app, sname)
        ),
        LogSource(
            f"{sname}:stderr", f"{sname} stderr", sname, "stderr", catalog.stderr_log(app, sname)
        ),
    ]
