"""Durable state of DeployEx: one SQLite file (WAL) at `Catalog.state_db`.

It holds what must survive a restart because deployment decisions depend on it: the version
history, ghosted versions, each app's mode, and the event journal. Everything else (counters, live
status, metrics, logs) is rebuilt in memory. See docs/state.md for the operator's view.
"""

from deployex_actors.state.records import (
    DEPLOYMENT_KINDS,
    MODES,
    AppMode,
    Ghost,
    JournalEvent,
    VersionRecord,
)
from deployex_actors.state.schema import LATEST_VERSION
from deployex_actors.state.store import StateStore

__all__ = [
    "DEPLOYMENT_KINDS",
    "LATEST_VERSION",
    "MODES",
    "AppMode",
    "Ghost",
    "JournalEvent",
    "StateStore",
    "VersionRecord",
]
