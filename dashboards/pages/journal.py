"""The event journal: deployments, restarts, crashes, thresholds, logins, operator actions,
filterable by app and kind, newest first."""

from __future__ import annotations

import time

import pandas as pd
import panel as pn

from dashboards import display
from dashboards.pages.base import Page

ALL = "all"
DEPLOYEX_ONLY = "DeployEx (no app)"
RELOAD_EVERY_S = 2.0
LIMITS = [100, 500, 1000]
COLUMNS = ["time", "app", "sname", "kind", "message", "actor"]


def journal_frame(events: list, deployex_only: bool = False) -> pd.DataFrame:
    rows = [
        {
            "time": display.clock(e.at),
            "app": e.app or "",
            "sname": e.sname or "",
            "kind": e.kind,
            "message": e.message,
            "actor": e.actor,
        }
        for e in events
        if not deployex_only or e.app is None
    ]
    return pd.DataFrame(rows, columns=COLUMNS)


class JournalPage(Page):
    path = "/journal"
    title = "Journal"

    def body(self) -> pn.viewable.Viewable:
        apps = [a.name for a in self.context.settings.config.applications]
        self.app = pn.widgets.Select(
            name="Application",
            options=[ALL, *apps, DEPLOYEX_ONLY],
            width=220,
            css_classes=["dx-journal-app"],
        )
        self.kind = pn.widgets.Select(
            name="Kind", options=[ALL], width=220, css_classes=["dx-journal-kind"]
        )
        self.limit = pn.widgets.Select(name="Show", options=LIMITS, value=LIMITS[0], width=100)
        self.table = pn.widgets.Tabulator(
            journal_frame([]),
            disabled=True,
            show_index=False,
            pagination="local",
            page_size=25,
            sizing_mode="stretch_width",
            css_classes=["dx-journal"],
            layout="fit_data_stretch",
        )
        self.kinds: set[str] = set()
        self._loaded_at = 0.0
        for widget in (self.app, self.kind, self.limit):
            widget.param.watch(lambda _event: self._reload(), "value")
        return pn.Column(
            pn.Row(self.app, self.kind, self.limit), self.table, sizing_mode="stretch_width"
        )

    def tick(self) -> None:
        if time.monotonic() - self._loaded_at > RELOAD_EVERY_S:
            self._reload()

    def _reload(self) -> None:
        self._loaded_at = time.monotonic()
        pn.state.execute(self.load)

    async def load(self) -> None:
        app = None if self.app.value in (ALL, DEPLOYEX_ONLY) else self.app.value
        kind = None if self.kind.value == ALL else self.kind.value
        limit = self.limit.value
        events = await self.ask(lambda dx: dx.events(app, kind, limit))
        if events is None:
            return
        self.kinds |= {e.kind for e in events}
        options = [ALL, *sorted(self.kinds)]
        if options != self.kind.options:
            self.kind.options = options
        frame = journal_frame(events, deployex_only=self.app.value == DEPLOYEX_ONLY)
        if not frame.equals(self.table.value):
            self.table.value = frame
