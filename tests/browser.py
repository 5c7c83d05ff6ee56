"""The dashboard for tests and screenshots: its process, its secrets, and a headless browser.

The browser is Debian's /usr/bin/chromium driven by Playwright from PyPI (never `playwright
install`). With `dashboard_enabled: true` in the YAML, `deployex run` starts the dashboard itself
(the Web actor) and `running_dashboard` only waits for it; otherwise it starts
`python -m dashboards.serve` beside the service and ends it by pid at teardown.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import bcrypt
import pytest

from deployex_actors.config import load_config
from tests.beam_fixtures import wait_until

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = "/usr/bin/chromium"
LAUNCH_ARGS = [
    "--no-sandbox",
    "--headless=new",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
PASSWORD = "correct horse battery staple"


def dashboard_secrets(password: str = PASSWORD, rounds: int = 4) -> dict[str, str]:
    """The three secrets of the env adapter; a cheap bcrypt cost keeps the tests fast."""
    hashed = bcrypt.hashpw(password.encode(), bcrypt.gensalt(rounds)).decode()
    return {
        "DEPLOYEX_ADMIN_HASHED_PASSWORD": hashed,
        "DEPLOYEX_SECRET_KEY_BASE": "test-secret-key-base-" + "x" * 40,
        "DEPLOYEX_ERLANG_COOKIE": "testcookie",
    }


@dataclass
class Dashboard:
    url: str
    password: str
    proc: subprocess.Popen | None  # None: started by `deployex run` (the Web actor)
    log: Path
    started_by_service: bool = False

    @property
    def pid(self) -> int:
        if self.proc is not None:
            return self.proc.pid
        return listening_pid(int(self.url.rsplit(":", 1)[1]))

    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""


def get(url: str, headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], str]:
    """GET without following redirects: (status, headers, body)."""

    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args: Any, **kwargs: Any) -> None:
            return None

    opener = urllib.request.build_opener(NoRedirect)
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with opener.open(request, timeout=10) as response:
            return response.status, dict(response.headers), response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), exc.read().decode(errors="replace")


def health_answers(url: str) -> bool:
    with contextlib.suppress(OSError):
        status, _headers, body = get(f"{url}/health")
        return status == 200 and json.loads(body)["status"] == "ok"
    return False


@contextlib.contextmanager
def running_dashboard(
    config_path: Path, tmp: Path, env: dict[str, str], password: str = PASSWORD
) -> Iterator[Dashboard]:
    config = load_config(config_path)
    url = f"http://127.0.0.1:{config.port}"
    if config.dashboard_enabled:  # the service's Web actor runs it, and ends it with the service
        dashboard = Dashboard(url, password, None, Path(config.log_path) / "dashboard.log", True)
        wait_until(lambda: health_answers(url), 60, "the dashboard of deployex run")
        yield dashboard
        return
    log = tmp / "dashboard.out"
    proc = subprocess.Popen(
        [sys.executable, "-m", "dashboards.serve", "--config", str(config_path)],
        cwd=ROOT,
        env={**os.environ, **env},
        stdout=log.open("ab"),
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
    )
    dashboard = Dashboard(url, password, proc, log)
    try:
        wait_until(lambda: _up(dashboard), 60, "the dashboard did not come up")
        yield dashboard
    finally:
        stop_process(proc)


def _up(dashboard: Dashboard) -> bool:
    if dashboard.proc is not None and dashboard.proc.poll() is not None:
        raise AssertionError(
            f"the dashboard exited {dashboard.proc.returncode}:\n{dashboard.output()}"
        )
    return health_answers(dashboard.url)


def stop_process(proc: subprocess.Popen, grace_s: float = 10) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(grace_s)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)


def listening_pid(port: int) -> int:
    import psutil

    for conn in psutil.net_connections("tcp"):
        if conn.status == psutil.CONN_LISTEN and conn.laddr.port == port and conn.pid:
            return conn.pid
    raise AssertionError(f"nothing listens on {port}")


# -- the browser ---------------------------------------------------------------------------------


@contextlib.contextmanager
def chromium() -> Iterator[Any]:
    """A headless Debian Chromium through Playwright; closed at the end."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=LAUNCH_ARGS)
        try:
            yield browser
        finally:
            browser.close()


UI_DEADLINE_MS = 20_000


@contextlib.contextmanager
def new_page(browser: Any, width: int = 1400, height: int = 1200) -> Iterator[Any]:
    """A page in a browser context of its own (its own cookies), closed at the end."""
    context = browser.new_context(viewport={"width": width, "height": height})
    page = context.new_page()
    page.set_default_timeout(UI_DEADLINE_MS)
    try:
        yield page
    finally:
        context.close()


# -- pytest fixtures (exposed through tests/conftest.py) ------------------------------------


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """One Chromium for a module's tests."""
    with chromium() as launched:
        yield launched


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    """A fresh page (no cookies: logged out) for one test."""
    with new_page(browser) as fresh:
        yield fresh


def log_in(page: Any, dashboard: Dashboard, password: str | None = None, path: str = "/") -> None:
    page.goto(f"{dashboard.url}{path}")
    page.fill("input[name=username]", "admin")
    page.fill("input[name=password]", password if password is not None else dashboard.password)
    page.click("button[type=submit]")


def websocket_refused(url: str, path: str, cookie: str | None) -> int | None:
    """Open the page's Bokeh websocket as a browser would; the HTTP status if it was refused,
    None if it was accepted. Runs on its own thread (Playwright's sync API owns this one's loop)."""
    import asyncio
    from concurrent.futures import ThreadPoolExecutor

    from tornado.httpclient import HTTPClientError, HTTPRequest
    from tornado.websocket import websocket_connect

    async def connect() -> int | None:
        headers = {"Origin": url, **({"Cookie": cookie} if cookie else {})}
        request = HTTPRequest(url.replace("http", "ws", 1) + path, headers=headers)
        try:
            connection = await websocket_connect(request, subprotocols=["bokeh", "token"])
        except HTTPClientError as exc:
            return exc.code
        connection.close()
        return None

    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, connect()).result()
