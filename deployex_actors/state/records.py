"""The records the durable state holds, as frozen dataclasses.

These are what crosses the boundary between the store and its callers (Storage, the Deployers,
the dashboard). Invalid values are refused when a record is built, so a `AppMode("manual")`
without a pinned version can never reach the database.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

# How a version reached a replica, as upstream spells it in its history records.
DEPLOYMENT_KINDS = ("full_deployment", "hot_upgrade")
MODES = ("automatic", "manual")


@dataclass(frozen=True)
class VersionRecord:
    """One entry of an app's version history: a version that was deployed to a replica."""

    app: str
    sname: str
    version: str
    hash: str | None
    pre_commands: tuple[str, ...]
    kind: str
    at: datetime  # UTC, tz-aware

    def __post_init__(self) -> None:
        if self.kind not in DEPLOYMENT_KINDS:
            raise ValueError(
                f"deployment kind {self.kind!r} is not one of {', '.join(DEPLOYMENT_KINDS)}"
            )
        _require_text("app", self.app)
        _require_text("sname", self.sname)
        _require_text("version", self.version)


@dataclass(frozen=True)
class Ghost:
    """A version that must not be deployed again for an app until an operator removes it."""

    app: str
    version: str
    reason: str
    at: datetime


@dataclass(frozen=True)
class AppMode:
    """Whether an app follows current.json (`automatic`) or stays on a pinned version."""

    mode: str
    pinned_version: str | None = None

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ValueError(f"mode {self.mode!r} is not one of {', '.join(MODES)}")
        if self.mode == "manual" and not self.pinned_version:
            raise ValueError("manual mode needs a pinned version")
        if self.mode == "automatic" and self.pinned_version is not None:
            raise ValueError("automatic mode takes no pinned version")


AUTOMATIC = AppMode("automatic")


@dataclass(frozen=True)
class JournalEvent:
    """One line of the event journal: what happened, to which app/replica, and who did it.

    `app` and `sname` are None for DeployEx-level events (a login, a configuration change).
    """

    id: int
    at: datetime
    app: str | None
    sname: str | None
    kind: str
    message: str
    actor: str


def _require_text(field: str, value: str) -> None:
    if not value:
        raise ValueError(f"{field} must not be empty")
