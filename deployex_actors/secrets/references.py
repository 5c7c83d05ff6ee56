"""Secrets a channel names in the YAML: `url: "secret:SLACK_URL"`, `routing_key: "secret:PD_KEY"`.

A value `secret:NAME` is read through the configured secrets adapter at boot, with the three
secrets DeployEx needs: with `env`, the environment variable NAME; with `aws` and `gcp`, the key
NAME of the same JSON secret object (`secrets_path`). A name that cannot be found stops the boot
with the key path that names it. The values travel in `NamedSecrets`, whose repr hides them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from deployex_actors.errors import SecretsError

if TYPE_CHECKING:
    from deployex_actors.config import Config

PREFIX = "secret:"


def reference(value: Any) -> str | None:
    """NAME of a `secret:NAME` value, else None."""
    if isinstance(value, str) and value.startswith(PREFIX):
        return value.removeprefix(PREFIX).strip() or None
    return None


def references(config: Config) -> dict[str, str]:
    """Key path -> secret NAME, for every value of the notifications that names a secret."""
    found = {}
    for i, channel in enumerate(config.notifications):
        for at, value in ((f"notifications[{i}].url", channel.url),
                          (f"notifications[{i}].options.routing_key",
                           channel.options.get("routing_key"))):  # fmt: skip
            name = reference(value)
            if name is not None:
                found[at] = name
    return found


def referenced_names(config: Config) -> tuple[str, ...]:
    return tuple(dict.fromkeys(references(config).values()))


@dataclass(frozen=True, repr=False)
class NamedSecrets:
    """Values of the secrets the configuration names, by name; never shown."""

    values: Mapping[str, str] = field(default_factory=dict)

    def __repr__(self) -> str:
        return f"NamedSecrets(<{len(self.values)} values hidden>)"

    __str__ = __repr__

    def resolve(self, value: Any) -> Any:
        """`value`, or the secret it names; KeyError (with the NAME only) when it is unknown."""
        name = reference(value)
        return value if name is None else self.values[name]


def named_secrets(config: Config, found: Mapping[str, str]) -> NamedSecrets:
    """The named secrets from what the adapter found; SecretsError naming each key path whose
    secret is missing (never a value)."""
    missing = [f"{at}: secret {name!r} not found by secrets_adapter {config.secrets_adapter}"
               for at, name in references(config).items() if not found.get(name)]  # fmt: skip
    if missing:
        raise SecretsError("; ".join(missing))
    return NamedSecrets({name: found[name] for name in referenced_names(config)})
