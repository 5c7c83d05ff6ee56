"""What the state store keeps and gives back: history, ghosts, modes and the journal."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest

from deployex_actors.errors import StateError
from deployex_actors.state import AppMode, Ghost, JournalEvent, StateStore, VersionRecord

T0 = datetime(2025, 3, 1, 12, 0, 0, 123456, tzinfo=UTC)


def at(minutes: int) -> datetime:
    return T0 + timedelta(minutes=minutes)


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "var" / "deployex.db"


@pytest.fixture
def store(db: Path) -> Iterator[StateStore]:
    with StateStore(db) as opened:
        yield opened


# -- version history ---------------------------------------------------------------------------


def test_version_record_round_trips_through_a_reopened_file(db: Path) -> None:
    with StateStore(db) as store:
        written = store.add_version(
            "myapp",
            "myapp-abc123",
            "1.2.3",
            hash="d41d8cd9",
            pre_commands=["eval MyApp.Migrator.run()", "eval MyApp.Seeds.run()"],
            kind="hot_upgrade",
            at=T0,
        )
    with StateStore.open(db) as store:
        assert store.versions("myapp") == [written]
    assert written == VersionRecord(
        "myapp",
        "myapp-abc123",
        "1.2.3",
        "d41d8cd9",
        ("eval MyApp.Migrator.run()", "eval MyApp.Seeds.run()"),
        "hot_upgrade",
        T0,
    )


def test_version_defaults_are_a_full_deployment_now_without_hash_or_pre_commands(
    store: StateStore,
) -> None:
    before = datetime.now(UTC)
    record = store.add_version("myapp", "myapp-abc123", "1.0.0")
    assert (record.hash, record.pre_commands, record.kind) == (None, (), "full_deployment")
    assert record.at.tzinfo is not None
    assert before - timedelta(seconds=1) <= record.at <= datetime.now(UTC)
    assert store.latest_version("myapp") == record


def test_times_in_other_zones_are_stored_as_the_same_instant_in_utc(store: StateStore) -> None:
    paris = datetime(2025, 3, 1, 13, 0, tzinfo=timezone(timedelta(hours=1)))
    store.add_version("myapp", "myapp-abc123", "1.0.0", at=paris)
    stored = store.latest_version("myapp")
    assert stored is not None
    assert stored.at == paris
    assert stored.at.utcoffset() == timedelta(0)


def test_naive_times_and_unknown_kinds_are_refused_and_nothing_is_written(
    store: StateStore,
) -> None:
    with pytest.raises(ValueError, match="time zone"):
        store.add_version("myapp", "myapp-abc123", "1.0.0", at=datetime(2025, 1, 1))
    with pytest.raises(ValueError, match="deployment kind"):
        store.add_version("myapp", "myapp-abc123", "1.0.0", kind="yolo")
    assert store.versions("myapp") == []


def test_history_is_newest_first_per_app_with_ties_in_reverse_insertion_order(
    store: StateStore,
) -> None:
    store.add_version("myapp", "myapp-aaaaaa", "1.0.0", at=at(0))
    store.add_version("myapp", "myapp-cccccc", "3.0.0", at=at(20))
    store.add_version("myapp", "myapp-bbbbbb", "2.0.0", at=at(10))
    store.add_version("myapp", "myapp-dddddd", "3.0.1", at=at(20))
    store.add_version("other", "other-aaaaaa", "9.9.9", at=at(30))

    assert [r.version for r in store.versions("myapp")] == ["3.0.1", "3.0.0", "2.0.0", "1.0.0"]
    assert [r.version for r in store.versions("myapp", limit=2)] == ["3.0.1", "3.0.0"]
    latest = store.latest_version("myapp")
    assert latest is not None
    assert latest.version == "3.0.1"
    assert store.latest_version("nobody") is None
    assert store.versions("nobody") == []


def test_distinct_versions_lists_each_version_once_by_its_latest_deployment(
    store: StateStore,
) -> None:
    for minute, version in enumerate(["1.0.0", "2.0.0", "1.0.0", "3.0.0", "2.0.0", "2.0.0"]):
        store.add_version("myapp", f"myapp-{minute:06d}", version, at=at(minute))
    assert store.distinct_versions("myapp") == ["2.0.0", "3.0.0", "1.0.0"]
    assert store.distinct_versions("myapp", limit=2) == ["2.0.0", "3.0.0"]
    assert store.distinct_versions("nobody") == []


def test_distinct_versions_defaults_to_the_last_ten(store: StateStore) -> None:
    for n in range(12):
        store.add_version("myapp", "myapp-abc123", f"1.0.{n}", at=at(n))
    assert store.distinct_versions("myapp") == [f"1.0.{n}" for n in range(11, 1, -1)]


# -- ghosts ------------------------------------------------------------------------------------


def test_ghosting_twice_keeps_one_ghost_with_the_first_reason(store: StateStore) -> None:
    first = store.ghost("myapp", "2.0.0", "not ready within 60 s", at=at(0))
    again = store.ghost("myapp", "2.0.0", "hot upgrade failed", at=at(5))
    assert first == again == Ghost("myapp", "2.0.0", "not ready within 60 s", at(0))
    assert store.ghosts("myapp") == [first]
    assert store.is_ghosted("myapp", "2.0.0")
    assert not store.is_ghosted("myapp", "1.0.0")
    assert not store.is_ghosted("other", "2.0.0")


def test_ghosts_are_newest_first(store: StateStore) -> None:
    store.ghost("myapp", "1.0.0", "crashed", at=at(0))
    store.ghost("myapp", "3.0.0", "crashed", at=at(20))
    store.ghost("myapp", "2.0.0", "crashed", at=at(10))
    assert [g.version for g in store.ghosts("myapp")] == ["3.0.0", "2.0.0", "1.0.0"]


def test_unghost_removes_one_version_or_all_of_an_app(store: StateStore) -> None:
    for version in ("1.0.0", "2.0.0", "3.0.0"):
        store.ghost("myapp", version, "crashed")
    store.ghost("other", "1.0.0", "crashed")

    assert store.unghost("myapp", "2.0.0") == 1
    assert store.unghost("myapp", "2.0.0") == 0
    assert not store.is_ghosted("myapp", "2.0.0")
    assert store.unghost("myapp") == 2
    assert store.ghosts("myapp") == []
    assert store.is_ghosted("other", "1.0.0")


# -- per-app mode ------------------------------------------------------------------------------


def test_mode_is_automatic_until_set_and_survives_reopening(db: Path) -> None:
    with StateStore(db) as store:
        assert store.mode("myapp") == AppMode("automatic")
        store.set_mode("myapp", AppMode("manual", "1.2.3"))
    with StateStore(db) as store:
        assert store.mode("myapp") == AppMode("manual", pinned_version="1.2.3")
        assert store.mode("other") == AppMode("automatic")
        store.set_mode("myapp", AppMode("automatic"))
        assert store.mode("myapp") == AppMode("automatic")


@pytest.mark.parametrize(
    ("mode", "pinned", "problem"),
    [
        ("manual", None, "needs a pinned version"),
        ("manual", "", "needs a pinned version"),
        ("automatic", "1.2.3", "takes no pinned version"),
        ("sometimes", None, "not one of automatic, manual"),
    ],
)
def test_invalid_modes_are_refused(mode: str, pinned: str | None, problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        AppMode(mode, pinned)


def test_set_mode_takes_only_an_app_mode(store: StateStore) -> None:
    with pytest.raises(TypeError, match="AppMode"):
        store.set_mode("myapp", "manual")  # type: ignore[arg-type]
    assert store.mode("myapp") == AppMode("automatic")


# -- event journal -----------------------------------------------------------------------------


def test_journal_event_round_trips_with_and_without_an_app(store: StateStore) -> None:
    deployed = store.journal(
        "deployment",
        "1.2.3 replaced 1.2.2",
        actor="deployer",
        app="myapp",
        sname="myapp-abc123",
        at=T0,
    )
    login = store.journal("login", "admin logged in", actor="admin", at=at(1))
    assert deployed == JournalEvent(
        deployed.id, T0, "myapp", "myapp-abc123", "deployment", "1.2.3 replaced 1.2.2", "deployer"
    )
    assert (login.app, login.sname) == (None, None)
    assert login.id > deployed.id
    assert store.events() == [login, deployed]


def test_empty_app_and_sname_mean_a_deployex_level_event(store: StateStore) -> None:
    event = store.journal("config", "YAML change applied", actor="admin", app="", sname="")
    assert (event.app, event.sname) == (None, None)
    assert store.events() == [event]


def test_journal_needs_a_kind_and_an_actor(store: StateStore) -> None:
    with pytest.raises(ValueError, match="kind and an actor"):
        store.journal("crash", "exit 1", actor="")
    with pytest.raises(ValueError, match="kind and an actor"):
        store.journal("", "exit 1", actor="monitor")
    assert store.events() == []


def test_events_filter_by_app_kind_and_time_newest_first(store: StateStore) -> None:
    store.journal("crash", "exit 1", actor="monitor", app="myapp", at=at(0))
    store.journal("restart", "forced", actor="admin", app="myapp", at=at(10))
    store.journal("crash", "exit 2", actor="monitor", app="other", at=at(20))
    store.journal("crash", "exit 3", actor="monitor", app="myapp", at=at(30))
    store.journal("login", "admin", actor="admin", at=at(40))

    def messages(**filters: object) -> list[str]:
        return [e.message for e in store.events(**filters)]  # type: ignore[arg-type]

    assert messages() == ["admin", "exit 3", "exit 2", "forced", "exit 1"]
    assert messages(app="myapp") == ["exit 3", "forced", "exit 1"]
    assert messages(kind="crash") == ["exit 3", "exit 2", "exit 1"]
    assert messages(app="myapp", kind="crash") == ["exit 3", "exit 1"]
    assert messages(since=at(10)) == ["admin", "exit 3", "exit 2", "forced"]
    assert messages(app="myapp", since=at(10), limit=1) == ["exit 3"]


# -- transactions ------------------------------------------------------------------------------


def test_a_transaction_commits_its_writes_together_or_not_at_all(store: StateStore) -> None:
    with store.transaction():
        store.add_version("myapp", "myapp-abc123", "1.0.0")
        store.journal("deployment", "1.0.0 deployed", actor="deployer", app="myapp")
    with pytest.raises(RuntimeError), store.transaction():
        store.add_version("myapp", "myapp-abc123", "2.0.0")
        store.ghost("myapp", "2.0.0", "crashed")
        raise RuntimeError("deployment aborted half-way")

    assert [r.version for r in store.versions("myapp")] == ["1.0.0"]
    assert store.ghosts("myapp") == []
    assert [e.message for e in store.events()] == ["1.0.0 deployed"]


def test_a_closed_store_raises_a_state_error(db: Path) -> None:
    store = StateStore(db)
    store.close()
    with pytest.raises(StateError, match=str(db)):
        store.versions("myapp")
