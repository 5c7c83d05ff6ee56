"""Configuration: the upstream-compatible YAML file as frozen dataclasses."""

from deployex_actors.config.loader import (
    CONFIG_PATH_ENV,
    load_config,
    parse_config,
    resolve_config_path,
)
from deployex_actors.config.model import Application, Config, Monitoring

__all__ = [
    "CONFIG_PATH_ENV",
    "Application",
    "Config",
    "Monitoring",
    "load_config",
    "parse_config",
    "resolve_config_path",
]
