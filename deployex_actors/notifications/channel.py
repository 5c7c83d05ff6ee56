"""A configured notification channel, with its secrets resolved, and how it is named.

A channel is shown as `#INDEX ADAPTER` (e.g. `#2 slack`, 1-based in the order of the YAML's
`notifications:` list), never by its URL: a Slack or webhook URL and a PagerDuty routing key are
credentials. `repr` hides them too, and `scrub` takes them out of any text (an error message).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit


@dataclass(frozen=True, repr=False)
class Channel:
    index: int  # 1-based position in `notifications:`
    adapter: str
    url: str
    events: tuple[str, ...] = ("all",)
    enabled: bool = True
    options: Mapping[str, Any] = field(default_factory=dict)
    problem: str | None = None  # it cannot deliver at all (e.g. its secret was not loaded)

    @property
    def label(self) -> str:
        return f"#{self.index} {self.adapter}"

    @property
    def routing_key(self) -> str | None:
        return self.options.get("routing_key")

    def wants(self, event: str) -> bool:
        return self.enabled and ("all" in self.events or event in self.events)

    def scrub(self, text: str) -> str:
        """`text` without the channel's URL, its path and query, or its routing key."""
        parts = urlsplit(self.url) if self.url else None
        hidden = [self.url, self.routing_key]
        if parts is not None:
            hidden += [parts.path if len(parts.path) > 1 else None, parts.query or None]
        for value in sorted((v for v in hidden if v), key=len, reverse=True):
            text = text.replace(value, "<hidden>")
        return text

    def __repr__(self) -> str:
        return f"Channel({self.label}, events={list(self.events)}, enabled={self.enabled})"

    __str__ = __repr__
