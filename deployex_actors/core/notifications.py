"""Which notifications a journal entry makes, their payloads, and the crash folding. Pure.

The Notifier (actors/notifier.py) hears every journal entry; `notices_of` turns one into zero or
more `Notice`s: upstream DeployEx's events with upstream's payload keys (node, sname, version...),
plus ours (ghosted, hot upgrades, config_change_refused). What a payload needs beyond the entry's
text comes from `Journal.details`, filled by the producer (the Monitor, the Deployer, the
Watchdog, Storage, the root, the config watcher).

A crash-looping replica would page someone every few seconds: `CrashFolding` lets one
`crash_restart` per sname through per interval (a minute by default) and folds the others into
the next one sent (at the latest when the interval ends): its `suppressed` counts the crashes of
that sname not notified since the previous `crash_restart`, so the crashes add up to the sum of
1 + `suppressed` over the notifications sent, and `crash_restart_count` is the running count.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from deployex_actors.catalog import node_name

DEPLOYEX = "deployex"  # DeployEx's own sname in payloads, as upstream names its node


@dataclass(frozen=True)
class Notice:
    """One notification: an event name, its payload, and when it happened (epoch s)."""

    event: str
    payload: Mapping[str, Any]
    at: float

    @property
    def timestamp(self) -> str:
        """ISO-8601, UTC (the webhook's `timestamp`)."""
        return datetime.fromtimestamp(self.at, UTC).isoformat()


@dataclass(frozen=True)
class Entry:
    """What the mapping reads of a journal entry (messages.Journal without the actor shell)."""

    kind: str
    message: str
    app: str | None = None
    sname: str | None = None
    details: Mapping[str, Any] = field(default_factory=dict)


Payload = dict[str, Any]


def notices_of(entry: Entry, at: float, host: str) -> tuple[Notice, ...]:
    """The notifications one journal entry makes (none for most kinds)."""
    makers = _MAKERS.get(entry.kind)
    if makers is None:
        return ()
    node = node_name(entry.sname or DEPLOYEX, host)
    made = ((event, make(entry, node)) for event, make in makers)
    return tuple(Notice(event, payload, at) for event, payload in made if payload is not None)


def probe_notice(host: str, at: float) -> Notice:
    """What `deployex notify test` sends."""
    node = node_name(DEPLOYEX, host)
    return Notice("test", {"node": node, "message": "test notification from DeployEx"}, at)


# -- payloads (upstream's keys first) ----------------------------------------------------------


def _replica(entry: Entry, node: str) -> Payload:
    return {"node": node, "sname": entry.sname or DEPLOYEX}


def _versioned(entry: Entry, node: str) -> Payload:
    return {**_replica(entry, node), "version": entry.details.get("version")}


def _crash(entry: Entry, node: str) -> Payload:
    return {
        **_replica(entry, node),
        "name": entry.app,
        "language": entry.details.get("language"),
        "crash_restart_count": entry.details.get("crash_restart_count"),
    }


def _first_ready_complete(entry: Entry, node: str) -> Payload | None:
    """A replica's first ready ends its deployment; a restart's ready is no deployment."""
    if not entry.details.get("first_ready"):
        return None
    message = "deployment completed with success"
    return {**_versioned(entry, node), "status": "ok", "message": message}


def _deployex_complete(entry: Entry, node: str) -> Payload:
    message = "deployment completed with success"
    return {**_versioned(entry, node), "status": "ok", "message": message}


def _rollback_complete(entry: Entry, node: str) -> Payload:
    return {**_versioned(entry, node), "status": "error", "message": entry.message}


def _hot_upgrade(entry: Entry, node: str) -> Payload:
    return {
        **_replica(entry, node),
        "name": entry.app,
        "from_version": entry.details.get("from_version"),
        "to_version": entry.details.get("to_version"),
        "message": entry.message,
    }


def _hot_upgrade_complete(status: str) -> Callable[[Entry, str], Payload]:
    def make(entry: Entry, node: str) -> Payload:
        versions = {k: entry.details.get(k) for k in ("from_version", "to_version")}
        return {**_replica(entry, node), "status": status, "message": entry.message, **versions}

    return make


def _threshold(key: str) -> Callable[[Entry, str], Payload]:
    def make(entry: Entry, node: str) -> Payload:
        d = entry.details
        return {
            "node": node,
            "type": d.get("type"),
            "current_percentage": d.get("current_percentage"),
            key: d.get(key),
            "action": threshold_action(entry.kind, bool(d.get("enable_restart"))),
        }

    return make


_exceeded = _threshold("restart_threshold_percent")
_warning = _threshold("warning_threshold_percent")


def threshold_action(kind: str, enable_restart: bool) -> str:
    """Upstream's `action` of a threshold notification, from the journal kind (the level)."""
    if kind == "threshold_critical":
        return "restart" if enable_restart else "no_restart"
    return "warning" if kind == "threshold_warning" else "normalized"


def _ghosted(entry: Entry, node: str) -> Payload:
    d = entry.details
    return {**_replica(entry, node), "name": entry.app, "version": d.get("version"),
            "reason": d.get("reason")}  # fmt: skip


def _config(entry: Entry, node: str) -> Payload:
    d = entry.details
    return {"node": node, "changes_count": d.get("changes_count"), "fields": d.get("fields")}


def _config_refused(entry: Entry, node: str) -> Payload:
    return {"node": node, "errors": entry.details.get("errors")}


def _shutdown(entry: Entry, node: str) -> Payload:
    return _replica(entry, node)


# journal kind -> the (event, payload maker) pairs it makes; a maker may decline (None)
_MAKERS: dict[str, tuple[tuple[str, Callable[[Entry, str], Payload | None]], ...]] = {
    "crash": (("crash_restart", _crash),),
    "deploy": (("deployment_started", _versioned),),
    "deployex_started": (
        ("deployment_started", _versioned),
        ("deployment_complete", _deployex_complete),
    ),
    "ready": (
        ("application_ready", _versioned),
        ("deployment_complete", _first_ready_complete),
    ),
    "rollback": (("deployment_complete", _rollback_complete),),
    "stopped": (("deployment_shutdown", _shutdown),),
    "threshold_critical": (("watchdog_threshold_exceeded", _exceeded),),
    "threshold_warning": (("watchdog_threshold_warning", _warning),),
    "threshold_ok": (("watchdog_threshold_warning", _warning),),
    "config_changed": (("config_changed", _config),),
    "config_change_applied": (("config_change_applied", _config),),
    "config_change_refused": (("config_change_refused", _config_refused),),
    "ghosted": (("ghosted", _ghosted),),
    "hot_upgrade": (("hot_upgrade_started", _hot_upgrade),),
    "hot_upgrade_step": (("hot_upgrade_step", _hot_upgrade),),
    "hot_upgraded": (
        ("hot_upgraded", _hot_upgrade),
        ("deployment_complete", _hot_upgrade_complete("ok")),
    ),
    "hot_upgrade_failed": (
        ("hot_upgrade_failed", _hot_upgrade),
        ("deployment_complete", _hot_upgrade_complete("error")),
    ),
}
# every event `notices_of` can make, plus `test` (sent on demand, whatever a channel's events)
EVENTS = tuple(dict.fromkeys(event for pairs in _MAKERS.values() for event, _ in pairs))


# -- how each event looks: Slack's emoji, PagerDuty's severity, the one-line summary -----------


def severity(notice: Notice) -> str:
    """PagerDuty severity, as upstream's table says (ours: by the same logic)."""
    event, payload = notice.event, notice.payload
    if event == "deployment_complete":
        return "info" if payload.get("status") == "ok" else "error"
    if event == "watchdog_threshold_warning":
        return "info" if payload.get("action") == "normalized" else "warning"
    return _SEVERITY.get(event, "info")


_SEVERITY = {
    "crash_restart": "error",
    "watchdog_threshold_exceeded": "critical",
    "deployment_shutdown": "warning",
    "config_changed": "warning",
    "certificate_failed": "error",
    "ghosted": "error",
    "hot_upgrade_failed": "error",
    "config_change_refused": "warning",
}
_EMOJI = {"info": ":white_check_mark:", "warning": ":warning:", "error": ":x:",
          "critical": ":rotating_light:"}  # fmt: skip


def emoji(notice: Notice) -> str:
    return ":bell:" if notice.event == "test" else _EMOJI[severity(notice)]


def summary(notice: Notice) -> str:
    """What the event is about, in one line for a human (after the event's name)."""
    p = notice.payload
    about = p.get("sname") or p.get("node") or DEPLOYEX
    if notice.event == "crash_restart":
        folded = f", {p['suppressed']} more folded in" if p.get("suppressed") else ""
        return f"{about} crashed and restarts (crash #{p.get('crash_restart_count')}{folded})"
    if notice.event.startswith("watchdog_threshold"):
        return (f"{p.get('node')}: {p.get('type')} at {p.get('current_percentage')}% "
                f"({p.get('action')})")  # fmt: skip
    detail = next((str(p[k]) for k in ("message", "version", "reason", "fields", "errors")
                   if p.get(k)), "")  # fmt: skip
    return about + (f": {detail}" if detail else "")


# -- crash folding -------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Window:
    opened_at: float
    folded: int = 0  # crashes not sent since the window opened
    last: Notice | None = None  # the newest folded one (its count is the running count)


@dataclass(frozen=True)
class CrashFolding:
    """At most one `crash_restart` per sname per `interval_s`; the rest are folded."""

    interval_s: float = 60.0
    windows: Mapping[str, _Window] = field(default_factory=dict)

    def on_crash(self, notice: Notice, now: float) -> tuple[CrashFolding, Notice | None]:
        """The new state, and the notice to send now (None: folded into a later one)."""
        sname = notice.payload.get("sname") or DEPLOYEX
        window = self.windows.get(sname)
        if window is None or now - window.opened_at >= self.interval_s:
            if window is not None and window.folded:  # overdue summary: this one carries it
                notice = _with_suppressed(notice, window.folded)
            return self._set(sname, _Window(now)), notice
        folded = replace(window, folded=window.folded + 1, last=notice)
        return self._set(sname, folded), None

    def due(self, now: float) -> tuple[CrashFolding, tuple[Notice, ...]]:
        """Windows that ended: the summary of each that folded crashes (which opens a new
        window), and forget the quiet ones."""
        kept, out = {}, []
        for sname, window in self.windows.items():
            if now - window.opened_at < self.interval_s:
                kept[sname] = window
            elif window.folded and window.last is not None:
                # the last folded crash is sent; the others are counted in it
                out.append(_with_suppressed(window.last, window.folded - 1))
                kept[sname] = _Window(now)
        return replace(self, windows=kept), tuple(out)

    def next_due(self) -> float | None:
        """When the earliest window ends (epoch s), None when there is none."""
        ends = [w.opened_at + self.interval_s for w in self.windows.values()]
        return min(ends) if ends else None

    def _set(self, sname: str, window: _Window) -> CrashFolding:
        return replace(self, windows={**self.windows, sname: window})


def _with_suppressed(notice: Notice, folded: int) -> Notice:
    return replace(notice, payload={**notice.payload, "suppressed": folded})
