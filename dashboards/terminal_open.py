"""/terminal/open: the plain page that opens a browser terminal, and its POST.

GET shows what would be opened and a button; only the POST (session cookie, SameSite=Strict,
plus a CSRF token bound to the login session) opens anything: it leaves a one-time ticket and
sends the browser to the terminal page (`/terminal?ticket=...`), which starts the program.
"""

from __future__ import annotations

import html
import time
from urllib.parse import urlencode

from dashboards.auth import LOGIN_URL
from dashboards.context import DashboardContext
from dashboards.login import LoginContext, _Handler
from dashboards.terminals import Refused, Target, csrf_ok, csrf_token

OPEN_URL = "/terminal/open"
PAGE_URL = "/terminal"
FIELD = "csrf_token"


def open_url(target: Target) -> str:
    args = {"target": target.kind}
    if target.kind == "replica":
        args.update(app=target.app, sname=target.sname)
    return f"{OPEN_URL}?{urlencode(args)}"


class TerminalOpenHandler(_Handler):
    def initialize(self, context: LoginContext, dashboard: DashboardContext) -> None:  # type: ignore[override]
        super().initialize(context)
        self.dashboard = dashboard

    def _session_or_login(self):
        session = self.context.sessions.get(self.current_sid())
        if session is None:
            self.redirect(f"{LOGIN_URL}?{urlencode({'next': self.request.uri})}")
        return session

    def _target(self) -> Target | None:
        try:
            return Target.parse(
                self.get_argument("target", None),
                self.get_argument("app", None),
                self.get_argument("sname", None),
            )
        except ValueError as exc:
            self.set_status(400)
            self.write(page("No such terminal", f"<p>{html.escape(str(exc))}</p>"))
            return None

    def get(self) -> None:
        session = self._session_or_login()
        if session is None:
            return
        target = self._target()
        if target is None:
            return
        terminals = self.dashboard.terminals
        if terminals is None or not terminals.enabled:
            self.set_status(403)
            self.write(page("Terminals are off", f"<p>{OFF}</p>"))
            return
        token = csrf_token(self.dashboard.settings.cookie_secret, session.sid)
        hidden = "".join(
            f'<input type="hidden" name="{k}" value="{html.escape(v)}">'
            for k, v in (("target", target.kind), ("app", target.app), ("sname", target.sname))
        )
        self.write(
            page(
                f"Shell on {target.label}",
                f'<form method="post" action="{OPEN_URL}">{hidden}'
                f'<input type="hidden" name="{FIELD}" value="{token}">'
                f'<button type="submit" class="dx-open">Open a shell on '
                f"{html.escape(target.label)}</button></form>"
                f"<p>The shell runs as DeployEx's user; opening and closing it are journaled "
                f"as {html.escape(session.actor)}.</p>",
            )
        )

    async def post(self) -> None:
        session = self._session_or_login()
        if session is None:
            return
        secret = self.dashboard.settings.cookie_secret
        if not csrf_ok(secret, session.sid, self.get_body_argument(FIELD, None)):
            self.set_status(403)
            self.write(page("Not opened", "<p>The form expired; open it again.</p>"))
            return
        target = self._target()
        if target is None:
            return
        terminals = self.dashboard.terminals
        try:
            if terminals is None:
                raise Refused(OFF)
            ticket = terminals.issue(session.sid, target, session.actor, time.time())
        except Refused as exc:
            self.set_status(403)
            self.write(page("Not opened", f"<p>{html.escape(str(exc))}</p>"))
            return
        self.redirect(f"{PAGE_URL}?ticket={ticket}", status=303)


OFF = "Terminals are turned off in this DeployEx's configuration (<code>terminals: false</code>)."


def page(title: str, body: str) -> str:
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        f"<title>DeployEx - {html.escape(title)}</title><style>"
        "body{font-family:system-ui,sans-serif;background:#f4f6f8;margin:0}"
        "main{max-width:520px;margin:10vh auto;background:#fff;padding:24px 30px;"
        "border-radius:8px;box-shadow:0 2px 10px rgba(0,0,0,.12)}"
        "h1{font-size:20px;color:#0072b5}button{padding:9px 14px;font-size:15px;color:#fff;"
        "background:#0072b5;border:0;border-radius:4px;cursor:pointer}"
        "</style></head><body><main>"
        f"<h1>{html.escape(title)}</h1>{body}"
        '<p><a href="/applications">Back to the applications</a></p></main></body></html>'
    )
