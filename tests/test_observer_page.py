"""The observer page (issue 17) in Debian's Chromium against a real `deployex run` (its Web
actor runs the dashboard) with one rebar3 replica."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from playwright.sync_api import expect

from tests.beam_fixtures import ReleaseDist, wait_until
from tests.browser import get, log_in, websocket_refused
from tests.test_observer import knock
from tests.test_terminals import Demo, demo_of

pytestmark = pytest.mark.slow
APP = "myerlangapp"
SERVER = "myerlangapp_server"


@pytest.fixture(scope="module")
def demo(release_dist: ReleaseDist, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Demo]:
    with demo_of(release_dist, tmp_path_factory.mktemp("observer_page"), (APP,)) as demo:
        yield demo


def test_the_observer_page_shows_the_node_a_process_state_and_runs_a_trace(page, demo) -> None:
    replica = demo.service.app(APP).replicas[0]
    path = f"/observer?app={APP}&sname={replica.sname}"
    log_in(page, demo.dashboard, path=path)
    page.wait_for_url("**/observer?*")
    expect(page.locator(".dx-observer-system")).to_contain_text("OTP")
    expect(page.locator(".dx-trees")).to_contain_text("myerlangapp_sup")
    page.locator(".dx-trees summary", has_text=APP).first.click()
    expect(page.locator(".dx-trees")).to_contain_text(SERVER)
    page.locator(".dx-observer-sort select").select_option("reductions")  # a busy process
    knock(replica.ports["PORT"], 50)
    row = page.locator(".dx-processes .tabulator-row", has_text=SERVER)
    expect(row).to_have_count(1)
    row.locator(".tabulator-cell[tabulator-field='pid']").click()
    expect(page.locator(".dx-process-details")).to_contain_text("upgraded_from")

    page.locator(".dx-trace-target input").fill(f"{SERVER}:handle_info/2")
    page.locator(".dx-trace-target input").press("Tab")  # a text input commits on change
    page.get_by_label("max messages").fill("3")
    page.get_by_label("max messages").press("Tab")
    page.get_by_role("button", name="Start trace").click()
    expect(page.locator(".dx-trace-status")).to_contain_text("Tracing")

    def stopped() -> bool:
        knock(replica.ports["PORT"], 1)
        try:  # expect reads text inside Bokeh's shadow roots; inner_text would not
            expect(page.locator(".dx-trace-status")).to_contain_text("Trace stopped", timeout=500)
        except AssertionError:
            return False
        return True

    wait_until(stopped, 20, "the trace stopped at its limit")
    expect(page.locator(".dx-trace-status")).to_contain_text("max_messages, 3 message(s)")
    expect(page.locator(".dx-trace-events")).to_contain_text("handle_info")

    def journaled() -> bool:
        events = demo.service.client().events(app=APP, kind="observer", limit=50)
        actors = {e.actor for e in events}
        return "admin@127.0.0.1" in actors and any("inspected" in e.message for e in events)

    wait_until(journaled, 10, "the page's calls journaled as the admin")


def test_the_observer_page_needs_a_login(demo) -> None:
    status, headers, _ = get(f"{demo.url}/observer?app={APP}&sname=x")
    assert status == 302 and "login" in headers["Location"]
    assert websocket_refused(demo.url, "/observer/ws", None) == 403


def test_the_replica_card_links_to_its_observer(page, demo) -> None:
    sname = demo.service.app(APP).replicas[0].sname
    log_in(page, demo.dashboard, path="/applications")
    page.wait_for_url("**/applications")
    link = page.locator(f".replica-{sname} .dx-observer")
    expect(link).to_have_attribute("href", re.compile(f"/observer\\?app={APP}&sname={sname}"))
