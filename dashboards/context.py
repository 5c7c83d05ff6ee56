"""What every page of one dashboard process shares: settings, the gateway to DeployEx, the live
feed, the log follower, the login sessions and the journal."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from dashboards.auth import SessionStore
from dashboards.feed import Feed
from dashboards.gateway import Gateway
from dashboards.settings import Settings
from dashboards.tail import LogFollower, LogSource
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
