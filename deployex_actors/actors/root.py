"""The root supervisor, globalName "deployex": Storage, the Watchdog, the ConfigWatcher,
the Logs (history), the Notifier, the Web (dashboard) and one Deployer per app; the status
cache the front ends read; the router of their requests.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import time
import uuid
from dataclasses import dataclass, replace
from typing import Any

from deployex_actors import __version__
from deployex_actors.actors.messages import (
    AppChanged,
    ApplyConfig,
    ApplyConfigChange,
    Boot,
    ConfigChanged,
    DiscardConfig,
    EventsQuery,
    FullRestart,
    GhostsQuery,
    Journal,
    JournalSubscribers,
    LogServicesQuery,
    LogsQuery,
    MetricsQuery,
    NotifyTest,
    ObserverCall,
    PendingConfigQuery,
    Ping,
    Record,
    ReloadConfig,
    Reply,
    Request,
    RestartCommand,
    RestartDeployex,
    SetMode,
    ShellCommandQuery,
    StartConfigWatcher,
    StartDeployer,
    StartLogs,
    StartNotifier,
    StartStorage,
    StartWatchdog,
    StartWeb,
    StateProblem,
    StatusQuery,
    StopReplicas,
    StorageMoved,
    Timer,
    Unghost,
    VersionsQuery,
)
from deployex_actors.actors.supervisor import CHILD_START_S, ChildSpec, Supervisor
from deployex_actors.catalog import short_hostname
from deployex_actors.core.status import AppSnapshot, DeployexSnapshot

log = logging.getLogger(__name__)
GLOBAL_NAME = "deployex"
STORAGE = ChildSpec("storage", "deployex_actors.actors.storage.Storage")
WATCHDOG = ChildSpec("watchdog", "deployex_actors.actors.watchdog.Watchdog")
WEB = ChildSpec("web", "deployex_actors.actors.web.Web")
CONFIG_WATCHER = ChildSpec("config_watcher", "deployex_actors.actors.config_watcher.ConfigWatcher")
LOGS = ChildSpec("logs", "deployex_actors.actors.logs.Logs")
NOTIFIER = ChildSpec("notifier", "deployex_actors.actors.notifier.Notifier")
DEPLOYER_CLASS = "deployex_actors.actors.deployer.Deployer"
# children that get every journal entry from Storage (`Journaled`), started after it
JOURNAL_SUBSCRIBERS: tuple[ChildSpec, ...] = (LOGS, NOTIFIER)


def deployer_name(app: str) -> str:
    return f"deployer:{app}"


@dataclass(frozen=True)
class Route:
    to: str | None  # a child's name; None: the Deployer of the app the request names
    per_app: bool = False  # the request names an app, which must be configured
    reconsider: bool = False  # the change matters to the app's Deployer: it is told when stored


ROUTES: dict[type[Request], Route] = {
    Record: Route(STORAGE.name),
    VersionsQuery: Route(STORAGE.name),
    EventsQuery: Route(STORAGE.name),
    MetricsQuery: Route(WATCHDOG.name),
    LogsQuery: Route(LOGS.name),
    LogServicesQuery: Route(LOGS.name),
    GhostsQuery: Route(STORAGE.name, per_app=True),
    Unghost: Route(STORAGE.name, per_app=True, reconsider=True),
    SetMode: Route(None, per_app=True),  # the Deployer's Fetcher checks the bucket first
    RestartCommand: Route(None, per_app=True),
    FullRestart: Route(None, per_app=True),
    ShellCommandQuery: Route(None, per_app=True),
    ObserverCall: Route(None, per_app=True),
    PendingConfigQuery: Route(CONFIG_WATCHER.name),
    ApplyConfig: Route(CONFIG_WATCHER.name),
    DiscardConfig: Route(CONFIG_WATCHER.name),
    ReloadConfig: Route(CONFIG_WATCHER.name),
    NotifyTest: Route(NOTIFIER.name),
}


class Root(Supervisor):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.boot: Boot | None = None
        self.apps: dict[str, AppSnapshot] = {}
        self.started_at = time.time()
        self.stopping: dict[str, Any] = {}  # request id -> (launcher's request, apps left)
        self.restart_by: str | None = None
        self.state_error: str | None = None
        self.leaving: dict[str, str] = {}  # request id -> app removed, its replicas stopping
        self.awaiting: set[str] = set()  # journal subscribers not up yet, at boot
        self.booted = False  # the children after the subscribers are started

    def receiveMsg_Boot(self, message: Boot, sender: Any) -> None:
        if self.boot is None:
            self.boot = message
            self.start_child(STORAGE)
            self.start_child(WATCHDOG)
            self.start_child(CONFIG_WATCHER)
            for app in message.config.applications:
                self.apps[app.name] = AppSnapshot(app.name, app.language, app.replicas)
            # The rest starts once the journal subscribers are up (or after CHILD_START_S):
            # a subscriber's address handed to Storage before it is up reaches Storage after
            # entries journaled meanwhile (measured), and those would never be notified.
            self.awaiting = {spec.name for spec in JOURNAL_SUBSCRIBERS}
            for spec in JOURNAL_SUBSCRIBERS:
                self.start_child(spec)
            self.after(CHILD_START_S, "boot-rest")
            if not self.awaiting:
                self._boot_rest()
        self.send(sender, Reply(message.request_id, "booted"))

    def _boot_rest(self) -> None:
        if self.booted:
            return
        self.booted = True
        if self.boot.config.dashboard_enabled:
            self.start_child(WEB)
        for app in self.boot.config.applications:
            self._start_app(app.name)
        self._journal("deployex_started", f"DeployEx {__version__} started (pid {os.getpid()})",
                      details={"version": __version__})  # fmt: skip

    def on_child_up(self, name: str) -> None:
        if name in {spec.name for spec in JOURNAL_SUBSCRIBERS}:
            self._tell_subscribers()
            self.awaiting.discard(name)
            if not self.awaiting:
                self._boot_rest()

    def on_timer(self, timer: Timer) -> None:
        if timer.kind == "boot-rest":
            self._boot_rest()  # a subscriber slow to start delays no deployment
        else:
            super().on_timer(timer)

    def init_message(self, name: str) -> Any:
        config = self.boot.config
        if name == STORAGE.name:
            return StartStorage(config)
        if name == WATCHDOG.name:
            return StartWatchdog(config, self.child(STORAGE.name))
        if name == CONFIG_WATCHER.name:
            return StartConfigWatcher(config, self.child(STORAGE.name))
        if name == LOGS.name:
            return StartLogs(config)
        if name == WEB.name:
            boot = self.boot
            return StartWeb(config, boot.admin_hashed_password, boot.secret_key_base)
        if name == NOTIFIER.name:
            return StartNotifier(config, self.child(STORAGE.name), self.boot.channel_secrets)
        app = name.removeprefix("deployer:")
        return StartDeployer(
            config, app, self.boot.cookie, self.child(STORAGE.name), self.boot.tls_optfile
        )

    def on_child_started(self, name: str, address: Any, restarted: bool) -> None:
        if name == STORAGE.name or name in {spec.name for spec in JOURNAL_SUBSCRIBERS}:
            self._tell_subscribers()
        if restarted and name == STORAGE.name:
            for child_name, child in self.children().items():
                if child_name != name:
                    self.send(child, StorageMoved(address))
        if restarted:
            self._journal("actor_restart", f"{name} restarted by its supervisor")

    def on_child_failed(self, name: str, delay_s: float) -> None:
        if name in {spec.name for spec in JOURNAL_SUBSCRIBERS}:
            self._tell_subscribers()  # none is sent to a dead address meanwhile
        app = name.removeprefix("deployer:")
        if app in self.apps:  # its replicas keep running; their status is stale until it is back
            note = f"the Deployer died and restarts in {delay_s:.1f} s; status may be stale"
            self.apps[app] = replace(self.apps[app], error=note)

    # -- status and queries ----------------------------------------------------------------------

    def receiveMsg_AppChanged(self, message: AppChanged, sender: Any) -> None:
        if message.snapshot.app in self.apps:  # not an app removed meanwhile
            self.apps[message.snapshot.app] = message.snapshot

    def receiveMsg_StatusQuery(self, message: StatusQuery, sender: Any) -> None:
        snapshot = DeployexSnapshot(
            version=__version__,
            pid=os.getpid(),
            started_at=self.started_at,
            host=short_hostname(),
            apps=tuple(self.apps.values()),
            state_error=self.state_error,
        )
        self.send(sender, Reply(message.request_id, snapshot))

    def receiveMsg_StateProblem(self, message: StateProblem, sender: Any) -> None:
        self.state_error = message.error

    def receiveMsg_Ping(self, message: Ping, sender: Any) -> None:
        # The launcher's health check reads a requested restart from the answer. Before the
        # launcher's Boot there is no app to show: "up" would send a front end to an empty tree.
        if self.boot is None:
            self.send(sender, Reply(message.request_id, error="DeployEx is starting"))
            return
        self.send(sender, Reply(message.request_id, "restart" if self.restart_by else "pong"))

    def receiveMsg_RestartDeployex(self, message: RestartDeployex, sender: Any) -> None:
        self.restart_by = message.actor
        self._journal("deployex_restart", "DeployEx restart requested", message.actor)
        self.send(sender, Reply(message.request_id, "restarting"))
        if self.boot is not None and self.boot.launcher_pid:  # it asks at once, not in 10 s
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(self.boot.launcher_pid, signal.SIGUSR1)

    def receiveMsg_Request(self, message: Request, sender: Any) -> None:
        """Every other request goes to the child its route names (see ROUTES)."""
        route, target, error = ROUTES.get(type(message)), None, None
        if route is None:
            error = f"no route for {type(message).__name__}"
        elif route.per_app and message.app not in self.apps:
            error = f"no application {message.app!r} (configured: {', '.join(self.apps) or 'none'})"
        elif (target := self.child(name := route.to or deployer_name(message.app))) is None:
            error = f"{name} is restarting; try again"
        if error is not None:
            self.send(sender, Reply(message.request_id, error=error))
            return
        if route.reconsider:  # the app's Deployer is told once the change is stored
            message = replace(message, deployer=self.child(deployer_name(message.app)))
        self.send(target, replace(message, reply_to=sender))

    # -- an approved configuration change (actors.config_watcher) ------------------------------

    def receiveMsg_ApplyConfigChange(self, message: ApplyConfigChange, sender: Any) -> None:
        """Restarted children get the new configuration from `init_message`; running ones are
        told: every child but the Deployers, and the Deployers of the apps that changed."""
        self.boot = replace(self.boot, config=message.config)
        change = message.diff
        told = ConfigChanged(message.config)
        for name, address in self.children().items():
            app = name.removeprefix("deployer:") if name.startswith("deployer:") else None
            if app is None or app in change.changed_apps:
                self.send(address, told)
        for app in change.added_apps:
            self._start_app(app)
        for app in change.removed_apps:
            self._remove_app(app)

    def _start_app(self, name: str) -> None:
        app = self.boot.config.application(name)
        self.apps[name] = AppSnapshot(name, app.language, app.replicas)
        self.start_child(ChildSpec(deployer_name(name), DEPLOYER_CLASS))

    def _remove_app(self, app: str) -> None:
        """Its replicas are stopped first; then its Deployer (with its Monitors) goes."""
        deployer = self.child(deployer_name(app))
        if deployer is None:  # between two lives: nothing runs it now; forget it
            self._app_removed(app)
            return
        inner = uuid.uuid4().hex
        self.leaving[inner] = app
        self.send(deployer, StopReplicas(inner))

    def _app_removed(self, app: str) -> None:
        self.stop_child(deployer_name(app))
        self.apps.pop(app, None)
        self._journal("app_removed", f"{app} removed from the configuration: its replicas "
                      "are stopped")  # fmt: skip

    # -- deliberate stop -------------------------------------------------------------------------

    def receiveMsg_StopReplicas(self, message: StopReplicas, sender: Any) -> None:
        deployers = {n: a for n, a in self.children().items() if n.startswith("deployer:")}
        if not deployers:
            self.send(sender, Reply(message.request_id, "stopped"))
            return
        inner = uuid.uuid4().hex
        self.stopping[inner] = [message, sender, set(deployers)]
        for address in deployers.values():
            self.send(address, StopReplicas(inner))

    def receiveMsg_Reply(self, message: Reply, sender: Any) -> None:
        if message.request_id in self.leaving:
            self._app_removed(self.leaving.pop(message.request_id))
            return
        entry = self.stopping.get(message.request_id)
        if entry is None:
            return
        request, requester, waiting = entry
        waiting.discard(deployer_name(message.value))
        if not waiting:
            del self.stopping[message.request_id]
            self.send(requester, Reply(request.request_id, "stopped"))

    def _tell_subscribers(self) -> None:
        storage = self.child(STORAGE.name)
        if storage is not None:
            named = (self.child(spec.name) for spec in JOURNAL_SUBSCRIBERS)
            self.send(storage, JournalSubscribers(tuple(a for a in named if a is not None)))

    def _journal(
        self, kind: str, message: str, actor: str = "deployex", details: dict | None = None
    ) -> None:
        storage = self.child(STORAGE.name)
        if storage is not None:
            self.send(storage, Journal(kind, message, actor, details=details or {}))
