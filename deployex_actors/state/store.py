"""StateStore: the durable state of DeployEx in one SQLite file.

In production only the Storage actor opens it writable; the dashboard and the CLI open it with
`readonly=True` from their own processes. Every write method is one transaction on its own;
`transaction()` groups several (e.g. record a deployment and journal it) so they commit together.
Every sqlite3 error leaves as a StateError naming the file.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterable, Iterator
from datetime import datetime
from os import PathLike
from pathlib import Path
from types import TracebackType
from typing import Any

from deployex_actors.errors import StateError
from deployex_actors.state import schema
from deployex_actors.state.connection import connect, translated, write_transaction
from deployex_actors.state.records import (
    AUTOMATIC,
    AppMode,
    Ghost,
    JournalEvent,
    VersionRecord,
)
from deployex_actors.state.timestamps import from_micros, now, to_micros

_SELECT_VERSIONS = (
    "SELECT app, sname, version, hash, pre_commands, kind, at_us FROM versions WHERE app = ? "
    "ORDER BY at_us DESC, id DESC LIMIT ?"
)
# Fixed statements, where a NULL parameter switches its filter off. Per app, the (app, at_us)
# index gives the rows already in order; across apps, walking the time index newest first and
# stopping at the limit keeps a long journal cheap.
_SELECT_EVENTS = (
    "SELECT id, at_us, app, sname, kind, message, actor FROM journal "
    "WHERE (:kind IS NULL OR kind = :kind) AND (:since IS NULL OR at_us >= :since) "
    "ORDER BY at_us DESC, id DESC LIMIT :limit"
)
_SELECT_APP_EVENTS = (
    "SELECT id, at_us, app, sname, kind, message, actor FROM journal WHERE app = :app "
    "AND (:kind IS NULL OR kind = :kind) AND (:since IS NULL OR at_us >= :since) "
    "ORDER BY at_us DESC, id DESC LIMIT :limit"
)


class StateStore:
    """Version history, ghosts, per-app mode and the event journal of one DeployEx."""

    def __init__(self, path: str | PathLike[str], *, readonly: bool = False) -> None:
        self.path = Path(path)
        self.readonly = readonly
        self._depth = 0  # nesting of transaction(); only the outermost one commits
        self._conn = connect(self.path, readonly=readonly)
        try:
            if readonly:
                schema.check_readable(self._conn, self.path)
            else:
                schema.migrate(self._conn, self.path)
        except BaseException:
            self._conn.close()
            raise

    @classmethod
    def open(cls, path: str | PathLike[str], *, readonly: bool = False) -> StateStore:
        return cls(path, readonly=readonly)

    # -- lifecycle ---------------------------------------------------------------------------

    def close(self) -> None:
        self._conn.close()

    def __enter__(self) -> StateStore:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    @contextlib.contextmanager
    def transaction(self) -> Iterator[None]:
        """Group writes: all of them commit at the end of the block, or none if it raises."""
        if self.readonly:
            raise StateError(f"state database {self.path} is open read-only; it cannot be written")
        if self._depth:
            self._depth += 1
            try:
                yield
            finally:
                self._depth -= 1
            return
        self._depth = 1
        try:
            with write_transaction(self._conn, self.path):
                yield
        finally:
            self._depth = 0

    # -- version history ---------------------------------------------------------------------

    def add_version(
        self,
        app: str,
        sname: str,
        version: str,
        *,
        hash: str | None = None,
        pre_commands: Iterable[str] = (),
        kind: str = "full_deployment",
        at: datetime | None = None,
    ) -> VersionRecord:
        record = VersionRecord(
            app, sname, version, hash, tuple(pre_commands), kind, _utc(at or now())
        )
        with self.transaction(), translated(self.path):
            self._conn.execute(
                "INSERT INTO versions (app, sname, version, hash, pre_commands, kind, at_us) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    record.app,
                    record.sname,
                    record.version,
                    record.hash,
                    json.dumps(list(record.pre_commands)),
                    record.kind,
                    to_micros(record.at),
                ),
            )
        return record

    def versions(self, app: str, limit: int | None = None) -> list[VersionRecord]:
        """The app's history, newest first (ties broken by insertion order)."""
        rows = self._query(_SELECT_VERSIONS, (app, -1 if limit is None else limit))
        return [_version_record(row) for row in rows]

    def latest_version(self, app: str) -> VersionRecord | None:
        newest = self.versions(app, limit=1)
        return newest[0] if newest else None

    def distinct_versions(self, app: str, limit: int = 10) -> list[str]:
        """Versions the app has run, each once, most recently deployed first (manual pickers)."""
        rows = self._query(
            "SELECT version FROM versions WHERE app = ? GROUP BY version "
            "ORDER BY max(at_us) DESC, max(id) DESC LIMIT ?",
            (app, limit),
        )
        return [version for (version,) in rows]

    # -- ghosted versions --------------------------------------------------------------------

    def ghost(self, app: str, version: str, reason: str, at: datetime | None = None) -> Ghost:
        """Ghost a version; ghosting it again keeps the first time and reason."""
        with self.transaction(), translated(self.path):
            self._conn.execute(
                "INSERT INTO ghosts (app, version, reason, at_us) VALUES (?, ?, ?, ?) "
                "ON CONFLICT (app, version) DO NOTHING",
                (app, version, reason, to_micros(_utc(at or now()))),
            )
            row = self._conn.execute(
                "SELECT app, version, reason, at_us FROM ghosts WHERE app = ? AND version = ?",
                (app, version),
            ).fetchone()
        return _ghost(row)

    def unghost(self, app: str, version: str | None = None) -> int:
        """Remove one ghost, or every ghost of the app when `version` is None; return how many."""
        if version is None:
            sql, params = "DELETE FROM ghosts WHERE app = ?", (app,)
        else:
            sql, params = "DELETE FROM ghosts WHERE app = ? AND version = ?", (app, version)
        with self.transaction(), translated(self.path):
            return self._conn.execute(sql, params).rowcount

    def ghosts(self, app: str) -> list[Ghost]:
        rows = self._query(
            "SELECT app, version, reason, at_us FROM ghosts WHERE app = ? "
            "ORDER BY at_us DESC, rowid DESC",
            (app,),
        )
        return [_ghost(row) for row in rows]

    def is_ghosted(self, app: str, version: str) -> bool:
        rows = self._query("SELECT 1 FROM ghosts WHERE app = ? AND version = ?", (app, version))
        return bool(rows)

    # -- per-app mode ------------------------------------------------------------------------

    def mode(self, app: str) -> AppMode:
        """The app's mode; `automatic` when it was never set."""
        rows = self._query("SELECT mode, pinned_version FROM modes WHERE app = ?", (app,))
        return AppMode(*rows[0]) if rows else AUTOMATIC

    def set_mode(self, app: str, mode: AppMode) -> None:
        if not isinstance(mode, AppMode):
            raise TypeError(f"mode must be an AppMode, not {type(mode).__name__}")
        # AppMode validated itself when built: manual has a pinned version, automatic has none.
        with self.transaction(), translated(self.path):
            self._conn.execute(
                "INSERT INTO modes (app, mode, pinned_version) VALUES (?, ?, ?) "
                "ON CONFLICT (app) DO UPDATE SET "
                "mode = excluded.mode, pinned_version = excluded.pinned_version",
                (app, mode.mode, mode.pinned_version),
            )

    # -- event journal -----------------------------------------------------------------------

    def journal(
        self,
        kind: str,
        message: str,
        *,
        actor: str,
        app: str | None = None,
        sname: str | None = None,
        at: datetime | None = None,
    ) -> JournalEvent:
        if not kind or not actor:
            raise ValueError("a journal event needs a kind and an actor")
        at_us = to_micros(_utc(at or now()))
        with self.transaction(), translated(self.path):
            cursor = self._conn.execute(
                "INSERT INTO journal (at_us, app, sname, kind, message, actor) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                (at_us, app or None, sname or None, kind, message, actor),
            )
            event_id = cursor.lastrowid
        assert event_id is not None  # an INSERT into a rowid table always sets it
        return _journal_event((event_id, at_us, app or None, sname or None, kind, message, actor))

    def events(
        self,
        *,
        app: str | None = None,
        kind: str | None = None,
        since: datetime | None = None,
        limit: int = 500,
    ) -> list[JournalEvent]:
        """Journal events, newest first, filtered by app, kind and time (`at >= since`)."""
        rows = self._query(
            _SELECT_EVENTS if app is None else _SELECT_APP_EVENTS,
            {
                "app": app,
                "kind": kind,
                "since": None if since is None else to_micros(since),
                "limit": limit,
            },
        )
        return [_journal_event(row) for row in rows]

    # -- internals ---------------------------------------------------------------------------

    def _query(self, sql: str, params: tuple[Any, ...] | dict[str, Any]) -> list[tuple[Any, ...]]:
        with translated(self.path):
            return self._conn.execute(sql, params).fetchall()


def _utc(at: datetime) -> datetime:
    """Round-trip through storage form, so returned records equal what a read gives back."""
    return from_micros(to_micros(at))


def _version_record(row: tuple[Any, ...]) -> VersionRecord:
    app, sname, version, hash_, pre_commands, kind, at_us = row
    return VersionRecord(
        app, sname, version, hash_, tuple(json.loads(pre_commands)), kind, from_micros(at_us)
    )


def _ghost(row: tuple[Any, ...]) -> Ghost:
    app, version, reason, at_us = row
    return Ghost(app, version, reason, from_micros(at_us))


def _journal_event(row: tuple[Any, ...]) -> JournalEvent:
    event_id, at_us, app, sname, kind, message, actor = row
    return JournalEvent(event_id, from_micros(at_us), app, sname, kind, message, actor)
