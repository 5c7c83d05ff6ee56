"""The config watcher's pure part: the diff with upstream's strategy, what a read means, apply
and discard (core.config_diff, core.config_watch), and the CLI's rendering. No processes."""

from __future__ import annotations

from dataclasses import fields

import yaml

from deployex_actors.cli.config import describe
from deployex_actors.config import Application, parse_config
from deployex_actors.core import config_watch
from deployex_actors.core.config_diff import (
    FULL_DEPLOY,
    HIDDEN,
    IMMEDIATE,
    NEXT_DEPLOY,
    PER_APP,
    RESTART,
    applicable,
    diff,
    full_deploy_needed,
)
from deployex_actors.core.config_watch import NONE, PENDING, REFUSED, WatchState

SECRET_URL = "https://hooks.example.test/T000/very-secret-token"
ROUTING_KEY = "pd-routing-key-secret"


def document(**top) -> dict:
    app = {
        "name": "myapp",
        "language": "gleam",
        "replicas": 3,
        "replica_ports": [{"key": "PORT", "base": 4000}],
        "env": [{"key": "DATABASE_URL", "value": "postgres://u:hunter2@db/x"}],
    }
    apps = top.pop("applications", [app])
    return {"release_adapter": "local", "secrets_adapter": "env", "applications": apps, **top}


def config(**top):
    return parse_config(yaml.safe_dump(document(**top)))


def app_doc(**extra) -> dict:
    base = document()["applications"][0]
    return {**base, **extra}


def by_key(change_list) -> dict:
    return {c.key: c for c in change_list}


def test_replicas_3_to_4_is_one_immediate_change_of_the_app() -> None:
    change = diff(config(), config(applications=[app_doc(replicas=4)]))
    assert [(c.key, c.old, c.new, c.strategy) for c in change.changes] == [
        ("applications.myapp.replicas", "3", "4", IMMEDIATE)
    ]
    assert change.changed_apps == ("myapp",)
    assert change.changes_count == 1 and change.restart_needed == ()


def test_each_key_gets_upstreams_strategy() -> None:
    new = config(
        logs_retention_time_ms=60_000,
        metrics_retention_time_ms=120_000,
        monitoring=[{"type": "memory"}],
        applications=[
            app_doc(
                language="erlang",
                env=[{"key": "A", "value": "1"}],
                deploy_rollback_timeout_ms=5_000,
                deploy_schedule_interval_ms=1_000,
                monitoring=[{"type": "atom"}],
                replica_ports=[{"key": "PORT", "base": 6000}],
                ready_after_ms=10,
                hot_upgrade=False,
            )
        ],
    )
    strategies = {k: c.strategy for k, c in by_key(diff(config(), new).changes).items()}
    assert strategies == {
        "logs_retention_time_ms": IMMEDIATE,
        "metrics_retention_time_ms": IMMEDIATE,
        "monitoring": IMMEDIATE,
        "applications.myapp.language": NEXT_DEPLOY,
        "applications.myapp.env": NEXT_DEPLOY,
        "applications.myapp.deploy_rollback_timeout_ms": IMMEDIATE,
        "applications.myapp.deploy_schedule_interval_ms": IMMEDIATE,
        "applications.myapp.monitoring": IMMEDIATE,
        "applications.myapp.replica_ports": FULL_DEPLOY,
        "applications.myapp.ready_after_ms": NEXT_DEPLOY,
        "applications.myapp.hot_upgrade": NEXT_DEPLOY,
    }
    # upstream: the top-level keys changed, all app changes counting as one
    assert diff(config(), new).changes_count == 4


def test_every_application_key_has_a_strategy() -> None:
    keys = {f.name for f in fields(Application)} - {"name"}
    assert keys == set(PER_APP)


def test_keys_outside_the_subset_need_a_restart_and_are_not_applied() -> None:
    applied = config()
    new = config(port=5009, account_name="other", logs_retention_time_ms=1_000)
    change = diff(applied, new)
    assert {c.key: c.strategy for c in change.restart_needed} == {
        "port": RESTART,
        "account_name": RESTART,
    }
    assert change.fields == ("logs_retention_time_ms",)
    runs = applicable(applied, new)
    assert (runs.port, runs.account_name, runs.logs_retention_time_ms) == (5001, "local", 1_000)


def test_apps_added_and_removed_are_immediate() -> None:
    other = {"name": "otherapp", "language": "erlang", "replicas": 2}
    change = diff(config(), config(applications=[other]))
    assert change.added_apps == ("otherapp",) and change.removed_apps == ("myapp",)
    shown = by_key(change.changes)
    assert shown["applications.otherapp"].new == "erlang, 2 replica(s)"
    assert shown["applications.myapp"].new == "(removed)"
    assert {c.strategy for c in change.changes} == {IMMEDIATE}


def test_secrets_never_show_in_the_diff() -> None:
    channel = {"adapter": "pagerduty", "url": SECRET_URL, "options": {"routing_key": ROUTING_KEY}}
    rotated = {**channel, "options": {"routing_key": ROUTING_KEY + "2"}}
    before = config(notifications=[channel])
    after = config(
        notifications=[rotated],
        applications=[app_doc(env=[{"key": "DATABASE_URL", "value": "postgres://new-secret"}])],
    )
    change = diff(before, after)
    text = repr(change)
    for secret in (SECRET_URL, ROUTING_KEY, "hunter2", "new-secret"):
        assert secret not in text
    notifications = by_key(change.changes)["notifications"]
    assert HIDDEN in notifications.new and notifications.new.endswith("(changed)")
    assert by_key(change.changes)["applications.myapp.env"].new.endswith("(changed)")


def test_only_replica_ports_ask_for_a_full_deploy() -> None:
    old = config().applications[0]
    assert not full_deploy_needed(old, config(applications=[app_doc(replicas=5)]).applications[0])
    moved = config(applications=[app_doc(replica_ports=[{"key": "PORT", "base": 4100}])])
    assert full_deploy_needed(old, moved.applications[0])


# -- reads, apply, discard -------------------------------------------------------------------------


def test_a_change_is_pending_once_journaled_once_and_cleared_when_the_file_goes_back() -> None:
    applied = config()
    state = WatchState(applied)
    state, notice = config_watch.on_read(state, "a", applied, 1.0)
    assert state.view.state == NONE and notice is None and state.applied_checksum == "a"
    new = config(applications=[app_doc(replicas=4)])
    state, notice = config_watch.on_read(state, "b", new, 2.0)
    assert state.view.state == PENDING and notice.kind == "config_changed"
    assert notice.details == {"changes_count": 1, "fields": ["applications.myapp.replicas"]}
    state, again = config_watch.on_read(state, "b", new, 3.0)
    assert state.view.state == PENDING and again is None  # once per checksum
    state, back = config_watch.on_read(state, "a", applied, 4.0)
    assert state.view.state == NONE and back is None


def test_an_invalid_file_is_refused_once_with_its_key_paths_and_nothing_runs_it() -> None:
    state = WatchState(config())
    errors = ["applications[0].replicas: 0 is below the minimum 1"]
    state, notice = config_watch.on_read(state, "bad", errors, 1.0)
    assert state.view.state == REFUSED and state.view.errors == tuple(errors)
    assert notice.kind == "config_change_refused" and notice.details == {"errors": errors}
    assert config_watch.on_read(state, "bad", errors, 2.0)[1] is None
    assert "refused" in config_watch.approve(state)
    assert state.applied == config()


def test_apply_runs_the_new_config_and_the_same_content_is_no_longer_pending() -> None:
    state = WatchState(config())
    new = config(applications=[app_doc(replicas=4)])
    state, _ = config_watch.on_read(state, "b", new, 1.0)
    assert "changed since" in config_watch.approve(state, checksum="other")
    state, runs, change = config_watch.approve(state, checksum="b")
    assert runs.application("myapp").replicas == 4 and change.changed_apps == ("myapp",)
    state, notice = config_watch.on_read(state, "b", new, 2.0)
    assert state.view.state == NONE and notice is None
    assert config_watch.approve(state) == "no pending configuration change"


def test_a_discarded_content_is_not_offered_again_until_the_file_changes_or_sighup() -> None:
    state = WatchState(config())
    new = config(applications=[app_doc(replicas=4)])
    state, _ = config_watch.on_read(state, "b", new, 1.0)
    state = config_watch.discard(state)
    assert state.view.state == NONE and state.applied == config()
    assert config_watch.on_read(state, "b", new, 2.0)[0].view.state == NONE
    assert config_watch.on_read(state, "b", new, 2.0, forced=True)[0].view.state == PENDING
    newer = config(applications=[app_doc(replicas=5)])
    assert config_watch.on_read(state, "c", newer, 3.0)[0].view.state == PENDING


def test_pending_prints_badges_and_the_restart_keys() -> None:
    state = WatchState(config())
    new = config(port=5009, applications=[app_doc(replicas=4)])
    state, _ = config_watch.on_read(state, "b", new, 1.0)
    text = "\n".join(describe(state.view))
    assert "[Immediate]" in text and "applications.myapp.replicas: 3 -> 4" in text
    assert "[Restart needed]" in text and "port: 5001 -> 5009" in text
