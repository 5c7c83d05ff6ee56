"""Notification channels: one adapter per backend (webhook, slack, pagerduty), picked by name
here, a delivery worker per channel (worker.py), and the HTTP POST they share (post.py)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

from deployex_actors.core.notifications import Notice
from deployex_actors.notifications import pagerduty, slack, webhook
from deployex_actors.notifications.channel import Channel

if TYPE_CHECKING:
    from deployex_actors.config import Config
    from deployex_actors.secrets.references import NamedSecrets


class NotificationAdapter(Protocol):
    """One backend: the JSON body a notice becomes on a channel (each module satisfies this)."""

    NAME: str
    DEFAULT_URL: str | None

    def body(self, channel: Channel, notice: Notice) -> dict:
        """The JSON object to POST to the channel's URL."""
        ...


ADAPTERS: dict[str, NotificationAdapter] = {a.NAME: a for a in (webhook, slack, pagerduty)}


def adapter_for(name: str) -> NotificationAdapter:
    return ADAPTERS[name]  # the loader allows only these names


def channels_of(config: Config, secrets: NamedSecrets) -> tuple[Channel, ...]:
    """The configured channels, numbered from 1, with `secret:NAME` values resolved. A secret
    that was not loaded (a name added to the YAML after the boot) makes the channel fail every
    delivery with a message saying so, rather than stop the others."""
    channels = []
    for index, entry in enumerate(config.notifications, start=1):
        adapter, problem = adapter_for(entry.adapter), None
        try:
            url = secrets.resolve(entry.url) or adapter.DEFAULT_URL or ""
            options = {k: secrets.resolve(v) for k, v in entry.options.items()}
        except KeyError as exc:
            url, options = "", {}
            problem = (f"secret {exc.args[0]!r} was not loaded at boot: restart DeployEx to read "
                       "new secrets")  # fmt: skip
        channels.append(Channel(index, entry.adapter, url, tuple(entry.events), entry.enabled,
                                options, problem))  # fmt: skip
    return tuple(channels)
