"""Opening the state file: creation, WAL, migrations, refusals, and read-only readers."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from contextlib import closing, contextmanager
from datetime import UTC, datetime
from pathlib import Path

import pytest

from deployex_actors.errors import StateError
from deployex_actors.state import LATEST_VERSION, AppMode, Ghost, StateStore
from deployex_actors.state.schema import APPLICATION_ID, migrate
from deployex_actors.state.timestamps import to_micros

T0 = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)


@contextmanager
def raw(db: Path) -> Iterator[sqlite3.Connection]:
    """A plain sqlite3 connection in autocommit mode, to look at or prepare the file directly."""
    with closing(sqlite3.connect(db, isolation_level=None)) as conn:
        yield conn


def pragma(db: Path, name: str) -> object:
    with raw(db) as conn:
        return conn.execute(f"PRAGMA {name}").fetchone()[0]


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "var" / "deployex.db"


# -- creating and migrating --------------------------------------------------------------------


def test_a_new_file_is_created_in_wal_mode_at_the_latest_schema(db: Path) -> None:
    StateStore(db).close()
    assert db.is_file()
    assert pragma(db, "journal_mode") == "wal"
    assert pragma(db, "user_version") == LATEST_VERSION
    assert pragma(db, "application_id") == APPLICATION_ID


def test_an_empty_existing_file_is_migrated(db: Path) -> None:
    db.parent.mkdir(parents=True)
    db.touch()
    with StateStore(db) as store:
        store.journal("boot", "started", actor="deployex")
    assert pragma(db, "user_version") == LATEST_VERSION


def test_reopening_a_current_file_changes_nothing(db: Path) -> None:
    with StateStore(db) as store:
        store.add_version("myapp", "myapp-abc123", "1.0.0", at=T0)
    with StateStore(db) as store:
        assert [r.version for r in store.versions("myapp")] == ["1.0.0"]
    assert pragma(db, "user_version") == LATEST_VERSION


def test_a_version_1_database_is_migrated_to_the_latest_and_keeps_its_data(db: Path) -> None:
    db.parent.mkdir(parents=True)
    with raw(db) as conn:
        assert migrate(conn, db, target=1) == 1
        conn.execute(
            "INSERT INTO versions (app, sname, version, hash, pre_commands, kind, at_us) "
            "VALUES ('myapp', 'myapp-abc123', '1.0.0', 'cafe', ?, 'full_deployment', ?)",
            (json.dumps(["eval MyApp.Migrator.run()"]), to_micros(T0)),
        )
        conn.execute(
            "INSERT INTO ghosts (app, version, reason, at_us) VALUES ('myapp', '1.1.0', 'x', ?)",
            (to_micros(T0),),
        )
        conn.execute(
            "INSERT INTO modes (app, mode, pinned_version) VALUES ('myapp', 'manual', '1.0.0')"
        )
    assert pragma(db, "user_version") == 1

    with StateStore(db) as store:
        [record] = store.versions("myapp")
        assert (record.version, record.hash, record.pre_commands, record.at) == (
            "1.0.0",
            "cafe",
            ("eval MyApp.Migrator.run()",),
            T0,
        )
        assert store.ghosts("myapp") == [Ghost("myapp", "1.1.0", "x", T0)]
        assert store.mode("myapp") == AppMode("manual", "1.0.0")
        # The journal arrived with the migration and works.
        store.journal("boot", "migrated", actor="deployex")
        assert [e.message for e in store.events()] == ["migrated"]
    assert pragma(db, "user_version") == LATEST_VERSION


# -- refusals ----------------------------------------------------------------------------------


def test_a_database_from_a_newer_schema_is_refused_and_left_untouched(db: Path) -> None:
    StateStore(db).close()
    with raw(db) as conn:
        conn.execute(f"PRAGMA user_version = {LATEST_VERSION + 1}")
    for readonly in (False, True):
        with pytest.raises(StateError, match="newer than this DeployEx knows") as refused:
            StateStore(db, readonly=readonly)
        assert str(db) in str(refused.value)
    assert pragma(db, "user_version") == LATEST_VERSION + 1


def test_a_file_that_is_not_a_database_is_refused_naming_the_path(db: Path) -> None:
    db.parent.mkdir(parents=True)
    garbage = b"this is not a SQLite database, it is a text file " * 100
    db.write_bytes(garbage)
    for readonly in (False, True):
        with pytest.raises(StateError, match="is not a SQLite database") as refused:
            StateStore(db, readonly=readonly)
        assert str(db) in str(refused.value)
    assert db.read_bytes() == garbage


def test_damaged_pages_are_reported_as_corruption_naming_the_path(db: Path) -> None:
    with StateStore(db) as store:
        for n in range(100):
            store.add_version("myapp", "myapp-abc123", f"1.0.{n}", pre_commands=["x" * 300])
    # Keep page 1 (header and schema) and scribble over the start of every other page.
    data = bytearray(db.read_bytes())
    page_size = int.from_bytes(data[16:18], "big")
    for offset in range(page_size, len(data), page_size):
        data[offset : offset + 64] = b"\xff" * 64
    db.write_bytes(bytes(data))

    with StateStore(db) as store, pytest.raises(StateError, match="is corrupt") as refused:
        store.versions("myapp")
    assert str(db) in str(refused.value)


def test_a_sqlite_file_of_another_program_is_refused(db: Path) -> None:
    db.parent.mkdir(parents=True)
    with raw(db) as conn:
        conn.execute("CREATE TABLE accounts (name TEXT)")
    with pytest.raises(StateError, match="DeployEx did not create"):
        StateStore(db)


def test_a_folder_that_cannot_be_created_is_a_state_error(tmp_path: Path) -> None:
    (tmp_path / "var").write_text("a file where a folder should be")
    with pytest.raises(StateError, match="cannot be created"):
        StateStore(tmp_path / "var" / "deployex.db")


# -- read-only readers -------------------------------------------------------------------------


def test_a_read_only_store_sees_rows_the_writer_commits(db: Path) -> None:
    with StateStore(db) as writer, StateStore(db, readonly=True) as reader:
        writer.add_version("myapp", "myapp-abc123", "1.0.0", at=T0)
        assert [r.version for r in reader.versions("myapp")] == ["1.0.0"]
        with writer.transaction():
            writer.ghost("myapp", "2.0.0", "not ready", at=T0)
            assert reader.ghosts("myapp") == []  # not committed yet
        assert reader.is_ghosted("myapp", "2.0.0")
        writer.journal("crash", "exit 1", actor="monitor", app="myapp")
        assert [e.message for e in reader.events(app="myapp")] == ["exit 1"]


def test_a_read_only_store_opens_after_the_writer_has_closed(db: Path) -> None:
    with StateStore(db) as writer:
        writer.set_mode("myapp", AppMode("manual", "1.0.0"))
    with StateStore(db, readonly=True) as reader:
        assert reader.mode("myapp") == AppMode("manual", "1.0.0")


def test_a_read_only_store_refuses_writes(db: Path) -> None:
    StateStore(db).close()
    with StateStore(db, readonly=True) as reader:
        with pytest.raises(StateError, match="read-only"):
            reader.ghost("myapp", "1.0.0", "crashed")
        with pytest.raises(StateError, match="read-only"):
            reader.set_mode("myapp", AppMode("manual", "1.0.0"))
        assert reader.ghosts("myapp") == []


def test_a_read_only_store_needs_an_existing_migrated_file(db: Path) -> None:
    with pytest.raises(StateError, match="does not exist"):
        StateStore(db, readonly=True)
    assert not db.parent.exists()

    db.parent.mkdir(parents=True)
    with raw(db) as conn:
        migrate(conn, db, target=1)
    with pytest.raises(StateError, match="start DeployEx once so it migrates"):
        StateStore(db, readonly=True)
