"""Versions and ghosts: an app's deployment history (or one replica's) and its ghosted versions,
with removal of one ghost or all of them (each confirmed)."""

from __future__ import annotations

import time

import pandas as pd
import panel as pn

from dashboards import display
from dashboards.components.confirm import Confirm
from dashboards.pages.base import Page, query_arg
from deployex_actors.core.status import DeployexSnapshot

ALL_REPLICAS = "all replicas"
REMOVE_BUTTON = '<span style="color:#d9534f;text-decoration:underline;cursor:pointer">Remove</span>'
RELOAD_EVERY_S = 5.0
HISTORY_COLUMNS = ["version", "sname", "kind", "time"]
GHOST_COLUMNS = ["version", "reason", "time"]


def history_frame(history: list, sname: str | None) -> pd.DataFrame:
    rows = [
        {
            "version": h.version,
            "sname": h.sname,
            "kind": h.kind.replace("_", " "),
            "time": display.clock(h.at),
        }
        for h in history
        if sname is None or h.sname == sname
    ]
    return pd.DataFrame(rows, columns=HISTORY_COLUMNS)


def ghost_frame(ghosts: list) -> pd.DataFrame:
    rows = [{"version": g.version, "reason": g.reason, "time": display.clock(g.at)} for g in ghosts]
    return pd.DataFrame(rows, columns=GHOST_COLUMNS)


class VersionsPage(Page):
    path = "/versions"
    title = "Versions & ghosts"

    def body(self) -> pn.viewable.Viewable:
        apps = [a.name for a in self.context.settings.config.applications]
        wanted_app = query_arg("app")
        self.app = pn.widgets.Select(
            name="Application",
            options=apps,
            width=220,
            value=wanted_app if wanted_app in apps else (apps or [None])[0],
        )
        self.sname = pn.widgets.Select(name="Replica", options=[ALL_REPLICAS], width=260)
        self._wanted_sname = query_arg("sname")
        self.history = pn.widgets.Tabulator(
            history_frame([], None),
            disabled=True,
            show_index=False,
            pagination="local",
            page_size=20,
            sizing_mode="stretch_width",
            css_classes=["dx-history"],
        )
        self.ghosts = pn.widgets.Tabulator(
            ghost_frame([]),
            disabled=True,
            show_index=False,
            buttons={"remove": REMOVE_BUTTON},
            css_classes=["dx-ghosts"],
            sizing_mode="stretch_width",
        )
        self.clear = pn.widgets.Button(
            name="Clear all ghosts",
            button_type="danger",
            width=150,
            css_classes=["dx-clear-ghosts"],
        )
        self.confirm = Confirm()
        self.ghosts.on_click(self._ghost_clicked)
        self.clear.on_click(lambda _event: self._ask_clear())
        self.app.param.watch(lambda _event: self._reload(), "value")
        self.sname.param.watch(lambda _event: self._reload(), "value")
        self._loaded_at = 0.0
        self._ghost_versions: list[str] = []
        return pn.Column(
            pn.Row(self.app, self.sname),
            pn.pane.Markdown("### Version history"),
            self.history,
            pn.pane.Markdown("### Ghosted versions (never deployed again until removed)"),
            self.confirm.view,
            self.ghosts,
            self.clear,
            sizing_mode="stretch_width",
        )

    def refresh(self, snapshot: DeployexSnapshot) -> None:
        self._reload()

    def tick(self) -> None:
        if time.monotonic() - self._loaded_at > RELOAD_EVERY_S:
            self._reload()

    def _reload(self) -> None:
        self._loaded_at = time.monotonic()
        pn.state.execute(self.load)

    async def load(self) -> None:
        app = self.app.value
        if not app:
            return
        history = await self.ask(lambda dx: dx.versions(app))
        ghosts = await self.ask(lambda dx: dx.ghosts(app))
        if history is not None:
            self._show_history(history)
        if ghosts is not None:
            self._ghost_versions = [g.version for g in ghosts]
            self.ghosts.value = ghost_frame(ghosts)
            self.clear.disabled = not ghosts

    def _show_history(self, history: list) -> None:
        snames = sorted({h.sname for h in history})
        if self._wanted_sname in snames:
            self.sname.options = [ALL_REPLICAS, *snames]
            self.sname.value, self._wanted_sname = self._wanted_sname, None
        elif self.sname.options != [ALL_REPLICAS, *snames]:
            self.sname.options = [ALL_REPLICAS, *snames]
        chosen = None if self.sname.value in (None, ALL_REPLICAS) else self.sname.value
        frame = history_frame(history, chosen)
        if not frame.equals(self.history.value):
            self.history.value = frame

    def _ghost_clicked(self, event: object) -> None:
        if getattr(event, "column", None) != "remove":
            return
        row = getattr(event, "row", None)
        if row is None or row >= len(self._ghost_versions):
            return
        app, version = self.app.value, self._ghost_versions[row]
        self.confirm.ask(
            f"Remove **{version}** from the ghosts of **{app}**? It may be deployed again.",
            "remove",
            lambda: self._unghost(app, version),
        )

    def _ask_clear(self) -> None:
        app = self.app.value
        self.confirm.ask(
            f"Remove **every** ghosted version of **{app}**?",
            "clear all",
            lambda: self._unghost(app, None),
        )

    async def _unghost(self, app: str, version: str | None) -> None:
        what = f"{version} is no longer ghosted" if version else f"every ghost of {app} removed"
        await self.act(what, lambda dx, actor: dx.unghost(app, version, actor))
        await self.load()
