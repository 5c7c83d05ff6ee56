"""Screenshots of the dashboard's main pages, from a real running demo, into docs/screenshots/.

    .venv/bin/python -m ops.dev.dashboard_screenshots [--out docs/screenshots]

Runs `deployex run` in a temporary folder with two fixture apps (mygleamapp: 0.1.0 -> 0.2.0, then
a crashing 0.3.0 that gets ghosted; myerlangapp: 0.1.0), lets the watchdog collect a minute of
samples, logs in with headless Debian Chromium and takes one picture per page. Everything it
started is stopped at the end. Needs the setup of ops/dev/setup.sh (Erlang, chromium).
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path
from typing import Any

from tests.beam_fixtures import build_releases
from tests.browser import chromium, dashboard_secrets, log_in, running_dashboard
from tests.deployex_service import Service, app_entry, publish, running_service, write_config

ROOT = Path(__file__).resolve().parents[2]
GLEAM, ERLANG = "mygleamapp", "myerlangapp"
MONITORING = [{"type": kind} for kind in ("process", "port", "atom")]
VIEWPORT = {"width": 1400, "height": 1050}
SAMPLING_S = 60


def serving(version: str, count: int):
    def check(app) -> bool:
        ready = [r for r in app.replicas if r.status == "running" and r.version == version]
        return len(ready) == count == len(app.replicas)

    return check


def stage(service: Service, config: Path, dist: Any) -> None:
    """History, a ghost, a forced restart: something on every page."""
    service.wait_app(GLEAM, serving("0.1.0", 3), "mygleamapp 0.1.0", 120)
    service.wait_app(ERLANG, serving("0.1.0", 2), "myerlangapp 0.1.0", 120)
    publish(config, dist, GLEAM, "0.2.0")
    service.wait_app(GLEAM, serving("0.2.0", 3), "mygleamapp 0.2.0", 180)
    publish(config, dist, GLEAM, "0.3.0")  # halts after boot: rolled back and ghosted
    service.wait_app(GLEAM, lambda a: "0.3.0" in a.ghosts, "0.3.0 ghosted", 120)
    service.wait_app(GLEAM, serving("0.2.0", 3), "back on 0.2.0", 120)
    app = service.app(ERLANG)
    service.client().restart(ERLANG, app.replicas[0].sname, actor="admin@127.0.0.1")
    service.wait_app(ERLANG, serving("0.1.0", 2), "myerlangapp restarted", 60)


def shoot(browser: Any, dashboard: Any, out: Path) -> list[Path]:
    context = browser.new_context(viewport=VIEWPORT)
    page = context.new_page()
    page.set_default_timeout(30_000)
    taken = []

    def picture(name: str, height: int = VIEWPORT["height"]) -> None:
        page.set_viewport_size({"width": VIEWPORT["width"], "height": height})
        page.wait_for_timeout(1500)  # let the half-second ticks settle the last values
        path = out / f"{name}.png"
        page.screenshot(path=path)
        taken.append(path)

    page.goto(f"{dashboard.url}/login")
    page.fill("input[name=password]", "a wrong password")
    page.click("button[type=submit]")
    page.get_by_role("alert").wait_for()
    picture("login", 600)
    log_in(page, dashboard)
    page.wait_for_url("**/applications")
    page.locator(".replica-card").nth(2).wait_for()
    picture("applications", 1250)
    page.locator(".replica-card").first.get_by_role("button", name="Restart").click()
    page.locator(".dx-confirm:visible").wait_for()
    picture("applications-confirm", 1250)
    page.get_by_role("button", name="Cancel").click()
    page.goto(f"{dashboard.url}/versions?app={GLEAM}")
    page.locator(".dx-ghosts .tabulator-row").first.wait_for()
    picture("versions")
    page.goto(f"{dashboard.url}/logs?app={ERLANG}&stream=stdout")  # both replicas, merged
    page.locator(".log-line").first.wait_for()
    picture("logs")
    page.goto(f"{dashboard.url}/plots")
    page.locator(".bk-Figure, .bk-Canvas").first.wait_for()
    picture("plots", 1600)
    page.goto(f"{dashboard.url}/journal")
    page.locator(".dx-journal .tabulator-row").first.wait_for()
    picture("journal")
    context.close()
    return taken


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "screenshots")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    dist = build_releases()
    secrets = dashboard_secrets()
    os.environ.update(secrets)  # `deployex run` hands them to its dashboard
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        apps = [
            app_entry(
                GLEAM, monitoring=MONITORING, ready_after_ms=3000, deploy_rollback_timeout_ms=8000
            ),
            app_entry(ERLANG, replicas=2, monitoring=MONITORING),
        ]
        config = write_config(tmp, apps, dashboard_enabled=True)
        publish(config, dist, GLEAM, "0.1.0")
        publish(config, dist, ERLANG, "0.1.0")
        with running_service(config, tmp) as service:
            stage(service, config, dist)
            time.sleep(SAMPLING_S)  # a minute of samples for the plots
            with running_dashboard(config, tmp, secrets) as dashboard, chromium() as browser:
                for path in shoot(browser, dashboard, args.out):
                    print(f"wrote {path.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
