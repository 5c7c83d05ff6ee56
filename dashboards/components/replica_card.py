"""One replica's card: status, version, node, ports, OTP link, restarts, uptime, BEAM usage
against the app's thresholds, its log and version links, and its restart button."""

from __future__ import annotations

import html
import time
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlencode

import panel as pn

from dashboards import display
from deployex_actors.config import Application
from deployex_actors.core import thresholds
from deployex_actors.core.metrics import Sample
from deployex_actors.core.status import ReplicaSnapshot, ReplicaStatus

STATUS_WORDS = {
    ReplicaStatus.RUNNING: "Running",
    ReplicaStatus.STARTING: "Starting",
    ReplicaStatus.PRE_COMMANDS: "Pre-commands",
    ReplicaStatus.STOPPING: "Stopping",
    ReplicaStatus.IDLE: "Idle",
}
STATUS_COLOURS = {
    ReplicaStatus.RUNNING: "#2e7d32",
    ReplicaStatus.STARTING: "#e6a100",
    ReplicaStatus.PRE_COMMANDS: "#e6a100",
}
LEVEL_COLOURS = {
    thresholds.OK: "#2e7d32",
    thresholds.WARNING: "#e6a100",
    thresholds.CRITICAL: "#d9534f",
    None: "#888",
}
RESOURCES = (
    ("process", "Processes", "process_count", "process_limit"),
    ("port", "Ports", "port_count", "port_limit"),
    ("atom", "Atoms", "atom_count", "atom_limit"),
)
CARD_CSS = """
.rc-head { display: flex; justify-content: space-between; align-items: center;
           font-size: 15px; margin-bottom: 6px; }
.rc-status { font-weight: bold; }
.rc dl { display: grid; grid-template-columns: 118px 1fr; gap: 2px 8px; margin: 0;
         font-size: 13px; }
.rc dt { color: #666; } .rc dd { margin: 0; word-break: break-all; }
.rc table { width: 100%; font-size: 12px; margin-top: 8px; border-collapse: collapse; }
.rc td { padding: 1px 4px; } .rc .bar { background: #eee; height: 8px; border-radius: 4px; }
.rc .fill { height: 8px; border-radius: 4px; }
.rc .links a { margin-right: 10px; font-size: 13px; }
.rc .error { color: #d9534f; font-size: 12px; }
.rc th { text-align: left; font-weight: normal; color: #666; padding: 1px 4px; }
.rc .limits { color: #888; white-space: nowrap; text-align: right; }
"""


@dataclass(frozen=True)
class Usage:
    kind: str
    label: str
    percent: int | None
    count: float | None
    limit: float | None
    warning: int | None  # thresholds, when the app watches this resource
    restart: int | None
    level: str | None


def usage(sample: Sample | None, app: Application | None) -> list[Usage]:
    """BEAM process/port/atom use of the latest sample against the app's thresholds."""
    found = []
    values = sample.values if sample else {}
    for kind, label, count_key, limit_key in RESOURCES:
        count, limit = values.get(count_key), values.get(limit_key)
        value = thresholds.percent(count, limit)
        watched = app.monitoring_of(kind) if app else None
        level = thresholds.level(value, watched) if watched and value is not None else None
        if value is not None and watched is None:
            level = thresholds.OK
        found.append(
            Usage(
                kind,
                label,
                value,
                count,
                limit,
                watched.warning_threshold_percent if watched else None,
                watched.restart_threshold_percent if watched else None,
                level,
            )
        )
    return found


def status_word(replica: ReplicaSnapshot, now: float) -> str:
    if replica.restart_at and replica.pid is None:
        return f"Restarting in {display.ago(max(replica.restart_at - now, 0))}"
    return STATUS_WORDS.get(replica.status, replica.status)


def card_html(
    replica: ReplicaSnapshot,
    sample: Sample | None,
    app: Application | None,
    now: float,
    shell: bool = False,
) -> str:
    esc = html.escape
    colour = STATUS_COLOURS.get(replica.status, "#666")
    ports = ", ".join(f"{k}={v}" for k, v in replica.ports.items()) or "-"
    fields = [
        ("sname", "Replica", replica.sname),
        ("node", "Node", replica.node),
        ("ports", "Ports", ports),
        ("pid", "OS pid", replica.pid or "-"),
        ("otp", "OTP connection", replica.otp.replace("_", " ")),
        ("mtls", "Distribution", "mTLS on" if replica.mtls else "plain TCP (no mTLS)"),
        ("crash_restarts", "Crash restarts", replica.crash_restarts),
        ("forced_restarts", "Forced restarts", replica.forced_restarts),
        ("uptime", "Uptime", display.ago(replica.uptime_s(now))),
    ]
    if replica.adopted:
        fields.append(("adopted", "Adopted", "yes (running before this DeployEx)"))
    if replica.upgrade:
        fields.append(("upgrade", "Hot upgrade", replica.upgrade.removeprefix("hot upgrade ")))
    rows = "".join(
        f'<dt>{label}</dt><dd data-field="{key}">{esc(str(value))}</dd>'
        for key, label, value in fields
    )
    error = f'<div class="error">{esc(replica.last_error)}</div>' if replica.last_error else ""
    return (
        f'<div class="rc" data-sname="{esc(replica.sname)}">'
        f'<div class="rc-head"><span class="rc-status" data-field="status" style="color:{colour}">'
        f"{esc(status_word(replica, now))}</span>"
        f'<b data-field="version">{esc(replica.version or "version not set")}</b></div>'
        f"<dl>{rows}</dl>{error}{usage_html(usage(sample, app))}{links_html(replica, shell)}</div>"
    )


def usage_html(rows: list[Usage]) -> str:
    cells = []
    for row in rows:
        width = min(row.percent or 0, 100)
        colour = LEVEL_COLOURS.get(row.level, "#888")
        limits = f"{row.warning}/{row.restart}%" if row.warning else "unwatched"
        count = f"{row.count:.0f} of {row.limit:.0f}" if row.count is not None and row.limit else ""
        cells.append(
            f'<tr data-usage="{row.kind}"><td>{row.label}</td>'
            f'<td data-field="{row.kind}_percent" title="{count}">'
            f"{display.percent(row.percent)}</td>"
            f'<td style="width:45%"><div class="bar"><div class="fill" style="width:{width}%;'
            f'background:{colour}"></div></div></td>'
            f'<td class="limits" title="warning / restart thresholds">{limits}</td></tr>'
        )
    head = '<tr><th colspan="3">BEAM usage</th><th class="limits">warn/restart</th></tr>'
    return f'<table class="usage">{head}{"".join(cells)}</table>'


def links_html(replica: ReplicaSnapshot, shell: bool = False) -> str:
    def logs(stream: str) -> str:
        query = urlencode({"app": replica.app, "sname": replica.sname, "stream": stream})
        return f'<a href="/logs?{query}" target="_blank">{stream}</a>'

    versions = urlencode({"app": replica.app, "sname": replica.sname})
    observer = f'<a href="/observer?{versions}" target="_blank" class="dx-observer">observer</a>'
    terminal = ""
    if shell:  # a page of its own: it opens nothing until its button POSTs
        where = urlencode({"target": "replica", "app": replica.app, "sname": replica.sname})
        terminal = f'<a href="/terminal/open?{where}" target="_blank" class="dx-shell">shell</a>'
    return (
        f'<div class="links">{logs("stdout")}{logs("stderr")}'
        f'<a href="/versions?{versions}">versions</a>{observer}{terminal}</div>'
    )


class ReplicaCard:
    """The card of one sname; `update` re-renders only when something visible changed."""

    def __init__(
        self,
        replica: ReplicaSnapshot,
        app: Application | None,
        on_restart: Callable[[str], None],
        shell: bool = False,
    ) -> None:
        self.sname = replica.sname
        self.app = app
        self.shell = shell
        self.content = pn.pane.HTML("", stylesheets=[CARD_CSS], sizing_mode="stretch_width")
        self.restart = pn.widgets.Button(
            name="Restart", button_type="warning", css_classes=["dx-restart"], width=90
        )
        self.restart.on_click(lambda _event: on_restart(self.sname))
        self.view = pn.Column(
            self.content,
            self.restart,
            width=330,
            margin=8,
            css_classes=["replica-card", f"replica-{replica.sname}"],
            styles={
                "border": "1px solid #ddd",
                "border-radius": "8px",
                "padding": "10px",
                "background": "#fff",
            },
        )

    def update(
        self, replica: ReplicaSnapshot, sample: Sample | None, now: float | None = None
    ) -> None:
        rendered = card_html(replica, sample, self.app, now or time.time(), self.shell)
        if rendered != self.content.object:
            self.content.object = rendered
