"""The dashboard in a real browser (Debian's Chromium) against a real `deployex run`, whose Web
actor starts the dashboard, with three replicas of a fixture release.

The module shares one service and one dashboard; each test waits for the state it needs. The
test that pins a version changes the replicas, so it runs last.
"""

from __future__ import annotations

import contextlib
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect

from deployex_actors.core.status import AppSnapshot
from tests.beam_fixtures import ReleaseDist, wait_until
from tests.browser import (
    UI_DEADLINE_MS,
    Dashboard,
    dashboard_secrets,
    get,
    health_answers,
    log_in,
    running_dashboard,
    websocket_refused,
)
from tests.deployex_service import Service, app_entry, publish, running_service, write_config

pytestmark = pytest.mark.slow
APP = "mygleamapp"
TOKEN = "metrics-token-for-tests"
PAGES = (
    "/applications",
    "/versions",
    "/logs",
    "/history",
    "/plots",
    "/journal",
    "/config",
    "/upgrade",
)
MONITORING = [{"type": kind} for kind in ("process", "port", "atom")]


def serving(version: str, count: int = 3):
    def check(app: AppSnapshot) -> bool:
        ready = [r for r in app.replicas if r.status == "running" and r.version == version]
        return len(ready) == count == len(app.replicas) and all(r.otp == "connected" for r in ready)

    return check


@dataclass
class Demo:
    service: Service
    dashboard: Dashboard

    @property
    def url(self) -> str:
        return self.dashboard.url


@pytest.fixture(scope="module")
def demo(release_dist: ReleaseDist, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Demo]:
    tmp = tmp_path_factory.mktemp("dashboard")
    secrets = dashboard_secrets()
    with pytest.MonkeyPatch.context() as env:
        for key, value in {**secrets, "DEPLOYEX_METRICS_TOKEN": TOKEN}.items():
            env.setenv(key, value)  # `deployex run` hands them to its dashboard
        config = write_config(tmp, [app_entry(APP, monitoring=MONITORING)], dashboard_enabled=True)
        publish(config, release_dist, APP, "0.1.0")
        with (
            running_service(config, tmp) as service,
            running_dashboard(config, tmp, secrets) as dashboard,
        ):
            assert dashboard.started_by_service
            service.wait_app(APP, serving("0.1.0"), "three 0.1.0 replicas")
            yield Demo(service, dashboard)


def logged_in(page: Any, demo: Demo, path: str = "/applications") -> Any:
    log_in(page, demo.dashboard, path=path)
    page.wait_for_url(f"**{path}*")
    return page


def card(page: Any, sname: str) -> Any:
    return page.locator(f".replica-{sname}")


# -- login ---------------------------------------------------------------------------------------


def test_the_login_page_rejects_a_wrong_password_and_accepts_the_right_one(page, demo) -> None:
    log_in(page, demo.dashboard, password="not the password")
    expect(page.get_by_role("alert")).to_have_text("Invalid username or password.")
    assert "/login" in page.url
    log_in(page, demo.dashboard, password="x" * 100)  # over bcrypt's 72 bytes
    expect(page.get_by_role("alert")).to_have_text("Invalid username or password.")
    log_in(page, demo.dashboard)
    page.wait_for_url("**/applications")
    expect(page.locator(".dx-user")).to_contain_text("admin@127.0.0.1")

    def journaled() -> bool:
        kinds = [e.kind for e in demo.service.client().events(kind=None, limit=50)]
        return "login_failed" in kinds and "login" in kinds

    wait_until(journaled, 10, "logins in the journal")


def test_unauthenticated_requests_to_every_route_are_refused(demo) -> None:
    assert get(f"{demo.url}/")[1]["Location"] == "/applications"
    for path in PAGES:
        for suffix in ("", "/metadata"):
            status, headers, _body = get(f"{demo.url}{path}{suffix}")
            assert status == 302 and "login" in headers["Location"], (path, suffix, status)
        embed = f"{demo.url}{path}/autoload.js?bokeh-autoload-element=x"
        assert get(embed)[0] == 404
        assert websocket_refused(demo.url, f"{path}/ws", None) == 403
    forged = "dx_session=2|1:0|10:1700000000|10:dx_session|8:Zm9yZ2Vk|" + "0" * 64
    assert get(f"{demo.url}/applications", {"Cookie": forged})[0] == 302
    assert websocket_refused(demo.url, "/applications/ws", forged) == 403


def test_health_answers_without_logging_in(demo) -> None:
    status, headers, body = get(f"{demo.url}/health")
    assert status == 200 and headers["Content-Type"].startswith("application/json")
    assert '"status": "ok"' in body and '"timestamp"' in body


def test_metrics_need_the_bearer_token_and_render_the_exposition(demo) -> None:
    assert get(f"{demo.url}/metrics")[0] == 401
    assert get(f"{demo.url}/metrics", {"Authorization": "Bearer wrong"})[0] == 401
    status, headers, text = get(f"{demo.url}/metrics", {"Authorization": f"Bearer {TOKEN}"})
    assert status == 200 and "version=0.0.4" in headers["Content-Type"]
    assert "\ndeployex_up 1\n" in text
    assert "# TYPE deployex_replica_forced_restarts_total counter" in text
    assert text.count("deployex_replica_up{") == 3
    assert f'deployex_app_replicas_wanted{{app="{APP}"}} 3' in text


# -- applications ----------------------------------------------------------------------------------


def test_the_applications_page_shows_three_running_replicas_with_their_versions(page, demo) -> None:
    app = demo.service.wait_app(APP, serving("0.1.0"), "three 0.1.0 replicas")
    logged_in(page, demo)
    expect(page.locator(".replica-card")).to_have_count(3)
    for replica in app.replicas:
        expect(card(page, replica.sname).locator("[data-field=status]")).to_have_text("Running")
        expect(card(page, replica.sname).locator("[data-field=version]")).to_have_text("0.1.0")
        expect(card(page, replica.sname).locator("[data-field=pid]")).to_have_text(str(replica.pid))
    expect(page.locator(".deployex-card [data-field=otp]")).to_have_text(
        "3 of 3 replicas connected"
    )


def test_restart_from_a_card_gives_the_replica_a_new_pid_and_counts_it(page, demo) -> None:
    app = demo.service.wait_app(APP, serving("0.1.0"), "three 0.1.0 replicas")
    victim = app.replicas[0]
    logged_in(page, demo)
    expect(card(page, victim.sname).locator("[data-field=pid]")).to_have_text(str(victim.pid))
    card(page, victim.sname).get_by_role("button", name="Restart").click()
    expect(page.locator(".dx-confirm")).to_contain_text(victim.sname)
    page.get_by_role("button", name="Yes, restart").click()
    after = demo.service.wait_app(
        APP,
        lambda a: any(r.sname == victim.sname and r.pid not in (None, victim.pid)
                      and r.status == "running" for r in a.replicas),
        "the replica running again with a new pid",
    )  # fmt: skip
    again = next(r for r in after.replicas if r.sname == victim.sname)
    assert again.forced_restarts == victim.forced_restarts + 1
    fields = card(page, victim.sname)
    expect(fields.locator("[data-field=forced_restarts]")).to_have_text(str(again.forced_restarts))
    expect(fields.locator("[data-field=pid]")).to_have_text(str(again.pid))
    restarts = demo.service.client().events(app=APP, kind=None, limit=50)
    assert any(e.actor == "admin@127.0.0.1" for e in restarts), restarts[:5]


def test_a_restart_is_not_done_until_confirmed(page, demo) -> None:
    app = demo.service.wait_app(APP, serving("0.1.0"), "three 0.1.0 replicas")
    replica, witness = app.replicas[-1], app.replicas[-2]
    logged_in(page, demo)
    card(page, replica.sname).get_by_role("button", name="Restart").click()
    page.get_by_role("button", name="Cancel").click()
    expect(page.locator(".dx-confirm")).to_be_hidden()
    # A confirmed restart of another replica takes the same way: once it is journaled, a
    # restart wrongly sent for the cancelled one would have been journaled before it.
    card(page, witness.sname).get_by_role("button", name="Restart").click()
    page.get_by_role("button", name="Yes, restart").click()
    dx = demo.service.client()

    def forced(sname: str) -> list:
        return [e for e in dx.events(app=APP, kind="forced_restart", limit=100) if e.sname == sname]

    wait_until(lambda: forced(witness.sname), 20, "the confirmed restart journaled")
    assert forced(replica.sname) == []
    current = next(r for r in demo.service.app(APP).replicas if r.sname == replica.sname)
    assert (current.pid, current.forced_restarts) == (replica.pid, replica.forced_restarts)


# -- logs, plots, journal, versions ----------------------------------------------------------------


def test_the_logs_page_follows_a_line_written_into_a_replica_log(page, demo) -> None:
    app = demo.service.wait_app(APP, serving("0.1.0"), "three 0.1.0 replicas")
    sname = app.replicas[0].sname
    logged_in(page, demo, f"/logs?app={APP}&sname={sname}&stream=stdout")
    view = page.locator(".dx-log-view")
    expect(page.locator(".dx-sources")).to_contain_text(f"{sname} stdout")
    marker = f"dashboard-test-{uuid.uuid4().hex[:8]}"
    with demo.service.catalog.stdout_log(APP, sname).open("a") as log:
        log.write(f"12:00:00.000 [error] {marker} went wrong\n")
    line = view.locator(".log-line", has_text=marker)
    expect(line).to_be_visible()
    expect(line).to_have_attribute("data-level", "error")
    search = page.locator(".dx-search input")
    search.fill("no-such-text-anywhere")
    expect(line).to_have_count(0)
    search.fill(marker.upper())
    expect(line).to_have_count(1)


def test_the_logs_page_merges_the_replicas_of_an_app(page, demo) -> None:
    app = demo.service.wait_app(APP, serving("0.1.0"), "three 0.1.0 replicas")
    logged_in(page, demo, f"/logs?app={APP}")
    for replica in app.replicas:
        expect(page.locator(".dx-sources")).to_contain_text(f"{replica.sname} stdout")
    markers = {}
    for replica in app.replicas:
        markers[replica.sname] = f"merged-{uuid.uuid4().hex[:8]}"
        with demo.service.catalog.stdout_log(APP, replica.sname).open("a") as log:
            log.write(f"{markers[replica.sname]}\n")
    for sname, marker in markers.items():
        expect(page.locator(".log-line", has_text=marker)).to_contain_text(sname)


def data_length(page: Any, name: str) -> int:
    return page.evaluate(
        """name => {
            for (const doc of Bokeh.documents) {
                const model = doc.get_model_by_name(name);
                if (model) return model.data.at.length;
            }
            return -1;
        }""",
        name,
    )


def test_plots_receive_points_without_reloading(page, demo) -> None:
    app = demo.service.wait_app(APP, serving("0.1.0"), "three 0.1.0 replicas")
    logged_in(page, demo, "/plots")
    page.wait_for_function("() => window.Bokeh && Bokeh.documents.length > 0")
    targets = ["cds-host", *(f"cds-usage-{r.sname}" for r in app.replicas)]
    first = {}
    for name in targets:
        page.wait_for_function(
            """name => Bokeh.documents.some(d => {
                const m = d.get_model_by_name(name); return m && m.data.at.length > 0; })""",
            arg=name,
        )
        first[name] = data_length(page, name)
    for name in targets:  # and they keep growing, streamed into the same page
        page.wait_for_function(
            """([name, n]) => Bokeh.documents.some(d => {
                const m = d.get_model_by_name(name); return m && m.data.at.length > n; })""",
            arg=[name, first[name]],
        )


def test_the_journal_page_filters_by_app_and_kind(page, demo) -> None:
    logged_in(page, demo, "/journal")
    table = page.locator(".dx-journal")
    expect(table).to_contain_text("deploy")
    page.locator(".dx-journal-kind select").select_option("ready")
    expect(table.locator(".tabulator-row").first).to_contain_text("ready")
    rows = table.locator(".tabulator-row")
    expect(rows.filter(has_not_text="ready")).to_have_count(0)
    page.locator(".dx-journal-app select").select_option(APP)
    expect(rows.first).to_contain_text(APP)


def test_the_versions_page_lists_the_history_of_a_replica(page, demo) -> None:
    app = demo.service.wait_app(APP, serving("0.1.0"), "three 0.1.0 replicas")
    sname = app.replicas[0].sname
    logged_in(page, demo, f"/versions?app={APP}&sname={sname}")
    history = page.locator(".dx-history .tabulator-row")
    expect(history.first).to_contain_text(sname)
    expect(history.filter(has_not_text=sname)).to_have_count(0)
    expect(history.first).to_contain_text("0.1.0")


# -- sessions ------------------------------------------------------------------------------------


def test_after_logout_the_old_cookie_gets_no_page_and_no_websocket(browser, demo) -> None:
    context = browser.new_context()
    try:
        page = logged_in(context.new_page(), demo)
        expect(page.locator(".replica-card").first).to_be_visible()
        session = next(c for c in context.cookies() if c["name"] == "dx_session")
        assert session["httpOnly"] and session["sameSite"] == "Strict"
        cookie = f"dx_session={session['value']}"
        assert get(f"{demo.url}/applications", {"Cookie": cookie})[0] == 200
        assert websocket_refused(demo.url, "/applications/ws", cookie) is None
        context.new_page().goto(f"{demo.url}/logout")
        page.wait_for_url("**/login*")  # the open page leaves too
        status, headers, _body = get(f"{demo.url}/applications", {"Cookie": cookie})
        assert status == 302 and "login" in headers["Location"]
        assert websocket_refused(demo.url, "/applications/ws", cookie) == 403
    finally:
        context.close()


# -- last: changes the replicas ------------------------------------------------------------------


def test_pinning_010_moves_the_replicas_back_to_it(page, demo, release_dist) -> None:
    publish(demo.service.config_path, release_dist, APP, "0.2.0")
    demo.service.wait_app(APP, serving("0.2.0"), "three 0.2.0 replicas", deadline_s=120)
    logged_in(page, demo)
    expect(page.locator(".dx-mode select option", has_text="0.1.0")).to_have_count(1)
    page.locator(".dx-mode select").select_option("0.1.0")
    page.locator(".dx-apply-mode").get_by_role("button").click()
    expect(page.locator(".dx-confirm")).to_contain_text("0.1.0")
    page.get_by_role("button", name="Yes, apply").click()
    pinned = demo.service.wait_app(APP, serving("0.1.0"), "pinned back to 0.1.0", deadline_s=120)
    assert (pinned.mode, pinned.pinned_version) == ("manual", "0.1.0")
    expect(page.locator(f".app-{APP} [data-field=mode]")).to_have_text(
        "Manually locked to version 0.1.0"
    )
    for replica in pinned.replicas:
        expect(card(page, replica.sname).locator("[data-field=version]")).to_have_text("0.1.0")


# -- DeployEx away ---------------------------------------------------------------------------------


def test_the_dashboard_keeps_serving_while_deployex_is_down_and_recovers(
    browser, release_dist: ReleaseDist, tmp_path: Path
) -> None:
    secrets = dashboard_secrets()
    config = write_config(tmp_path, [app_entry(APP, replicas=1)])  # the dashboard runs on its own
    publish(config, release_dist, APP, "0.1.0")
    with running_dashboard(config, tmp_path, secrets) as dashboard:
        assert not dashboard.started_by_service
        context = browser.new_context()
        try:
            page = context.new_page()
            page.set_default_timeout(60_000)
            log_in(page, dashboard)
            page.wait_for_url("**/applications")
            expect(page.get_by_text("DeployEx not answering")).to_be_visible()
            with pytest.MonkeyPatch.context() as env:
                for key, value in secrets.items():
                    env.setenv(key, value)
                service = Service(config, tmp_path)
                with contextlib.ExitStack() as stack:
                    stack.callback(service.kill_everything)
                    service.start()
                    expect(page.get_by_text("DeployEx not answering")).to_be_hidden(timeout=30_000)
                    expect(page.locator(".replica-card")).to_have_count(1)
                    started = time.monotonic()
                    service.kill_everything()
                    # within the 30 s an operator would wait (not Playwright's default 5 s)
                    expect(page.get_by_text("DeployEx not answering")).to_be_visible(
                        timeout=max(30 - (time.monotonic() - started), 1) * 1000
                    )
        finally:
            context.close()


def test_ghosts_are_shown_and_removed_and_a_full_restart_replaces_the_replicas(
    browser, release_dist: ReleaseDist, tmp_path: Path
) -> None:
    secrets = dashboard_secrets()
    entry = app_entry(APP, replicas=2, ready_after_ms=3000, deploy_rollback_timeout_ms=6000)
    with pytest.MonkeyPatch.context() as env:
        for key, value in secrets.items():
            env.setenv(key, value)
        config = write_config(tmp_path, [entry], dashboard_enabled=True)
        publish(config, release_dist, APP, "0.2.0")
        with (
            running_service(config, tmp_path) as service,
            running_dashboard(config, tmp_path, secrets) as dashboard,
        ):
            service.wait_app(APP, serving("0.2.0", 2), "two 0.2.0 replicas", 60)
            publish(config, release_dist, APP, "0.3.0")  # halts after boot: ghosted
            service.wait_app(APP, lambda a: "0.3.0" in a.ghosts, "0.3.0 ghosted", 90)
            before = service.wait_app(APP, serving("0.2.0", 2), "back to two 0.2.0 replicas")
            publish(config, release_dist, APP, "0.2.0")  # so that no retry follows the removal
            service.wait_app(APP, lambda a: a.desired_version == "0.2.0", "0.2.0 desired again")
            context = browser.new_context(viewport={"width": 1400, "height": 1200})
            try:
                page = context.new_page()
                page.set_default_timeout(UI_DEADLINE_MS)
                log_in(page, dashboard)
                page.wait_for_url("**/applications")
                expect(page.locator(f".app-{APP} [data-field=ghosted]")).to_contain_text("0.3.0")
                page.goto(f"{dashboard.url}/versions?app={APP}")
                ghost = page.locator(".dx-ghosts .tabulator-row", has_text="0.3.0")
                ghost.locator(".tabulator-cell", has_text="Remove").click()
                page.get_by_role("button", name="Yes, remove").click()
                expect(ghost).to_have_count(0)
                assert service.client().ghosts(APP) == []
                page.goto(f"{dashboard.url}/applications")
                page.locator(".dx-full-restart").get_by_role("button").click()
                page.get_by_role("button", name="Yes, restart all").click()
                old = {r.sname for r in before.replicas}
                after = service.wait_app(
                    APP,
                    lambda a: (
                        len(a.replicas) == 2
                        and not old & {r.sname for r in a.replicas}
                        and serving("0.2.0", 2)(a)
                    ),
                    "two fresh replicas",
                    90,
                )
                for replica in after.replicas:
                    expect(card(page, replica.sname).locator("[data-field=status]")).to_have_text(
                        "Running"
                    )
                expect(page.locator(".replica-card")).to_have_count(2)
            finally:
                context.close()


def test_restart_deployex_from_the_dashboard_keeps_the_replicas(
    browser, release_dist: ReleaseDist, tmp_path: Path
) -> None:
    secrets = dashboard_secrets()
    with pytest.MonkeyPatch.context() as env:
        for key, value in secrets.items():
            env.setenv(key, value)
        config = write_config(tmp_path, [app_entry(APP, replicas=2)], dashboard_enabled=True)
        publish(config, release_dist, APP, "0.1.0")
        with (
            running_service(config, tmp_path) as service,
            running_dashboard(config, tmp_path, secrets) as dashboard,
        ):
            before = service.wait_app(APP, serving("0.1.0", 2), "two replicas")
            context = browser.new_context(viewport={"width": 1400, "height": 1200})
            try:
                page = context.new_page()
                page.set_default_timeout(UI_DEADLINE_MS)
                log_in(page, dashboard)
                page.wait_for_url("**/applications")
                page.locator(".dx-restart-deployex").get_by_role("button").click()
                question = page.locator(".dx-confirm-deployex", has_text="replicas keep running")
                expect(question).to_be_visible()
                page.get_by_role("button", name="Yes, restart DeployEx").click()
                service.wait_started(2)
                after = service.wait_app(APP, serving("0.1.0", 2), "replicas adopted again")
                assert {r.sname: r.pid for r in after.replicas} == {
                    r.sname: r.pid for r in before.replicas
                }
                wait_until(lambda: health_answers(dashboard.url), 60, "the dashboard back")
                restart = service.client().events(kind="deployex_restart")
                assert restart and restart[0].actor == "admin@127.0.0.1"
            finally:
                context.close()


def test_the_journal_filter_keeps_one_app_among_two(
    browser, release_dist: ReleaseDist, tmp_path: Path
) -> None:
    secrets = dashboard_secrets()
    other = "myerlangapp"
    entries = [app_entry(APP, replicas=1), app_entry(other, replicas=1)]
    with pytest.MonkeyPatch.context() as env:
        for key, value in secrets.items():
            env.setenv(key, value)
        config = write_config(tmp_path, entries, dashboard_enabled=True)
        publish(config, release_dist, APP, "0.1.0")
        publish(config, release_dist, other, "0.1.0")
        with (
            running_service(config, tmp_path) as service,
            running_dashboard(config, tmp_path, secrets) as dashboard,
        ):
            for name in (APP, other):
                service.wait_app(name, lambda a: a.replicas and a.replicas[0].status == "running",
                                 f"{name} running")  # fmt: skip
            context = browser.new_context(viewport={"width": 1400, "height": 1200})
            try:
                page = context.new_page()
                page.set_default_timeout(UI_DEADLINE_MS)
                log_in(page, dashboard, path="/journal")
                rows = page.locator(".dx-journal .tabulator-row")
                expect(rows.filter(has_text=other).first).to_be_visible()
                expect(rows.filter(has_text=APP).first).to_be_visible()
                page.locator(".dx-journal-app select").select_option(other)
                expect(rows.first).to_contain_text(other)
                expect(rows.filter(has_text=APP)).to_have_count(0)
                page.locator(".dx-journal-app select").select_option(APP)
                expect(rows.first).to_contain_text(APP)
                expect(rows.filter(has_text=other)).to_have_count(0)
            finally:
                context.close()
