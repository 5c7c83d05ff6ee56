"""Picking the secrets adapter named by `secrets_adapter`, in this one place, and loading."""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from typing import TYPE_CHECKING, Protocol

from deployex_actors.errors import SecretsError
from deployex_actors.secrets import aws, env, gcp
from deployex_actors.secrets.model import ADMIN_HASHED_PASSWORD, Secrets

if TYPE_CHECKING:
    from deployex_actors.config import Config

log = logging.getLogger(__name__)


class SecretsAdapter(Protocol):
    """One backend; each adapter module (env, aws, gcp) satisfies this."""

    NAME: str

    def load(self, config: Config, environ: Mapping[str, str]) -> Secrets:
        """The three secrets, or SecretsError with a message safe to show."""
        ...


ADAPTERS: dict[str, SecretsAdapter] = {adapter.NAME: adapter for adapter in (env, aws, gcp)}


def adapter_for(config: Config) -> SecretsAdapter:
    try:
        return ADAPTERS[config.secrets_adapter]
    except KeyError:
        raise SecretsError(
            f"unknown secrets_adapter {config.secrets_adapter!r}; use one of {', '.join(ADAPTERS)}"
        ) from None


def load_secrets(config: Config, environ: Mapping[str, str] | None = None) -> Secrets:
    """Load the secrets with the configured adapter; SecretsError if they cannot be used.

    `environ` (default os.environ) is what the env adapter reads; the cloud adapters take their
    credentials from the process environment as their SDKs do.
    """
    adapter = adapter_for(config)
    secrets = adapter.load(config, os.environ if environ is None else environ)
    if not secrets.admin_password_is_bcrypt:
        log.warning(
            "%s from secrets_adapter %s is not a bcrypt hash, so no admin password will match; "
            "make one with `deployex hash-password`",
            ADMIN_HASHED_PASSWORD,
            adapter.NAME,
        )
    log.info("secrets loaded with secrets_adapter %s", adapter.NAME)
    return secrets
