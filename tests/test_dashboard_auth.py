"""Dashboard login without a browser: sessions, throttling, CSRF, bcrypt, cookies, logout."""

from __future__ import annotations

import asyncio
import re
import threading
from http.cookies import SimpleCookie
from urllib.parse import urlencode

import bcrypt
import pytest
from tornado.httpclient import AsyncHTTPClient, HTTPResponse
from tornado.web import Application, create_signed_value

from dashboards.auth import (
    CSRF_COOKIE,
    SESSION_COOKIE,
    LoginRateLimiter,
    PasswordCheck,
    SessionStore,
    csrf_ok,
    safe_next,
    session_id,
    too_long,
)
from dashboards.login import LoginContext, LoginHandler, LogoutHandler

SECRET = "cookie-secret-for-tests"
PASSWORD = "s3cret-pass"
HASH = bcrypt.hashpw(PASSWORD.encode(), bcrypt.gensalt(4)).decode()


class Clock:
    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


# -- sessions ------------------------------------------------------------------------------------


def test_a_session_lives_until_its_expiry_and_dies_at_logout() -> None:
    clock = Clock()
    store = SessionStore(ttl_s=60, clock=clock)
    session = store.create("admin", "10.0.0.7")
    assert store.get(session.sid) == session
    assert session.actor == "admin@10.0.0.7"
    clock.now += 59
    assert store.get(session.sid) is not None
    clock.now += 1
    assert store.get(session.sid) is None
    again = store.create("admin", "10.0.0.7")
    assert store.revoke(again.sid) == again
    assert store.get(again.sid) is None


def test_session_ids_are_unique_and_unknown_ids_are_nobody() -> None:
    store = SessionStore(ttl_s=60)
    ids = {store.create("admin", "h").sid for _ in range(50)}
    assert len(ids) == 50 and all(len(sid) >= 40 for sid in ids)
    assert store.get("forged") is None and store.get(None) is None and store.get("") is None


def test_expired_sessions_are_purged_on_the_next_login() -> None:
    clock = Clock()
    store = SessionStore(ttl_s=10, clock=clock)
    for _ in range(5):
        store.create("admin", "h")
    clock.now += 11
    store.create("admin", "h")
    assert len(store) == 1


def test_the_session_cookie_is_only_read_when_signed_with_our_secret() -> None:
    signed = create_signed_value(SECRET, SESSION_COOKIE, "abc")
    assert session_id(SECRET, signed, 3600) == "abc"
    assert session_id("another secret", signed, 3600) is None
    assert session_id(SECRET, "abc", 3600) is None
    assert session_id(SECRET, None, 3600) is None


# -- throttling ----------------------------------------------------------------------------------


def test_login_attempts_are_limited_per_client_within_a_sliding_window() -> None:
    clock = Clock()
    limiter = LoginRateLimiter(max_attempts=3, window_s=60, clock=clock)
    assert [limiter.attempt("a") for _ in range(3)] == [0, 0, 0]
    wait = limiter.attempt("a")
    assert 59 < wait <= 60
    assert limiter.attempt("b") == 0  # another client is not affected
    clock.now += 60.5
    assert limiter.attempt("a") == 0


def test_a_successful_login_clears_the_count() -> None:
    limiter = LoginRateLimiter(max_attempts=2, window_s=60)
    limiter.attempt("a")
    limiter.attempt("a")
    limiter.succeeded("a")
    assert limiter.retry_after("a") == 0


def test_the_limiter_remembers_a_bounded_number_of_clients() -> None:
    limiter = LoginRateLimiter(max_attempts=1, window_s=60, max_clients=100)
    for n in range(1000):
        limiter.attempt(f"10.0.{n // 256}.{n % 256}")
    assert len(limiter._attempts) == 100


# -- CSRF, passwords, redirects ------------------------------------------------------------------


def test_csrf_tokens_must_be_present_and_equal() -> None:
    assert csrf_ok("token", "token")
    assert not csrf_ok("token", "other")
    assert not csrf_ok(None, "token") and not csrf_ok("token", None) and not csrf_ok("", "")


def test_password_check_accepts_admin_with_the_password_only() -> None:
    check = PasswordCheck(HASH)
    assert check.verify("admin", PASSWORD)
    assert not check.verify("admin", "wrong")
    assert not check.verify("root", PASSWORD)
    assert not check.verify("admin", "")


def test_a_password_over_72_bytes_is_refused_not_an_error() -> None:
    long_password = "é" * 40  # 80 bytes in UTF-8
    assert too_long(long_password) and not too_long("x" * 72)
    assert not PasswordCheck(HASH).verify("admin", long_password)
    assert not PasswordCheck(HASH).verify("admin", PASSWORD + "x" * 80)


def test_a_hash_that_is_not_bcrypt_matches_nothing() -> None:
    assert not PasswordCheck("plain-text-password").verify("admin", "plain-text-password")


@pytest.mark.parametrize(
    ("target", "expected"),
    [
        ("/logs?sname=a", "/logs?sname=a"),
        (None, "/applications"),
        ("https://evil.example/", "/applications"),
        ("//evil.example/", "/applications"),
        ("/\\evil.example", "/applications"),
        ("logs", "/applications"),
    ],
)
def test_after_login_only_paths_of_this_site_are_followed(target, expected) -> None:
    assert safe_next(target) == expected


# -- the handlers over HTTP ----------------------------------------------------------------------


class RecordingCheck(PasswordCheck):
    """Records the thread each check ran on: it must never be the event loop's."""

    def __init__(self, hashed: str) -> None:
        super().__init__(hashed)
        self.threads: list[str] = []

    def verify(self, user: str, password: str) -> bool:
        self.threads.append(threading.current_thread().name)
        return super().verify(user, password)


class LoginServer:
    def __init__(self, secure: bool = False, max_attempts: int = 5) -> None:
        self.journal: list[tuple[str, str, str]] = []
        self.check = RecordingCheck(HASH)
        self.context = LoginContext(
            sessions=SessionStore(3600),
            limiter=LoginRateLimiter(max_attempts=max_attempts),
            password=self.check,
            journal=self._journal,
            secure_cookies=secure,
        )
        routes = [
            ("/login", LoginHandler, {"context": self.context}),
            ("/logout", LogoutHandler, {"context": self.context}),
        ]
        self.app = Application(routes, cookie_secret=SECRET)
        self.cookies: dict[str, str] = {}

    async def _journal(self, kind: str, message: str, actor: str) -> None:
        self.journal.append((kind, message, actor))

    async def request(self, path: str, body: dict | None = None) -> HTTPResponse:
        headers = {"Cookie": "; ".join(f"{k}={v}" for k, v in self.cookies.items())}
        response = await AsyncHTTPClient().fetch(
            f"{self.url}{path}",
            method="POST" if body is not None else "GET",
            body=urlencode(body) if body is not None else None,
            headers=headers,
            follow_redirects=False,
            raise_error=False,
        )
        for header in response.headers.get_list("Set-Cookie"):
            for name, morsel in SimpleCookie(header).items():
                self.cookies[name] = morsel.value
        return response

    async def form_token(self) -> str:
        page = (await self.request("/login")).body.decode()
        return re.search(r'name="csrf_token" value="([^"]+)"', page)[1]

    async def log_in(self, password: str, user: str = "admin") -> HTTPResponse:
        token = await self.form_token()
        return await self.request(
            "/login?next=%2Flogs", {"csrf_token": token, "username": user, "password": password}
        )


def scenario(server: LoginServer, steps) -> None:
    async def run() -> None:
        http = server.app.listen(0, "127.0.0.1")
        port = next(iter(http._sockets.values())).getsockname()[1]
        server.url = f"http://127.0.0.1:{port}"
        try:
            await steps(server)
        finally:
            http.stop()

    asyncio.run(run())


def test_the_right_password_opens_a_session_with_a_strict_httponly_cookie() -> None:
    async def steps(server: LoginServer) -> None:
        response = await server.log_in(PASSWORD)
        assert response.code == 302 and response.headers["Location"] == "/logs"
        cookie = next(h for h in response.headers.get_list("Set-Cookie") if SESSION_COOKIE in h)
        assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and "Secure" not in cookie
        assert len(server.context.sessions) == 1
        assert server.journal[-1][0] == "login" and server.journal[-1][2] == "admin@127.0.0.1"
        assert server.check.threads and all(t.startswith("bcrypt") for t in server.check.threads)

    scenario(LoginServer(), steps)


def test_cookies_are_secure_when_the_dashboard_is_served_over_https() -> None:
    async def steps(server: LoginServer) -> None:
        response = await server.log_in(PASSWORD)
        cookie = next(h for h in response.headers.get_list("Set-Cookie") if SESSION_COOKIE in h)
        assert "Secure" in cookie

    scenario(LoginServer(secure=True), steps)


def test_a_wrong_password_or_user_is_refused_and_journaled() -> None:
    async def steps(server: LoginServer) -> None:
        for user, password in (("admin", "nope"), ("root", PASSWORD)):
            response = await server.log_in(password, user)
            assert response.code == 303 and "error=invalid" in response.headers["Location"]
        assert not server.context.sessions._sessions
        assert [kind for kind, _m, _a in server.journal] == ["login_failed", "login_failed"]
        assert "unknown user" in server.journal[1][1] and PASSWORD not in str(server.journal)

    scenario(LoginServer(), steps)


def test_a_password_over_72_bytes_gets_the_login_page_again_not_a_500() -> None:
    async def steps(server: LoginServer) -> None:
        response = await server.log_in("x" * 100)
        assert response.code == 303 and "error=invalid" in response.headers["Location"]
        assert "72 bytes" in server.journal[-1][1]
        assert server.check.threads == []  # refused before bcrypt

    scenario(LoginServer(), steps)


def test_a_login_without_the_form_token_is_refused() -> None:
    async def steps(server: LoginServer) -> None:
        await server.request("/login")  # the CSRF cookie, but not the form's token
        body = {"username": "admin", "password": PASSWORD}
        assert (await server.request("/login", body)).code == 403
        body["csrf_token"] = "guessed"
        assert (await server.request("/login", body)).code == 403
        server.cookies.pop(CSRF_COOKIE)
        token = "a" * 43
        assert (await server.request("/login", {**body, "csrf_token": token})).code == 403
        assert not server.context.sessions._sessions

    scenario(LoginServer(), steps)


def test_too_many_attempts_from_one_client_are_answered_429() -> None:
    async def steps(server: LoginServer) -> None:
        for _ in range(3):
            assert (await server.log_in("wrong")).code == 303
        response = await server.log_in(PASSWORD)  # even the right password waits now
        assert response.code == 429 and int(response.headers["Retry-After"]) > 0
        assert b"Too many login attempts" in response.body
        assert not server.context.sessions._sessions

    scenario(LoginServer(max_attempts=3), steps)


def test_logout_kills_the_session_so_a_copied_cookie_is_worthless() -> None:
    async def steps(server: LoginServer) -> None:
        await server.log_in(PASSWORD)
        copied = server.cookies[SESSION_COOKIE]
        sid = session_id(SECRET, copied, 3600)
        assert server.context.sessions.get(sid) is not None
        response = await server.request("/logout")
        assert response.code == 302 and "/login" in response.headers["Location"]
        assert server.context.sessions.get(sid) is None
        assert server.journal[-1][0] == "logout"

    scenario(LoginServer(), steps)


def test_the_login_page_loads_nothing_from_elsewhere_and_cannot_be_framed() -> None:
    async def steps(server: LoginServer) -> None:
        response = await server.request("/login")
        assert response.code == 200
        assert "frame-ancestors 'none'" in response.headers["Content-Security-Policy"]
        assert not re.search(rb"(src|href)=\"https?://", response.body)

    scenario(LoginServer(), steps)
