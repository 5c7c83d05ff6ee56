"""The `env` adapter: the three secrets from environment variables.

In local mode with none of them set, it hands out development defaults (cookie "cookie", admin
password "deployex") so `deployex run` works on a laptop with no setup, and says so loudly.
"""

from __future__ import annotations

import base64
import logging
import secrets as random_source
from collections.abc import Mapping
from dataclasses import replace
from typing import TYPE_CHECKING

import bcrypt

from deployex_actors.errors import SecretsError
from deployex_actors.secrets.model import (
    DEV_COOKIE,
    DEV_PASSWORD,
    KEYS,
    Secrets,
    secrets_from_mapping,
)
from deployex_actors.secrets.references import referenced_names

if TYPE_CHECKING:
    from deployex_actors.config import Config

log = logging.getLogger(__name__)

NAME = "env"
WHERE = "the environment (secrets_adapter env)"
DEV_DEFAULTS_WARNING = (
    "none of %s is set: using DEVELOPMENT DEFAULTS (Erlang cookie %r, admin password %r, a random "
    "secret key base). They are public; do not use them in production."
)


def load(config: Config, environ: Mapping[str, str]) -> Secrets:
    present = {key: environ[key] for key in KEYS if environ.get(key)}
    # only the variables a channel names (`secret:NAME`), not the whole environment
    extra = {name: environ[name] for name in referenced_names(config) if environ.get(name)}
    if not present and config.is_local:
        log.warning(DEV_DEFAULTS_WARNING, ", ".join(KEYS), DEV_COOKIE, DEV_PASSWORD)
        return replace(development_defaults(), extra=extra)
    try:
        return replace(secrets_from_mapping(present, WHERE), extra=extra)
    except SecretsError as exc:
        if present or config.is_local:
            raise
        raise SecretsError(
            f"{exc}; development defaults apply only when release_adapter is local "
            f"(it is {config.release_adapter})"
        ) from None


def development_defaults() -> Secrets:
    """The public defaults of local mode, with a fresh secret key base each boot."""
    hashed = bcrypt.hashpw(DEV_PASSWORD.encode(), bcrypt.gensalt()).decode("ascii")
    return Secrets(
        secret_key_base=base64.b64encode(random_source.token_bytes(48)).decode("ascii"),
        erlang_cookie=DEV_COOKIE,
        admin_hashed_password=hashed,
        development_defaults=True,
    )
