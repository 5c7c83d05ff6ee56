"""The three secrets DeployEx needs, and the one check every adapter's result goes through.

Values never leave this object in text form: `repr`/`str` hide them and every error names keys and
where they were looked for, never what was found.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field

from deployex_actors.errors import SecretsError

# Names of the keys, not values.
SECRET_KEY_BASE = "DEPLOYEX_SECRET_KEY_BASE"  # noqa: S105
ERLANG_COOKIE = "DEPLOYEX_ERLANG_COOKIE"
ADMIN_HASHED_PASSWORD = "DEPLOYEX_ADMIN_HASHED_PASSWORD"  # noqa: S105
KEYS = (SECRET_KEY_BASE, ERLANG_COOKIE, ADMIN_HASHED_PASSWORD)

# Development defaults (local mode only), the same as upstream's dev configuration; public on
# purpose and announced with a warning whenever they are used.
DEV_COOKIE = "cookie"
DEV_PASSWORD = "deployex"  # noqa: S105

_BCRYPT_HASH = re.compile(r"\$2[abxy]?\$\d{2}\$[./A-Za-z0-9]{53}")


@dataclass(frozen=True, repr=False)
class Secrets:
    """The loaded secrets. `admin_hashed_password` is a bcrypt hash, never a plain password."""

    secret_key_base: str
    erlang_cookie: str
    admin_hashed_password: str
    development_defaults: bool = False
    # the source's other string values (a channel's `secret:NAME`, see secrets.references)
    extra: Mapping[str, str] = field(default_factory=dict, compare=False)

    def __repr__(self) -> str:
        hidden = f"<{len(KEYS)} values hidden>"
        return f"Secrets({hidden}, development_defaults={self.development_defaults})"

    __str__ = __repr__

    @property
    def admin_password_is_bcrypt(self) -> bool:
        """False when the admin hash is not bcrypt, so no password can ever match it."""
        return _BCRYPT_HASH.fullmatch(self.admin_hashed_password) is not None


def secrets_from_mapping(values: Mapping[str, object], where: str) -> Secrets:
    """Build `Secrets` from the three keys of `values`; extra keys are ignored.

    Raises SecretsError naming each missing, empty or non-string key and `where` (e.g. "AWS
    Secrets Manager secret 'deployex-prod'"); the message never carries a value.
    """
    problems = [p for p in (_problem(key, values) for key in KEYS) if p]
    if problems:
        raise SecretsError(
            f"secrets from {where}: {'; '.join(problems)} "
            "(all three keys must be non-empty strings)"
        )
    return Secrets(
        secret_key_base=str(values[SECRET_KEY_BASE]),
        erlang_cookie=str(values[ERLANG_COOKIE]),
        admin_hashed_password=str(values[ADMIN_HASHED_PASSWORD]),
        extra={k: v for k, v in values.items() if k not in KEYS and isinstance(v, str)},
    )


def secrets_from_json(text: str, where: str) -> Secrets:
    """Parse `text` as a JSON object holding the three keys (the shape both clouds store)."""
    try:
        values = json.loads(text)
    except json.JSONDecodeError as exc:
        # The message gives a position only; `from None` keeps exc.doc (the text) out of tracebacks.
        raise SecretsError(
            f"{where} is not valid JSON ({exc.msg} at line {exc.lineno} column {exc.colno}); "
            f"store a JSON object with the keys {', '.join(KEYS)}"
        ) from None
    if not isinstance(values, dict):
        raise SecretsError(
            f"{where} is JSON but not an object (it is {_json_type(values)}); store a JSON "
            f"object with the keys {', '.join(KEYS)}"
        )
    return secrets_from_mapping(values, where)


def _problem(key: str, values: Mapping[str, object]) -> str | None:
    if key not in values or values[key] is None:
        return f"{key} is missing"
    value = values[key]
    if not isinstance(value, str):
        return f"{key} is not a string (it is {_json_type(value)})"
    if not value:
        return f"{key} is empty"
    return None


def _json_type(value: object) -> str:
    """The JSON kind of a parsed value, with its article: "an array", "a number"."""
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    names = {dict: "an object", list: "an array", str: "a string"}
    return names.get(type(value), f"a {type(value).__name__}")
