"""The config watcher with a real `deployex run` and Gleam (and Erlang) replicas: an edit of the
YAML is pending until approved (CLI, client, dashboard page), then applied while running; an
invalid file is refused; apps are added and removed only on approval; SIGHUP reads at once."""

from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from playwright.sync_api import expect

from deployex_actors.core.status import AppSnapshot
from deployex_actors.errors import DeployexError
from tests.beam_fixtures import ReleaseDist, wait_until
from tests.browser import dashboard_secrets, log_in, running_dashboard
from tests.deployex_service import (
    DEPLOYEX,
    Service,
    app_entry,
    free_port_range,
    process_alive,
    publish,
    running_service,
    wait_banner,
    wait_gone,
    write_config,
)

pytestmark = pytest.mark.slow
APP = "mygleamapp"
OTHER = "myerlangapp"
FAST_READS = {"config_watch_interval_ms": 1000}


def running(count: int, version: str = "0.1.0"):
    def check(app: AppSnapshot) -> bool:
        up = [r for r in app.replicas if r.status == "running" and r.version == version]
        return len(up) == count == len(app.replicas) and app.replicas_wanted == count

    return check


def edit(config_path: Path, change: Any) -> None:
    """Change the YAML document in place, as an operator's editor would."""
    document = yaml.safe_load(config_path.read_text())
    change(document)
    config_path.write_text(yaml.safe_dump(document))


def set_replicas(count: int, app: str = APP):
    def change(document: dict) -> None:
        next(a for a in document["applications"] if a["name"] == app)["replicas"] = count

    return change


def cli(service: Service, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [DEPLOYEX, "config", *args, "--config", str(service.config_path)],
        capture_output=True,
        text=True,
        timeout=60,
    )


def wait_pending(service: Service, state: str = "pending", deadline_s: float = 30) -> Any:
    found: list = []

    def check() -> bool:
        found[:] = [service.client().pending_config()]
        return found[0].state == state

    wait_until(check, deadline_s, f"the config watcher to show {state}")
    return found[0]


def pids(app: AppSnapshot) -> dict[str, int]:
    return {r.sname: r.pid for r in app.replicas}


def journal(service: Service, kind: str) -> list:
    return service.client().events(kind=kind, limit=100)


def with_ports(replicas: int, room: int) -> dict:
    """An app entry whose port slots leave room for `room` replicas (+ the spare)."""
    return app_entry(
        APP, replicas, replica_ports=[{"key": "PORT", "base": free_port_range(room + 1)}]
    )


def test_replicas_3_to_4_is_pending_until_applied_then_4_answer_and_back_to_3(
    release_dist: ReleaseDist, tmp_path: Path
) -> None:
    config = write_config(tmp_path, [with_ports(3, 4)], **FAST_READS)
    publish(config, release_dist, APP, "0.1.0")
    with running_service(config, tmp_path) as service:
        service.wait_app(APP, running(3), "3 replicas running")
        assert cli(service, "pending").returncode == 0  # nothing pending at start
        edit(config, set_replicas(4))
        pending = wait_pending(service)
        assert [(c.key, c.old, c.new, c.badge) for c in pending.diff.changes] == [
            (f"applications.{APP}.replicas", "3", "4", "Immediate")
        ]
        shown = cli(service, "pending")
        assert shown.returncode == 2, shown
        line = f"applications.{APP}.replicas: 3 -> 4"
        assert any("[Immediate]" in x and line in x for x in shown.stdout.splitlines()), shown
        # pending is not applied: still three, three wanted
        app = service.app(APP)
        assert (app.replicas_wanted, len(app.replicas)) == (3, 3)
        assert len(journal(service, "config_changed")) == 1

        applied = cli(service, "apply")
        assert applied.returncode == 0, applied
        four = service.wait_app(APP, running(4), "4 replicas running after the apply")
        for replica in four.replicas:
            wait_banner(replica.ports["PORT"], f"{APP} 0.1.0\n")
        entries = journal(service, "config_change_applied")
        assert [e.actor for e in entries] == ["cli"]
        assert service.client().pending_config().state == "none"
        assert cli(service, "apply").returncode == 1  # nothing left to apply

        edit(config, set_replicas(3))
        wait_pending(service)
        service.client().apply_config(actor="tester")
        three = service.wait_app(APP, running(3), "3 replicas after 4 -> 3")
        gone = pids(four).items() - pids(three).items()
        assert len(gone) == 1
        wait_gone(next(iter(gone))[1])


def test_an_invalid_edit_is_refused_with_its_key_path_and_nothing_changes(
    release_dist: ReleaseDist, tmp_path: Path
) -> None:
    config = write_config(tmp_path, [app_entry(APP, 2)], **FAST_READS)
    publish(config, release_dist, APP, "0.1.0")
    good = config.read_text()
    with running_service(config, tmp_path) as service:
        before = service.wait_app(APP, running(2), "2 replicas running")
        dx = service.client()  # attached now: the file it attaches with is about to break
        try:
            edit(config, set_replicas("many"))
            wait_until(lambda: dx.pending_config().state == "refused", 30, "the file refused")
            refused = dx.pending_config()
            problem = "applications[0].replicas: 'many' is not an integer"
            assert any(problem in e for e in refused.errors), refused
            shown = cli(service, "pending")
            assert shown.returncode == 3 and problem in shown.stdout, shown
            with pytest.raises(DeployexError, match="refused"):
                dx.apply_config(actor="tester")
            # more periodic reads: journaled once, the replicas untouched
            wait_until(lambda: dx.pending_config().read_at > refused.read_at + 2, 20,
                       "two more reads")  # fmt: skip
            entries = dx.events(kind="config_change_refused")
            assert len(entries) == 1 and problem in entries[0].message
            after = dx.status().app(APP)
            assert after.replicas_wanted == 2
            assert pids(after) == pids(before)
        finally:
            config.write_text(good)  # the teardown reads it too


def test_an_app_added_is_deployed_and_one_removed_is_stopped_only_after_the_apply(
    release_dist: ReleaseDist, tmp_path: Path
) -> None:
    config = write_config(tmp_path, [app_entry(APP, 1)], **FAST_READS)
    publish(config, release_dist, APP, "0.1.0")
    publish(config, release_dist, OTHER, "0.1.0")
    with running_service(config, tmp_path) as service:
        gleam = service.wait_app(APP, running(1), "the gleam replica running")
        added = app_entry(OTHER, 1)
        edit(config, lambda d: d["applications"].append(added))
        pending = wait_pending(service)
        assert pending.diff.added_apps == (OTHER,)
        assert service.status().app(OTHER) is None  # not before the apply
        assert not any(service.catalog.app_service_dir(OTHER).glob("*.pid"))

        service.client().apply_config(actor="tester")
        other = service.wait_app(OTHER, running(1), "the added app deployed", deadline_s=90)
        wait_banner(other.replicas[0].ports["PORT"], f"{OTHER} 0.1.0\n")

        edit(config, lambda d: d["applications"].pop(0))  # the gleam app goes
        pending = wait_pending(service)
        assert pending.diff.removed_apps == (APP,)
        victim = gleam.replicas[0]
        assert process_alive(victim.pid) and service.app(APP).replicas[0].pid == victim.pid

        service.client().apply_config(actor="tester")
        wait_gone(victim.pid, 30)
        wait_until(lambda: service.status().app(APP) is None, 20, "the removed app gone")
        assert service.app(OTHER).replicas[0].pid == other.replicas[0].pid
        assert journal(service, "app_removed")


def test_sighup_reads_the_file_at_once_and_discard_drops_the_change(
    release_dist: ReleaseDist, tmp_path: Path
) -> None:
    # a period far longer than the test: only the SIGHUP can make it read
    config = write_config(tmp_path, [app_entry(APP, 1)], config_watch_interval_ms=600_000)
    publish(config, release_dist, APP, "0.1.0")
    with running_service(config, tmp_path) as service:
        before = service.wait_app(APP, running(1), "the replica running")
        first = service.client().pending_config()
        assert first.state == "none" and first.read_at > 0  # the read at start
        edit(config, set_replicas(2))
        os.kill(service.proc.pid, signal.SIGHUP)
        pending = wait_pending(service, deadline_s=15)
        assert pending.diff.fields == (f"applications.{APP}.replicas",)
        assert "SIGHUP: configuration file read again: pending" in service.output()

        discarded = cli(service, "discard")
        assert discarded.returncode == 0, discarded
        assert service.client().pending_config().state == "none"
        assert [e.actor for e in journal(service, "config_change_discarded")] == ["cli"]
        app = service.app(APP)
        assert app.replicas_wanted == 1
        assert [r.pid for r in app.replicas] == [r.pid for r in before.replicas]
        # a SIGHUP offers the same content again (the way back from a discard by mistake)
        os.kill(service.proc.pid, signal.SIGHUP)
        wait_pending(service, deadline_s=15)


def test_the_configuration_page_shows_the_change_and_applies_it_as_the_user(
    release_dist: ReleaseDist, tmp_path: Path, page: Any
) -> None:
    secrets = dashboard_secrets()
    with pytest.MonkeyPatch.context() as env:
        for key, value in secrets.items():
            env.setenv(key, value)
        config = write_config(tmp_path, [with_ports(1, 2)], dashboard_enabled=True, **FAST_READS)
        publish(config, release_dist, APP, "0.1.0")
        with (
            running_service(config, tmp_path) as service,
            running_dashboard(config, tmp_path, secrets) as dashboard,
        ):
            service.wait_app(APP, running(1), "the replica running")
            log_in(page, dashboard, path="/config")
            page.wait_for_url("**/config*")
            expect(page.locator(".cfg")).to_contain_text("No pending change")
            expect(page.locator(".dx-config-apply")).to_be_hidden()

            good = config.read_text()
            edit(config, set_replicas("two"))
            try:
                expect(page.locator(".cfg .errors")).to_contain_text("applications[0].replicas")
            finally:
                config.write_text(good)
            edit(config, set_replicas(2))
            row = page.locator(f".dx-config-change[data-key='applications.{APP}.replicas']")
            expect(row).to_contain_text("Immediate")
            expect(row.locator("td.value").nth(0)).to_have_text("1")
            expect(row.locator("td.value").nth(1)).to_have_text("2")
            page.get_by_role("button", name="Apply").click()
            expect(page.locator(".dx-confirm")).to_contain_text("Apply")
            assert service.app(APP).replicas_wanted == 1  # not before the confirmation
            page.get_by_role("button", name="Yes, apply").click()
            service.wait_app(APP, running(2), "2 replicas after the apply from the page")
            expect(page.locator(".cfg")).to_contain_text("No pending change")
            entries = journal(service, "config_change_applied")
            assert [e.actor for e in entries] == ["admin@127.0.0.1"]
