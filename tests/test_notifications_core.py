"""Notifications without processes: which events a journal entry makes, their payloads, the
crash folding, the adapters' bodies, channels and their secrets."""

from __future__ import annotations

import pytest

from deployex_actors.config import parse_config
from deployex_actors.config.model import NOTIFICATION_EVENTS
from deployex_actors.core.notifications import (
    EVENTS,
    CrashFolding,
    Entry,
    Notice,
    notices_of,
    severity,
)
from deployex_actors.errors import ConfigError, SecretsError
from deployex_actors.notifications import channels_of, pagerduty, slack, webhook
from deployex_actors.notifications.channel import Channel
from deployex_actors.secrets import env
from deployex_actors.secrets.references import NamedSecrets, named_secrets

HOST = "myhost"
SNAME = "myapp-abc123"
REPLICA = {"version": "1.2.3", "language": "gleam", "crash_restart_count": 4}


def made(kind: str, details: dict | None = None, sname: str | None = SNAME, text: str = "t"):
    entry = Entry(kind, text, "myapp" if sname else None, sname, details or {})
    return {n.event: dict(n.payload) for n in notices_of(entry, 1_700_000_000.0, HOST)}


def test_a_crash_makes_crash_restart_with_upstreams_keys() -> None:
    assert made("crash", REPLICA) == {
        "crash_restart": {
            "node": f"{SNAME}@{HOST}",
            "sname": SNAME,
            "name": "myapp",
            "language": "gleam",
            "crash_restart_count": 4,
        }
    }


def test_a_rollout_makes_started_ready_and_complete_once() -> None:
    assert made("deploy", {"version": "1.2.3"}) == {
        "deployment_started": {"node": f"{SNAME}@{HOST}", "sname": SNAME, "version": "1.2.3"}
    }
    first = made("ready", {**REPLICA, "first_ready": True})
    assert first["application_ready"] == {
        "node": f"{SNAME}@{HOST}",
        "sname": SNAME,
        "version": "1.2.3",
    }
    assert first["deployment_complete"]["status"] == "ok"
    assert first["deployment_complete"]["version"] == "1.2.3"
    # a restart's ready is no deployment
    assert set(made("ready", {**REPLICA, "first_ready": False})) == {"application_ready"}


def test_deployex_itself_starting_is_a_deployment_of_deployex() -> None:
    events = made("deployex_started", {"version": "0.9.0"}, sname=None)
    assert events["deployment_started"] == {
        "node": f"deployex@{HOST}",
        "sname": "deployex",
        "version": "0.9.0",
    }
    assert events["deployment_complete"]["status"] == "ok"


def test_a_rollback_completes_the_deployment_with_an_error() -> None:
    events = made("rollback", {"version": "2.0.0"}, text="rolling back 2.0.0: not ready")
    assert events["deployment_complete"] == {
        "node": f"{SNAME}@{HOST}",
        "sname": SNAME,
        "version": "2.0.0",
        "status": "error",
        "message": "rolling back 2.0.0: not ready",
    }


def test_a_stop_is_a_deployment_shutdown() -> None:
    assert made("stopped") == {"deployment_shutdown": {"node": f"{SNAME}@{HOST}", "sname": SNAME}}


@pytest.mark.parametrize(
    ("kind", "enable_restart", "event", "action"),
    [
        ("threshold_critical", True, "watchdog_threshold_exceeded", "restart"),
        ("threshold_critical", False, "watchdog_threshold_exceeded", "no_restart"),
        ("threshold_warning", True, "watchdog_threshold_warning", "warning"),
        ("threshold_ok", True, "watchdog_threshold_warning", "normalized"),
    ],
)
def test_threshold_crossings(kind: str, enable_restart: bool, event: str, action: str) -> None:
    details = {"type": "atom", "current_percentage": 91, "warning_threshold_percent": 75,
               "restart_threshold_percent": 90, "enable_restart": enable_restart}  # fmt: skip
    payload = made(kind, details)[event]
    limit = "restart" if event.endswith("exceeded") else "warning"
    assert payload == {
        "node": f"{SNAME}@{HOST}",
        "type": "atom",
        "current_percentage": 91,
        f"{limit}_threshold_percent": details[f"{limit}_threshold_percent"],
        "action": action,
    }


def test_config_watcher_kinds() -> None:
    change = {"changes_count": 2, "fields": ["replicas", "monitoring"]}
    node = f"deployex@{HOST}"
    assert made("config_changed", change, sname=None) == {"config_changed": {"node": node,
                                                                             **change}}  # fmt: skip
    assert made("config_change_applied", change, sname=None)["config_change_applied"]["fields"]
    refused = made("config_change_refused", {"errors": ["replicas: -1 is below"]}, sname=None)
    assert refused == {"config_change_refused": {"node": node, "errors": ["replicas: -1 is below"]}}


def test_ghosts_and_hot_upgrades_are_ours() -> None:
    ghost = made("ghosted", {"version": "2.0.0", "reason": "not ready"})["ghosted"]
    assert ghost["version"] == "2.0.0" and ghost["reason"] == "not ready"
    versions = {"from_version": "1.0.0", "to_version": "1.1.0"}
    assert made("hot_upgrade", versions)["hot_upgrade_started"]["to_version"] == "1.1.0"
    assert made("hot_upgrade_step", versions)["hot_upgrade_step"]["from_version"] == "1.0.0"
    done = made("hot_upgraded", versions)
    assert done["deployment_complete"]["status"] == "ok"
    assert done["deployment_complete"]["to_version"] == "1.1.0"
    failed = made("hot_upgrade_failed", versions)
    assert failed["deployment_complete"]["status"] == "error"
    assert "hot_upgrade_failed" in failed


def test_the_notifiers_own_entries_make_no_notification() -> None:
    """A failing channel journals `notification_failed`: that must not notify again (a loop)."""
    for kind in ("notification_failed", "notification_recovered", "login", "mode", "retire"):
        assert made(kind) == {}


def test_every_event_made_can_be_chosen_in_the_yaml() -> None:
    assert set(EVENTS) <= set(NOTIFICATION_EVENTS)
    unmade = set(NOTIFICATION_EVENTS) - set(EVENTS) - {"all"}
    assert unmade == {"certificate_renewed", "certificate_valid", "certificate_failed"}


# -- crash folding ---------------------------------------------------------------------------


def crash(sname: str, count: int) -> Notice:
    return Notice("crash_restart", {"sname": sname, "crash_restart_count": count}, 0.0)


def test_a_crash_loop_sends_one_per_interval_and_the_rest_add_up() -> None:
    folding, sent = CrashFolding(60.0), []
    for i, at in enumerate((0.0, 5.0, 10.0, 15.0), start=1):
        folding, notice = folding.on_crash(crash("a-1", i), at)
        sent += [notice] if notice else []
    assert [n.payload["crash_restart_count"] for n in sent] == [1]
    assert folding.next_due() == 60.0
    folding, due = folding.due(59.0)
    assert due == ()
    folding, due = folding.due(60.0)
    assert [(n.payload["crash_restart_count"], n.payload["suppressed"]) for n in due] == [(4, 2)]
    sent += due
    assert sum(1 + n.payload.get("suppressed", 0) for n in sent) == 4
    # the summary opened a new window: a crash right after it is folded too
    folding, notice = folding.on_crash(crash("a-1", 5), 61.0)
    assert notice is None


def test_crash_folding_is_per_sname_and_forgets_quiet_ones() -> None:
    folding = CrashFolding(60.0)
    folding, first = folding.on_crash(crash("a-1", 1), 0.0)
    folding, other = folding.on_crash(crash("a-2", 1), 1.0)
    assert first is not None and other is not None
    folding, due = folding.due(100.0)
    assert due == () and folding.next_due() is None
    folding, again = folding.on_crash(crash("a-1", 2), 101.0)
    assert again is not None and "suppressed" not in again.payload


def test_an_overdue_fold_rides_on_the_next_crash() -> None:
    folding = CrashFolding(60.0)
    folding, _ = folding.on_crash(crash("a-1", 1), 0.0)
    folding, _ = folding.on_crash(crash("a-1", 2), 1.0)
    folding, late = folding.on_crash(crash("a-1", 3), 70.0)  # the timer had not fired yet
    assert late.payload["suppressed"] == 1 and late.payload["crash_restart_count"] == 3


# -- adapters --------------------------------------------------------------------------------


def channel(adapter: str, **options: str) -> Channel:
    return Channel(1, adapter, "https://hooks.example/T000/B000/SECRETPATH", options=options)


def test_webhook_body() -> None:
    notice = Notice("crash_restart", {"sname": SNAME}, 0.0)
    assert webhook.body(channel("webhook"), notice) == {
        "event": "crash_restart",
        "timestamp": "1970-01-01T00:00:00+00:00",
        "payload": {"sname": SNAME},
    }


def test_slack_body_defaults_and_options() -> None:
    notice = Notice("crash_restart", {"sname": SNAME, "crash_restart_count": 2}, 0.0)
    body = slack.body(channel("slack"), notice)
    assert body["username"] == "DeployEx" and body["icon_emoji"] == ":robot_face:"
    assert body["text"].startswith(":x: *crash_restart* ") and SNAME in body["text"]
    custom = slack.body(channel("slack", username="ops", icon_emoji=":fire:"), notice)
    assert (custom["username"], custom["icon_emoji"]) == ("ops", ":fire:")


@pytest.mark.parametrize(
    ("event", "payload", "expected"),
    [
        ("crash_restart", {}, "error"),
        ("deployment_started", {}, "info"),
        ("application_ready", {}, "info"),
        ("deployment_complete", {"status": "ok"}, "info"),
        ("deployment_complete", {"status": "error"}, "error"),
        ("watchdog_threshold_exceeded", {}, "critical"),
        ("watchdog_threshold_warning", {"action": "warning"}, "warning"),
        ("watchdog_threshold_warning", {"action": "normalized"}, "info"),
        ("deployment_shutdown", {}, "warning"),
        ("config_changed", {}, "warning"),
        ("config_change_applied", {}, "info"),
    ],
)
def test_pagerduty_severity_follows_upstream(event: str, payload: dict, expected: str) -> None:
    assert severity(Notice(event, payload, 0.0)) == expected


def test_pagerduty_body() -> None:
    payload = {"node": f"{SNAME}@{HOST}", "sname": SNAME, "crash_restart_count": 1}
    body = pagerduty.body(channel("pagerduty", routing_key="R0UT1NG"),
                          Notice("crash_restart", payload, 0.0))  # fmt: skip
    assert body["routing_key"] == "R0UT1NG" and body["event_action"] == "trigger"
    assert body["payload"]["source"] == f"{SNAME}@{HOST}"
    assert body["payload"]["severity"] == "error"
    assert body["payload"]["custom_details"] == payload
    assert SNAME in body["payload"]["summary"]


# -- channels and secrets --------------------------------------------------------------------

YAML = """
release_adapter: local
secrets_adapter: env
notifications:
  - adapter: slack
    url: "secret:SLACK_URL"
  - adapter: pagerduty
    events: [crash_restart, ghosted]
    options: {routing_key: "secret:PD_KEY"}
  - adapter: webhook
    url: http://127.0.0.1:9/plain
    enabled: false
"""


def test_channels_resolve_named_secrets_and_never_show_them() -> None:
    config = parse_config(YAML)
    secrets = named_secrets(config, {"SLACK_URL": "https://hooks.example/S3CR3T", "PD_KEY": "K3Y"})
    assert "S3CR3T" not in repr(secrets) and "K3Y" not in str(secrets)
    first, second, third = channels_of(config, secrets)
    assert first.url == "https://hooks.example/S3CR3T" and first.label == "#1 slack"
    assert second.url == pagerduty.DEFAULT_URL and second.routing_key == "K3Y"
    assert second.wants("ghosted") and not second.wants("deployment_started")
    assert not third.wants("crash_restart")  # enabled: false gets nothing
    assert "S3CR3T" not in repr(first) and "K3Y" not in repr(second)
    assert first.scrub("error at https://hooks.example/S3CR3T") == "error at <hidden>"
    assert second.scrub("bad key K3Y") == "bad key <hidden>"


def test_a_named_secret_that_is_missing_stops_the_boot_with_its_key_path() -> None:
    config = parse_config(YAML)
    with pytest.raises(SecretsError) as caught:
        named_secrets(config, {"SLACK_URL": "https://hooks.example/S3CR3T"})
    assert "notifications[1].options.routing_key: secret 'PD_KEY' not found" in str(caught.value)
    assert "S3CR3T" not in str(caught.value)


def test_a_secret_added_after_the_boot_makes_its_channel_fail_alone() -> None:
    config = parse_config(YAML)
    first, second, _ = channels_of(config, NamedSecrets({"SLACK_URL": "https://h.example/x"}))
    assert first.problem is None
    assert "'PD_KEY' was not loaded at boot" in second.problem


def test_the_env_adapter_reads_only_the_variables_channels_name() -> None:
    config = parse_config(YAML)
    environ = {"SLACK_URL": "https://hooks.example/S3CR3T", "PD_KEY": "K3Y", "HOME": "/root"}
    assert dict(env.load(config, environ).extra) == {
        "SLACK_URL": "https://hooks.example/S3CR3T",
        "PD_KEY": "K3Y",
    }


def test_the_loader_refuses_pagerduty_without_a_routing_key_and_unknown_events() -> None:
    text = "release_adapter: local\nsecrets_adapter: env\nnotifications:\n"
    with pytest.raises(ConfigError) as caught:
        parse_config(text + "  - {adapter: pagerduty}\n  - {adapter: webhook, url: x, "
                     "events: [crashes]}\n")  # fmt: skip
    problems = "\n".join(caught.value.problems)
    assert (
        "notifications[0].options.routing_key: missing; required by adapter pagerduty" in problems
    )
    assert "notifications[1].events[0]: 'crashes' is not one of" in problems
    ours = parse_config(text + "  - {adapter: webhook, url: x, events: [ghosted, hot_upgraded]}\n")
    assert ours.notifications[0].events == ("ghosted", "hot_upgraded")
