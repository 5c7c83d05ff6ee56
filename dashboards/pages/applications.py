"""The applications page: a DeployEx card, then one tab per application with its replica cards."""

from __future__ import annotations

import html
import time

import panel as pn

from dashboards import display
from dashboards.components.app_panel import AppPanel
from dashboards.components.confirm import Confirm
from dashboards.pages.base import Page
from dashboards.terminal_open import open_url
from dashboards.terminals import Target
from deployex_actors.core.metrics import DEPLOYEX, HOST
from deployex_actors.core.status import DeployexSnapshot

CARD_CSS = """
.dx-card dl { display: grid; grid-template-columns: repeat(3, 130px minmax(120px, 1fr));
              gap: 3px 10px; font-size: 14px; margin: 0; }
.dx-card dt { color: #666; } .dx-card dd { margin: 0; }
.dx-card h2 { margin: 0 0 8px; font-size: 20px; }
"""
RESTART_DEPLOYEX_QUESTION = (
    "Restart **DeployEx** itself? Its actors and this dashboard start again within a few "
    "seconds; the replicas keep running and are adopted (no app restart)."
)


def deployex_card_html(
    snapshot: DeployexSnapshot | None, host: object, own: object, now: float
) -> str:
    if snapshot is None:
        return '<div class="dx-card"><h2>DeployEx</h2><p>waiting for DeployEx...</p></div>'
    replicas = [r for a in snapshot.apps for r in a.replicas]
    linked = sum(1 for r in replicas if r.otp == "connected")
    host_values = getattr(host, "values", {}) or {}
    own_values = getattr(own, "values", {}) or {}
    rows = [
        ("version", "Version", snapshot.version),
        ("host", "Host", snapshot.host),
        ("pid", "OS pid", snapshot.pid),
        ("uptime", "Uptime", display.ago(now - snapshot.started_at)),
        ("apps", "Applications", len(snapshot.apps)),
        ("otp", "OTP links", f"{linked} of {len(replicas)} replicas connected"),
        ("host_cpu", "Host CPU", _pct(host_values.get("cpu_percent"))),
        ("host_memory", "Host memory", _pct(host_values.get("memory_percent"))),
        ("memory", "DeployEx memory", display.size(own_values.get("rss"))),
    ]
    if snapshot.state_error:
        rows.append(("state_error", "Problem", snapshot.state_error))
    body = "".join(
        f'<dt>{label}</dt><dd data-field="{key}">{html.escape(str(value))}</dd>'
        for key, label, value in rows
    )
    return f'<div class="dx-card"><h2>DeployEx</h2><dl>{body}</dl></div>'


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value:.0f}%"


class ApplicationsPage(Page):
    path = "/applications"
    title = "Applications"

    def body(self) -> pn.viewable.Viewable:
        config = self.context.settings.config
        latest = self.context.feed.latest
        shell = self.context.terminals_enabled
        self.panels = {
            app.name: AppPanel(app, latest, self.act, self.ask, shell)
            for app in config.applications
        }
        self.card = pn.pane.HTML(
            deployex_card_html(None, None, None, time.time()),
            stylesheets=[CARD_CSS],
            sizing_mode="stretch_width",
        )
        restart = pn.widgets.Button(
            name="Restart DeployEx", width=150, css_classes=["dx-restart-deployex"]
        )
        self.confirm = Confirm("dx-confirm-deployex")
        restart.on_click(lambda _event: self.ask_restart_deployex())
        actions = pn.Row(restart)
        if self.context.terminals_enabled:
            actions.append(
                pn.pane.HTML(
                    f'<a href="{open_url(Target("deployex"))}" target="_blank" '
                    'class="dx-shell">Shell (Python, with dx)</a>'
                )
            )
        deployex = pn.Column(
            self.card,
            actions,
            self.confirm.view,
            css_classes=["deployex-card"],
            styles={
                "border": "1px solid #ddd",
                "border-radius": "8px",
                "padding": "10px",
                "background": "#fff",
            },
            sizing_mode="stretch_width",
        )
        tabs = pn.Tabs(
            *((name, panel.view()) for name, panel in self.panels.items()),
            sizing_mode="stretch_width",
            dynamic=False,
        )
        empty = pn.pane.Markdown("No application is configured.", visible=not self.panels)
        return pn.Column(deployex, pn.Spacer(height=10), tabs, empty, sizing_mode="stretch_width")

    def ask_restart_deployex(self) -> None:
        self.confirm.ask(
            RESTART_DEPLOYEX_QUESTION,
            "restart DeployEx",
            lambda: self.act(
                "DeployEx is restarting", lambda dx, actor: dx.restart_deployex(actor)
            ),
        )

    def refresh(self, snapshot: DeployexSnapshot) -> None:
        for app in snapshot.apps:
            panel = self.panels.get(app.app)
            if panel is not None:
                panel.update(app)

    def tick(self) -> None:
        feed = self.context.feed
        rendered = deployex_card_html(
            feed.snapshot, feed.latest(HOST), feed.latest(DEPLOYEX), time.time()
        )
        if rendered != self.card.object:
            self.card.object = rendered
        for panel in self.panels.values():
            panel.tick()
