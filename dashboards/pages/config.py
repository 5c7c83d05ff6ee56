"""Configuration: the change of the YAML file waiting for approval, key by key with how it is
applied (badges), or the refused file's errors, or "no pending change"; Apply and Discard, each
confirmed and journaled with the logged-in user (docs/config-watcher.md)."""

from __future__ import annotations

import html
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import panel as pn

from dashboards import display
from dashboards.components.confirm import Confirm
from dashboards.pages.base import Page
from deployex_actors.core.config_diff import FULL_DEPLOY, IMMEDIATE, NEXT_DEPLOY, RESTART, Change
from deployex_actors.core.config_watch import PENDING, REFUSED, PendingConfig

if TYPE_CHECKING:
    from deployex_actors.client import DeployEx

RELOAD_EVERY_S = 2.0
BADGE_COLOURS = {
    IMMEDIATE: "#2e7d32",
    NEXT_DEPLOY: "#0072b5",
    FULL_DEPLOY: "#b26a00",
    RESTART: "#c62828",
}
CSS = """
.cfg table { border-collapse: collapse; width: 100%; font-size: 14px; }
.cfg th, .cfg td { text-align: left; padding: 4px 8px; border-bottom: 1px solid #eee;
  vertical-align: top; }
.cfg td.value { font-family: monospace; word-break: break-all; }
.cfg .dx-badge { color: #fff; border-radius: 4px; padding: 1px 6px; font-size: 12px;
  white-space: nowrap; }
.cfg .errors li { color: #c62828; font-family: monospace; }
.cfg h3 { margin: 10px 0 4px; font-size: 16px; }
"""


def badge(change: Change) -> str:
    colour = BADGE_COLOURS[change.strategy]
    return (
        f'<span class="dx-badge dx-badge-{change.strategy}" style="background:{colour}">'
        f"{html.escape(change.badge)}</span>"
    )


def changes_table(changes: tuple[Change, ...]) -> str:
    rows = "".join(
        f'<tr class="dx-config-change" data-key="{html.escape(c.key)}">'
        f"<td>{html.escape(c.key)}</td><td class=value>{html.escape(c.old)}</td>"
        f"<td class=value>{html.escape(c.new)}</td><td>{badge(c)}</td></tr>"
        for c in changes
    )
    return f"<table><tr><th>Key</th><th>Old</th><th>New</th><th>Applied</th></tr>{rows}</table>"


def pending_html(pending: PendingConfig) -> str:
    """The page's body for what the ConfigWatcher holds."""
    where = html.escape(pending.source or "the configuration file")
    read = f" (read {display.clock(pending.read_at)})" if pending.read_at else ""
    if pending.state == REFUSED:
        errors = "".join(f"<li>{html.escape(e)}</li>" for e in pending.errors)
        body = (
            f"<p><b>The configuration file was refused</b>; the running configuration is kept. "
            f"Fix {where}:</p><ul class=errors>{errors}</ul>"
        )
    elif pending.state == PENDING:
        diff = pending.diff
        body = f"<p><b>A configuration change is waiting for approval</b> ({where}{read}).</p>"
        body += changes_table(diff.changes) if diff.changes else "<p>Nothing can be applied.</p>"
        if diff.restart_needed:
            body += "<h3>Changed, but used only after a DeployEx restart (not applied)</h3>"
            body += changes_table(diff.restart_needed)
    else:
        body = f"<p>No pending change: {where} is what runs{read}.</p>"
    return f'<div class="cfg" data-state="{pending.state}">{body}</div>'


class ConfigPage(Page):
    path = "/config"
    title = "Configuration"

    def body(self) -> pn.viewable.Viewable:
        self.view = pn.pane.HTML(
            pending_html(PendingConfig()),
            stylesheets=[CSS],
            sizing_mode="stretch_width",
            css_classes=["dx-config"],
        )
        self.apply = pn.widgets.Button(
            name="Apply", button_type="primary", css_classes=["dx-config-apply"], visible=False
        )
        self.discard = pn.widgets.Button(
            name="Discard", css_classes=["dx-config-discard"], visible=False
        )
        self.confirm = Confirm()
        self.pending = PendingConfig()
        self._loaded_at = 0.0
        self.apply.on_click(lambda _event: self._ask_apply())
        self.discard.on_click(lambda _event: self._ask_discard())
        return pn.Column(
            self.view,
            pn.Row(self.apply, self.discard),
            self.confirm.view,
            sizing_mode="stretch_width",
        )

    def tick(self) -> None:
        if time.monotonic() - self._loaded_at > RELOAD_EVERY_S:
            self._loaded_at = time.monotonic()
            pn.state.execute(self.load)

    async def load(self) -> None:
        pending = await self.ask(lambda dx: dx.pending_config())
        if pending is None:
            return
        self.pending = pending
        shown = pending_html(pending)
        if shown != self.view.object:
            self.view.object = shown
        self.apply.visible = self.discard.visible = pending.state == PENDING

    def _ask_apply(self) -> None:
        pending = self.pending
        if pending.state != PENDING:
            return
        count = len(pending.diff.changes)
        self.confirm.ask(
            f"Apply **{count}** configuration change(s) now? Replicas may be added, stopped or "
            "replaced.",
            "apply",
            lambda: self._run(
                "Configuration change applied",
                lambda dx, actor: dx.apply_config(actor, pending.checksum),
            ),
        )

    def _ask_discard(self) -> None:
        pending = self.pending
        self.confirm.ask(
            "Discard the pending configuration change? The running configuration is kept.",
            "discard",
            lambda: self._run(
                "Configuration change discarded",
                lambda dx, actor: dx.discard_config(actor, pending.checksum),
            ),
        )

    async def _run(self, done: str, action: Callable[[DeployEx, str], Any]) -> None:
        await self.act(done, action)
        await self.load()
