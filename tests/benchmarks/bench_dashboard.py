"""Benchmark: how fast the dashboard shows things, and what it costs.

    .venv/bin/python -m tests.benchmarks.bench_dashboard [--runs 5] [--cpu-seconds 30]

Under a real `deployex run` (its Web actor runs the dashboard) with three replicas of the
mygleamapp fixture, in headless Debian Chromium:

- navigation -> applications page fully rendered (three cards showing "Running");
- a forced restart done outside the UI (through the facade) -> the card showing it (the forced
  restart counter, then the new pid), beside the time the facade itself needs to see it;
- CPU of the dashboard process over `--cpu-seconds` with 0, 1 and 5 open sessions on the
  applications page, and with 1 session on the plots page.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import psutil

from tests.beam_fixtures import build_releases, wait_until
from tests.browser import (
    Dashboard,
    chromium,
    dashboard_secrets,
    listening_pid,
    log_in,
    running_dashboard,
)
from tests.deployex_service import app_entry, publish, running_service, write_config

APP = "mygleamapp"
# Locators pierce Bokeh's shadow roots but page JS does not: find an element through them all.
DEEP_TEXT = """([selector]) => {
    const find = (root) => {
        const hit = root.querySelector(selector);
        if (hit) return hit;
        for (const el of root.querySelectorAll('*')) {
            if (el.shadowRoot) { const inner = find(el.shadowRoot); if (inner) return inner; }
        }
        return null;
    };
    const el = find(document);
    return el ? el.textContent : null;
}"""


def all_running(app) -> bool:
    running = [r for r in app.replicas if r.status == "running" and r.otp == "connected"]
    return len(running) == 3 == len(app.replicas)


def deep_text(page: Any, selector: str) -> str | None:
    return page.evaluate(DEEP_TEXT, [selector])


def wait_text(page: Any, selector: str, expected: str, deadline_s: float = 30) -> float:
    """Seconds until the element's text is `expected`, polled every 20 ms inside the page."""
    started = time.perf_counter()
    page.wait_for_function(
        f"([selector, expected]) => ({DEEP_TEXT})([selector]) === expected",
        arg=[selector, expected],
        polling=20,
        timeout=deadline_s * 1000,
    )
    return time.perf_counter() - started


def render_times(context: Any, url: str, runs: int) -> list[float]:
    times = []
    for _ in range(runs):
        page = context.new_page()
        started = time.perf_counter()
        page.goto(f"{url}/applications")
        page.locator(".replica-card [data-field=status]", has_text="Running").nth(2).wait_for()
        times.append(time.perf_counter() - started)
        page.close()
    return times


def restart_times(page: Any, service: Any, runs: int) -> dict[str, list[float]]:
    dx = service.client()
    found: dict[str, list[float]] = {"facade": [], "card counter": [], "card pid": []}
    for run in range(runs):
        app = service.wait_app(APP, all_running, "three replicas running")
        victim = app.replicas[run % 3]
        card = f'[data-sname="{victim.sname}"]'
        wait_text(page, f"{card} [data-field=pid]", str(victim.pid))
        began = time.perf_counter()
        dx.restart(APP, victim.sname, actor="benchmark")
        counter = wait_text(
            page, f"{card} [data-field=forced_restarts]", str(victim.forced_restarts + 1)
        )
        found["card counter"].append(counter)
        after = service.wait_app(
            APP,
            lambda a, v=victim: any(
                r.sname == v.sname and r.pid not in (None, v.pid) for r in a.replicas
            ),
            "a new pid",
            60,
        )
        found["facade"].append(time.perf_counter() - began)
        new_pid = next(r.pid for r in after.replicas if r.sname == victim.sname)
        wait_text(page, f"{card} [data-field=pid]", str(new_pid))
        found["card pid"].append(time.perf_counter() - began)
    return found


def cpu_percent(pid: int, seconds: float) -> float:
    process = psutil.Process(pid)
    before = process.cpu_times()
    started = time.monotonic()
    time.sleep(seconds)
    after = process.cpu_times()
    used = (after.user - before.user) + (after.system - before.system)
    return 100 * used / (time.monotonic() - started)


def open_sessions(browser: Any, dashboard: Dashboard, count: int, path: str) -> list[Any]:
    contexts = []
    for _ in range(count):
        context = browser.new_context(viewport={"width": 1400, "height": 1000})
        page = context.new_page()
        log_in(page, dashboard, path=path)
        page.wait_for_url(f"**{path}")
        page.locator(".dx-nav").wait_for()
        contexts.append(context)
    return contexts


def cpu_table(browser: Any, dashboard: Dashboard, pid: int, seconds: float) -> dict[str, float]:
    time.sleep(12)  # Bokeh drops closed sessions after its unused-session lifetime (5 s)
    table = {"0 sessions": cpu_percent(pid, seconds)}
    for count, path in ((1, "/applications"), (5, "/applications"), (1, "/plots")):
        contexts = open_sessions(browser, dashboard, count, path)
        time.sleep(2)  # past the first render
        table[f"{count} session(s) on {path}"] = cpu_percent(pid, seconds)
        for context in contexts:
            context.close()
        time.sleep(12)
    return table


def summary(values: list[float]) -> str:
    ms = sorted(v * 1000 for v in values)
    return (
        f"median {statistics.median(ms):7.0f} ms  min {ms[0]:7.0f}  max {ms[-1]:7.0f}"
        f"  (n={len(ms)})"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--cpu-seconds", type=float, default=30.0)
    args = parser.parse_args()
    dist = build_releases()
    secrets = dashboard_secrets()
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        os.environ.update(secrets)
        config = write_config(
            tmp, [app_entry(APP, monitoring=[{"type": "process"}])], dashboard_enabled=True
        )
        publish(config, dist, APP, "0.1.0")
        with (
            running_service(config, tmp) as service,
            running_dashboard(config, tmp, secrets) as dashboard,
            chromium() as browser,
        ):
            service.wait_app(APP, all_running, "three replicas running", 120)
            pid = listening_pid(int(dashboard.url.rsplit(":", 1)[1]))
            context = browser.new_context(viewport={"width": 1400, "height": 1000})
            page = context.new_page()
            log_in(page, dashboard)
            page.wait_for_url("**/applications")
            wait_until(
                lambda: deep_text(page, ".dx-card [data-field=otp]") == "3 of 3 replicas connected",
                30,
                "the page is live",
            )
            render = render_times(context, dashboard.url, args.runs)
            restarts = restart_times(page, service, args.runs)
            context.close()
            cpu = cpu_table(browser, dashboard, pid, args.cpu_seconds)
    print(f"navigation -> applications page rendered: {summary(render)}")
    for what, values in restarts.items():
        print(f"restart outside the UI -> {what:13}: {summary(values)}")
    for what, percent in cpu.items():
        print(f"dashboard CPU, {what:28}: {percent:5.1f} % of one core")


if __name__ == "__main__":
    main()
