"""History logs: the lines DeployEx kept (the Logs actor's store), of running replicas, of gone
ones (crashed, retired) and of DeployEx itself, merged in time order, for a range of 1 minute to
1 week (as far as the retention reaches), filtered by text; downloadable as text.

Read on demand (a choice changed, or Refresh), never on the half-second tick: a history page
left open costs nothing. The download is the table as loaded, built in this session (behind its
login), not a URL of its own.
"""

from __future__ import annotations

import io

import pandas as pd
import panel as pn

from dashboards.pages.base import Page, query_arg
from deployex_actors.core.log_history import (
    DEPLOYEX_SERVICE,
    MAX_LIMIT,
    STREAMS,
    HistoryLine,
    line_row,
    line_time,
    range_choices,
)

COLUMNS = ["time", "service", "stream", "line"]
DEFAULT_RANGE_S = 300  # upstream's UI shows the last 5 minutes
SHOWN = MAX_LIMIT


def history_frame(lines: tuple[HistoryLine, ...]) -> pd.DataFrame:
    rows = [
        {"time": line_time(x.at_ms), "service": x.sname, "stream": x.stream, "line": x.text}
        for x in lines
    ]
    return pd.DataFrame(rows, columns=COLUMNS)


class HistoryPage(Page):
    path = "/history"
    title = "History logs"

    def body(self) -> pn.viewable.Viewable:
        ranges = dict(range_choices(self.context.settings.config.logs_retention_time_ms))
        self.lines: tuple[HistoryLine, ...] = ()
        self.services = pn.widgets.MultiChoice(
            name="Services (none chosen: all)",
            options=[DEPLOYEX_SERVICE],
            sizing_mode="stretch_width",
            css_classes=["dx-history-services"],
        )
        asked = query_arg("sname")
        if asked:
            self.services.options = [DEPLOYEX_SERVICE, asked]
            self.services.value = [asked]
        default = min(ranges.values(), key=lambda s: abs(s - DEFAULT_RANGE_S))
        self.range = pn.widgets.Select(
            name="Range", options=ranges, value=default, width=140, css_classes=["dx-history-range"]
        )
        self.text = pn.widgets.TextInput(
            name="Text", placeholder="lines containing (any case)", width=260,
            css_classes=["dx-history-text"],
        )  # fmt: skip
        self.streams = pn.widgets.CheckButtonGroup(
            name="Streams", options=list(STREAMS), value=list(STREAMS),
            css_classes=["dx-history-streams"],
        )  # fmt: skip
        self.refresh_button = pn.widgets.Button(name="Refresh", width=90)
        self.download = pn.widgets.FileDownload(
            callback=self._text, filename="deployex-history.txt", label="Download as text",
            width=180, css_classes=["dx-history-download"],
        )  # fmt: skip
        self.summary = pn.pane.Markdown("", css_classes=["dx-history-summary"], margin=(0, 10))
        self.table = pn.widgets.Tabulator(
            history_frame(()),
            disabled=True,
            show_index=False,
            height=640,
            sizing_mode="stretch_width",
            layout="fit_data_stretch",
            css_classes=["dx-history"],
        )
        for widget in (self.services, self.range, self.text, self.streams):
            widget.param.watch(lambda _event: self._reload(), "value")
        self.refresh_button.on_click(lambda _event: self._reload())
        self._reload()
        return pn.Column(
            self.services,
            pn.Row(self.range, self.text, self.streams, self.refresh_button, self.download),
            self.summary,
            self.table,
            sizing_mode="stretch_width",
        )

    def _reload(self) -> None:
        pn.state.execute(self.load)

    async def load(self) -> None:
        services = await self.ask(lambda dx: dx.log_services(), [])
        known = sorted({s.sname for s in services} | {DEPLOYEX_SERVICE, *self.services.value})
        if known != self.services.options:
            self.services.options = known
        snames = tuple(self.services.value) or None
        since_s, grep, streams = self.range.value, self.text.value or None, self.streams.value
        result = await self.ask(
            lambda dx: dx.logs(None, snames, since_s, None, grep, streams, SHOWN)
        )
        if result is None:
            return
        self.lines = result.lines
        self.table.value = history_frame(result.lines)
        capped = f"; only the newest {result.limit} are shown" if result.capped else ""
        self.summary.object = f"{len(result.lines)} lines, oldest first{capped}."

    def _text(self) -> io.StringIO:
        return io.StringIO("".join(f"{line_row(x)}\n" for x in self.lines))
