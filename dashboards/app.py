"""The dashboard's web server: the pages behind the login, and the few routes outside it.

    /login /logout            dashboards.login (no session needed, CSRF and rate limit)
    /health /metrics          dashboards.probes (no session; /metrics may want a bearer token)
    /applications /versions /logs /plots /journal /config    one Panel page each, session required
    /terminal/open            dashboards.terminal_open (session; opening is a POST with CSRF)
    /terminal                 the terminal a /terminal/open POST left a ticket for
    /observer                 one replica's node: system, processes, trees, a trace
    /                         redirects to /applications

Pages and their websockets go through Bokeh's authenticated handlers, whose user comes from
`DashboardAuth` (a live server-side session), so a revoked cookie gets neither.
"""

from __future__ import annotations

import logging
from typing import Any

import panel as pn
from bokeh.server.urls import per_app_patterns
from panel.io.server import WSHandler, get_server
from tornado.web import OutputTransform, RequestHandler

from dashboards.auth import (
    LOGIN_URL,
    LOGOUT_URL,
    SESSION_COOKIE,
    DashboardAuth,
    LoginRateLimiter,
    PasswordCheck,
    Session,
    session_id,
)
from dashboards.context import DashboardContext
from dashboards.login import HomeHandler, LoginContext, LoginHandler, LogoutHandler
from dashboards.pages.applications import ApplicationsPage
from dashboards.pages.base import Page
from dashboards.pages.config import ConfigPage
from dashboards.pages.history import HistoryPage
from dashboards.pages.journal import JournalPage
from dashboards.pages.logs import LogsPage
from dashboards.pages.observer import ObserverPage
from dashboards.pages.plots import PlotsPage
from dashboards.pages.terminal import TerminalPage
from dashboards.pages.upgrade import UpgradePage
from dashboards.pages.versions import VersionsPage
from dashboards.probes import HealthHandler, MetricsHandler, exposition_from
from dashboards.terminal_open import OPEN_URL, TerminalOpenHandler

access = logging.getLogger("tornado.access")
PAGES: tuple[type[Page], ...] = (
    ApplicationsPage,
    VersionsPage,
    LogsPage,
    HistoryPage,
    PlotsPage,
    JournalPage,
    ConfigPage,
    UpgradePage,
    TerminalPage,
    ObserverPage,
)
SECURITY_HEADERS = {
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
}


class SecurityHeaders(OutputTransform):
    """No framing (clickjacking), no MIME sniffing, no leaking of paths to other sites."""

    def transform_first_chunk(
        self, status_code: int, headers: Any, chunk: bytes, finishing: bool
    ) -> tuple[int, Any, bytes]:
        for name, value in SECURITY_HEADERS.items():
            headers.setdefault(name, value)
        return status_code, headers, chunk


def access_log(handler: Any) -> None:
    """Tornado's access log, without the health checks (as upstream, unless something fails)."""
    status = handler.get_status()
    if handler.request.path == "/health" and status < 400:
        return
    level = logging.INFO if status < 400 else logging.WARNING
    took_ms = 1000.0 * handler.request.request_time()
    access.log(level, "%d %s %.1fms", status, handler._request_summary(), took_ms)


def session_of_document(context: DashboardContext) -> Session | None:
    """The login session of the browser this document is built for."""
    request = pn.state.curdoc.session_context.request
    signed = request.cookies.get(SESSION_COOKIE)
    sid = session_id(context.settings.cookie_secret, signed, context.sessions.ttl_s)
    return context.sessions.get(sid)


def page_route(context: DashboardContext, page_class: type[Page]) -> Any:
    def build() -> Any:
        session = session_of_document(context)
        if session is None:  # logged out between the page request and its document
            return pn.pane.Markdown(f"Your session ended. [Log in]({LOGIN_URL})")
        return page_class(context, session).serve()

    return build


def login_context(context: DashboardContext) -> LoginContext:
    return LoginContext(
        sessions=context.sessions,
        limiter=LoginRateLimiter(),
        password=PasswordCheck(context.settings.admin_hashed_password),
        journal=context.journal,
        secure_cookies=context.settings.secure_cookies,
    )


class NoDelayWSHandler(WSHandler):
    """A page's websocket without Nagle's algorithm: Bokeh sends each change as several small
    frames, and the later ones waited for the browser's delayed ACK (~40 ms on loopback), which
    every keystroke echo in a terminal paid (bench_terminal: median 50.1 -> 17.8 ms)."""

    def open(self, *args: Any, **kwargs: Any) -> Any:
        self.set_nodelay(True)
        return super().open(*args, **kwargs)


# Panel itself swaps its handler into Bokeh's per-app routes; ours goes in its place.
per_app_patterns[:] = [
    (path, NoDelayWSHandler if path == r"/ws" else handler) for path, handler in per_app_patterns
]


class NotServedHandler(RequestHandler):
    """Bokeh's /<page>/autoload.js (for embedding) checks no login; we embed nothing."""

    def get(self) -> None:
        self.send_error(404)


def make_server(context: DashboardContext, logins: LoginContext | None = None) -> Any:
    """The Bokeh server (not started)."""
    settings = context.settings
    logins = logins or login_context(context)
    auth = DashboardAuth(
        context.sessions,
        [
            (LOGIN_URL, LoginHandler, {"context": logins}),
            (LOGOUT_URL, LogoutHandler, {"context": logins}),
        ],
    )
    extra = [
        (r"/", HomeHandler),
        (r"/health", HealthHandler),
        (OPEN_URL, TerminalOpenHandler, {"context": logins, "dashboard": context}),
        (
            r"/metrics",
            MetricsHandler,
            {"exposition": exposition_from(context.gateway), "token": settings.metrics_token},
        ),
    ]
    server = get_server(
        {page.path: page_route(context, page) for page in PAGES},
        port=settings.port,
        address=settings.host,
        websocket_origin=settings.websocket_origins,
        title={page.path: f"DeployEx - {page.title}" for page in PAGES},
        show=False,
        start=False,
        session_history=0,
        auth_provider=auth,
        cookie_secret=settings.cookie_secret,
        extra_patterns=extra,
        use_index=False,
        redirect_root=False,
        use_xheaders=settings.trust_proxy,
        transforms=[SecurityHeaders],
        log_function=access_log,
        # a closed tab's session (and its periodic callback) is dropped within ~10 s
        unused_session_lifetime_milliseconds=5_000,
        check_unused_sessions_milliseconds=2_000,
    )
    # Host rules are matched before the page routes: nobody gets autoload.js, logged in or not.
    server._tornado.add_handlers(r".*", [(r"/[^/]+/autoload\.js", NotServedHandler)])
    return server
