"""The configuration as frozen dataclasses, with upstream DeployEx's defaults.

Field names are the YAML keys. Keys that upstream does not have are marked "ours" and documented
in docs/configuration.md. Each default is written here only: the loader reads the defaults, and what
it checks of a YAML value (allowed values, bounds, name formats), from these fields, so the two
cannot drift apart.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import MISSING, dataclass, field
from pathlib import Path
from typing import Any, Literal

from deployex_actors.errors import ConfigError

NOTIFICATION_EVENTS = (
    "all",
    "crash_restart",
    "deployment_started",
    "deployment_complete",
    "application_ready",
    "deployment_shutdown",
    "watchdog_threshold_exceeded",
    "watchdog_threshold_warning",
    "certificate_renewed",
    "certificate_valid",
    "certificate_failed",
    "config_changed",
    "config_change_applied",
    # ours (docs/notifications.md)
    "config_change_refused",
    "ghosted",
    "hot_upgrade_started",
    "hot_upgrade_step",
    "hot_upgraded",
    "hot_upgrade_failed",
)
# An app name ends up in Erlang node names `{app}-xxxxxx@{host}`, atoms of at most 255 characters,
# with a short host name of up to 64; and in file names (at most 255 bytes) such as
# `{app}-xxxxxx-stdout.log`. 255 - len("-xxxxxx@") - 64:
MAX_APP_NAME = 183
MAX_FILE_NAME = 255  # bytes in one file name (NAME_MAX); the account name is a bucket folder
NOT_YAML = {"yaml": False}  # metadata of a field that is not read from the file
# how the loader checks a string beyond its type (see `checked`)
Form = Literal["env_name", "app_name", "folder_name", "scalar"]


def checked(
    default: Any = MISSING,
    *,
    choices: Sequence[str] = (),
    minimum: int | None = None,
    maximum: int | None = None,
    form: Form | None = None,
    not_above: str | None = None,
    local_default: str | None = None,
    types: Sequence[str] = (),
) -> Any:
    """A field with what the loader checks of its YAML value, so that lives next to its default.

    `choices`: allowed values (of each item, for a list of strings). `minimum`/`maximum`: bounds of
    an integer. `form`: "env_name", "app_name", "folder_name" or "scalar" (any YAML scalar,
    written as upstream's env export writes it). `not_above`: a sibling field this one may not
    exceed. `local_default`: the default when `release_adapter` is local (upstream's dev roots).
    `types`: for a list of entries with a `type`, the allowed types, each at most once.
    """
    metadata = {
        "choices": tuple(choices),
        "minimum": minimum,
        "maximum": maximum,
        "form": form,
        "not_above": not_above,
        "local_default": local_default,
        "types": tuple(types),
    }
    return field(
        default=default, metadata={k: v for k, v in metadata.items() if v not in (None, ())}
    )


@dataclass(frozen=True)
class Monitoring:
    """A watched resource: warn at `warning_threshold_percent`, restart at the restart one."""

    type: str
    enable_restart: bool = True
    warning_threshold_percent: int = checked(
        75, minimum=1, maximum=100, not_above="restart_threshold_percent"
    )
    restart_threshold_percent: int = checked(90, minimum=1, maximum=100)


@dataclass(frozen=True)
class ReplicaPort:
    """Port variable `key`; slot i of the app gets `base + i`."""

    key: str = checked(form="env_name")
    base: int = checked(minimum=1, maximum=65535)


@dataclass(frozen=True)
class EnvVar:
    key: str = checked(form="env_name")
    value: str = checked("", form="scalar")


@dataclass(frozen=True)
class Notification:
    adapter: str = checked(choices=("webhook", "slack", "pagerduty"))
    url: str | None = None
    enabled: bool = True
    events: tuple[str, ...] = checked(("all",), choices=NOTIFICATION_EVENTS)
    options: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Certificate:
    """ACME certificate settings; accepted for compatibility, not acted upon yet."""

    type: str = checked(choices=("domains",))
    domains: tuple[str, ...] = checked()
    dns_provider: str = checked(choices=("route53", "cloudflare"))
    acme_provider: str = checked(choices=("lets_encrypt",))
    importer: str | None = checked(None, choices=("route53", "acm"))
    # the entry's other keys, kept as they are (so they are not warned about)
    settings: dict[str, Any] = field(default_factory=dict, metadata={"rest": True})


@dataclass(frozen=True)
class Readiness:
    """Ours: what else "ready" requires, beyond running `ready_after_ms`.

    tcp: the replica's port accepts a connection; http: GET `path` on it answers 2xx;
    otp: the node answers over distribution. `port` names a replica_ports key (default: first).
    """

    type: str = checked(choices=("tcp", "http", "otp"))
    path: str = "/"
    port: str | None = None
    timeout_ms: int = checked(1_000, minimum=1)
    interval_ms: int = checked(500, minimum=10)


@dataclass(frozen=True)
class Application:
    name: str = checked(form="app_name")
    language: str = checked("elixir", choices=("elixir", "erlang", "gleam"))
    replicas: int = checked(3, minimum=1, maximum=100)
    deploy_rollback_timeout_ms: int = checked(600_000, minimum=1000)
    deploy_schedule_interval_ms: int = checked(5_000, minimum=100)
    replica_ports: tuple[ReplicaPort, ...] = ()
    env: tuple[EnvVar, ...] = ()
    monitoring: tuple[Monitoring, ...] = checked((), types=("atom", "process", "port"))
    certificates: tuple[Certificate, ...] = ()
    # ours
    ready_after_ms: int = checked(30_000, minimum=0)
    restart_backoff_base_ms: int = checked(2_000, minimum=0, not_above="restart_backoff_max_ms")
    restart_backoff_max_ms: int = checked(300_000, minimum=0)
    readiness: Readiness | None = None
    # false: every new version is a full deployment, even one that carries a relup
    hot_upgrade: bool = True
    # DeployEx's own variables handed on, on purpose
    env_passthrough: tuple[str, ...] = checked((), form="env_name")

    def ports_of_slot(self, slot: int) -> dict[str, int]:
        """Port variables of port slot `slot` (0..replicas, the last one being the spare)."""
        return {p.key: p.base + slot for p in self.replica_ports}

    def monitoring_of(self, kind: str) -> Monitoring | None:
        return next((m for m in self.monitoring if m.type == kind), None)


@dataclass(frozen=True)
class Config:
    release_adapter: str = checked(choices=("local", "s3", "gcp-storage"))
    secrets_adapter: str = checked(choices=("env", "aws", "gcp"))
    account_name: str = checked("local", form="folder_name")
    hostname: str = "localhost"
    port: int = checked(5001, minimum=1, maximum=65535)
    release_bucket: str = "/tmp/deployex/bucket"  # for local; the cloud adapters require one
    secrets_path: str | None = None
    aws_region: str | None = None
    google_credentials: str | None = None
    otp_tls_certificates: str | None = None
    # installer keys, read by ops/ only
    version: str | None = None
    otp_version: int | None = checked(None, minimum=1)
    os_target: str | None = None
    install_path: str = "/opt/deployex"
    # path defaults: upstream's production roots, or its local (dev) roots for the local adapter
    var_path: str = checked("/var/lib/deployex", local_default="/tmp/deployex/varlib")
    log_path: str = checked("/var/log/deployex", local_default="/tmp/deployex/log")
    monitored_app_log_path: str = checked(
        "/var/log/monitored-apps", local_default="/tmp/deployex/varlog"
    )
    metrics_retention_time_ms: int = checked(3_600_000, minimum=1000)
    logs_retention_time_ms: int | None = checked(3_600_000, minimum=0)  # null: keep none
    monitoring: tuple[Monitoring, ...] = checked((), types=("memory", "atom", "process", "port"))
    notifications: tuple[Notification, ...] = ()
    applications: tuple[Application, ...] = ()
    # ours
    release_endpoint_url: str | None = None
    secrets_endpoint_url: str | None = None
    # the thespian admin port front ends attach to
    actor_system_port: int = checked(1901, minimum=1, maximum=65535)
    # how often host and replicas are sampled
    watchdog_interval_ms: int = checked(1_000, minimum=100)
    dashboard_enabled: bool = True  # run the web dashboard on `port`
    # browser shells (dashboard): on replicas, DeployEx's Python shell and the host (tmux)
    terminals: bool = True
    terminal_idle_timeout_ms: int = checked(900_000, minimum=1_000)
    terminals_max: int = checked(8, minimum=1, maximum=64)
    # log history: the oldest lines go first beyond this many bytes (lines + 64 B each)
    logs_max_bytes: int = checked(256 * 1024 * 1024, minimum=1024 * 1024)
    multi_host: bool = False  # True: thespian listens beyond 127.0.0.1 (firewall it!)
    # how often the YAML file is read again for changes (docs/config-watcher.md); SIGHUP: at once
    config_watch_interval_ms: int = checked(30_000, minimum=1_000)
    # at most one crash_restart notification per replica per this interval (the rest folded)
    notification_crash_interval_ms: int = checked(60_000, minimum=1_000)
    # where it was read from, and the warnings met while reading it
    source: Path | None = field(default=None, compare=False, metadata=NOT_YAML)
    warnings: tuple[str, ...] = field(default=(), compare=False, metadata=NOT_YAML)

    @property
    def is_local(self) -> bool:
        """Local (development) mode: releases from a folder on this host."""
        return self.release_adapter == "local"

    def application(self, name: str) -> Application:
        for app in self.applications:
            if app.name == name:
                return app
        known = ", ".join(a.name for a in self.applications) or "none"
        raise ConfigError(f"no application {name!r} in the configuration (configured: {known})")

    def monitoring_of(self, kind: str) -> Monitoring | None:
        return next((m for m in self.monitoring if m.type == kind), None)
