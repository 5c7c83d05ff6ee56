"""Browser terminals (issue 16) in Debian's Chromium against a real `deployex run` whose Web
actor runs the dashboard, with one replica of each language.

xterm.js draws on a canvas, so what a shell did is checked through its side effects: each
command writes a file, which the test reads.
"""

from __future__ import annotations

import contextlib
import re
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil
import pytest
from playwright.sync_api import expect

from dashboards.terminals import HostTmux
from tests.beam_fixtures import ReleaseDist, wait_until
from tests.browser import (
    Dashboard,
    dashboard_secrets,
    get,
    log_in,
    new_page,
    running_dashboard,
    websocket_refused,
)
from tests.deployex_service import Service, app_entry, publish, running_service, write_config

pytestmark = pytest.mark.slow
APPS = ("myerlangapp", "myelixirapp", "mygleamapp")


@dataclass
class Demo:
    service: Service
    dashboard: Dashboard
    tmp: Path

    @property
    def url(self) -> str:
        return self.dashboard.url

    def opened_pids(self) -> list[int]:
        """The pid of every terminal opened so far, newest first, as the journal says."""
        events = self.service.client().events(kind="terminal_open", limit=100)
        return [int(m.group(1)) for e in events if (m := re.search(r"\(pid (\d+)\)", e.message))]

    def tmux_sockets(self) -> list[Path]:
        return sorted((self.tmp / "var" / "terminals").glob("*.sock"))


@contextlib.contextmanager
def demo_of(release_dist: ReleaseDist, tmp: Path, apps: tuple[str, ...], **top: Any):
    secrets = dashboard_secrets()
    with pytest.MonkeyPatch.context() as env:
        for key, value in secrets.items():
            env.setenv(key, value)  # `deployex run` hands them to its dashboard
        entries = [app_entry(app, replicas=1) for app in apps]
        config = write_config(tmp, entries, dashboard_enabled=True, **top)
        for app in apps:
            publish(config, release_dist, app, "0.1.0")
        with (
            contextlib.ExitStack() as cleanup,
            running_service(config, tmp) as service,
            running_dashboard(config, tmp, secrets) as dashboard,
        ):
            # a killed dashboard cannot end its host terminals' tmux servers (daemons)
            cleanup.callback(HostTmux(tmp / "var" / "terminals").kill_leftovers)
            for app in apps:
                service.wait_app(
                    app,
                    lambda a: [(r.status, r.otp) for r in a.replicas] == [("running", "connected")],
                    f"{app} running and linked",
                )
            yield Demo(service, dashboard, tmp)


@pytest.fixture(scope="module")
def demo(release_dist: ReleaseDist, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Demo]:
    with demo_of(release_dist, tmp_path_factory.mktemp("terminals"), APPS) as demo:
        yield demo


def open_terminal(page: Any, demo: Demo, **target: str) -> int:
    """Log in, open a terminal on `target` through its form, click into it; its pid."""
    before = set(demo.opened_pids())
    path = f"/terminal/open?{urllib.parse.urlencode(target)}"
    log_in(page, demo.dashboard, path=path)
    page.wait_for_url("**/terminal/open*")
    page.get_by_role("button", name=re.compile("Open a shell")).click()
    page.wait_for_url("**/terminal?ticket=*")
    expect(page.locator(".dx-terminal-status")).to_contain_text("Shell on")
    page.locator(".xterm").first.click()
    wait_until(lambda: set(demo.opened_pids()) - before, 10, "the terminal journaled")
    (pid,) = set(demo.opened_pids()) - before
    return pid


def run(page: Any, line: str) -> None:
    page.keyboard.type(line)
    page.keyboard.press("Enter")


def wait_file(path: Path, what: str, deadline_s: float = 20) -> str:
    wait_until(lambda: path.exists() and path.read_text().strip() != "", deadline_s, what)
    return path.read_text().strip()


def gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


# -- each kind of terminal --------------------------------------------------------------------


def test_a_host_terminal_runs_tmux_follows_the_browser_size_and_ends_with_the_logout(
    page, demo
) -> None:
    out = demo.tmp / "host.out"
    pid = open_terminal(page, demo, target="host")
    run(page, f"echo $((6*7)) > {out}")
    assert wait_file(out, "the host shell's answer") == "42"
    assert psutil.Process(pid).name() == "tmux: client"
    # Ctrl-C interrupts the foreground program (the terminal is its controlling tty)
    status, started = demo.tmp / "status.out", demo.tmp / "sleep.pid"
    run(page, f"sh -c 'echo $$ > {started}; exec sleep 60'")
    sleeper = int(wait_file(started, "the foreground program started"))
    page.keyboard.press("Control+c")
    run(page, f"echo $? > {status}")
    assert wait_file(status, "the interrupted sleep's status") == "130"
    wait_until(lambda: gone(sleeper), 10, "the interrupted program ended")
    # Unicode typed in the browser reaches the program as UTF-8
    text = demo.tmp / "unicode.out"
    run(page, f"echo 'héllo €' > {text}")
    assert wait_file(text, "the typed Unicode") == "héllo €"
    (sock,) = demo.tmux_sockets()
    assert sock.stat().st_mode & 0o077 == 0 and sock.parent.stat().st_mode & 0o077 == 0

    sizes: list[str] = []

    def measured() -> int:
        """The shell's columns now (`stty size` says rows and columns)."""
        size = demo.tmp / f"size-{len(sizes)}.out"
        run(page, f"stty size > {size}")
        sizes.append(wait_file(size, "stty size"))
        return int(sizes[-1].split()[1])

    page.set_viewport_size({"width": 1400, "height": 1000})  # as wide as it was
    page.locator(".xterm").first.click()
    wide = measured()
    page.set_viewport_size({"width": 800, "height": 500})
    page.locator(".xterm").first.click()
    # the columns follow the width (the height is fixed), once the resize has reached the PTY
    wait_until(lambda: measured() < wide, 20, "fewer columns in a narrower browser", 0.5)

    # the logout link's request, with the page's cookies; a goto() raced the page's own move
    # to the login once it saw its session end (net::ERR_ABORTED)
    assert page.context.request.get(f"{demo.url}/logout").ok
    wait_until(lambda: gone(pid), 10, "the terminal's process ended by the logout")
    page.wait_for_url("**/login*")  # the page follows its session out
    wait_until(lambda: not demo.tmux_sockets(), 10, "the tmux server ended")

    def journaled() -> bool:
        closes = [e.message for e in demo.service.client().events(kind="terminal_close")]
        return any("host closed after" in m and "the login session ended" in m for m in closes)

    wait_until(journaled, 10, "the close journaled with its reason")


@pytest.mark.parametrize(
    ("app", "line"),
    [
        ("myerlangapp", 'file:write_file("{out}", atom_to_list(node())).'),
        ("myelixirapp", 'File.write!("{out}", to_string(Node.self()))'),
        ("mygleamapp", 'file:write_file("{out}", atom_to_list(node())).'),
    ],
)
def test_a_replica_shell_evaluates_on_the_running_node(page, demo, app: str, line: str) -> None:
    replica = demo.service.app(app).replicas[0]
    out = demo.tmp / f"{app}.out"
    open_terminal(page, demo, target="replica", app=app, sname=replica.sname)
    run(page, line.format(out=out))
    assert wait_file(out, f"{app}'s node name") == replica.node


def test_the_deployex_shell_has_dx(page, demo) -> None:
    out = demo.tmp / "dx.out"
    open_terminal(page, demo, target="deployex")
    run(page, f"open({str(out)!r}, 'w').write(str(dx.ping()))")
    assert wait_file(out, "dx.ping() in the DeployEx shell") == "True"


def test_ctrl_d_ends_the_program_and_closes_the_terminal(page, demo) -> None:
    pid = open_terminal(page, demo, target="deployex")
    page.keyboard.press("Control+d")
    wait_until(lambda: gone(pid), 10, "the Python shell ended")
    expect(page.locator(".dx-terminal-status")).to_contain_text("the program exited")


def test_a_replica_that_stops_closes_its_shell_with_a_line_saying_so(page, demo) -> None:
    app = "mygleamapp"
    replica = demo.service.app(app).replicas[0]
    pid = open_terminal(page, demo, target="replica", app=app, sname=replica.sname)
    demo.service.client().restart(app, replica.sname, actor="test")
    wait_until(lambda: gone(pid), 20, "the shell closed with its replica")
    # the remote shell sees its node go first, or the status says it stopped: either way
    expect(page.locator(".dx-terminal-status")).to_contain_text(
        re.compile(f"closed: ({replica.sname} is no longer running|the program exited)")
    )
    demo.service.wait_app(
        app, lambda a: [(r.status, r.otp) for r in a.replicas] == [("running", "connected")], "up"
    )


# -- doors ------------------------------------------------------------------------------------


def post(url: str, fields: dict[str, str], cookie: str | None = None) -> int:
    request = urllib.request.Request(
        url, data=urllib.parse.urlencode(fields).encode(), method="POST"
    )
    if cookie:
        request.add_header("Cookie", cookie)
    opener = urllib.request.build_opener(NoRedirect)
    try:
        return opener.open(request, timeout=10).status
    except urllib.error.HTTPError as exc:
        return exc.code


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any) -> None:
        return None


def test_terminals_are_refused_without_a_session_or_without_the_csrf_token(page, demo) -> None:
    assert websocket_refused(demo.url, "/terminal/ws", None) == 403
    for path in ("/terminal", "/terminal?ticket=x", "/terminal/open?target=host"):
        status, headers, _ = get(f"{demo.url}{path}")
        assert status == 302 and "login" in headers["Location"], path
    host = {"target": "host", "csrf_token": "0" * 64}
    assert post(f"{demo.url}/terminal/open", host) == 302  # to the login
    log_in(page, demo.dashboard, path="/applications")
    page.wait_for_url("**/applications")
    cookie = "; ".join(f"{c['name']}={c['value']}" for c in page.context.cookies())
    before = demo.opened_pids()
    assert post(f"{demo.url}/terminal/open", host, cookie) == 403  # a forged token
    assert post(f"{demo.url}/terminal/open", {"target": "host"}, cookie) == 403
    page.goto(f"{demo.url}/terminal?ticket=made-up")
    expect(page.get_by_text("A terminal link works once")).to_be_visible()
    assert demo.opened_pids() == before and not demo.tmux_sockets()


def test_the_links_to_terminals_are_on_the_cards_and_in_the_navigation(page, demo) -> None:
    log_in(page, demo.dashboard, path="/applications")
    page.wait_for_url("**/applications")
    expect(page.get_by_role("link", name="Host terminal")).to_be_visible()
    expect(page.locator(".dx-shell").first).to_be_visible()
    sname = demo.service.app("myerlangapp").replicas[0].sname
    link = page.locator(f".replica-{sname} .dx-shell")
    expect(link).to_have_attribute("href", re.compile(f"sname={sname}"))


# -- limits: a dashboard of their own -----------------------------------------------------------


def test_past_the_limit_a_terminal_is_refused_and_an_idle_one_is_closed(
    release_dist: ReleaseDist, tmp_path: Path, browser: Any
) -> None:
    limits = {"terminals_max": 2, "terminal_idle_timeout_ms": 4000}
    with demo_of(release_dist, tmp_path, ("mygleamapp",), **limits) as demo, ExitStack() as stack:
        pages = [stack.enter_context(new_page(browser)) for _ in range(3)]
        busy = open_terminal(pages[0], demo, target="host")
        run(pages[0], "while :; do date; sleep 1; done")  # it writes each second: not idle
        idle = open_terminal(pages[1], demo, target="host")
        log_in(pages[2], demo.dashboard, path="/terminal/open?target=host")
        pages[2].get_by_role("button", name=re.compile("Open a shell")).click()
        expect(pages[2].locator(".dx-terminal-status")).to_contain_text(
            "2 terminals are open, the most this dashboard allows (terminals_max: 2)"
        )
        wait_until(lambda: gone(idle), 20, "the idle terminal closed")
        # The busy one, opened first, outlives another idle period (a close takes a moment).
        outlived = time.monotonic() + 6
        while time.monotonic() < outlived:
            assert not gone(busy), "a terminal that writes was closed as idle"
            time.sleep(0.2)  # polling a condition that must keep holding, not waiting for one
        pages[0].keyboard.press("Control+c")  # quiet now: closed once idle for 4 s
        wait_until(lambda: gone(busy), 20, "the terminal closed once quiet")
        wait_until(lambda: not demo.tmux_sockets(), 10, "their tmux servers ended")
        closes = [e.message for e in demo.service.client().events(kind="terminal_close")]
        assert sum("idle for 4 s" in m for m in closes) == 2, closes


def test_terminals_false_turns_every_shell_off(
    release_dist: ReleaseDist, tmp_path: Path, browser: Any
) -> None:
    with (
        demo_of(release_dist, tmp_path, ("mygleamapp",), terminals=False) as demo,
        new_page(browser) as page,
    ):
        log_in(page, demo.dashboard, path="/applications")
        page.wait_for_url("**/applications")
        expect(page.locator(".replica-card").first).to_be_visible()
        expect(page.get_by_role("link", name="Host terminal")).to_have_count(0)
        expect(page.locator(".dx-shell")).to_have_count(0)
        page.goto(f"{demo.url}/terminal/open?target=host")
        expect(page.get_by_text("Terminals are turned off")).to_be_visible()
        page.goto(f"{demo.url}/terminal")
        expect(page.get_by_text("Terminals are turned off")).to_be_visible()
        cookie = "; ".join(f"{c['name']}={c['value']}" for c in page.context.cookies())
        assert post(f"{demo.url}/terminal/open", {"target": "host"}, cookie) == 403
        assert demo.opened_pids() == []
