"""Secrets: the key base, Erlang cookie and admin password hash, from env, AWS or GCP.

`load_secrets(config)` picks the adapter named by `secrets_adapter`; every adapter's result goes
through `secrets_from_mapping`, and no value ever appears in a message, log line or repr.
"""

from deployex_actors.secrets.adapter import ADAPTERS, SecretsAdapter, adapter_for, load_secrets
from deployex_actors.secrets.model import (
    ADMIN_HASHED_PASSWORD,
    DEV_COOKIE,
    DEV_PASSWORD,
    ERLANG_COOKIE,
    KEYS,
    SECRET_KEY_BASE,
    Secrets,
    secrets_from_json,
    secrets_from_mapping,
)

__all__ = [
    "ADAPTERS",
    "ADMIN_HASHED_PASSWORD",
    "DEV_COOKIE",
    "DEV_PASSWORD",
    "ERLANG_COOKIE",
    "KEYS",
    "SECRET_KEY_BASE",
    "Secrets",
    "SecretsAdapter",
    "adapter_for",
    "load_secrets",
    "secrets_from_json",
    "secrets_from_mapping",
]
