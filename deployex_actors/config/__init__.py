"""Configuration: the upstream-compatible YAML file as frozen dataclasses."""

from deployex_actors.config.loader import (
    CONFIG_PATH_ENV,
    load_config,
    parse_config,
    resolve_config_path,
)
from deployex_actors.config.model import (
    Application,
    Certificate,
    Config,
    EnvVar,
    Monitoring,
    Notification,
    Readiness,
    ReplicaPort,
)

__all__ = [
    "CONFIG_PATH_ENV",
    "Application",
    "Certificate",
    "Config",
    "EnvVar",
    "Monitoring",
    "Notification",
    "Readiness",
    "ReplicaPort",
    "load_config",
    "parse_config",
    "resolve_config_path",
]
