"""Every message the actors exchange, as small frozen dataclasses (pickled by thespian).

Requests that expect an answer carry a `request_id` and a `reply_to` address, so a reply can be
sent from whichever actor finally serves it, and an external caller can match it to its request
(thespian's `ask()` returns the next message, whatever it answers).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from deployex_actors.config import Config
from deployex_actors.core.hot_upgrade_steps import Target
from deployex_actors.core.status import AppSnapshot, ReplicaSnapshot
from deployex_actors.secrets.references import NamedSecrets

# -- generic -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Request:
    """A request that expects a `Reply`: whoever serves it answers `reply_to` (the original
    asker when a router passed it on), or the sender when nobody set it."""

    request_id: str
    reply_to: Any = field(default=None, kw_only=True, compare=False)


@dataclass(frozen=True)
class Reply:
    request_id: str
    value: Any = None
    error: str | None = None


@dataclass(frozen=True)
class Journal:
    """A journal entry for Storage to persist (deployments, crashes, operator actions...)."""

    kind: str
    message: str
    actor: str
    app: str | None = None
    sname: str | None = None
    # what a notification's payload needs beyond the text (version, crash count, ...)
    details: dict[str, Any] = field(default_factory=dict, compare=False)


@dataclass(frozen=True)
class ChildUp:
    """Any actor -> whoever sent its first message (its supervisor): it runs, as this pid."""

    pid: int


@dataclass(frozen=True)
class Journaled:
    """Storage -> each journal subscriber (root children such as the Notifier and the Logs):
    an entry as it arrives, whether or not the database could write it yet; `at` in epoch s."""

    entry: Journal
    at: float


@dataclass(frozen=True)
class JournalSubscribers:
    """Root -> Storage: who gets every `Journaled` entry (sent again whenever one restarts)."""

    addresses: tuple[Any, ...]


@dataclass(frozen=True)
class StateProblem:
    """Storage -> root: the state database cannot be written (`error`), or can again (None)."""

    error: str | None


# -- launcher and clients -> root ----------------------------------------------------------------


@dataclass(frozen=True)
class Boot(Request):
    config: Config
    cookie: str
    tls_optfile: str | None = None
    admin_hashed_password: str = ""  # for the dashboard
    secret_key_base: str = ""
    launcher_pid: int = 0  # woken by SIGUSR1 when a restart is asked (service._serve)
    channel_secrets: NamedSecrets = field(default_factory=NamedSecrets)  # for the Notifier


@dataclass(frozen=True)
class StartWeb:
    config: Config
    admin_hashed_password: str
    secret_key_base: str


@dataclass(frozen=True)
class Ping(Request):
    """Is DeployEx up? Answered "pong", or "restart" when a restart was requested."""


@dataclass(frozen=True)
class StopReplicas(Request):
    """Stop every replica (a deliberate `deployex run` shutdown); replied to when all are down."""


@dataclass(frozen=True)
class StatusQuery(Request):
    """The `DeployexSnapshot` the root keeps from its Deployers' reports."""


@dataclass(frozen=True)
class VersionsQuery(Request):
    app: str


@dataclass(frozen=True)
class EventsQuery(Request):
    app: str | None = None
    kind: str | None = None
    limit: int = 100


@dataclass(frozen=True)
class RestartCommand(Request):
    """Forced restart of one replica, or of every replica of the app when `sname` is None."""

    app: str
    sname: str | None = None
    actor: str = "operator"
    reason: str = "restart requested"


@dataclass(frozen=True)
class ShellCommandQuery(Request):
    """The replica's Monitor: the command of a remote shell on its node (beam.launch's
    remote_shell_command: argv, environment, folder), for a terminal; an error unless running."""

    app: str
    sname: str


@dataclass(frozen=True)
class ObserverCall(Request):
    """The replica's Monitor: one observer call on its node (beam.observer.Observer: system,
    apps, top, process, ports, ets, trace_start, trace_fetch, trace_stop), by `actor`."""

    app: str
    sname: str
    call: str
    args: tuple = ()
    actor: str = "operator"


@dataclass(frozen=True)
class SetMode(Request):
    """Pin `version` (manual mode), or follow current.json again when it is None."""

    app: str
    version: str | None
    actor: str = "operator"
    # Filled on the way (root -> Deployer -> its Fetcher -> Deployer -> Storage): whether the
    # bucket holds `version`, and whom to tell once the mode is stored.
    bucket_checked: bool = False
    in_bucket: bool = False
    bucket_error: str | None = None
    deployer: Any = None


@dataclass(frozen=True)
class GhostsQuery(Request):
    app: str


@dataclass(frozen=True)
class Unghost(Request):
    """Remove one ghosted version, or all of the app's when `version` is None."""

    app: str
    version: str | None = None
    actor: str = "operator"
    deployer: Any = None  # told to reconsider once the ghost is gone (set by the root)


@dataclass(frozen=True)
class FullRestart(Request):
    """Replace every replica, one at a time, with a fresh sname running the same version."""

    app: str
    actor: str = "operator"


@dataclass(frozen=True)
class MetricsQuery(Request):
    """Samples of `target` newer than `since`; the list of targets when `target` is None;
    the latest sample of every target when `latest`; with `batch` ({target: since}), the samples
    of each of those targets newer than its time, in one answer."""

    target: str | None
    since: float = 0.0
    latest: bool = False
    batch: dict[str, float] | None = None


@dataclass(frozen=True)
class LogsQuery(Request):
    """The Logs actor: kept lines newer than `since` (epoch s) and not newer than `until`, of
    `snames` (None: all) or of `app`, of `streams`, containing `grep` (case-insensitive); the
    newest `limit`, or with `after_id` the oldest after that line (a follower's cursor).
    Answered with a core.log_history.HistoryResult."""

    since: float
    until: float | None = None
    snames: tuple[str, ...] | None = None
    app: str | None = None
    streams: tuple[str, ...] = ("stdout", "stderr")
    grep: str | None = None
    limit: int = 1000
    after_id: int | None = None


@dataclass(frozen=True)
class LogServicesQuery(Request):
    """The Logs actor: every service with kept lines (core.log_history.LogService)."""


@dataclass(frozen=True)
class RestartDeployex(Request):
    """Restart DeployEx itself; its replicas keep running and are adopted again."""

    actor: str = "operator"


@dataclass(frozen=True)
class PendingConfigQuery(Request):
    """The ConfigWatcher: the pending change (core.config_watch.PendingConfig)."""


@dataclass(frozen=True)
class ApplyConfig(Request):
    """Apply the pending configuration change, as `actor`; `checksum`, when given, is the file
    content the operator reviewed (refused if the file changed since)."""

    actor: str = "operator"
    checksum: str | None = None


@dataclass(frozen=True)
class DiscardConfig(Request):
    """Drop the pending configuration change (not offered again until the file changes)."""

    actor: str = "operator"
    checksum: str | None = None


@dataclass(frozen=True)
class ReloadConfig(Request):
    """Read the YAML file again now (SIGHUP to `deployex run`); answered with the
    PendingConfig."""

    actor: str = "sighup"


@dataclass(frozen=True)
class Record(Request):
    """A front end's journal entry (a login, a logout...): persisted by Storage."""

    entry: Journal


@dataclass(frozen=True)
class NotifyTest(Request):
    """The Notifier: send a `test` notification to channel `channel` (its number, or an adapter
    name: those channels), or to every enabled channel; answered with a tuple of
    `ChannelTested` once every channel answered or failed."""

    channel: str | None = None


@dataclass(frozen=True)
class ChannelTested:
    label: str  # "#2 slack": never the URL
    delivered: bool
    detail: str  # "HTTP 200", "HTTP 500", "timed out after 10 s"...


@dataclass(frozen=True)
class Reconsider:
    """Something the Deployer depends on changed (mode, ghosts): read the desired version now."""


# -- root -> children ----------------------------------------------------------------------------


@dataclass(frozen=True)
class StartStorage:
    config: Config


@dataclass(frozen=True)
class StartDeployer:
    config: Config
    app: str
    cookie: str
    storage: Any
    tls_optfile: str | None = None


@dataclass(frozen=True)
class ConfigChanged:
    """Root -> a child: an applied configuration change (the config watcher, after approval);
    the child adopts what it can change while running (e.g. a retention, the channels)."""

    config: Config


@dataclass(frozen=True)
class StartConfigWatcher:
    config: Config  # the applied configuration; its `source` is the file watched
    storage: Any


@dataclass(frozen=True)
class ApplyConfigChange:
    """ConfigWatcher -> root: an operator approved `config` (core.config_watch.approve); the
    root runs it: children told, apps added started, apps removed stopped."""

    config: Config
    diff: Any  # core.config_diff.ConfigDiff


@dataclass(frozen=True)
class StartNotifier:
    config: Config
    storage: Any
    secrets: NamedSecrets  # the values of the channels' `secret:NAME`s


@dataclass(frozen=True)
class StorageMoved:
    """Storage was restarted and has a new address."""

    storage: Any


@dataclass(frozen=True)
class StartLogs:
    config: Config


@dataclass(frozen=True)
class StartWatchdog:
    config: Config
    storage: Any


# -- deployer <-> storage, deployer <-> fetcher ---------------------------------------------------


@dataclass(frozen=True)
class StartFetcher:
    """Fetcher: serve `app`, and read its current.json every `deploy_schedule_interval_ms`,
    telling the sender (its Deployer) a CurrentRead only when what it reads has changed."""

    config: Config
    app: str = ""


@dataclass(frozen=True)
class ReadCurrent:
    """Fetcher: read the app's current.json from the bucket."""

    app: str


@dataclass(frozen=True)
class CurrentRead:
    app: str
    version: str | None = None
    hash: str | None = None
    pre_commands: tuple[str, ...] = ()
    error: str | None = None


@dataclass(frozen=True)
class ReadDesired:
    """Storage: the app's mode (and pinned version), its ghosts and its last good version; in
    automatic mode the Deployer then asks its Fetcher for current.json."""

    app: str


@dataclass(frozen=True)
class DesiredRead:
    app: str
    version: str | None = None
    hash: str | None = None
    pre_commands: tuple[str, ...] = ()
    mode: str = "automatic"
    ghosts: tuple[str, ...] = ()
    error: str | None = None
    last_good: str | None = None  # newest version in the history that is not ghosted


@dataclass(frozen=True)
class Ghost:
    app: str
    version: str
    reason: str
    sname: str | None = None


@dataclass(frozen=True)
class PrepareRelease:
    """Fetcher: download the version's tarball and unpack it as the sname's `current/` folder;
    when it replaces a replica (`replaces`, running `replaces_version`) and is a hot upgrade of
    it (core.hot_upgrade), place the tarball in that replica's release instead and say so."""

    app: str
    sname: str
    version: str
    replaces: str | None = None
    replaces_version: str | None = None
    pre_commands: tuple[str, ...] = ()  # current.json's: a hot upgrade runs them first


@dataclass(frozen=True)
class HotUpgrade:
    """Monitor of `sname`: hot-upgrade the running replica to `target.to_version`; its tarball is
    in place (core.hot_upgrade_steps). Answered with HotUpgradeEnded."""

    app: str
    sname: str
    target: Target


@dataclass(frozen=True)
class HotUpgradeEnded:
    sname: str
    target: Target
    ok: bool
    message: str
    ghost: bool = False  # failed because of the version: ghost it


@dataclass(frozen=True)
class ReleasePrepared:
    app: str
    sname: str
    version: str
    error: str | None = None
    kind_reason: str | None = None  # why a full deployment, or that it is a hot upgrade
    hot_upgrade: HotUpgrade | None = None  # set: nothing was unpacked for `sname`, upgrade this


@dataclass(frozen=True)
class RecordVersion:
    app: str
    sname: str
    version: str
    hash: str | None = None
    pre_commands: tuple[str, ...] = ()
    kind: str = "full_deployment"


# -- deployer <-> monitor ------------------------------------------------------------------------


@dataclass(frozen=True)
class ReplicaSpec:
    """What a Monitor needs to run (or adopt) one replica."""

    config: Config
    app: str
    sname: str
    version: str
    slot: int
    cookie: str
    pre_commands: tuple[str, ...] = ()
    tls_optfile: str | None = None
    adopt_only: bool = False  # True: adopt from the pidfile, never start a new process
    crash_restarts: int = 0  # counters carried over when a Monitor is replaced
    forced_restarts: int = 0
    deployed_at: float = 0.0  # when the deployment of this sname began (the rollback timer)
    ready_once: bool = False  # known ready once already (adopted, or a replaced Monitor's word)


@dataclass(frozen=True)
class StartReplica:
    spec: ReplicaSpec


@dataclass(frozen=True)
class ForceRestart:
    actor: str = "operator"
    reason: str = "restart requested"


@dataclass(frozen=True)
class StopReplica:
    reason: str = "stop requested"


@dataclass(frozen=True)
class ReplicaChanged:
    snapshot: ReplicaSnapshot


@dataclass(frozen=True)
class ReplicaStopped:
    sname: str


@dataclass(frozen=True)
class AppChanged:
    snapshot: AppSnapshot


@dataclass(frozen=True)
class Timer:
    """A wakeup payload: `kind` says what to do, `generation` lets stale timers be ignored."""

    kind: str
    key: str = ""
    generation: int = 0
