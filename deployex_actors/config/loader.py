"""Reads the upstream-compatible YAML into `Config`.

Every problem names its key path, the value met and what is allowed, e.g.
`applications[1].monitoring[0].type: 'disk' is not one of atom, process, port`. All problems of a
file are collected and raised together as one `ConfigError`; unknown keys are only warnings.

The defaults, types, allowed values and bounds are not restated here: they are read from the fields
of the dataclasses in `model.py` (their defaults, type hints and `checked` metadata). What stays
here is how each kind of value is checked, and the rules that tie several keys together.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import MISSING, Field, fields, is_dataclass, replace
from functools import cache
from pathlib import Path
from typing import Any, get_args, get_origin, get_type_hints

import yaml

from deployex_actors.config import model
from deployex_actors.errors import ConfigError

log = logging.getLogger(__name__)

CONFIG_PATH_ENV = "DEPLOYEX_CONFIG_YAML_PATH"
# Upstream's running DeployEx reads its certificates folder from this variable only (its installer
# writes `otp_tls_certificates` into the unit as this variable), so when set it wins over the key.
TLS_CERT_PATH_ENV = "DEPLOYEX_OTP_TLS_CERT_PATH"
# The demo configuration of a source checkout; used when neither --config nor the env var is set.
DEFAULT_CONFIG_PATH = Path(__file__).resolve().parents[2] / "config" / "local.yaml"

_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")  # environment variables and app names


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
    config = with_environment(parse_config(text, source=source), os.environ)
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
    if config is None:
        raise ConfigError([f"{where}{p}" for p in reader.problems])
    return config


def with_environment(config: model.Config, environ: Mapping[str, str]) -> model.Config:
    """`DEPLOYEX_OTP_TLS_CERT_PATH`, when set, as `otp_tls_certificates` (see TLS_CERT_PATH_ENV)."""
    folder = environ.get(TLS_CERT_PATH_ENV)
    if not folder or folder == config.otp_tls_certificates:
        return config
    warnings = config.warnings
    if config.otp_tls_certificates:
        warnings += (
            f"otp_tls_certificates {config.otp_tls_certificates!r} is overridden by "
            f"{TLS_CERT_PATH_ENV}={folder!r}",
        )
    return replace(config, otp_tls_certificates=folder, warnings=warnings)


# -- what the model's fields say -------------------------------------------------------------------


@cache
def _fields(cls: type) -> tuple[tuple[Field[Any], Any], ...]:
    """The fields read from YAML, with their types resolved (model.py's are strings)."""
    hints = get_type_hints(cls)
    return tuple((f, hints[f.name]) for f in fields(cls) if f.metadata.get("yaml", True))


def _default(f: Field[Any]) -> Any:
    """The field's default (a fresh one from its factory), or MISSING when the key is required."""
    return f.default_factory() if f.default_factory is not MISSING else f.default


def _shape(hint: Any) -> tuple[Any, bool]:
    """The type a value must have, and whether YAML null is a value of its own (`X | None`)."""
    args = get_args(hint)
    if type(None) in args:
        return next(a for a in args if a is not type(None)), True
    return hint, False


def _at(path: str, key: Any) -> str:
    return f"{path}.{key}" if path else str(key)


def _wrong_value(value: Any, meta: Mapping[str, Any]) -> str | None:
    """What is wrong with a value (of the right type) by the field's `checked` metadata; for a list
    of strings, with one item of it."""
    if meta.get("choices") and value not in meta["choices"]:
        return f"{_show(value)} is not one of {', '.join(meta['choices'])}"
    if meta.get("minimum") is not None and value < meta["minimum"]:
        return f"{value} is below the minimum {meta['minimum']}"
    if meta.get("maximum") is not None and value > meta["maximum"]:
        return f"{value} is above the maximum {meta['maximum']}"
    return _FORMS[meta["form"]](value) if "form" in meta else None


def _show(value: Any) -> str:
    return (
        repr(value)
        if isinstance(value, str)
        else yaml.safe_dump(value).strip().removesuffix("\n...")
    )


def _wrong_type(value: Any, kind: type, choices: Sequence[str]) -> str | None:
    """What is wrong with a YAML value that should be of `kind`, if anything."""
    if kind is int and (isinstance(value, bool) or not isinstance(value, int)):
        return f"{_show(value)} is not an integer"
    if kind is bool and not isinstance(value, bool):
        return f"{_show(value)} is not true or false"
    if kind is str and not isinstance(value, str):
        return f"{_show(value)} is not a string"
    if kind is str and choices and value not in choices:
        return f"{_show(value)} is not one of {', '.join(choices)}"
    if kind in (list, dict) and not isinstance(value, kind):
        return f"{_show(value)} is not {'a list' if kind is list else 'a mapping'}"
    return None


# -- name formats (`form` in the model) ------------------------------------------------------------


def _env_name(value: Any) -> str | None:
    if isinstance(value, str) and _NAME_RE.match(value):
        return None
    return f"{_show(value)} is not a valid environment variable name"


def _app_name(name: str) -> str | None:
    if not _NAME_RE.match(name):
        return f"{_show(name)} is not a valid app name (letters, digits and _; no '-')"
    if len(name) > model.MAX_APP_NAME:
        return (
            f"{len(name)} characters is too long for an app name: at most "
            f"{model.MAX_APP_NAME} (it goes into Erlang node names and file names)"
        )
    return None


def _folder_name(name: str) -> str | None:
    """A folder of the release bucket: one path component that a file system takes."""
    if name in ("", ".", "..") or "/" in name or "\0" in name:
        return f"{_show(name)} is not a folder name (no '/', not empty)"
    if len(name.encode()) > model.MAX_FILE_NAME:
        return (
            f"{len(name.encode())} bytes is too long: at most {model.MAX_FILE_NAME} (it "
            "is a folder of the release bucket)"
        )
    return None


_FORMS: dict[str, Callable[[Any], str | None]] = {
    "env_name": _env_name,
    "app_name": _app_name,
    "folder_name": _folder_name,
}


class _Reader:
    """Walks the raw YAML, collecting problems instead of stopping at the first."""

    def __init__(self) -> None:
        self.problems: list[str] = []
        self.warnings: list[str] = []
        self.checks: dict[type, Callable[[dict[str, Any], str], None]] = {
            model.Application: self.check_application,
            model.Notification: self.check_notification,
        }

    def problem(self, path: str, message: str) -> None:
        self.problems.append(f"{path}: {message}")

    # -- one value -------------------------------------------------------------------------------

    def take(
        self, value: Any, at: str, kind: type, default: Any, choices: Sequence[str], nullable: bool
    ) -> Any:
        """`value` if it is a `kind`, else the default; a wrong type, or a missing value without a
        default, is a problem too. Null is missing, unless the field is `X | None` (nullable)."""
        fallback = None if default is MISSING else default
        if value is MISSING or (value is None and not nullable):
            if default is MISSING:
                allowed = f"; must be one of {', '.join(choices)}" if choices else ""
                self.problem(at, f"missing{allowed}")
            return fallback
        if value is None:
            return None
        if kind is str and isinstance(value, int | float) and not isinstance(value, bool):
            value = value if choices else str(value)  # `version: 1.2` or `otp_version: 28` style
        wrong = _wrong_type(value, kind, choices)
        if wrong:
            self.problem(at, wrong)
            return fallback
        return value

    def value(
        self, raw: Any, at: str, f: Field[Any], hint: Any, default: Any, types: Sequence[str]
    ) -> Any:
        """The YAML value of field `f` (MISSING if absent), read the way the field's type hint and
        metadata say; `types`, when given, replace the allowed values (an entry's `type`,
        restricted by the list it is in)."""
        kind, nullable = _shape(hint)
        if get_origin(kind) is tuple:
            return self.listed(raw, at, f, get_args(kind)[0], default)
        if is_dataclass(kind):
            return default if raw in (MISSING, None) else self.entry(kind, raw, at)
        if f.metadata.get("form") == "scalar":
            return self.scalar(raw, at, default)
        choices = types or f.metadata.get("choices", ())
        value = self.take(raw, at, get_origin(kind) or kind, default, choices, nullable)
        wrong = _wrong_value(value, f.metadata) if value is not None else None
        if wrong:
            self.problem(at, wrong)
        return value

    def scalar(self, value: Any, at: str, default: str) -> str:
        """Any YAML scalar as text, the way upstream's YAML-to-environment conversion writes it."""
        if value in (MISSING, None):
            return default
        if isinstance(value, bool):
            return "true" if value else "false"
        if isinstance(value, int | float | str):
            return str(value)
        self.problem(at, f"{_show(value)} is not a scalar")
        return default

    def listed(self, raw: Any, at: str, f: Field[Any], of: type, default: Any) -> Any:
        """A list field: entries of a dataclass, or strings checked by `choices` / `form`."""
        raw = self.take(raw, at, list, default, (), False)
        if not isinstance(raw, list):
            return raw  # the default, or None for a required list that is missing
        types = f.metadata.get("types", ())
        if is_dataclass(of):
            read = (self.entry(of, x, f"{at}[{i}]", types) for i, x in enumerate(raw))
            entries = tuple(x for x in read if x is not None)
            self.check_unique_types(entries, at, types)
            return entries
        out = []
        for i, x in enumerate(raw):
            wrong = _wrong_value(x, f.metadata)
            if wrong:
                self.problem(f"{at}[{i}]", wrong)
            else:
                out.append(str(x))
        return tuple(out)

    # -- one mapping -----------------------------------------------------------------------------

    def fields_of(
        self, cls: type, raw: Any, path: str, defaults: dict[str, Any], types: Sequence[str] = ()
    ) -> dict[str, Any] | None:
        """Every field of `cls` from a YAML mapping; defaults in `defaults` replace the model's."""
        if not isinstance(raw, dict):
            self.problem(path or "(top level)", f"{_show(raw)} is not a mapping of keys to values")
            return None
        own = [(f, hint) for f, hint in _fields(cls) if "rest" not in f.metadata]
        names = [f.name for f, _ in own]
        rest = [f.name for f, _ in _fields(cls) if "rest" in f.metadata]
        # a field that keeps the keys no other field names: they are not unknown then
        values = {name: {k: v for k, v in raw.items() if k not in names} for name in rest}
        if not rest:
            self.warnings += [
                f"{_at(path, k)}: unknown key, ignored" for k in raw if k not in names
            ]
        for f, hint in own:
            default = defaults.get(f.name, _default(f))
            choices = types if f.name == "type" else ()
            at, value = _at(path, f.name), raw.get(f.name, MISSING)
            values[f.name] = self.value(value, at, f, hint, default, choices)
        for f, _ in own:
            other, mine = f.metadata.get("not_above"), values[f.name]
            if other and mine is not None and values[other] is not None and mine > values[other]:
                self.problem(_at(path, f.name), f"{mine} is above {other} {values[other]}")
        return values

    def entry(self, cls: type, raw: Any, path: str, types: Sequence[str] = ()) -> Any:
        """One entry of a list (or the readiness mapping); None when it lacks a required key."""
        values = self.fields_of(cls, raw, path, {}, types)
        if values is None:
            return None
        if cls in self.checks:
            self.checks[cls](values, path)
        required = [f.name for f in fields(cls) if _default(f) is MISSING]
        if any(values[name] is None or values[name] in ("", 0) for name in required):
            return None
        return cls(**values)

    # -- rules across keys -----------------------------------------------------------------------

    def config(self, raw: Any, source: Path | None) -> model.Config | None:
        """The whole file; None when it has problems. The adapters decide some defaults (upstream's
        local roots) and which keys are required."""
        if raw is None:
            self.problem("(top level)", "the file is empty; expected a mapping of keys")
            return None
        local = isinstance(raw, dict) and raw.get("release_adapter") == "local"
        defaults = {
            f.name: f.metadata["local_default"]
            for f in fields(model.Config)
            if local and "local_default" in f.metadata
        }
        # read without a default, to tell a missing bucket from the local adapter's default one
        values = self.fields_of(model.Config, raw, "", {**defaults, "release_bucket": None})
        if values is None:
            return None
        adapter, secrets = values["release_adapter"], values["secrets_adapter"]
        bucket = values.pop("release_bucket")
        if bucket:
            values["release_bucket"] = bucket
        elif bucket is not None or adapter in ("s3", "gcp-storage"):  # empty, or missing
            self.problem("release_bucket", f"missing; required by release_adapter {adapter}")
        if secrets in ("aws", "gcp") and not values["secrets_path"]:
            self.problem("secrets_path", f"missing; required by secrets_adapter {secrets}")
        self.check_applications(values["applications"], values["port"])
        if self.problems:
            return None
        return model.Config(**values, source=source, warnings=tuple(self.warnings))

    def check_unique_types(self, entries: tuple[Any, ...], at: str, types: Sequence[str]) -> None:
        """A list with `types` (a watch list) names each type once: one entry says what to do."""
        seen: set[str] = set()
        for i, entry in enumerate(entries if types else ()):
            if entry.type in seen:
                self.problem(f"{at}[{i}].type", f"{entry.type!r} is listed twice")
            seen.add(entry.type)

    def check_notification(self, values: dict[str, Any], path: str) -> None:
        """Each adapter needs where to deliver to."""
        adapter = values["adapter"]
        if adapter in ("webhook", "slack") and not values["url"]:
            self.problem(f"{path}.url", f"missing; required by adapter {adapter}")
        if adapter == "pagerduty" and not values["options"].get("routing_key"):
            self.problem(f"{path}.options.routing_key", "missing; required by adapter pagerduty")

    def check_application(self, values: dict[str, Any], path: str) -> None:
        """A readiness check must have a port to check."""
        readiness, port_keys = values["readiness"], [p.key for p in values["replica_ports"]]
        if readiness and readiness.type in ("tcp", "http") and not port_keys:
            self.problem(f"{path}.readiness.type", f"{readiness.type!r} needs replica_ports")
        if readiness and readiness.port and readiness.port not in port_keys:
            self.problem(
                f"{path}.readiness.port",
                f"{readiness.port!r} is not one of the replica_ports keys "
                f"({', '.join(port_keys) or 'none'})",
            )

    def check_applications(self, apps: tuple[model.Application, ...], deployex_port: int) -> None:
        """Names are unique; port slots overlap neither each other nor the dashboard's port."""
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
