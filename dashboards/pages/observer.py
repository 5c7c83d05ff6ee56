"""The observer page: `/observer?app=APP&sname=SNAME`, a look into one replica's node.

System, the top processes (sortable, refreshed every 2 s), ports and ETS tables, the
applications with their supervision trees (read on load and on demand), a process's details
and state on click (sys:get_state: a call into it, journaled), and a trace with its limits. All
calls go through DeployEx to the replica's Monitor (beam.observer); see docs/observer.md.
"""

from __future__ import annotations

import html
import time
from typing import Any

import pandas as pd
import panel as pn

from dashboards import display
from dashboards.pages.base import Page, query_arg
from deployex_actors.beam.observer import PROCESS_FIELDS, SORTS
from deployex_actors.core.tracing import MAX_DEFAULT, RATE_DEFAULT, SECONDS_DEFAULT, trace_spec
from deployex_actors.errors import DeployexError

REFRESH_S = 2.0
TRACE_POLL_S = 0.5
PROCESS_COLUMNS = [
    "pid",
    "name",
    "initial call",
    "current function",
    "memory",
    "reductions",
    "reductions since last",
    "queue",
]
TABLE_CSS = """
.dx-system dl { display: grid; grid-template-columns: repeat(4, 150px minmax(90px, 1fr));
                gap: 2px 10px; font-size: 13px; margin: 0; }
.dx-system dt { color: #666; } .dx-system dd { margin: 0; }
.dx-tree ul { list-style: none; padding-left: 16px; margin: 2px 0; font-size: 13px; }
.dx-tree summary { cursor: pointer; } .dx-details pre { white-space: pre-wrap; font-size: 12px; }
"""


def text(value: Any) -> str:
    if isinstance(value, bytes):
        return value.decode(errors="replace")
    return "" if value is None else str(value)


def system_html(system: dict) -> str:
    rows = [
        ("OTP", text(system["otp_release"])),
        ("ERTS", text(system["erts_version"])),
        ("Schedulers", f"{system['schedulers_online']} of {system['schedulers']}"),
        ("Uptime", display.ago(system["uptime_ms"] / 1000)),
        ("Run queue", system["run_queue"]),
    ]
    for kind in ("process", "port", "atom", "ets"):
        count, limit = system[f"{kind}_count"], system[f"{kind}_limit"]
        rows.append((f"{kind.capitalize()}es" if kind == "process" else f"{kind.capitalize()}s",
                     f"{count} of {limit} ({100 * count / limit:.1f}%)"))  # fmt: skip
    for key in ("total", "processes", "binary", "ets", "code", "atom"):
        rows.append((f"Memory: {key}", display.size(system["memory"].get(key))))
    body = "".join(f"<dt>{html.escape(k)}</dt><dd>{html.escape(str(v))}</dd>" for k, v in rows)
    return f'<div class="dx-system"><dl>{body}</dl></div>'


def tree_html(apps: list) -> str:
    def node(item: dict) -> str:
        name = html.escape(text(item.get("name") or item.get("id")))
        label = f"{name} <small>{html.escape(text(item.get('pid')))} {item.get('type')}</small>"
        children = item.get("children") or []
        more = f"<li>... {item['more']} more</li>" if item.get("more") else ""
        if not children:
            return f"<li>{label}</li>"
        inner = "".join(node(c) for c in children)
        return f"<li><details open><summary>{label}</summary><ul>{inner}{more}</ul></details></li>"

    items = []
    for app in apps:
        title = f"{html.escape(text(app['name']))} {html.escape(text(app['vsn']))}"
        tree = app.get("tree")
        inner = f"<ul>{node(tree)}</ul>" if isinstance(tree, dict) else ""
        items.append(f"<li><details><summary>{title}</summary>{inner}</details></li>")
    return f'<div class="dx-tree"><ul>{"".join(items)}</ul></div>'


def process_frame(top: dict, delta: bool = False) -> pd.DataFrame:
    rows = [
        {
            "pid": text(p.get("pid")),
            "name": text(p.get("name")) if p.get("name") != "undefined" else "",
            "initial call": text(p.get("initial_call")),
            "current function": text(p.get("current_function")),
            "memory": p.get("memory", 0),
            "reductions": p.get("reductions", 0),
            "reductions since last": p.get("value", "") if delta else "",
            "queue": p.get("message_queue_len", 0),
        }
        for p in top.get("processes", [])
    ]
    return pd.DataFrame(rows, columns=PROCESS_COLUMNS)


def details_html(details: dict) -> str:
    if details.get("gone"):
        return f"<p>{html.escape(text(details.get('pid')))}: the process is gone</p>"
    rows = "".join(
        f"<dt>{k}</dt><dd>{html.escape(text(details.get(k)))}</dd>" for k in PROCESS_FIELDS
    )
    for key in ("links", "monitors", "monitored_by", "dictionary_keys"):
        values = ", ".join(text(v) for v in details.get(key, [])) or "-"
        rows += f"<dt>{key}</dt><dd>{html.escape(values)}</dd>"
    state = details.get("state", {})
    shown = (
        text(state.get("value")) if "value" in state else f"not read: {text(state.get('error'))}"
    )
    return (
        f'<div class="dx-details dx-system"><dl>{rows}</dl>'
        "<p><b>State</b> (sys:get_state, a call into the process, journaled)</p>"
        f"<pre>{html.escape(shown)}</pre></div>"
    )


class ObserverPage(Page):
    path = "/observer"
    title = "Observer"

    def body(self) -> pn.viewable.Viewable:
        self.app, self.sname = query_arg("app") or "", query_arg("sname") or ""
        heading = pn.pane.Markdown(
            f"## Observer: {html.escape(self.app)} / {html.escape(self.sname)}",
            css_classes=["dx-observer-title"],
        )
        if not self.app or not self.sname:
            heading.object = "Open the observer from a replica card (**observer**)."
            return pn.Column(heading)
        self.system = pn.pane.HTML("", stylesheets=[TABLE_CSS], sizing_mode="stretch_width",
                                   css_classes=["dx-observer-system"])  # fmt: skip
        self.sort = pn.widgets.Select(
            name="Processes by", options=list(SORTS), width=200, css_classes=["dx-observer-sort"]
        )
        self.processes = pn.widgets.Tabulator(
            process_frame({}), disabled=True, show_index=False, sizing_mode="stretch_width",
            css_classes=["dx-processes"], selectable=1,
        )  # fmt: skip
        self.processes.on_click(self._clicked)
        self.details = pn.pane.HTML("", stylesheets=[TABLE_CSS], sizing_mode="stretch_width",
                                    css_classes=["dx-process-details"])  # fmt: skip
        self.trees = pn.pane.HTML("", stylesheets=[TABLE_CSS], sizing_mode="stretch_width",
                                  css_classes=["dx-trees"])  # fmt: skip
        reload_trees = pn.widgets.Button(name="Read the trees again", width=170)
        reload_trees.on_click(lambda _e: pn.state.execute(self._load_trees))
        self.others = pn.pane.HTML("", sizing_mode="stretch_width", css_classes=["dx-ports-ets"])
        self.target = pn.widgets.TextInput(
            name="Trace module:function/arity", placeholder="myapp_server:handle_call/3",
            width=300, css_classes=["dx-trace-target"],
        )  # fmt: skip
        self.max = pn.widgets.IntInput(name="max messages", value=MAX_DEFAULT, width=120)
        self.seconds = pn.widgets.IntInput(name="seconds", value=SECONDS_DEFAULT, width=100)
        self.rate = pn.widgets.IntInput(name="max per second", value=RATE_DEFAULT, width=120)
        self.match = pn.widgets.TextInput(
            name="arguments match (optional)", placeholder="[_, 42]", width=200
        )
        self.returns = pn.widgets.Checkbox(name="returns", value=False)
        self.start_trace = pn.widgets.Button(name="Start trace", button_type="primary",
                                             width=120, css_classes=["dx-trace-start"])  # fmt: skip
        self.stop_trace = pn.widgets.Button(name="Stop", width=80, disabled=True)
        self.start_trace.on_click(lambda _e: pn.state.execute(self._start_trace))
        self.stop_trace.on_click(lambda _e: pn.state.execute(self._stop_trace))
        self.trace_status = pn.pane.Markdown("", css_classes=["dx-trace-status"])
        self.trace_events = pn.pane.HTML("", css_classes=["dx-trace-events"],
                                         sizing_mode="stretch_width")  # fmt: skip
        self._events: list[str] = []
        self._tracer: str | None = None
        self._refreshed = self._polled = 0.0
        self._busy = False
        pn.state.execute(self._load_trees)
        return pn.Column(
            heading,
            self.system,
            pn.Row(self.sort),
            self.processes,
            self.details,
            pn.pane.Markdown("### Applications and supervision trees"),
            reload_trees,
            self.trees,
            pn.pane.Markdown("### Ports and ETS tables"),
            self.others,
            pn.pane.Markdown("### Trace (limits enforced on the node; journaled)"),
            pn.Row(self.target, self.max, self.seconds, self.rate, self.match, self.returns),
            pn.Row(self.start_trace, self.stop_trace),
            self.trace_status,
            self.trace_events,
            sizing_mode="stretch_width",
        )

    # -- calls --------------------------------------------------------------------------------

    async def _observe(self, call: str, *args: Any) -> Any:
        actor = self.session.actor
        app, sname = self.app, self.sname
        return await self.ask(lambda dx: dx.observe(app, sname, call, *args, actor=actor))

    def tick(self) -> None:
        now = time.monotonic()
        if not self.app or self._busy:
            return
        if now - self._refreshed >= REFRESH_S:
            self._refreshed = now
            pn.state.execute(self._refresh)
        if self._tracer is not None and now - self._polled >= TRACE_POLL_S:
            self._polled = now
            pn.state.execute(self._poll_trace)

    async def _refresh(self) -> None:
        self._busy = True
        try:
            system = await self._observe("system")
            top = await self._observe("top", self.sort.value, 30)
            ports = await self._observe("ports", 10)
            tables = await self._observe("ets", 10)
        finally:
            self._busy = False
        if system:
            self.system.object = system_html(system)
        if top:
            self.processes.value = process_frame(top, self.sort.value == "reductions_delta")
        if ports is not None and tables is not None:
            self.others.object = others_html(ports, tables)

    async def _load_trees(self) -> None:
        apps = await self._observe("apps", 4, 30)
        if apps is not None:
            self.trees.object = tree_html(apps)

    def _clicked(self, event: Any) -> None:
        # the pid cell names its process even if a refresh reordered the rows meanwhile
        pid = getattr(event, "value", None) if getattr(event, "column", None) == "pid" else None
        row, frame = getattr(event, "row", None), self.processes.value
        if pid is None and row is not None and row < len(frame):
            pid = frame.iloc[row]["pid"]
        if pid:

            async def show() -> None:
                await self._show_process(pid)

            pn.state.execute(show)

    async def _show_process(self, pid: str) -> None:
        details = await self._observe("process", pid)
        if details is not None:
            self.details.object = details_html(details)

    # -- trace --------------------------------------------------------------------------------

    async def _start_trace(self) -> None:
        try:
            match = self.match.value.strip() or None
            spec = trace_spec(self.target.value, self.max.value, self.seconds.value,
                              self.rate.value, self.returns.value, match)  # fmt: skip
        except DeployexError as exc:
            self.trace_status.object = f"**Not started:** {html.escape(str(exc))}"
            return
        tracer = await self._observe("trace_start", spec)
        if tracer is None:
            self.trace_status.object = "**Not started** (see the message above)"
            return
        self._tracer, self._events = tracer, []
        self.trace_events.object = ""
        self.start_trace.disabled, self.stop_trace.disabled = True, False
        self.trace_status.object = f"Tracing **{html.escape(spec.target)}**..."

    async def _poll_trace(self) -> None:
        if self._tracer is not None:
            self._show_trace(await self._observe("trace_fetch", self._tracer))

    async def _stop_trace(self) -> None:
        if self._tracer is not None:
            self._show_trace(await self._observe("trace_stop", self._tracer))

    def _show_trace(self, report: dict | None) -> None:
        if report is None:
            return
        for event in report.get("events", []):
            at = time.strftime("%H:%M:%S", time.localtime(event["at_ms"] / 1000))
            self._events.append(f"{at} {text(event['pid'])} {event['kind']} {text(event['text'])}")
        self._events = self._events[-500:]
        rows = "".join(f"<div>{html.escape(line)}</div>" for line in self._events)
        self.trace_events.object = f'<div style="font-family:monospace;font-size:12px">{rows}</div>'
        if report.get("status") != "running":
            self.trace_status.object = (
                f"Trace stopped: **{text(report.get('reason'))}**, {report.get('count')} message(s)"
            )
            self._tracer = None
            self.start_trace.disabled, self.stop_trace.disabled = False, True


def others_html(ports: list, tables: list) -> str:
    port_rows = "".join(
        f"<tr><td>{html.escape(text(p['port']))}</td><td>{html.escape(text(p['name']))}</td>"
        f"<td>{html.escape(text(p['owner']))}</td><td>{html.escape(text(p.get('os_pid')))}</td></tr>"
        for p in ports
    )
    table_rows = "".join(
        f"<tr><td>{html.escape(text(t['name']))}</td><td>{t['size']}</td>"
        f"<td>{display.size(t['memory'])}</td><td>{html.escape(text(t['owner']))}</td>"
        f"<td>{t['type']} {t['protection']}</td></tr>"
        for t in tables
    )
    return (
        '<table style="font-size:13px"><tr><th>port</th><th>name</th><th>owner</th>'
        f"<th>os pid</th></tr>{port_rows}</table>"
        '<table style="font-size:13px;margin-top:8px"><tr><th>ETS table</th><th>rows</th>'
        f"<th>memory</th><th>owner</th><th>kind</th></tr>{table_rows}</table>"
    )
