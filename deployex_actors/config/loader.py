"""Reads the upstream-compatible YAML into `Config`.

Every problem names its key path, the value met and what is allowed, e.g.
`applications[1].monitoring[0].type: 'disk' is not one of atom, process, port`. All problems of a
file are collected and raised together as one `ConfigError`; unknown keys are only warnings.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import yaml

from deployex_actors.config import model
from deployex_actors.errors import ConfigError

log = logging.getLogger(__name__)

CONFIG_PATH_ENV = "DEPLOYEX_CONFIG_YAML_PATH"
# The demo configuration of a source checkout; used when neither --config nor the env var is set.
DEFAULT_CONFIG_PATH = Path(__file__).resolve().parents[2] / "config" / "local.yaml"

_APP_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_ENV_KEY_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_MISSING = object()


def resolve_config_path(explicit: str | os.PathLike[str] | None = None) -> Path:
    """`--config`, else `DEPLOYEX_CONFIG_YAML_PATH`, else the checkout's `config/local.yaml`."""
    if explicit:
        return Path(explicit)
    from_env = os.environ.get(CONFIG_PATH_ENV)
    if from_env:
        return Path(from_env)
    return DEFAULT_CONFIG_PATH


def load_config(path: str | os.PathLike[str] | None = None) -> model.Config:
    """Read, validate and return the configuration; raises ConfigError naming every problem."""
    source = resolve_config_path(path)
    try:
        text = source.read_text(encoding="utf-8")
    except FileNotFoundError:
        hint = "" if path else f" (pass --config or set {CONFIG_PATH_ENV})"
        raise ConfigError(f"{source}: configuration file not found{hint}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{source}: cannot read configuration: {exc}") from None
    config = parse_config(text, source=source)
    for warning in config.warnings:
        log.warning("%s: %s", source, warning)
    return config


def parse_config(text: str, source: Path | None = None) -> model.Config:
    """Validate YAML text; the pure part of `load_config`."""
    where = f"{source}: " if source else ""
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ConfigError(f"{where}invalid YAML: {at}{problem}") from None
    reader = _Reader()
    config = reader.config(raw, source)
    if reader.problems:
        raise ConfigError([f"{where}{p}" for p in reader.problems])
    return config


def _show(value: Any) -> str:
    return (
        repr(value)
        if isinstance(value, str)
        else yaml.safe_dump(value).strip().removesuffix("\n...")
    )


def _one_of(choices: Sequence[str]) -> str:
    return ", ".join(choices)


class _Reader:
    """Walks the raw YAML, collecting problems instead of stopping at the first."""

    def __init__(self) -> None:
        self.problems: list[str] = []
        self.warnings: list[str] = []

    # -- primitives ------------------------------------------------------------------------------

    def problem(self, path: str, message: str) -> None:
        self.problems.append(f"{path}: {message}")

    def mapping(self, raw: Any, path: str) -> dict[str, Any] | None:
        if isinstance(raw, dict):
            return raw
        self.problem(path or "(top level)", f"{_show(raw)} is not a mapping of keys to values")
        return None

    def warn_unknown(self, raw: dict[str, Any], path: str, known: Sequence[str]) -> None:
        for key in raw:
            if key not in known:
                at = f"{path}.{key}" if path else str(key)
                self.warnings.append(f"{at}: unknown key, ignored")

    def take(
        self,
        raw: dict[str, Any],
        path: str,
        key: str,
        kind: type,
        default: Any = _MISSING,
        *,
        choices: Sequence[str] = (),
        minimum: int | None = None,
        maximum: int | None = None,
        nullable: bool = False,
    ) -> Any:
        at = f"{path}.{key}" if path else key
        value = raw.get(key, _MISSING)
        if value is _MISSING or (value is None and not nullable):
            if default is _MISSING:
                allowed = f"; must be one of {_one_of(choices)}" if choices else ""
                self.problem(at, f"missing{allowed}")
            return None if default is _MISSING else default
        if value is None:
            return None
        if kind is int and (isinstance(value, bool) or not isinstance(value, int)):
            self.problem(at, f"{_show(value)} is not an integer")
            return default if default is not _MISSING else None
        if kind is bool and not isinstance(value, bool):
            self.problem(at, f"{_show(value)} is not true or false")
            return default if default is not _MISSING else None
        if kind is str:
            if isinstance(value, int | float) and not isinstance(value, bool) and not choices:
                value = str(value)  # `version: 1.2` or `otp_version: 28` style scalars
            if not isinstance(value, str):
                self.problem(at, f"{_show(value)} is not a string")
                return default if default is not _MISSING else None
            if choices and value not in choices:
                self.problem(at, f"{_show(value)} is not one of {_one_of(choices)}")
                return default if default is not _MISSING else None
        if kind in (list, dict) and not isinstance(value, kind):
            noun = "a list" if kind is list else "a mapping"
            self.problem(at, f"{_show(value)} is not {noun}")
            return default if default is not _MISSING else None
        if kind is int:
            if minimum is not None and value < minimum:
                self.problem(at, f"{value} is below the minimum {minimum}")
            if maximum is not None and value > maximum:
                self.problem(at, f"{value} is above the maximum {maximum}")
        return value

    def items(
        self, raw: dict[str, Any], path: str, key: str, read: Callable[[Any, str], Any]
    ) -> tuple[Any, ...]:
        at = f"{path}.{key}" if path else key
        value = raw.get(key)
        if value is None:
            return ()
        if not isinstance(value, list):
            self.problem(at, f"{_show(value)} is not a list")
            return ()
        out = (read(item, f"{at}[{i}]") for i, item in enumerate(value))
        return tuple(x for x in out if x is not None)

    # -- sections --------------------------------------------------------------------------------

    def config(self, raw: Any, source: Path | None) -> model.Config:
        if raw is None:
            self.problem("(top level)", "the file is empty; expected a mapping of keys")
            return model.Config("local", "env")
        top = self.mapping(raw, "")
        if top is None:
            return model.Config("local", "env")
        fields = model.Config.__dataclass_fields__
        self.warn_unknown(top, "", [f for f in fields if f not in ("source", "warnings")])
        release_adapter = self.take(top, "", "release_adapter", str, choices=model.RELEASE_ADAPTERS)
        secrets_adapter = self.take(top, "", "secrets_adapter", str, choices=model.SECRETS_ADAPTERS)
        paths = model.LOCAL_PATHS if release_adapter == "local" else model.PRODUCTION_PATHS
        values: dict[str, Any] = {
            "account_name": self.account_name(top),
            "hostname": self.take(top, "", "hostname", str, "localhost"),
            "port": self.take(top, "", "port", int, 5001, minimum=1, maximum=65535),
            "release_bucket": self.take(top, "", "release_bucket", str, None),
            "release_endpoint_url": self.take(top, "", "release_endpoint_url", str, None),
            "secrets_endpoint_url": self.take(top, "", "secrets_endpoint_url", str, None),
            "actor_system_port": self.take(
                top, "", "actor_system_port", int, 1901, minimum=1, maximum=65535
            ),
            "multi_host": self.take(top, "", "multi_host", bool, False),
            "dashboard_enabled": self.take(top, "", "dashboard_enabled", bool, True),
            "watchdog_interval_ms": self.take(
                top, "", "watchdog_interval_ms", int, 1_000, minimum=100
            ),
            "secrets_path": self.take(top, "", "secrets_path", str, None),
            "aws_region": self.take(top, "", "aws_region", str, None),
            "google_credentials": self.take(top, "", "google_credentials", str, None),
            "otp_tls_certificates": self.take(top, "", "otp_tls_certificates", str, None),
            "version": self.take(top, "", "version", str, None),
            "otp_version": self.take(top, "", "otp_version", int, None, minimum=1),
            "os_target": self.take(top, "", "os_target", str, None),
            "install_path": self.take(top, "", "install_path", str, "/opt/deployex"),
            "metrics_retention_time_ms": self.take(
                top, "", "metrics_retention_time_ms", int, 3_600_000, minimum=1000
            ),
            "logs_retention_time_ms": self.take(
                top, "", "logs_retention_time_ms", int, 3_600_000, minimum=0, nullable=True
            ),
            "monitoring": self.monitoring_list(top, "", model.HOST_MONITORING_TYPES),
            "notifications": self.items(top, "", "notifications", self.notification),
            "applications": self.items(top, "", "applications", self.application),
        }
        for key, default in paths.items():
            values[key] = self.take(top, "", key, str, default)
        if values["release_bucket"] is None:
            if release_adapter in ("s3", "gcp-storage"):
                self.problem(
                    "release_bucket", f"missing; required by release_adapter {release_adapter}"
                )
            values["release_bucket"] = model.LOCAL_BUCKET
        if secrets_adapter in ("aws", "gcp") and not values["secrets_path"]:
            self.problem("secrets_path", f"missing; required by secrets_adapter {secrets_adapter}")
        self.check_applications(values["applications"], values["port"])
        return model.Config(
            release_adapter=release_adapter or "local",
            secrets_adapter=secrets_adapter or "env",
            source=source,
            warnings=tuple(self.warnings),
            **values,
        )

    def monitoring_list(
        self, raw: dict[str, Any], path: str, types: Sequence[str]
    ) -> tuple[model.Monitoring, ...]:
        entries = self.items(
            raw, path, "monitoring", lambda item, at: self.monitor(item, at, types)
        )
        seen: set[str] = set()
        for i, entry in enumerate(entries):
            if entry.type in seen:
                at = f"{path}.monitoring[{i}]" if path else f"monitoring[{i}]"
                self.problem(f"{at}.type", f"{entry.type!r} is listed twice")
            seen.add(entry.type)
        return entries

    def monitor(self, raw: Any, path: str, types: Sequence[str]) -> model.Monitoring | None:
        item = self.mapping(raw, path)
        if item is None:
            return None
        self.warn_unknown(item, path, model.Monitoring.__dataclass_fields__)
        kind = self.take(item, path, "type", str, choices=types)
        warning = self.take(
            item, path, "warning_threshold_percent", int, 75, minimum=1, maximum=100
        )
        restart = self.take(
            item, path, "restart_threshold_percent", int, 90, minimum=1, maximum=100
        )
        if warning is not None and restart is not None and warning > restart:
            self.problem(
                f"{path}.warning_threshold_percent",
                f"{warning} is above restart_threshold_percent {restart}",
            )
        if kind is None:
            return None
        return model.Monitoring(
            type=kind,
            enable_restart=self.take(item, path, "enable_restart", bool, True),
            warning_threshold_percent=warning,
            restart_threshold_percent=restart,
        )

    def notification(self, raw: Any, path: str) -> model.Notification | None:
        item = self.mapping(raw, path)
        if item is None:
            return None
        self.warn_unknown(item, path, model.Notification.__dataclass_fields__)
        adapter = self.take(item, path, "adapter", str, choices=model.NOTIFICATION_ADAPTERS)
        url = self.take(item, path, "url", str, None)
        if adapter in ("webhook", "slack") and not url:
            self.problem(f"{path}.url", f"missing; required by adapter {adapter}")
        events = self.take(item, path, "events", list, ["all"])
        for i, event in enumerate(events or []):
            if event not in model.NOTIFICATION_EVENTS:
                self.problem(
                    f"{path}.events[{i}]",
                    f"{_show(event)} is not one of {_one_of(model.NOTIFICATION_EVENTS)}",
                )
        options = self.take(item, path, "options", dict, {})
        if adapter == "pagerduty" and not (options or {}).get("routing_key"):
            self.problem(f"{path}.options.routing_key", "missing; required by adapter pagerduty")
        if adapter is None:
            return None
        return model.Notification(
            adapter=adapter,
            url=url,
            enabled=self.take(item, path, "enabled", bool, True),
            events=tuple(str(e) for e in events or ()),
            options=dict(options or {}),
        )

    def certificate(self, raw: Any, path: str) -> model.Certificate | None:
        item = self.mapping(raw, path)
        if item is None:
            return None
        kind = self.take(item, path, "type", str, choices=model.CERTIFICATE_TYPES)
        domains = self.take(item, path, "domains", list)
        dns = self.take(item, path, "dns_provider", str, choices=model.DNS_PROVIDERS)
        acme = self.take(item, path, "acme_provider", str, choices=model.ACME_PROVIDERS)
        importer = self.take(item, path, "importer", str, None, choices=model.CERTIFICATE_IMPORTERS)
        if None in (kind, domains, dns, acme):
            return None
        named = ("type", "domains", "dns_provider", "acme_provider", "importer")
        return model.Certificate(
            type=kind,
            domains=tuple(str(d) for d in domains),
            dns_provider=dns,
            acme_provider=acme,
            importer=importer,
            settings={k: v for k, v in item.items() if k not in named},
        )

    def application(self, raw: Any, path: str) -> model.Application | None:
        item = self.mapping(raw, path)
        if item is None:
            return None
        self.warn_unknown(item, path, model.Application.__dataclass_fields__)
        name = self.take(item, path, "name", str)
        if name is not None and not _APP_NAME_RE.match(name):
            self.problem(
                f"{path}.name",
                f"{_show(name)} is not a valid app name (letters, digits and _; no '-')",
            )
        elif name is not None and len(name) > model.MAX_APP_NAME:
            self.problem(
                f"{path}.name",
                f"{len(name)} characters is too long for an app name: at most "
                f"{model.MAX_APP_NAME} (it goes into Erlang node names and file names)",
            )
        app = model.Application(
            name=name or "",
            language=self.take(item, path, "language", str, "elixir", choices=model.LANGUAGES),
            replicas=self.take(item, path, "replicas", int, 3, minimum=1, maximum=100),
            deploy_rollback_timeout_ms=self.take(
                item, path, "deploy_rollback_timeout_ms", int, 600_000, minimum=1000
            ),
            deploy_schedule_interval_ms=self.take(
                item, path, "deploy_schedule_interval_ms", int, 5_000, minimum=100
            ),
            replica_ports=self.items(item, path, "replica_ports", self.replica_port),
            env=self.items(item, path, "env", self.env_var),
            monitoring=self.monitoring_list(item, path, model.APP_MONITORING_TYPES),
            certificates=self.items(item, path, "certificates", self.certificate),
            ready_after_ms=self.take(item, path, "ready_after_ms", int, 30_000, minimum=0),
            restart_backoff_base_ms=self.take(
                item, path, "restart_backoff_base_ms", int, 2_000, minimum=0
            ),
            restart_backoff_max_ms=self.take(
                item, path, "restart_backoff_max_ms", int, 300_000, minimum=0
            ),
            readiness=self.readiness(item.get("readiness"), f"{path}.readiness"),
            env_passthrough=self.items(item, path, "env_passthrough", self.env_name),
        )
        if app.readiness and app.readiness.type in ("tcp", "http") and not app.replica_ports:
            self.problem(f"{path}.readiness.type", f"{app.readiness.type!r} needs replica_ports")
        port_keys = [p.key for p in app.replica_ports]
        if app.readiness and app.readiness.port and app.readiness.port not in port_keys:
            self.problem(
                f"{path}.readiness.port",
                f"{app.readiness.port!r} is not one of the replica_ports keys "
                f"({', '.join(port_keys) or 'none'})",
            )
        if app.restart_backoff_base_ms > app.restart_backoff_max_ms:
            self.problem(
                f"{path}.restart_backoff_base_ms",
                f"{app.restart_backoff_base_ms} is above restart_backoff_max_ms "
                f"{app.restart_backoff_max_ms}",
            )
        return app if name else None

    def account_name(self, top: dict[str, Any]) -> str:
        """A folder of the release bucket: one path component that a file system takes."""
        name = self.take(top, "", "account_name", str, "local")
        if name in ("", ".", "..") or "/" in name or "\0" in name:
            self.problem("account_name", f"{_show(name)} is not a folder name (no '/', not empty)")
        elif len(name.encode()) > model.MAX_FILE_NAME:
            self.problem(
                "account_name",
                f"{len(name.encode())} bytes is too long: at most {model.MAX_FILE_NAME} (it "
                "is a folder of the release bucket)",
            )
        return name

    def readiness(self, raw: Any, path: str) -> model.Readiness | None:
        if raw is None:
            return None
        item = self.mapping(raw, path)
        if item is None:
            return None
        self.warn_unknown(item, path, model.Readiness.__dataclass_fields__)
        kind = self.take(item, path, "type", str, choices=model.READINESS_TYPES)
        if kind is None:
            return None
        return model.Readiness(
            type=kind,
            path=self.take(item, path, "path", str, "/"),
            port=self.take(item, path, "port", str, None),
            timeout_ms=self.take(item, path, "timeout_ms", int, 1_000, minimum=1),
            interval_ms=self.take(item, path, "interval_ms", int, 500, minimum=10),
        )

    def replica_port(self, raw: Any, path: str) -> model.ReplicaPort | None:
        item = self.mapping(raw, path)
        if item is None:
            return None
        self.warn_unknown(item, path, ("key", "base"))
        key = self.take(item, path, "key", str)
        base = self.take(item, path, "base", int, minimum=1, maximum=65535)
        if key is not None and not _ENV_KEY_RE.match(key):
            self.problem(f"{path}.key", f"{_show(key)} is not a valid environment variable name")
        return model.ReplicaPort(key, base) if key and base else None

    def env_name(self, raw: Any, path: str) -> str | None:
        if not isinstance(raw, str) or not _ENV_KEY_RE.match(raw):
            self.problem(path, f"{_show(raw)} is not a valid environment variable name")
            return None
        return raw

    def env_var(self, raw: Any, path: str) -> model.EnvVar | None:
        item = self.mapping(raw, path)
        if item is None:
            return None
        self.warn_unknown(item, path, ("key", "value"))
        key = self.take(item, path, "key", str)
        if key is not None and not _ENV_KEY_RE.match(key):
            self.problem(f"{path}.key", f"{_show(key)} is not a valid environment variable name")
        value = item.get("value", "")
        if isinstance(value, bool):
            value = "true" if value else "false"  # as upstream's YAML->env conversion writes it
        elif value is None:
            value = ""
        elif isinstance(value, int | float | str):
            value = str(value)
        else:
            self.problem(f"{path}.value", f"{_show(value)} is not a scalar")
            return None
        return model.EnvVar(key, value) if key else None

    # -- whole-file checks -----------------------------------------------------------------------

    def check_applications(self, apps: tuple[model.Application, ...], deployex_port: int) -> None:
        owners: dict[int, str] = {deployex_port: "port (the dashboard)"} if deployex_port else {}
        seen: set[str] = set()
        for i, app in enumerate(apps):
            if app.name in seen:
                self.problem(f"applications[{i}].name", f"{app.name!r} is configured twice")
            seen.add(app.name)
            for j, port in enumerate(app.replica_ports):
                at = f"applications[{i}].replica_ports[{j}]"
                top = port.base + app.replicas  # N+1 slots: the last one is the spare
                if top > 65535:
                    self.problem(f"{at}.base", f"{port.base} + {app.replicas} slots exceeds 65535")
                for number in range(port.base, top + 1):
                    if number in owners:
                        self.problem(
                            f"{at}.base",
                            f"slots {port.base}..{top} overlap port {number} of {owners[number]}",
                        )
                        break
                for number in range(port.base, top + 1):
                    owners[number] = f"{app.name}.{port.key}"
