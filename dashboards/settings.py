"""What the dashboard process is told: the YAML configuration plus its environment.

The Web actor starts `python -m dashboards.serve --config <yaml>` with the secrets in the
environment. Standalone in local mode with no secrets set, the documented development defaults
apply (password "deployex"), announced with a warning, exactly as `deployex run` does.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
from collections.abc import Mapping
from dataclasses import dataclass

from deployex_actors.config import Config
from deployex_actors.errors import DeployexError
from deployex_actors.secrets.model import ADMIN_HASHED_PASSWORD, SECRET_KEY_BASE

log = logging.getLogger(__name__)

HOST_ENV = "DEPLOYEX_DASHBOARD_HOST"
SECURE_COOKIES_ENV = "DEPLOYEX_DASHBOARD_SECURE_COOKIES"
METRICS_TOKEN_ENV = "DEPLOYEX_METRICS_TOKEN"  # noqa: S105 - the name of the variable
SESSION_TTL_ENV = "DEPLOYEX_DASHBOARD_SESSION_TTL_S"
TRUST_PROXY_ENV = "DEPLOYEX_DASHBOARD_TRUST_PROXY"
DEFAULT_HOST = "127.0.0.1"
DEFAULT_SESSION_TTL_S = 12 * 3600.0
TRUE_WORDS = ("1", "true", "yes", "on")


@dataclass(frozen=True, repr=False)
class Settings:
    config: Config
    host: str
    port: int
    admin_hashed_password: str
    cookie_secret: str  # derived from the secret key base, used only to sign cookies
    secure_cookies: bool = False
    metrics_token: str | None = None
    session_ttl_s: float = DEFAULT_SESSION_TTL_S
    trust_proxy: bool = False  # client address from X-Forwarded-For / X-Real-IP
    development_defaults: bool = False

    def __repr__(self) -> str:
        return (
            f"Settings(host={self.host!r}, port={self.port}, secure_cookies={self.secure_cookies}, "
            f"metrics_token={'set' if self.metrics_token else 'unset'}, <secrets hidden>)"
        )

    @property
    def websocket_origins(self) -> list[str]:
        """Hosts a browser may open the dashboard's websocket from: this port directly, or the
        default ports behind a reverse proxy (an https origin without a port counts as :80)."""
        hosts = {self.config.hostname, "localhost", "127.0.0.1"}
        if self.host not in ("0.0.0.0", "::"):  # noqa: S104 - comparing, not binding
            hosts.add(self.host)
        return sorted(f"{host}:{port}" for host in hosts for port in (self.port, 80, 443))


def settings_from_env(config: Config, environ: Mapping[str, str]) -> Settings:
    admin_hash, key_base, development = _secrets(config, environ)
    return Settings(
        config=config,
        host=environ.get(HOST_ENV) or DEFAULT_HOST,
        port=config.port,
        admin_hashed_password=admin_hash,
        cookie_secret=derive_cookie_secret(key_base),
        secure_cookies=_flag(environ, SECURE_COOKIES_ENV),
        metrics_token=environ.get(METRICS_TOKEN_ENV) or None,
        session_ttl_s=_seconds(environ, SESSION_TTL_ENV, DEFAULT_SESSION_TTL_S),
        trust_proxy=_flag(environ, TRUST_PROXY_ENV),
        development_defaults=development,
    )


def derive_cookie_secret(secret_key_base: str) -> str:
    """A key of its own for the dashboard's cookies, so the base key is never used directly."""
    return hmac.new(
        secret_key_base.encode(), b"deployex dashboard cookies", hashlib.sha256
    ).hexdigest()


def _secrets(config: Config, environ: Mapping[str, str]) -> tuple[str, str, bool]:
    admin_hash = environ.get(ADMIN_HASHED_PASSWORD)
    key_base = environ.get(SECRET_KEY_BASE)
    if admin_hash and key_base:
        return admin_hash, key_base, False
    if config.is_local and not admin_hash and not key_base:
        from deployex_actors.secrets.env import development_defaults

        log.warning(
            "%s and %s are not set: DEVELOPMENT DEFAULTS (admin password 'deployex')",
            ADMIN_HASHED_PASSWORD,
            SECRET_KEY_BASE,
        )
        defaults = development_defaults()
        return defaults.admin_hashed_password, defaults.secret_key_base, True
    missing = [
        k for k, v in ((ADMIN_HASHED_PASSWORD, admin_hash), (SECRET_KEY_BASE, key_base)) if not v
    ]
    raise DeployexError(f"the dashboard needs {' and '.join(missing)} in its environment")


def _flag(environ: Mapping[str, str], key: str) -> bool:
    return environ.get(key, "").strip().lower() in TRUE_WORDS


def _seconds(environ: Mapping[str, str], key: str, default: float) -> float:
    raw = environ.get(key)
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise DeployexError(f"{key}={raw!r} is not a number of seconds") from None
    if value <= 0:
        raise DeployexError(f"{key} must be positive (it is {raw})")
    return value
