"""Live logs: stdout/stderr of any replicas and of DeployEx, merged, coloured by level, searchable.

The files are read by the process-wide `LogFollower` (by offset, on one timer); this page only
takes the lines that are new since its last tick. Newest lines are on top.
"""

from __future__ import annotations

from collections import deque

import panel as pn

from dashboards import loglines
from dashboards.context import DEPLOYEX_SERVICE
from dashboards.pages.base import Page, query_arg
from dashboards.tail import LogLine, LogSource
from deployex_actors.core.status import DeployexSnapshot

DEFAULT_SOURCE = f"{DEPLOYEX_SERVICE}:stdout"
SHOWN_LINES = 500
KEPT_LINES = 5000


class LogsPage(Page):
    path = "/logs"
    title = "Logs"

    def body(self) -> pn.viewable.Viewable:
        self.lines: deque[LogLine] = deque(maxlen=KEPT_LINES)
        self.seq = 0
        self.watching: dict[str, object] = {}  # source key -> unwatch function
        self._cleanups.append(self._unwatch_all)
        self.sources = pn.widgets.MultiChoice(
            name="Logs", options={}, sizing_mode="stretch_width", css_classes=["dx-sources"]
        )
        self.search = pn.widgets.TextInput(
            name="Search", placeholder="text to look for", width=260, css_classes=["dx-search"]
        )
        self.levels = pn.widgets.CheckButtonGroup(
            name="Levels", options=list(loglines.LEVELS), value=[], css_classes=["dx-levels"]
        )
        self.paused = pn.widgets.Toggle(name="Pause", width=80)
        self.clear = pn.widgets.Button(name="Clear", width=80)
        self.view = pn.pane.HTML(
            loglines.lines_html([], True),
            stylesheets=[loglines.STYLESHEET],
            sizing_mode="stretch_width",
            css_classes=["dx-log-view"],
        )
        self.sources.param.watch(lambda _event: self._follow(), "value")
        for widget in (self.search, self.levels, self.paused):
            widget.param.watch(
                lambda _event: self._render(), "value_input" if widget is self.search else "value"
            )
        self.clear.on_click(lambda _event: self._clear())
        sname, stream, app = query_arg("sname"), query_arg("stream"), query_arg("app")
        self._asked = (sname, stream, app) if sname or app else None
        self._offer()
        return pn.Column(
            self.sources,
            pn.Row(self.search, self.levels, self.paused, self.clear),
            pn.pane.Markdown("Newest lines first; colours follow level keywords.", margin=(0, 10)),
            pn.Column(self.view, height=640, scroll=True, sizing_mode="stretch_width"),
            sizing_mode="stretch_width",
        )

    # -- sources ---------------------------------------------------------------------------------

    def _offer(self) -> None:
        """Offer DeployEx's logs and every replica's; keep what is chosen while it exists.

        What the URL asks for (`?sname=`, `?app=`) is chosen as soon as it exists: the first
        status may arrive after the page was built."""
        sources = {s.label: s for s in self.context.log_sources()}
        self._by_label = sources
        chosen = [label for label in self.sources.value if label in sources]
        if self._asked is not None:
            asked = self._from_query(sources)
            if asked:
                chosen, self._asked = asked, None
        if not chosen and not self.sources.value:
            chosen = [label for label, s in sources.items() if s.key == DEFAULT_SOURCE]
        self.sources.options = list(sources)
        if chosen != self.sources.value:
            self.sources.value = chosen

    def _from_query(self, sources: dict[str, LogSource]) -> list[str]:
        sname, stream, app = self._asked
        streams = [stream] if stream in ("stdout", "stderr") else ["stdout", "stderr"]
        if sname:
            wanted = [f"{sname} {s}" for s in streams]
            return [label for label in wanted if label in sources]
        # every replica of the app: the multi-replica live view
        return [
            label
            for label, s in sources.items()
            if s.service.startswith(f"{app}-") and s.stream == (stream or "stdout")
        ]

    def _follow(self) -> None:
        wanted = {
            self._by_label[label].key: self._by_label[label]
            for label in self.sources.value
            if label in self._by_label
        }
        for key in [k for k in self.watching if k not in wanted]:
            self.watching.pop(key)()
        for key, source in wanted.items():
            if key not in self.watching:
                self.watching[key] = self.context.logs.watch(source)
                self.lines.extend(self.context.logs.since([key], 0))
        self.lines = deque(sorted(self.lines, key=lambda line: line.seq), maxlen=KEPT_LINES)
        self._render()

    def _unwatch_all(self) -> None:
        for unwatch in self.watching.values():
            unwatch()
        self.watching.clear()

    # -- live ------------------------------------------------------------------------------------

    def refresh(self, snapshot: DeployexSnapshot) -> None:
        self._offer()

    def tick(self) -> None:
        keys = list(self.watching)
        if self.lines:
            self.seq = max(self.seq, self.lines[-1].seq)
        new = self.context.logs.since(keys, self.seq)
        if not new:
            return
        self.lines.extend(new)
        self.seq = new[-1].seq
        if not self.paused.value:
            self._render()

    def _render(self) -> None:
        keys = set(self.watching)
        chosen = [line for line in self.lines if line.source in keys]
        shown = loglines.filter_lines(chosen, self.search.value_input or "", self.levels.value)
        newest_first = shown[-SHOWN_LINES:][::-1]
        rendered = loglines.lines_html(newest_first, show_source=len(keys) > 1)
        if rendered != self.view.object:
            self.view.object = rendered

    def _clear(self) -> None:
        self.lines.clear()
        self._render()
