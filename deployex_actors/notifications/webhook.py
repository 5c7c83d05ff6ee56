"""The `webhook` adapter: POST `{event, timestamp (ISO-8601), payload}`, as upstream."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from deployex_actors.core.notifications import Notice
    from deployex_actors.notifications.channel import Channel

NAME = "webhook"
DEFAULT_URL = None


def body(channel: Channel, notice: Notice) -> dict:
    return {"event": notice.event, "timestamp": notice.timestamp, "payload": dict(notice.payload)}
