"""What every page does: the frame (navigation, who is logged in, "DeployEx not answering"),
the half-second tick that keeps it live, the session check before each tick and each action,
and the journaled call of an operator action."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, ClassVar

import panel as pn
from panel.io.callbacks import PeriodicCallback

from dashboards.auth import LOGIN_URL, LOGOUT_URL, Session
from dashboards.context import DashboardContext
from dashboards.gateway import Unreachable
from deployex_actors.core.status import DeployexSnapshot
from deployex_actors.errors import DeployexError

if TYPE_CHECKING:
    from deployex_actors.client import DeployEx

log = logging.getLogger(__name__)
TICK_MS = 500
NAVIGATION = (
    ("/applications", "Applications"),
    ("/versions", "Versions & ghosts"),
    ("/logs", "Logs"),
    ("/history", "History logs"),
    ("/plots", "Plots"),
    ("/journal", "Journal"),
    ("/config", "Configuration"),
    ("/upgrade", "Upgrade DeployEx"),
)
HEADER_CSS = """
.dx-user { color: #fff; font-size: 14px; text-align: right; }
.dx-user a { color: #fff; margin-left: 12px; font-weight: bold; }
"""
NAV_CSS = """
.dx-nav a { display: block; padding: 6px 4px; color: #0072b5; text-decoration: none; }
.dx-nav a.active { font-weight: bold; border-left: 3px solid #0072b5; padding-left: 8px; }
"""


class Page:
    path: ClassVar[str] = ""
    title: ClassVar[str] = ""

    def __init__(self, context: DashboardContext, session: Session) -> None:
        self.context = context
        self.session = session
        self.banner = pn.pane.Alert(
            "", alert_type="danger", visible=False, sizing_mode="stretch_width"
        )
        self.notice = pn.pane.Alert(
            "",
            alert_type="success",
            visible=False,
            sizing_mode="stretch_width",
            css_classes=["dx-notice"],
        )
        self._revision = -1
        self._closed = False
        self._cleanups: list[Any] = [context.feed.join()]
        self._callback: Any = None

    # -- what a page provides --------------------------------------------------------------------

    def body(self) -> pn.viewable.Viewable:
        raise NotImplementedError

    def refresh(self, snapshot: DeployexSnapshot) -> None:
        """The status changed (or the page is new)."""

    def tick(self) -> None:
        """Every half second while the page is open, after `refresh` if any."""

    # -- the frame -------------------------------------------------------------------------------

    def serve(self) -> pn.template.BaseTemplate:
        template = pn.template.BootstrapTemplate(
            title="DeployEx", sidebar_width=210, header_background="#0072b5"
        )
        template.header.append(self._who())
        template.sidebar.append(pn.pane.HTML(self._navigation(), stylesheets=[NAV_CSS]))
        template.main.append(
            pn.Column(self.banner, self.notice, self.body(), sizing_mode="stretch_width")
        )
        self._tick()
        # background: not counted as "busy", which would toggle the busy indicator of every
        # open session twice per tick (measured: most of the server's CPU with 5 sessions)
        self._callback = PeriodicCallback(callback=self._tick, period=TICK_MS, background=True)
        self._callback.start()
        pn.state.on_session_destroyed(lambda _context: self.close())
        return template

    def _who(self) -> pn.pane.HTML:
        who = f'{self.session.actor} <a href="{LOGOUT_URL}" class="dx-logout">Log out</a>'
        return pn.pane.HTML(
            f'<div class="dx-user">{who}</div>',
            stylesheets=[HEADER_CSS],
            sizing_mode="stretch_width",
        )

    def _navigation(self) -> str:
        pages = NAVIGATION
        if self.context.terminals_enabled:
            pages = (*pages, ("/terminal/open?target=host", "Host terminal"))
        links = "".join(
            f'<a href="{href}"{" class=active" if href == self.path else ""}>{name}</a>'
            for href, name in pages
        )
        return f'<nav class="dx-nav">{links}</nav>'

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._callback is not None:
            self._callback.stop()
        for cleanup in self._cleanups:
            cleanup()

    # -- live ------------------------------------------------------------------------------------

    def session_alive(self) -> bool:
        return self.context.sessions.get(self.session.sid) is not None

    def _tick(self) -> None:
        if self._closed:
            return
        if not self.session_alive():
            self.logged_out()
            return
        self._show_reachability()
        feed = self.context.feed
        try:
            if feed.snapshot is not None and feed.revision != self._revision:
                self._revision = feed.revision
                self.refresh(feed.snapshot)
            self.tick()
        except Exception:  # one page's bug must not kill its tick for good
            log.exception("refreshing %s failed", self.path)

    def _show_reachability(self) -> None:
        problem = self.context.feed.problem
        if problem and not self.context.gateway.reachable:
            self.banner.object = f"**DeployEx not answering** ({problem}); retrying..."
            self.banner.visible = True
        elif self.banner.visible:
            self.banner.visible = False

    def logged_out(self) -> None:
        """The session ended (logout elsewhere, expiry): show nothing more, go to the login."""
        self.close()
        self.banner.object = "Your session ended. [Log in again](/login)"
        self.banner.visible = True
        if pn.state.location is not None:
            pn.state.location.reload = True
            pn.state.location.pathname = LOGIN_URL

    # -- actions ---------------------------------------------------------------------------------

    async def act(self, done: str, action: Callable[[DeployEx, str], Any]) -> Any:
        """Run `action(facade, actor)` as this session's user (the actor journaled with it);
        say how it went on the page."""
        if not self.session_alive():
            self.logged_out()
            return None
        try:
            actor = self.session.actor
            result = await self.context.gateway.call(lambda dx: action(dx, actor))
        except Unreachable as exc:
            self.say(f"DeployEx did not answer: {exc}", "danger")
            return None
        except DeployexError as exc:
            self.say(str(exc), "danger")
            return None
        self.say(done, "success")
        return result

    async def ask(self, query: Callable[[DeployEx], Any], default: Any = None) -> Any:
        """A read (history, ghosts, journal); errors are shown, not raised."""
        try:
            return await self.context.gateway.call(query)
        except DeployexError as exc:
            self.say(str(exc), "warning")
            return default

    def say(self, text: str, kind: str = "success") -> None:
        self.notice.alert_type = kind
        self.notice.object = text
        self.notice.visible = True


def query_arg(name: str) -> str | None:
    """A parameter of the page's URL (`/logs?sname=...`)."""
    values = (pn.state.session_args or {}).get(name)
    if not values:
        return None
    value = values[0]
    return value.decode() if isinstance(value, bytes) else str(value)
