"""The schema of the state database and its forward migrations.

The schema version lives in `PRAGMA user_version`: 0 is an empty file, N means MIGRATIONS[0..N-1]
have been applied. Each migration runs in its own write transaction together with the bump of
`user_version`, so a crash or error leaves the file at the last complete version, never between
two. Migrations are only ever appended: a released migration is never edited, because databases
in the field already ran it.

`PRAGMA application_id` marks the file as DeployEx's, so pointing var_path at somebody else's
SQLite file is refused instead of "migrated".

Times are integer microseconds since the epoch, UTC (see timestamps.py); `pre_commands` is a
JSON array of strings.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from pathlib import Path

from deployex_actors.errors import StateError
from deployex_actors.state.connection import translated, write_transaction

APPLICATION_ID = 0x44504C58  # "DPLX"


@dataclass(frozen=True)
class Migration:
    summary: str
    statements: tuple[str, ...]


MIGRATIONS: tuple[Migration, ...] = (
    Migration(
        "version history, ghosted versions and per-app mode (what upstream keeps in term files)",
        (
            f"PRAGMA application_id = {APPLICATION_ID}",
            """CREATE TABLE versions (
                id INTEGER PRIMARY KEY,
                app TEXT NOT NULL,
                sname TEXT NOT NULL,
                version TEXT NOT NULL,
                hash TEXT,
                pre_commands TEXT NOT NULL DEFAULT '[]',
                kind TEXT NOT NULL CHECK (kind IN ('full_deployment', 'hot_upgrade')),
                at_us INTEGER NOT NULL
            ) STRICT""",
            "CREATE INDEX versions_by_app ON versions (app, at_us)",
            """CREATE TABLE ghosts (
                app TEXT NOT NULL,
                version TEXT NOT NULL,
                reason TEXT NOT NULL,
                at_us INTEGER NOT NULL,
                PRIMARY KEY (app, version)
            ) STRICT""",
            # The CHECK keeps "manual without a pinned version" out even if code forgets.
            """CREATE TABLE modes (
                app TEXT PRIMARY KEY,
                mode TEXT NOT NULL CHECK (mode IN ('automatic', 'manual')),
                pinned_version TEXT,
                CHECK ((mode = 'manual') = (pinned_version IS NOT NULL))
            ) STRICT""",
        ),
    ),
    Migration(
        "event journal (deployments, restarts, crashes, thresholds, logins, operator actions)",
        (
            # AUTOINCREMENT: an event id is never reused, even after pruning, so a reader can
            # use "events after id N" as a cursor.
            """CREATE TABLE journal (
                id INTEGER PRIMARY KEY AUTOINCREMENT,
                at_us INTEGER NOT NULL,
                app TEXT,
                sname TEXT,
                kind TEXT NOT NULL,
                message TEXT NOT NULL,
                actor TEXT NOT NULL
            ) STRICT""",
            "CREATE INDEX journal_by_time ON journal (at_us)",
            "CREATE INDEX journal_by_app ON journal (app, at_us)",
        ),
    ),
)

LATEST_VERSION = len(MIGRATIONS)


def user_version(conn: sqlite3.Connection) -> int:
    (version,) = conn.execute("PRAGMA user_version").fetchone()
    return version


def migrate(conn: sqlite3.Connection, path: Path, *, target: int = LATEST_VERSION) -> int:
    """Bring the file forward to `target`, one migration per transaction; return the version.

    Safe against another process migrating at the same time: the version is read again under
    the write lock before each step.
    """
    with translated(path):
        _refuse_foreign(conn, path)
        current = user_version(conn)
        _refuse_newer(current, path)
        while current < target:
            with write_transaction(conn, path):
                current = user_version(conn)
                if current >= target:
                    break
                _apply(conn, MIGRATIONS[current], current + 1)
            current += 1
        return user_version(conn)


def check_readable(conn: sqlite3.Connection, path: Path) -> None:
    """For read-only connections: the file must be DeployEx's and exactly at the latest version."""
    with translated(path):
        _refuse_foreign(conn, path)
        current = user_version(conn)
    _refuse_newer(current, path)
    if current < LATEST_VERSION:
        raise StateError(
            f"state database {path} is at schema version {current}, older than this DeployEx "
            f"expects ({LATEST_VERSION}); start DeployEx once so it migrates the file"
        )


def _apply(conn: sqlite3.Connection, migration: Migration, version: int) -> None:
    for statement in migration.statements:
        conn.execute(statement)
    # PRAGMA takes no bound parameters; `version` is an int we computed.
    conn.execute(f"PRAGMA user_version = {int(version)}")


def _refuse_newer(current: int, path: Path) -> None:
    if current > LATEST_VERSION:
        raise StateError(
            f"state database {path} has schema version {current}, newer than this DeployEx "
            f"knows ({LATEST_VERSION}); it was written by a newer DeployEx: run that version "
            "again or restore a backup taken before the upgrade"
        )


def _refuse_foreign(conn: sqlite3.Connection, path: Path) -> None:
    (app_id,) = conn.execute("PRAGMA application_id").fetchone()
    if app_id == APPLICATION_ID:
        return
    (tables,) = conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
    if app_id == 0 and user_version(conn) == 0 and tables == 0:
        return  # a new, empty file
    raise StateError(
        f"state database {path} is a SQLite database that DeployEx did not create "
        f"(application_id {app_id}); point var_path elsewhere or move the file aside"
    )
