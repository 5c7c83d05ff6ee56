"""/login and /logout: the only pages served without a session, and the door out of one.

The login page is plain HTML with no external resource. Its POST is checked in this order: CSRF
token, per-client rate limit, then the password with bcrypt on a thread pool (never on the event
loop). Every success and failure is journaled with the client address.
"""

from __future__ import annotations

import asyncio
import html
import logging
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from urllib.parse import quote

from tornado.web import RequestHandler

from dashboards.auth import (
    CSRF_COOKIE,
    CSRF_FIELD,
    HOME_URL,
    LOGIN_URL,
    SESSION_COOKIE,
    USER,
    LoginRateLimiter,
    PasswordCheck,
    SessionStore,
    csrf_ok,
    new_csrf_token,
    safe_next,
    too_long,
)

log = logging.getLogger(__name__)
Journal = Callable[[str, str, str], Awaitable[None]]
MESSAGES = {
    "invalid": "Invalid username or password.",
    "csrf": "The login form expired; please try again.",
    "throttled": "Too many login attempts from your address; wait a few minutes and try again.",
    "logged_out": "You are logged out.",
    "expired": "Your session ended; please log in again.",
}


@dataclass
class LoginContext:
    """What the login and logout handlers share with the rest of the dashboard."""

    sessions: SessionStore
    limiter: LoginRateLimiter
    password: PasswordCheck
    journal: Journal
    secure_cookies: bool = False
    bcrypt_pool: ThreadPoolExecutor = field(
        default_factory=lambda: ThreadPoolExecutor(2, thread_name_prefix="bcrypt")
    )

    def cookie_options(self) -> dict:
        return {"httponly": True, "samesite": "Strict", "secure": self.secure_cookies, "path": "/"}


class _Handler(RequestHandler):
    def initialize(self, context: LoginContext) -> None:
        self.context = context

    def set_default_headers(self) -> None:
        self.set_header("Cache-Control", "no-store")
        self.set_header(
            "Content-Security-Policy",
            "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; "
            "frame-ancestors 'none'",
        )

    @property
    def client(self) -> str:
        return self.request.remote_ip or "unknown"

    def current_sid(self) -> str | None:
        ttl_days = self.context.sessions.ttl_s / 86400
        sid = self.get_signed_cookie(SESSION_COOKIE, max_age_days=ttl_days)
        return sid.decode() if sid else None

    async def journal(self, kind: str, message: str, actor: str) -> None:
        try:
            await self.context.journal(kind, message, actor)
        except Exception as exc:  # the journal is best effort: never fail a login over it
            log.warning("could not journal %s (%s): %s", kind, message, exc)


class LoginHandler(_Handler):
    def get(self) -> None:
        if self.context.sessions.get(self.current_sid()):
            self.redirect(safe_next(self.get_argument("next", None)))
            return
        self._form(MESSAGES.get(self.get_argument("error", "") or self.get_argument("info", "")))

    async def post(self) -> None:
        target = safe_next(self.get_argument("next", None))
        signed = self.get_signed_cookie(CSRF_COOKIE, max_age_days=1)
        if not csrf_ok(signed.decode() if signed else None, self.get_argument(CSRF_FIELD, None)):
            await self.journal(
                "login_failed",
                "login refused: missing or wrong CSRF token",
                f"anonymous@{self.client}",
            )
            self._fail("csrf", target, status=403)
            return
        wait = self.context.limiter.attempt(self.client)
        if wait:
            self.set_header("Retry-After", str(int(wait) + 1))
            await self.journal(
                "login_throttled",
                f"login attempts over the limit; retry in {wait:.0f} s",
                f"anonymous@{self.client}",
            )
            self._fail("throttled", target, status=429)
            return
        await self._check(
            self.get_argument("username", ""), self.get_argument("password", ""), target
        )

    async def _check(self, user: str, password: str, target: str) -> None:
        if too_long(password):
            ok, reason = False, "password longer than 72 bytes"
        else:
            loop = asyncio.get_running_loop()
            ok = await loop.run_in_executor(
                self.context.bcrypt_pool, self.context.password.verify, user, password
            )
            reason = "wrong password" if user == USER else "unknown user"
        if not ok:
            await self.journal(
                "login_failed", f"login failed: {reason}", f"anonymous@{self.client}"
            )
            self._fail("invalid", target)
            return
        self.context.limiter.succeeded(self.client)
        self.context.sessions.revoke(self.current_sid())
        session = self.context.sessions.create(USER, self.client)
        self.set_signed_cookie(
            SESSION_COOKIE,
            session.sid,
            expires_days=self.context.sessions.ttl_s / 86400,
            **self.context.cookie_options(),
        )
        self.clear_cookie(CSRF_COOKIE, path="/")
        await self.journal("login", "logged in to the dashboard", session.actor)
        self.redirect(target)

    def _fail(self, reason: str, target: str, status: int = 200) -> None:
        if status == 200:
            self.redirect(f"{LOGIN_URL}?error={reason}&next={quote(target)}", status=303)
            return
        self.set_status(status)
        self._form(MESSAGES[reason])

    def _form(self, message: str | None) -> None:
        token = new_csrf_token()
        self.set_signed_cookie(CSRF_COOKIE, token, expires_days=1, **self.context.cookie_options())
        target = safe_next(self.get_argument("next", None))
        self.write(login_page(token, target, message))


class LogoutHandler(_Handler):
    """GET or POST: the session cookie is SameSite=Strict, so no other site can log anyone out."""

    async def get(self) -> None:
        session = self.context.sessions.revoke(self.current_sid())
        self.clear_cookie(SESSION_COOKIE, path="/")
        if session is not None:
            await self.journal("logout", "logged out of the dashboard", session.actor)
        self.redirect(f"{LOGIN_URL}?info=logged_out")

    post = get


class HomeHandler(RequestHandler):
    def get(self) -> None:
        self.redirect(HOME_URL)


def login_page(token: str, target: str, message: str | None) -> str:
    notice = f'<p class="notice" role="alert">{html.escape(message)}</p>' if message else ""
    return LOGIN_TEMPLATE.format(
        notice=notice,
        action=html.escape(f"{LOGIN_URL}?next={quote(target)}"),
        field=CSRF_FIELD,
        token=html.escape(token),
    )


LOGIN_TEMPLATE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>DeployEx - log in</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
body {{ font-family: system-ui, sans-serif; background: #f4f6f8; margin: 0; }}
main {{ max-width: 340px; margin: 12vh auto; background: #fff; padding: 28px 32px;
       border-radius: 8px; box-shadow: 0 2px 10px rgba(0,0,0,.12); }}
h1 {{ font-size: 22px; margin: 0 0 18px; color: #0072b5; }}
label {{ display: block; font-size: 13px; color: #444; margin: 12px 0 4px; }}
input {{ width: 100%; box-sizing: border-box; padding: 8px; font-size: 14px;
        border: 1px solid #bbb; border-radius: 4px; }}
button {{ margin-top: 20px; width: 100%; padding: 9px; font-size: 15px; color: #fff;
         background: #0072b5; border: 0; border-radius: 4px; cursor: pointer; }}
.notice {{ background: #fdecea; color: #8a1f11; padding: 8px 10px; border-radius: 4px;
          font-size: 13px; }}
</style></head>
<body><main>
<h1>DeployEx</h1>
{notice}
<form method="post" action="{action}">
<input type="hidden" name="{field}" value="{token}">
<label for="username">Username</label>
<input id="username" name="username" autocomplete="username" value="admin" required>
<label for="password">Password</label>
<input id="password" name="password" type="password" autocomplete="current-password" required>
<button type="submit">Log in</button>
</form>
</main></body></html>
"""
