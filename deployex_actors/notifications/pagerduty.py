"""The `pagerduty` adapter: Events API v2, always a `trigger` (as upstream).

`routing_key` (option, required: the loader refuses a channel without it) is the integration
key; `source` is the node the event is about; `custom_details` the payload; the severity follows
upstream's table (core.notifications.severity).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from deployex_actors.core.notifications import severity, summary

if TYPE_CHECKING:
    from deployex_actors.core.notifications import Notice
    from deployex_actors.notifications.channel import Channel

NAME = "pagerduty"
DEFAULT_URL = "https://events.pagerduty.com/v2/enqueue"
SUMMARY_MAX = 1024  # the Events API's limit


def body(channel: Channel, notice: Notice) -> dict:
    return {
        "routing_key": channel.routing_key,
        "event_action": "trigger",
        "payload": {
            "summary": f"{notice.event}: {summary(notice)}"[:SUMMARY_MAX],
            "source": notice.payload.get("node") or "deployex",
            "severity": severity(notice),
            "timestamp": notice.timestamp,
            "component": notice.payload.get("sname"),
            "class": notice.event,
            "custom_details": dict(notice.payload),
        },
    }
