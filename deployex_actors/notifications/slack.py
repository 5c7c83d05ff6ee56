"""The `slack` adapter: an incoming webhook; `text` is an emoji and one mrkdwn line per event.

Options (upstream's): `username` (default "DeployEx"), `icon_emoji` (default ":robot_face:").
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from deployex_actors.core.notifications import emoji, summary

if TYPE_CHECKING:
    from deployex_actors.core.notifications import Notice
    from deployex_actors.notifications.channel import Channel

NAME = "slack"
DEFAULT_URL = None


def body(channel: Channel, notice: Notice) -> dict:
    text = f"{emoji(notice)} *{notice.event}* {_escape(summary(notice))}"
    return {
        "text": text,
        "username": channel.options.get("username", "DeployEx"),
        "icon_emoji": channel.options.get("icon_emoji", ":robot_face:"),
    }


def _escape(text: str) -> str:
    """Slack's three control characters, so a message reads as written."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
