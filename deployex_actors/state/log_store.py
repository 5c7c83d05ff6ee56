"""LogStore: the log history in its own SQLite file (`Catalog.logs_db`, WAL), written only by the
Logs actor.

Separate from the state database: lines come in all the time and are pruned all the time, and
neither may slow or endanger a deployment decision (its writes are `synchronous = FULL`; here
NORMAL, so a power cut may lose the last lines, never the file). Lines and the offsets they were
read up to are committed together, so a restarted DeployEx takes each file up exactly where the
stored lines end: nothing twice, nothing missing.

The file is private to DeployEx's user (0600, in the 0700 var_path), like the state database:
replicas may print secrets into their logs.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from deployex_actors.core.log_history import (
    FileMark,
    HistoryLine,
    HistoryResult,
    LogService,
    bytes_to_drop,
    stored_bytes,
)
from deployex_actors.errors import StateError
from deployex_actors.private_paths import check_private_file
from deployex_actors.state.connection import connect, translated, write_transaction

APPLICATION_ID = 0x44505848  # "DPXH": a DeployEx log history file
SCHEMA = (
    """CREATE TABLE IF NOT EXISTS lines (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        at_ms INTEGER NOT NULL,
        app TEXT NOT NULL,
        sname TEXT NOT NULL,
        stream TEXT NOT NULL,
        text TEXT NOT NULL,
        bytes INTEGER NOT NULL
    ) STRICT""",
    "CREATE INDEX IF NOT EXISTS lines_by_time ON lines (at_ms)",
    "CREATE INDEX IF NOT EXISTS lines_by_sname ON lines (sname, at_ms)",
    # what each followed file was read up to: its identity (a rotated file is another inode)
    """CREATE TABLE IF NOT EXISTS offsets (
        path TEXT PRIMARY KEY, dev INTEGER NOT NULL, ino INTEGER NOT NULL,
        offset INTEGER NOT NULL
    ) STRICT""",
    # the services with kept lines, so listing them never scans the lines
    """CREATE TABLE IF NOT EXISTS services (
        sname TEXT PRIMARY KEY, app TEXT NOT NULL, first_ms INTEGER NOT NULL,
        last_ms INTEGER NOT NULL
    ) STRICT""",
)
PRUNE_CHUNK = 5000  # rows looked at per step when dropping the oldest to the cap
_COLUMNS = "id, at_ms, app, sname, stream, text"


@dataclass(frozen=True)
class NewLine:
    at_ms: int
    app: str
    sname: str
    stream: str
    text: str


class LogStore:
    def __init__(self, path: Path) -> None:
        self.path = path
        _create_private(path)
        self._conn = connect(path, readonly=False)
        try:
            with translated(path):
                self._prepare()
        except BaseException:
            self._conn.close()
            raise
        self.total_bytes = self._sum_bytes()

    def _prepare(self) -> None:
        (app_id,) = self._conn.execute("PRAGMA application_id").fetchone()
        (tables,) = self._conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
        if app_id != APPLICATION_ID and tables:
            raise StateError(
                f"log history {self.path} is a SQLite database DeployEx did not create "
                f"(application_id {app_id}); move it aside"
            )
        # Losing the last lines in a power cut is acceptable; an fsync per pass is not.
        self._conn.execute("PRAGMA synchronous = NORMAL")
        with write_transaction(self._conn, self.path):
            self._conn.execute(f"PRAGMA application_id = {APPLICATION_ID}")
            for statement in SCHEMA:
                self._conn.execute(statement)

    def _sum_bytes(self) -> int:
        with translated(self.path):
            (total,) = self._conn.execute("SELECT coalesce(sum(bytes), 0) FROM lines").fetchone()
        return total

    def close(self) -> None:
        self._conn.close()

    # -- writing ---------------------------------------------------------------------------------

    def offsets(self) -> dict[str, FileMark]:
        with translated(self.path):
            rows = self._conn.execute("SELECT path, dev, ino, offset FROM offsets").fetchall()
        return {path: FileMark(dev, ino, offset) for path, dev, ino, offset in rows}

    def append(self, lines: Sequence[NewLine], marks: dict[str, FileMark]) -> None:
        """Store lines and the offsets they were read up to, in one transaction."""
        rows = [(x.at_ms, x.app, x.sname, x.stream, x.text, stored_bytes(x.text)) for x in lines]
        seen: dict[str, tuple[str, int, int]] = {}
        for line in lines:
            app, first, last = seen.get(line.sname, (line.app, line.at_ms, line.at_ms))
            seen[line.sname] = (app, min(first, line.at_ms), max(last, line.at_ms))
        with write_transaction(self._conn, self.path):
            self._conn.executemany(
                "INSERT INTO lines (at_ms, app, sname, stream, text, bytes) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                rows,
            )
            self._conn.executemany(
                "INSERT INTO services (sname, app, first_ms, last_ms) VALUES (?, ?, ?, ?) "
                "ON CONFLICT (sname) DO UPDATE SET "
                "last_ms = max(last_ms, excluded.last_ms)",
                [(sname, app, first, last) for sname, (app, first, last) in seen.items()],
            )
            self._conn.executemany(
                "INSERT OR REPLACE INTO offsets (path, dev, ino, offset) VALUES (?, ?, ?, ?)",
                [(path, m.dev, m.ino, m.offset) for path, m in marks.items()],
            )
        self.total_bytes += sum(row[-1] for row in rows)

    def prune(self, cutoff_ms: int, cap_bytes: int) -> int:
        """Drop lines older than `cutoff_ms`, then the oldest until under the cap; returns how
        many lines went."""
        dropped = 0
        with write_transaction(self._conn, self.path):
            (old_bytes,) = self._conn.execute(
                "SELECT coalesce(sum(bytes), 0) FROM lines WHERE at_ms < ?", (cutoff_ms,)
            ).fetchone()
            old = self._conn.execute("DELETE FROM lines WHERE at_ms < ?", (cutoff_ms,))
            dropped += old.rowcount
            self.total_bytes -= old_bytes
            over = bytes_to_drop(self.total_bytes, cap_bytes)
            if over:
                last_id, freed = self._oldest_worth(over)
                dropped += self._conn.execute(
                    "DELETE FROM lines WHERE id <= ?", (last_id,)
                ).rowcount
                self.total_bytes -= freed
            if dropped:
                self._forget_empty_services()
        return dropped

    def _oldest_worth(self, wanted: int) -> tuple[int, int]:
        """The id up to which the oldest lines add up to `wanted` bytes, and their bytes."""
        last_id, freed = 0, 0
        while freed < wanted:
            rows = self._conn.execute(
                "SELECT id, bytes FROM lines WHERE id > ? ORDER BY id LIMIT ?",
                (last_id, PRUNE_CHUNK),
            ).fetchall()
            if not rows:
                break
            for row_id, size in rows:
                last_id, freed = row_id, freed + size
                if freed >= wanted:
                    break
        return last_id, freed

    def _forget_empty_services(self) -> None:
        self._conn.execute(
            "DELETE FROM services WHERE NOT EXISTS "
            "(SELECT 1 FROM lines WHERE lines.sname = services.sname)"
        )
        self._conn.execute(
            "UPDATE services SET first_ms = "
            "(SELECT min(at_ms) FROM lines WHERE lines.sname = services.sname)"
        )

    # -- reading ---------------------------------------------------------------------------------

    def query(
        self,
        since_ms: int,
        until_ms: int | None = None,
        snames: Iterable[str] | None = None,
        app: str | None = None,
        streams: Iterable[str] = ("stdout", "stderr"),
        grep: str | None = None,
        limit: int = 1000,
        after_id: int | None = None,
    ) -> HistoryResult:
        """Matching lines in chronological order: the newest `limit` of them, or with a cursor
        (`after_id`) the oldest `limit` stored after it."""
        where, args = ["at_ms >= ?"], [since_ms]
        if until_ms is not None:
            where.append("at_ms <= ?")
            args.append(until_ms)
        if snames is not None:
            names = list(snames)
            where.append(f"sname IN ({', '.join('?' * len(names)) or 'NULL'})")
            args += names
        if app is not None:
            where.append("app = ?")
            args.append(app)
        kinds = list(streams)
        where.append(f"stream IN ({', '.join('?' * len(kinds)) or 'NULL'})")
        args += kinds
        if grep:  # any case (ASCII); scans the window: ~1 s per million lines
            where.append("text LIKE ? ESCAPE '\\'")
            args.append(f"%{_escape_like(grep)}%")
        if after_id is not None:
            where.append("id > ?")
            args.append(after_id)
            order = "id ASC"
        else:
            order = "at_ms DESC, id DESC"
        # only placeholders and fixed text are joined here: every value is a bound parameter
        sql = f"SELECT {_COLUMNS} FROM lines WHERE {' AND '.join(where)} ORDER BY {order} LIMIT ?"  # noqa: S608
        with translated(self.path):
            rows = self._conn.execute(sql, [*args, limit + 1]).fetchall()
        capped = len(rows) > limit
        rows = rows[:limit]
        if after_id is None:
            rows.reverse()
        return HistoryResult(tuple(HistoryLine(*row) for row in rows), capped, limit)

    def services(self) -> list[LogService]:
        with translated(self.path):
            rows = self._conn.execute(
                "SELECT app, sname, first_ms, last_ms FROM services ORDER BY app, sname"
            ).fetchall()
        return [LogService(*row) for row in rows]


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _create_private(path: Path) -> None:
    """Create the file 0600 before SQLite does (it would follow the umask); SQLite gives its -wal
    and -shm files the mode of the database. An existing file open to others is refused."""
    try:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    except OSError as exc:
        raise StateError(f"log history {path} cannot be opened: {exc}") from exc
    try:
        check_private_file(path, fd)
    finally:
        with contextlib.suppress(OSError):
            os.close(fd)
