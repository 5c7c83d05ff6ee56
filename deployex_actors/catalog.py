"""The catalog: the one place that knows every path and name DeployEx uses.

Disk layout (compatible with upstream DeployEx):

    {var_path}/                                            private: 0700, DeployEx's user only
    {var_path}/deployex.db                                 durable state (SQLite, WAL)
    {var_path}/logs.db                                     log history (SQLite, WAL)
    {var_path}/actor_system.key                            key that signs actor system frames
    {var_path}/samples.sock                                the sample channel (Monitors -> Watchdog)
    {var_path}/service/{app}/{sname}/{new,current,previous}/
    {var_path}/service/{app}/{sname}.pid                   pidfile of the replica (pid + start time)
    {monitored_app_log_path}/{app}/{sname}-stdout.log      replica logs (and -stderr.log)
    {log_path}/deployex-stdout.log                         DeployEx's own logs (and -stderr.log)

Bucket layout:

    versions/{app}/{account_name}/current.json
    dist/{app}/{app}-{version}.tar.gz
"""

from __future__ import annotations

import re
import secrets
import socket
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from deployex_actors.config import Config

SNAME_SUFFIX_ALPHABET = "0123456789abcdefghijklmnopqrstuvwxyz"
SNAME_SUFFIX_LENGTH = 6
_SNAME_RE = re.compile(
    rf"^(?P<app>[A-Za-z_][A-Za-z0-9_]*)-(?P<suffix>[0-9a-z]{{{SNAME_SUFFIX_LENGTH}}})$"
)
TARBALL_SUFFIX = ".tar.gz"


def new_sname(app: str) -> str:
    """A fresh replica name `{app}-{6 chars [0-9a-z]}`; every full deployment gets a new one."""
    suffix = "".join(secrets.choice(SNAME_SUFFIX_ALPHABET) for _ in range(SNAME_SUFFIX_LENGTH))
    return f"{app}-{suffix}"


def app_of_sname(sname: str) -> str | None:
    """The app an sname belongs to, or None when it is not an sname."""
    match = _SNAME_RE.match(sname)
    return match["app"] if match else None


def is_app_name(name: str) -> bool:
    """Whether `name` could be an app's name (a folder of `monitored_app_log_path`)."""
    return app_of_sname(f"{name}-{'0' * SNAME_SUFFIX_LENGTH}") == name


def short_hostname() -> str:
    """The host part of node names, as `erl -sname` computes it."""
    return socket.gethostname().split(".", 1)[0]


def node_name(sname: str, host: str | None = None) -> str:
    """The Erlang node name of a replica: `{sname}@{short hostname}`."""
    return f"{sname}@{host or short_hostname()}"


# -- bucket keys ---------------------------------------------------------------------------------


def current_json_key(app: str, account_name: str) -> str:
    return f"versions/{app}/{account_name}/current.json"


def dist_prefix(app: str) -> str:
    return f"dist/{app}/"


def tarball_key(app: str, version: str) -> str:
    return f"{dist_prefix(app)}{app}-{version}{TARBALL_SUFFIX}"


def version_of_tarball_key(app: str, key: str) -> str | None:
    """`dist/{app}/{app}-1.2.3.tar.gz` -> `1.2.3`; None for any other key."""
    name = key.removeprefix(dist_prefix(app))
    head = f"{app}-"
    if name == key or "/" in name or not name.startswith(head) or not name.endswith(TARBALL_SUFFIX):
        return None
    version = name[len(head) : -len(TARBALL_SUFFIX)]
    return version or None


# -- disk paths ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Catalog:
    """Paths under the configured roots. Build it with `Catalog.from_config(config)`."""

    var_path: Path
    log_path: Path
    monitored_app_log_path: Path

    @classmethod
    def from_config(cls, config: Config) -> Catalog:
        return cls(
            var_path=Path(config.var_path),
            log_path=Path(config.log_path),
            monitored_app_log_path=Path(config.monitored_app_log_path),
        )

    # durable state
    @property
    def state_db(self) -> Path:
        return self.var_path / "deployex.db"

    # DeployEx's own files
    @property
    def deployex_stdout_log(self) -> Path:
        return self.log_path / "deployex-stdout.log"

    @property
    def deployex_stderr_log(self) -> Path:
        return self.log_path / "deployex-stderr.log"

    @property
    def thespian_log(self) -> Path:
        return self.log_path / "thespian.log"

    @property
    def logs_db(self) -> Path:
        # the log history (SQLite, WAL), written only by the Logs actor
        return self.var_path / "logs.db"

    @property
    def upgrades_dir(self) -> Path:
        # wheels uploaded through the dashboard's "Upgrade DeployEx" page
        return self.var_path / "upgrades"

    @property
    def upgrade_log(self) -> Path:
        # the progress of the last self-upgrade started from the dashboard
        return self.var_path / "upgrade.log"

    @property
    def actor_key(self) -> Path:
        return self.var_path / "actor_system.key"

    @property
    def samples_socket(self) -> Path:
        return self.var_path / "samples.sock"

    @property
    def private_folders(self) -> tuple[Path, ...]:
        return (self.var_path, self.log_path, self.monitored_app_log_path)

    # replicas
    def app_service_dir(self, app: str) -> Path:
        return self.var_path / "service" / app

    def sname_dir(self, app: str, sname: str) -> Path:
        return self.app_service_dir(app) / sname

    def new_dir(self, app: str, sname: str) -> Path:
        return self.sname_dir(app, sname) / "new"

    def current_dir(self, app: str, sname: str) -> Path:
        return self.sname_dir(app, sname) / "current"

    def previous_dir(self, app: str, sname: str) -> Path:
        return self.sname_dir(app, sname) / "previous"

    def pidfile(self, app: str, sname: str) -> Path:
        # Next to the service folder, so removing the folder never loses track of a live process.
        return self.app_service_dir(app) / f"{sname}.pid"

    def app_log_dir(self, app: str) -> Path:
        return self.monitored_app_log_path / app

    def stdout_log(self, app: str, sname: str) -> Path:
        return self.app_log_dir(app) / f"{sname}-stdout.log"

    def stderr_log(self, app: str, sname: str) -> Path:
        return self.app_log_dir(app) / f"{sname}-stderr.log"

    def snames_on_disk(self, app: str) -> list[str]:
        """Replica folders that exist for an app, sorted by name."""
        folder = self.app_service_dir(app)
        if not folder.is_dir():
            return []
        return sorted(
            p.name for p in folder.iterdir() if p.is_dir() and app_of_sname(p.name) == app
        )


def tls_dist_optfile(var_path: Path) -> Path:
    """The `-ssl_dist_optfile` DeployEx writes for itself and its replicas."""
    return var_path / "inet_tls.conf"
