"""The configuration as frozen dataclasses, with upstream DeployEx's defaults.

Field names are the YAML keys. Keys that upstream does not have are marked "ours" and documented
in docs/configuration.md.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from deployex_actors.errors import ConfigError

RELEASE_ADAPTERS = ("local", "s3", "gcp-storage")
SECRETS_ADAPTERS = ("env", "aws", "gcp")
LANGUAGES = ("elixir", "erlang", "gleam")
HOST_MONITORING_TYPES = ("memory", "atom", "process", "port")
APP_MONITORING_TYPES = ("atom", "process", "port")
NOTIFICATION_ADAPTERS = ("webhook", "slack", "pagerduty")
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
)
CERTIFICATE_TYPES = ("domains",)
DNS_PROVIDERS = ("route53", "cloudflare")
ACME_PROVIDERS = ("lets_encrypt",)
CERTIFICATE_IMPORTERS = ("route53", "acm")

LOCAL_BUCKET = "/tmp/deployex/bucket"
# Path defaults: upstream's production roots, or its local (dev) roots for the local adapter.
PRODUCTION_PATHS = {
    "var_path": "/var/lib/deployex",
    "log_path": "/var/log/deployex",
    "monitored_app_log_path": "/var/log/monitored-apps",
}
LOCAL_PATHS = {
    "var_path": "/tmp/deployex/varlib",
    "log_path": "/tmp/deployex/log",
    "monitored_app_log_path": "/tmp/deployex/varlog",
}


@dataclass(frozen=True)
class Monitoring:
    """A watched resource: warn at `warning_threshold_percent`, restart at the restart one."""

    type: str
    enable_restart: bool = True
    warning_threshold_percent: int = 75
    restart_threshold_percent: int = 90


@dataclass(frozen=True)
class ReplicaPort:
    """Port variable `key`; slot i of the app gets `base + i`."""

    key: str
    base: int


@dataclass(frozen=True)
class EnvVar:
    key: str
    value: str


@dataclass(frozen=True)
class Notification:
    adapter: str
    url: str | None = None
    enabled: bool = True
    events: tuple[str, ...] = ("all",)
    options: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Certificate:
    """ACME certificate settings; accepted for compatibility, not acted upon yet."""

    type: str
    domains: tuple[str, ...]
    dns_provider: str
    acme_provider: str
    importer: str | None = None
    settings: dict[str, Any] = field(default_factory=dict)


READINESS_TYPES = ("tcp", "http", "otp")
# An app name ends up in Erlang node names `{app}-xxxxxx@{host}`, atoms of at most 255 characters,
# with a short host name of up to 64; and in file names (at most 255 bytes) such as
# `{app}-xxxxxx-stdout.log`. 255 - len("-xxxxxx@") - 64:
MAX_APP_NAME = 183
MAX_FILE_NAME = 255  # bytes in one file name (NAME_MAX); the account name is a bucket folder


@dataclass(frozen=True)
class Readiness:
    """Ours: what else "ready" requires, beyond running `ready_after_ms`.

    tcp: the replica's port accepts a connection; http: GET `path` on it answers 2xx;
    otp: the node answers over distribution. `port` names a replica_ports key (default: first).
    """

    type: str
    path: str = "/"
    port: str | None = None
    timeout_ms: int = 1_000
    interval_ms: int = 500


@dataclass(frozen=True)
class Application:
    name: str
    language: str = "elixir"
    replicas: int = 3
    deploy_rollback_timeout_ms: int = 600_000
    deploy_schedule_interval_ms: int = 5_000
    replica_ports: tuple[ReplicaPort, ...] = ()
    env: tuple[EnvVar, ...] = ()
    monitoring: tuple[Monitoring, ...] = ()
    certificates: tuple[Certificate, ...] = ()
    # ours
    ready_after_ms: int = 30_000
    restart_backoff_base_ms: int = 2_000
    restart_backoff_max_ms: int = 300_000
    readiness: Readiness | None = None
    env_passthrough: tuple[str, ...] = ()  # DeployEx's own variables handed on, on purpose

    def ports_of_slot(self, slot: int) -> dict[str, int]:
        """Port variables of port slot `slot` (0..replicas, the last one being the spare)."""
        return {p.key: p.base + slot for p in self.replica_ports}

    def monitoring_of(self, kind: str) -> Monitoring | None:
        return next((m for m in self.monitoring if m.type == kind), None)


@dataclass(frozen=True)
class Config:
    release_adapter: str
    secrets_adapter: str
    account_name: str = "local"
    hostname: str = "localhost"
    port: int = 5001
    release_bucket: str = LOCAL_BUCKET
    secrets_path: str | None = None
    aws_region: str | None = None
    google_credentials: str | None = None
    otp_tls_certificates: str | None = None
    # installer keys, read by ops/ only
    version: str | None = None
    otp_version: int | None = None
    os_target: str | None = None
    install_path: str = "/opt/deployex"
    var_path: str = PRODUCTION_PATHS["var_path"]
    log_path: str = PRODUCTION_PATHS["log_path"]
    monitored_app_log_path: str = PRODUCTION_PATHS["monitored_app_log_path"]
    metrics_retention_time_ms: int = 3_600_000
    logs_retention_time_ms: int | None = 3_600_000
    monitoring: tuple[Monitoring, ...] = ()
    notifications: tuple[Notification, ...] = ()
    applications: tuple[Application, ...] = ()
    # ours
    release_endpoint_url: str | None = None
    secrets_endpoint_url: str | None = None
    actor_system_port: int = 1901  # the thespian admin port front ends attach to
    watchdog_interval_ms: int = 1_000  # how often host and replicas are sampled
    dashboard_enabled: bool = True  # run the web dashboard on `port`
    multi_host: bool = False  # True: thespian listens beyond 127.0.0.1 (firewall it!)
    # where it was read from, and the warnings met while reading it
    source: Path | None = field(default=None, compare=False)
    warnings: tuple[str, ...] = field(default=(), compare=False)

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
