"""One application's tab: mode control, settings, last ghosted, full restart, replica cards."""

from __future__ import annotations

import html
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

import panel as pn

from dashboards import display
from dashboards.components.confirm import Confirm
from dashboards.components.replica_card import ReplicaCard
from deployex_actors.config import Application
from deployex_actors.core.status import AppSnapshot, ReplicaStatus

if TYPE_CHECKING:
    from deployex_actors.client import DeployEx
    from deployex_actors.core.metrics import Sample

# What the page lends a panel: run an operator action (as the session's user), ask a question.
Act = Callable[[str, Callable[["DeployEx", str], Any]], Awaitable[Any]]
Ask = Callable[[Callable[["DeployEx"], Any]], Awaitable[Any]]

AUTOMATIC_LABEL = "automatic (follow current.json)"
MAX_PINNABLE = 10
DETAILS_CSS = """
.ap dl { display: grid; grid-template-columns: 160px 1fr; gap: 3px 10px; font-size: 14px; }
.ap dt { color: #666; } .ap dd { margin: 0; } .ap .error { color: #d9534f; }
.ap h2 { margin: 4px 0; font-size: 20px; }
"""


def mode_words(app: AppSnapshot) -> str:
    if app.mode == "manual" and app.pinned_version:
        return f"Manually locked to version {app.pinned_version}"
    return "Automatically deploys the latest version"


def pinnable_versions(history: list, limit: int = MAX_PINNABLE) -> list[str]:
    """Distinct versions of the history, most recent first."""
    seen: list[str] = []
    for record in history:
        if record.version not in seen:
            seen.append(record.version)
    return seen[:limit]


def details_html(config: Application, app: AppSnapshot, ghosts: list) -> str:
    running = sum(1 for r in app.replicas if r.status == ReplicaStatus.RUNNING)
    last = ghosts[0] if ghosts else None
    ghosted = (
        f"{html.escape(last.version)} at {display.clock(last.at)} "
        f'(<a href="/versions?app={app.app}">view all {len(ghosts)}</a>)'
        if last
        else "none"
    )
    rows = [
        ("mode", "Mode", html.escape(mode_words(app))),
        ("desired", "Desired version", html.escape(app.desired_version or "-")),
        ("replicas", "Replicas", f"{running} running of {app.replicas_wanted}"),
        ("rollback", "Rollback timeout", display.duration_ms(config.deploy_rollback_timeout_ms)),
        ("schedule", "Schedule interval", display.duration_ms(config.deploy_schedule_interval_ms)),
        ("ghosted", "Last ghosted", ghosted),
        ("rollout", "Rollout", html.escape(app.rollout or "idle")),
    ]
    if app.error:
        rows.append(("error", "Error", f'<span class="error">{html.escape(app.error)}</span>'))
    body = "".join(
        f'<dt>{label}</dt><dd data-field="{key}">{value}</dd>' for key, label, value in rows
    )
    return f'<div class="ap"><dl>{body}</dl></div>'


class AppPanel:
    def __init__(
        self,
        config: Application,
        latest: Callable[[str], Sample | None],
        act: Act,
        ask: Ask,
        shell: bool = False,
    ) -> None:
        self.latest, self.act, self.ask, self.shell = latest, act, ask, shell
        self.config = config
        self.name = config.name
        self.snapshot: AppSnapshot | None = None
        self.ghosts: list = []
        self.cards: dict[str, ReplicaCard] = {}
        self.title = pn.pane.HTML(f'<h2 style="margin:4px 0">{html.escape(self.name)}</h2>')
        self.full_restart = pn.widgets.Button(
            name="Full restart", button_type="danger", css_classes=["dx-full-restart"], width=120
        )
        self.mode = pn.widgets.Select(
            name="Mode", options={AUTOMATIC_LABEL: ""}, width=280, css_classes=["dx-mode"]
        )
        self.apply_mode = pn.widgets.Button(
            name="Apply mode", css_classes=["dx-apply-mode"], width=110, align="end"
        )
        self.details = pn.pane.HTML("", stylesheets=[DETAILS_CSS], sizing_mode="stretch_width")
        self.confirm = Confirm()
        self.cards_box = pn.FlexBox(flex_wrap="wrap", sizing_mode="stretch_width")
        self._history_key: tuple | None = None
        self._shown_mode: tuple | None = None
        self.full_restart.on_click(lambda _event: self.ask_full_restart())
        self.apply_mode.on_click(lambda _event: self.ask_mode())

    def view(self) -> pn.Column:
        return pn.Column(
            pn.Row(self.title, pn.Spacer(), self.full_restart, sizing_mode="stretch_width"),
            self.details,
            pn.Row(self.mode, self.apply_mode),
            self.confirm.view,
            self.cards_box,
            sizing_mode="stretch_width",
            css_classes=[f"app-{self.name}"],
        )

    # -- live ------------------------------------------------------------------------------------

    def update(self, app: AppSnapshot) -> None:
        self.snapshot = app
        self._sync_cards(app)
        self._render(app)
        key = (
            tuple((r.sname, r.version) for r in app.replicas),
            app.mode,
            app.pinned_version,
            app.ghosts,
        )
        if key != self._history_key:
            self._history_key = key
            pn.state.execute(self.load_history)
        shown = (app.mode, app.pinned_version)
        if shown != self._shown_mode:  # follow the real mode, but never undo an unapplied pick
            self._shown_mode = shown
            self.mode.value = app.pinned_version if app.mode == "manual" else ""

    def tick(self) -> None:
        if self.snapshot is not None:
            self._render(self.snapshot)

    def _render(self, app: AppSnapshot) -> None:
        rendered = details_html(self.config, app, self.ghosts)
        if rendered != self.details.object:
            self.details.object = rendered
        now = time.time()
        for replica in app.replicas:
            self.cards[replica.sname].update(replica, self.latest(replica.sname), now)

    def _sync_cards(self, app: AppSnapshot) -> None:
        snames = [r.sname for r in sorted(app.replicas, key=lambda r: (r.slot, r.sname))]
        if snames == list(self.cards):
            return
        by_name = {r.sname: r for r in app.replicas}
        self.cards = {
            s: self.cards.get(s)
            or ReplicaCard(by_name[s], self.config, self.ask_restart, self.shell)
            for s in snames
        }
        self.cards_box.objects = [card.view for card in self.cards.values()]

    async def load_history(self) -> None:
        history = await self.ask(lambda dx: dx.versions(self.name))
        ghosts = await self.ask(lambda dx: dx.ghosts(self.name))
        if ghosts is not None:
            self.ghosts = list(ghosts)
        if history is None:
            return
        versions = pinnable_versions(history)
        pinned = self.snapshot.pinned_version if self.snapshot else None
        if pinned and pinned not in versions:
            versions.insert(0, pinned)
        current = self.mode.value
        self.mode.options = {AUTOMATIC_LABEL: "", **{v: v for v in versions}}
        if current in versions or current == "":
            self.mode.value = current
        if self.snapshot is not None:
            self._render(self.snapshot)

    # -- actions ---------------------------------------------------------------------------------

    def ask_restart(self, sname: str) -> None:
        replica = next((r for r in self.snapshot.replicas if r.sname == sname), None)
        pid = f" (pid {replica.pid})" if replica and replica.pid else ""
        self.confirm.ask(
            f"Restart replica **{sname}**{pid}? Its OS process is stopped and started again.",
            "restart",
            lambda: self.act(
                f"Restart of {sname} requested",
                lambda dx, actor: dx.restart(self.name, sname, actor),
            ),
        )

    def ask_full_restart(self) -> None:
        self.confirm.ask(
            f"Replace every replica of **{self.name}**, one at a time, with a fresh one running "
            "the same version?",
            "restart all",
            lambda: self.act(
                f"Full restart of {self.name} started",
                lambda dx, actor: dx.full_restart(self.name, actor),
            ),
        )

    def ask_mode(self) -> None:
        version = self.mode.value or None
        if version is None:
            question = f"Return **{self.name}** to automatic mode (follow current.json)?"
            done = f"{self.name} follows current.json again"
        else:
            question = (
                f"Pin **{self.name}** to version **{version}**? Its replicas are replaced "
                "one at a time until they all run it."
            )
            done = f"{self.name} pinned to {version}"
        self.confirm.ask(
            question,
            "apply",
            lambda: self.act(done, lambda dx, actor: dx.set_mode(self.name, version, actor)),
        )
