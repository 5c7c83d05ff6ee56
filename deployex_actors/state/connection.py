"""Opening the SQLite file, write transactions, and turning sqlite3 errors into StateErrors.

One process (the Storage actor) writes; other processes (the dashboard, the CLI) read at the same
time. WAL lets those readers see the last committed state without blocking the writer, and
`busy_timeout` makes a connection wait for a lock instead of failing at once while a checkpoint
or a migration holds it.
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Iterator
from pathlib import Path

from deployex_actors.errors import StateDiskFull, StateError

# Long enough to ride out a checkpoint or a migration in another process; short enough that a
# stuck lock shows up as an error in status instead of a silently hung actor.
BUSY_TIMEOUT_MS = 5000

# What an operator can do about each kind of failure (see docs/state.md).
_ADVICE = {
    "SQLITE_NOTADB": "is not a SQLite database; move it aside or restore a backup",
    "SQLITE_CORRUPT": "is corrupt; stop DeployEx, move it aside and restore a backup",
    "SQLITE_BUSY": "is locked by another process; is a second DeployEx running on this var_path?",
    "SQLITE_READONLY": "cannot be written; check the file and folder permissions",
    "SQLITE_CANTOPEN": "cannot be opened; check that the folder exists and is writable",
    "SQLITE_FULL": "cannot grow; the disk is full",
    "SQLITE_IOERR": "could not be read or written (I/O error); check the disk",
}


def state_error(path: Path, exc: BaseException) -> StateError:
    """One line naming the file, what SQLite said, and what to do about it."""
    name = getattr(exc, "sqlite_errorname", "") or ""
    # Extended codes such as SQLITE_IOERR_WRITE share the advice of their primary code.
    advice = next((text for code, text in _ADVICE.items() if name.startswith(code)), None)
    detail = f"{advice} ({exc})" if advice else f"failed: {exc}"
    kind = StateDiskFull if name.startswith("SQLITE_FULL") else StateError
    return kind(f"state database {path} {detail}")


@contextlib.contextmanager
def translated(path: Path) -> Iterator[None]:
    """Run a block and re-raise any sqlite3 error as a StateError naming the file."""
    try:
        yield
    except sqlite3.Error as exc:
        raise state_error(path, exc) from exc


def connect(path: Path, *, readonly: bool) -> sqlite3.Connection:
    """A connection in autocommit mode (transactions are explicit), with a busy timeout.

    The writer also switches the file to WAL; that setting is persistent, so readers inherit it.
    """
    if readonly:
        if not path.is_file():
            raise StateError(f"state database {path} does not exist; start DeployEx once first")
        # mode=ro: a reader can never take the write lock, even by mistake.
        target, uri = f"{path.resolve().as_uri()}?mode=ro", True
    else:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StateError(
                f"state database folder {path.parent} cannot be created: {exc}"
            ) from exc
        target, uri = str(path), False
    with translated(path):
        conn = sqlite3.connect(
            target, uri=uri, isolation_level=None, timeout=BUSY_TIMEOUT_MS / 1000
        )
    try:
        with translated(path):
            _configure(conn, path, readonly=readonly)
    except BaseException:
        conn.close()
        raise
    return conn


def _configure(conn: sqlite3.Connection, path: Path, *, readonly: bool) -> None:
    conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
    if readonly:
        conn.execute("PRAGMA query_only = ON")
        # Reading the header now turns "not a database" into an error at open, not later.
        conn.execute("PRAGMA user_version").fetchone()
        return
    (journal_mode,) = conn.execute("PRAGMA journal_mode = WAL").fetchone()
    if journal_mode.lower() != "wal":
        raise StateError(
            f"state database {path} cannot use WAL (journal mode stays {journal_mode}); "
            "put var_path on a local filesystem"
        )
    # FULL: a committed deployment decision (a ghost, a pinned version) also survives a power
    # cut, not only a crash of DeployEx. Writes are rare, so the extra fsync costs little.
    conn.execute("PRAGMA synchronous = FULL")


@contextlib.contextmanager
def write_transaction(conn: sqlite3.Connection, path: Path) -> Iterator[None]:
    """BEGIN IMMEDIATE ... COMMIT, or ROLLBACK when the block raises.

    IMMEDIATE takes the write lock up front, so a transaction never fails half-way on a lock it
    could not upgrade; the busy timeout covers the wait.
    """
    with translated(path):
        conn.execute("BEGIN IMMEDIATE")
    try:
        yield
    except BaseException:
        # The original error matters more than a failed rollback (e.g. on a broken connection).
        with contextlib.suppress(sqlite3.Error):
            conn.execute("ROLLBACK")
        raise
    try:
        conn.execute("COMMIT")
    except sqlite3.Error as exc:
        # A COMMIT that failed (disk full, I/O error) leaves the transaction open.
        with contextlib.suppress(sqlite3.Error):
            conn.execute("ROLLBACK")
        raise state_error(path, exc) from exc
