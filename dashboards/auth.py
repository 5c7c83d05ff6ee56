"""Who may use the dashboard: the admin password, server-side sessions, login throttling, CSRF.

- One user, `admin`, checked with bcrypt against DEPLOYEX_ADMIN_HASHED_PASSWORD. Passwords over
  72 bytes (bcrypt's limit) and unknown users fail like a wrong password, at the same cost.
- A login creates a random session id kept in memory here; the browser holds it in a signed,
  HttpOnly, SameSite=Strict cookie. Logout deletes it, so a copied cookie is dead at once; a
  session also ends `ttl_s` after login. A restart of the dashboard logs everybody out.
- Login attempts are limited per client address (a sliding window), counted when they start so
  parallel guesses count too.
- The login form carries a CSRF token that must equal the one in a signed cookie.

`DashboardAuth` plugs this into the Bokeh server: every page, every websocket and so every
action goes through `get_user`; /login, /logout, /health and /metrics are plain handlers.
"""

from __future__ import annotations

import hmac
import secrets
import time
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import bcrypt
from bokeh.server.auth_provider import AuthProvider
from tornado.web import decode_signed_value

USER = "admin"
BCRYPT_MAX_BYTES = 72
SESSION_COOKIE = "dx_session"
CSRF_COOKIE = "dx_csrf"
CSRF_FIELD = "csrf_token"
LOGIN_URL = "/login"
LOGOUT_URL = "/logout"
HOME_URL = "/applications"
Clock = Callable[[], float]


# -- passwords -----------------------------------------------------------------------------------


class PasswordCheck:
    """bcrypt verification of the admin password; slow on purpose, so run it off the event loop."""

    def __init__(self, hashed: str) -> None:
        self._hashed = hashed.encode()
        # Unknown users are checked against this, so they cost what a real check costs.
        self._dummy = bcrypt.hashpw(b"not the password", bcrypt.gensalt(_rounds_of(hashed)))

    def verify(self, user: str, password: str) -> bool:
        encoded = password.encode("utf-8", errors="replace")
        if not encoded or too_long(password):
            return False
        known = hmac.compare_digest(user.encode(), USER.encode())
        try:
            matches = bcrypt.checkpw(encoded, self._hashed if known else self._dummy)
        except ValueError:  # not a bcrypt hash: no password can match it
            return False
        return known and matches


def too_long(password: str) -> bool:
    return len(password.encode("utf-8", errors="replace")) > BCRYPT_MAX_BYTES


def _rounds_of(hashed: str) -> int:
    try:
        return min(max(int(hashed.split("$")[2]), 4), 31)
    except (IndexError, ValueError):
        return 12


# -- sessions ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Session:
    sid: str
    user: str
    client: str
    created_at: float
    expires_at: float

    @property
    def actor(self) -> str:
        """Who to name in the journal for what this session does."""
        return f"{self.user}@{self.client}"


class SessionStore:
    """Live login sessions by id; an id is unguessable and is forgotten at logout or expiry."""

    def __init__(self, ttl_s: float, clock: Clock = time.time) -> None:
        self.ttl_s = ttl_s
        self._clock = clock
        self._sessions: dict[str, Session] = {}

    def create(self, user: str, client: str) -> Session:
        self.purge()
        now = self._clock()
        session = Session(secrets.token_urlsafe(32), user, client, now, now + self.ttl_s)
        self._sessions[session.sid] = session
        return session

    def get(self, sid: str | None) -> Session | None:
        session = self._sessions.get(sid or "")
        if session is None:
            return None
        if session.expires_at <= self._clock():
            del self._sessions[session.sid]
            return None
        return session

    def revoke(self, sid: str | None) -> Session | None:
        return self._sessions.pop(sid or "", None)

    def purge(self) -> None:
        now = self._clock()
        for sid in [s.sid for s in self._sessions.values() if s.expires_at <= now]:
            del self._sessions[sid]

    def __len__(self) -> int:
        return len(self._sessions)


# -- login throttling ----------------------------------------------------------------------------


class LoginRateLimiter:
    """At most `max_attempts` login attempts per client within `window_s`; success clears."""

    def __init__(
        self,
        max_attempts: int = 5,
        window_s: float = 300.0,
        max_clients: int = 10_000,
        clock: Clock = time.time,
    ) -> None:
        self.max_attempts = max_attempts
        self.window_s = window_s
        self.max_clients = max_clients
        self._clock = clock
        self._attempts: OrderedDict[str, deque[float]] = OrderedDict()

    def retry_after(self, client: str) -> float:
        """Seconds until `client` may try again; 0 when it may now."""
        attempts = self._recent(client)
        if len(attempts) < self.max_attempts:
            return 0.0
        return max(attempts[0] + self.window_s - self._clock(), 0.001)

    def attempt(self, client: str) -> float:
        """Count an attempt that starts now, if allowed; otherwise return the wait in seconds."""
        wait = self.retry_after(client)
        if wait:
            return wait
        self._attempts.setdefault(client, deque()).append(self._clock())
        self._attempts.move_to_end(client)
        while len(self._attempts) > self.max_clients:  # bounded memory under a spray of addresses
            self._attempts.popitem(last=False)
        return 0.0

    def succeeded(self, client: str) -> None:
        self._attempts.pop(client, None)

    def _recent(self, client: str) -> deque[float]:
        attempts = self._attempts.get(client, deque())
        horizon = self._clock() - self.window_s
        while attempts and attempts[0] <= horizon:
            attempts.popleft()
        if not attempts:
            self._attempts.pop(client, None)
        return attempts


# -- CSRF ----------------------------------------------------------------------------------------


def new_csrf_token() -> str:
    return secrets.token_urlsafe(32)


def csrf_ok(cookie_token: str | None, form_token: str | None) -> bool:
    """The form's token equals the (signed) cookie's; both present."""
    if not cookie_token or not form_token:
        return False
    return hmac.compare_digest(cookie_token.encode(), form_token.encode())


# -- redirects -----------------------------------------------------------------------------------


def safe_next(target: str | None) -> str:
    """Where to go after login: a path on this site only, never another host."""
    if not target or not target.startswith("/") or target.startswith(("//", "/\\")):
        return HOME_URL
    if any(ch in target for ch in "\r\n\\"):
        return HOME_URL
    return target


# -- the Bokeh server's view ---------------------------------------------------------------------


def session_id(cookie_secret: str, signed_value: str | bytes | None, ttl_s: float) -> str | None:
    """The session id inside a signed `dx_session` cookie value, or None if forged or stale."""
    if not signed_value:
        return None
    raw = decode_signed_value(
        cookie_secret, SESSION_COOKIE, signed_value, max_age_days=ttl_s / 86400
    )
    return raw.decode() if raw else None


class DashboardAuth(AuthProvider):
    """Bokeh's hook: a request is admin's when its session cookie names a live session."""

    def __init__(self, sessions: SessionStore, endpoints: list[tuple[str, Any, dict]]) -> None:
        self.sessions = sessions
        self._endpoints = endpoints
        super().__init__()

    def current(self, handler: Any) -> Session | None:
        ttl_days = self.sessions.ttl_s / 86400
        sid = handler.get_signed_cookie(SESSION_COOKIE, max_age_days=ttl_days)
        return self.sessions.get(sid.decode() if sid else None)

    @property
    def get_user(self) -> Callable[[Any], str | None]:
        def user(handler: Any) -> str | None:
            session = self.current(handler)
            return session.user if session else None

        return user

    @property
    def login_url(self) -> str:
        return LOGIN_URL

    @property
    def endpoints(self) -> list[tuple[str, Any, dict]]:
        return list(self._endpoints)
