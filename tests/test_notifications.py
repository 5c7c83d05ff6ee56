"""Notifications end to end: a real `deployex run`, real Gleam replicas, and local HTTP servers
that speak the webhook's, Slack's and PagerDuty's API (tests/servers.RecordingServer)."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

from deployex_actors.core.notifications import Notice
from deployex_actors.core.status import AppSnapshot
from deployex_actors.notifications.channel import Channel
from deployex_actors.notifications.worker import ChannelWorker
from tests.beam_fixtures import ReleaseDist, wait_until
from tests.deployex_service import (
    DEPLOYEX,
    Service,
    app_entry,
    publish,
    running_service,
    write_config,
)
from tests.servers import RecordingServer

pytestmark = pytest.mark.slow
APP = "mygleamapp"
SLACK_SECRET = "/services/T0/B0/sl4ck-s3cr3t-path"
PD_SECRET = "pd-r0ut1ng-k3y-s3cr3t"


def running(count: int, version: str = "0.1.0") -> Callable[[AppSnapshot], bool]:
    def check(app: AppSnapshot) -> bool:
        up = [r for r in app.replicas if r.status == "running" and r.version == version]
        return len(up) == count and len(app.replicas) == count

    return check


def events(server: RecordingServer, event: str, sname: str | None = None) -> list[dict]:
    def match(body: dict) -> bool:
        payload = body.get("payload", {})
        return body.get("event") == event and (sname is None or payload.get("sname") == sname)

    return server.bodies(match)


def wait_for(server: RecordingServer, what: str, check: Callable[[], object],
             deadline_s: float = 60) -> None:  # fmt: skip
    try:
        wait_until(lambda: bool(check()), deadline_s, what)
    except TimeoutError as exc:
        raise AssertionError(f"{exc}; the server got {server.requests()}") from None


def cli(service: Service, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([DEPLOYEX, *args, "--config", str(service.config_path)],
                          capture_output=True, text=True, timeout=60, check=False)  # fmt: skip


def deployex_logs(service: Service) -> str:
    logs = [p for p in service.catalog.log_path.rglob("*") if p.is_file()]
    return "\n".join(p.read_text(errors="replace") for p in logs) + service.output()


# -- delivery worker on its own --------------------------------------------------------------


def test_an_endpoint_answering_500_twice_then_200_gets_the_notice_on_the_third_try() -> None:
    with RecordingServer(statuses=(500, 500)) as server:
        turns: list = []
        worker = ChannelWorker(Channel(1, "webhook", server.url + "/hook"), turns.append,
                               backoff_s=(0.2, 0.4)).start()  # fmt: skip
        worker.put(Notice("crash_restart", {"sname": "a-1"}, time.time()))
        wait_for(server, "3 tries", lambda: len(server.requests()) == 3, 10)
        assert [r.status for r in server.requests()] == [500, 500, 200]
        assert all(r.body["event"] == "crash_restart" for r in server.requests())
        worker.close(1)
        assert worker.join(5)
        assert turns == []  # it was delivered: no failure to journal


def test_a_channel_that_keeps_failing_is_reported_once_not_per_notice() -> None:
    with RecordingServer(status=503) as server:
        turns: list = []
        worker = ChannelWorker(Channel(1, "webhook", server.url + "/hook"), turns.append,
                               backoff_s=(0.05, 0.05)).start()  # fmt: skip
        for i in range(3):
            worker.put(Notice("crash_restart", {"n": i}, time.time()))
        wait_for(server, "9 tries", lambda: len(server.requests()) == 9, 20)
        worker.close(1)
        assert worker.join(5)
        assert [(t.label, t.failing, t.detail) for t in turns] == [("#1 webhook", True, "HTTP 503")]


def test_a_full_queue_drops_the_oldest() -> None:
    with RecordingServer(hang_s=30) as hanging:
        worker = ChannelWorker(Channel(1, "webhook", hanging.url), lambda _: None,
                               queue_size=3).start()  # fmt: skip
        worker.put(Notice("test", {"n": 0}, time.time()))
        wait_for(hanging, "the first held", lambda: hanging.holding == 1, 10)
        for i in range(1, 6):
            worker.put(Notice("test", {"n": i}, time.time()))
        assert worker.queued == 3  # of the five behind the one in flight, the last three
        hanging.release()
        wait_for(hanging, "the rest", lambda: len(hanging.requests()) == 4, 20)
        assert [r.body["payload"]["n"] for r in hanging.requests()] == [0, 3, 4, 5]
        worker.close(0)


def test_a_replaced_channel_delivers_what_it_holds_within_the_drain_bound() -> None:
    with RecordingServer() as server, RecordingServer(hang_s=30) as hanging:
        worker = ChannelWorker(Channel(1, "webhook", server.url), lambda _: None).start()
        for i in range(5):
            worker.put(Notice("test", {"n": i}, time.time()))
        worker.close(10)
        worker.put(Notice("test", {"n": 99}, time.time()))  # after close: not taken
        assert worker.join(10)
        assert [r.body["payload"]["n"] for r in server.requests()] == [0, 1, 2, 3, 4]
        stuck = ChannelWorker(Channel(2, "webhook", hanging.url), lambda _: None).start()
        for i in range(3):
            stuck.put(Notice("test", {"n": i}, time.time()))
        wait_for(hanging, "held", lambda: hanging.holding)
        began = time.monotonic()
        stuck.close(0.5)
        assert stuck.join(15)  # the try in flight (10 s timeout), then it stops
        assert time.monotonic() - began < 12
        assert len(hanging.requests()) == 1


# -- a real DeployEx -------------------------------------------------------------------------


def test_notify_test_retries_and_failures_without_showing_a_secret(tmp_path: Path) -> None:
    with (
        RecordingServer() as good,
        RecordingServer(status=500) as failing,
        RecordingServer() as pd,
        RecordingServer(statuses=(500, 500)) as flaky,
    ):
        config = write_config(tmp_path, [], notifications=[
            {"adapter": "webhook", "url": good.url + "/hook"},
            {"adapter": "slack", "url": "secret:SLACK_URL"},
            {"adapter": "pagerduty", "url": pd.url + "/v2/enqueue",
             "options": {"routing_key": "secret:PD_KEY"}},
            {"adapter": "webhook", "url": flaky.url + "/flaky"},
        ])  # fmt: skip
        env = {**os.environ, "SLACK_URL": failing.url + SLACK_SECRET, "PD_KEY": PD_SECRET}
        with running_service(config, tmp_path, env=env) as service:
            # DeployEx's own start is a deployment of deployex (as upstream)
            for server in (good, pd):
                wait_for(server, "deployex deployed", lambda s=server: len(s.requests()) == 2)
            assert [b["event"] for b in good.bodies()] == ["deployment_started",
                                                           "deployment_complete"]  # fmt: skip
            assert good.bodies()[0]["payload"]["sname"] == "deployex"
            assert {b["routing_key"] for b in pd.bodies()} == {PD_SECRET}
            # 500, 500, then 200: delivered on the third try
            wait_for(flaky, "4 requests", lambda: len(flaky.requests()) == 4)
            assert [(r.body["event"], r.status) for r in flaky.requests()] == [
                ("deployment_started", 500), ("deployment_started", 500),
                ("deployment_started", 200), ("deployment_complete", 200),
            ]  # fmt: skip
            # always 500: two notices, 3 tries each, journaled once
            wait_for(failing, "6 tries", lambda: len(failing.requests()) == 6)
            client = service.client()
            wait_until(lambda: client.events(kind="notification_failed"), 10, "journaled")

            answer = cli(service, "notify", "test")
            assert answer.returncode == 1, answer.stderr
            lines = answer.stdout.splitlines()
            assert [line.split()[:3] for line in lines] == [
                ["#1", "webhook", "delivered"], ["#2", "slack", "failed"],
                ["#3", "pagerduty", "delivered"], ["#4", "webhook", "delivered"],
            ]  # fmt: skip
            assert lines[1].split()[3:] == ["HTTP", "500"]
            assert events(good, "test")[0]["payload"]["message"].startswith("test notification")
            one = cli(service, "notify", "test", "1")
            assert one.returncode == 0 and one.stdout.split()[:3] == ["#1", "webhook", "delivered"]
            unknown = cli(service, "notify", "test", "9")
            assert unknown.returncode == 1 and "no enabled notification channel 9" in unknown.stderr
            # both notices failed long ago (see above): one entry for the channel, not two
            failed = client.events(kind="notification_failed")
            assert len(failed) == 1 and "#2 slack" in failed[0].message
            assert "HTTP 500" in failed[0].message
            shown = answer.stdout + answer.stderr + one.stdout + unknown.stderr
            shown += "\n".join(e.message for e in client.events(limit=500))
            shown += deployex_logs(service)
            for secret in (SLACK_SECRET, PD_SECRET, failing.url):
                assert secret not in shown


def test_three_channels_get_a_rollout_and_a_crash_in_their_shapes(
    release_dist: ReleaseDist, tmp_path: Path
) -> None:
    with (
        RecordingServer() as hook,
        RecordingServer() as slack,
        RecordingServer() as pd,
        RecordingServer() as disabled,
    ):
        config = write_config(tmp_path, [app_entry(APP, replicas=1)], notifications=[
            {"adapter": "webhook", "url": hook.url + "/hook"},
            {"adapter": "slack", "url": "secret:SLACK_URL",
             "events": ["deployment_started", "application_ready", "crash_restart"]},
            {"adapter": "pagerduty", "url": pd.url + "/v2/enqueue",
             "options": {"routing_key": "secret:PD_KEY"}},
            {"adapter": "webhook", "url": disabled.url, "enabled": False},
        ])  # fmt: skip
        publish(config, release_dist, APP, "0.1.0")
        env = {**os.environ, "SLACK_URL": slack.url + SLACK_SECRET, "PD_KEY": PD_SECRET}
        with running_service(config, tmp_path, env=env) as service:
            replica = service.wait_app(APP, running(1), "1 replica running").replicas[0]
            sname, node = replica.sname, f"{replica.sname}@"
            for event in ("deployment_started", "application_ready", "deployment_complete"):
                wait_for(hook, event, lambda e=event: events(hook, e, sname))
            started = events(hook, "deployment_started", sname)[0]
            assert set(started) == {"event", "timestamp", "payload"}
            assert started["payload"]["version"] == "0.1.0"
            assert started["payload"]["node"].startswith(node)
            complete = events(hook, "deployment_complete", sname)[0]["payload"]
            assert (complete["status"], complete["version"]) == ("ok", "0.1.0")

            os.kill(replica.pid, signal.SIGKILL)
            wait_for(hook, "crash_restart", lambda: events(hook, "crash_restart", sname))
            assert events(hook, "crash_restart", sname)[0]["payload"] == {
                "node": started["payload"]["node"],
                "sname": sname,
                "name": APP,
                "language": "gleam",
                "crash_restart_count": 1,
            }

            def replica_texts() -> list[str]:
                return [b["text"] for b in slack.bodies() if sname in b["text"]]

            wait_for(slack, "3 Slack messages", lambda: len(replica_texts()) == 3)
            assert [t.split()[:2] for t in replica_texts()] == [
                [":white_check_mark:", "*deployment_started*"],
                [":white_check_mark:", "*application_ready*"],
                [":x:", "*crash_restart*"],
            ]  # fmt: skip
            assert {(b["username"], b["icon_emoji"]) for b in slack.bodies()} == {
                ("DeployEx", ":robot_face:")
            }  # fmt: skip
            # events: chosen: no deployment_complete on this channel
            assert not any("deployment_complete" in b["text"] for b in slack.bodies())
            assert {r.path for r in slack.requests()} == {SLACK_SECRET}

            def crash_page() -> list[dict]:
                return [b for b in pd.bodies()
                        if b["payload"]["custom_details"].get("sname") == sname
                        and b["payload"]["class"] == "crash_restart"]  # fmt: skip

            wait_for(pd, "the crash page", crash_page)
            page = crash_page()[0]
            assert page["routing_key"] == PD_SECRET and page["event_action"] == "trigger"
            assert page["payload"]["severity"] == "error"
            assert page["payload"]["source"] == started["payload"]["node"]
            assert page["payload"]["custom_details"]["crash_restart_count"] == 1
            assert disabled.requests() == []  # enabled: false gets nothing
            shown = deployex_logs(service) + cli(service, "status").stdout
            assert SLACK_SECRET not in shown and PD_SECRET not in shown


def test_a_crash_loop_sends_one_crash_restart_per_interval_with_the_count(
    release_dist: ReleaseDist, tmp_path: Path
) -> None:
    interval_s = 20
    with RecordingServer() as hook:
        config = write_config(tmp_path, [app_entry(APP, replicas=1)],
                              notification_crash_interval_ms=interval_s * 1000,
                              notifications=[{"adapter": "webhook", "url": hook.url,
                                              "events": ["crash_restart"]}])  # fmt: skip
        publish(config, release_dist, APP, "0.1.0")
        with running_service(config, tmp_path) as service:
            replica = service.wait_app(APP, running(1), "1 replica running").replicas[0]
            killed_at = time.time()
            for crashes in (1, 2, 3):
                os.kill(replica.pid, signal.SIGKILL)
                replica = service.wait_app(
                    APP, lambda a, c=crashes: running(1)(a) and a.replicas[0].crash_restarts == c,
                    f"restarted after crash {crashes}").replicas[0]  # fmt: skip
            three_kills_s = time.time() - killed_at
            assert three_kills_s < interval_s, "the machine is too slow for this test's window"
            # within the window: the first crash only
            assert [b["payload"]["crash_restart_count"] for b in hook.bodies()] == [1]

            def counted() -> int:
                return sum(1 + b["payload"].get("suppressed", 0) for b in hook.bodies())

            wait_for(hook, "3 crashes counted", lambda: counted() == 3, interval_s + 30)
            sent = hook.requests()
            assert len(sent) == 2
            assert sent[1].body["payload"]["crash_restart_count"] == 3
            assert sent[1].body["payload"]["suppressed"] == 1  # crash 2, folded into crash 3's
            assert sent[1].at - sent[0].at >= interval_s - 1


def test_a_hanging_endpoint_delays_neither_the_other_channels_nor_a_rollout(
    release_dist: ReleaseDist, tmp_path: Path
) -> None:
    with (
        RecordingServer(hang_s=30) as hanging,
        RecordingServer() as hook,
        RecordingServer() as pd,
    ):
        config = write_config(tmp_path, [app_entry(APP, replicas=2)], notifications=[
            {"adapter": "webhook", "url": hanging.url},
            {"adapter": "webhook", "url": hook.url},
            {"adapter": "pagerduty", "url": pd.url, "options": {"routing_key": "k"}},
        ])  # fmt: skip
        publish(config, release_dist, APP, "0.1.0")
        with running_service(config, tmp_path) as service:
            service.wait_app(APP, running(2), "2 replicas of 0.1.0 running")
            wait_for(hanging, "a request held", lambda: hanging.holding)
            publish(config, release_dist, APP, "0.2.0")
            began = time.monotonic()
            service.wait_app(APP, running(2, "0.2.0"), "2 replicas of 0.2.0", deadline_s=60)
            rollout_s = time.monotonic() - began
            assert hanging.holding, "the hang must last the whole rollout"
            wait_for(hook, "0.2.0 complete", lambda: [
                b for b in events(hook, "deployment_complete")
                if b["payload"].get("version") == "0.2.0"])  # fmt: skip
            still_hanging = len(hanging.requests())
        late = [(event_of(r.body), round(r.at - stamp(r.body), 2))
                for r in hook.requests() + pd.requests()]  # fmt: skip
        assert len(late) > 10 and all(delay < 1.0 for _, delay in late), late
        # 30 s per try, 3 tries: the hanging channel got to its first notice or two meanwhile
        assert still_hanging <= 3, f"rollout took {rollout_s:.1f} s"


def event_of(body: dict) -> str:
    """The event of a webhook's body, or of a PagerDuty event (its class)."""
    return body.get("event") or body["payload"]["class"]


def stamp(body: dict) -> float:
    """When the event happened, from a webhook's body or a PagerDuty event."""
    from datetime import datetime

    iso = body.get("timestamp") or body["payload"]["timestamp"]
    return datetime.fromisoformat(iso).timestamp()


def test_an_applied_change_of_the_channels_moves_the_notifications_to_the_new_ones(
    release_dist: ReleaseDist, tmp_path: Path
) -> None:
    """The config watcher's apply reaches the Notifier: the old channel hears no more, the new
    one hears the next crash (notifications are an `Immediate` key, docs/config-watcher.md)."""
    with RecordingServer() as old, RecordingServer() as new:
        config = write_config(tmp_path, [app_entry(APP, replicas=1)],
                              notification_crash_interval_ms=1000,
                              notifications=[{"adapter": "webhook", "url": old.url,
                                              "events": ["crash_restart"]}])  # fmt: skip
        publish(config, release_dist, APP, "0.1.0")
        with running_service(config, tmp_path) as service:
            replica = service.wait_app(APP, running(1), "1 replica running").replicas[0]
            os.kill(replica.pid, signal.SIGKILL)
            wait_for(old, "the first crash on the old channel",
                     lambda: events(old, "crash_restart"))  # fmt: skip
            document = yaml.safe_load(config.read_text())
            document["notifications"] = [{"adapter": "webhook", "url": new.url,
                                          "events": ["crash_restart"]}]  # fmt: skip
            config.write_text(yaml.safe_dump(document))
            with service.client() as dx:
                assert dx.reload_config().state == "pending"
                dx.apply_config("test")
            replica = service.wait_app(APP, lambda a: running(1)(a) and a.replicas[0].pid
                                       != replica.pid, "restarted").replicas[0]  # fmt: skip
            os.kill(replica.pid, signal.SIGKILL)
            wait_for(new, "the second crash on the new channel",
                     lambda: events(new, "crash_restart"))  # fmt: skip
            assert events(new, "crash_restart")[0]["payload"]["sname"] == replica.sname
            assert len(events(old, "crash_restart")) == 1  # the old channel heard no more
