"""Log history end to end: a real `deployex run` with Gleam replicas, lines printed by the
replicas themselves (io:put_chars to their `user` device, over distribution), read back with
`deployex logs`."""

from __future__ import annotations

import contextlib
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import expect

from deployex_actors.beam import Atom, connect
from deployex_actors.core.status import AppSnapshot
from tests.beam_fixtures import ReleaseDist, wait_until
from tests.browser import UI_DEADLINE_MS, dashboard_secrets, get, log_in, running_dashboard
from tests.deployex_service import (
    DEPLOYEX,
    Service,
    app_entry,
    publish,
    running_service,
    write_config,
)

pytestmark = pytest.mark.slow
APP = "mygleamapp"


def all_running(count: int):
    def check(app: AppSnapshot) -> bool:
        running = [r for r in app.replicas if r.status == "running" and r.otp == "connected"]
        return len(running) == count

    return check


def say(node: str, *lines: str, cookie: str = "cookie") -> None:
    """The replica prints these lines on its own stdout."""
    with connect(node, cookie) as link:
        for line in lines:
            link.rpc("io", "put_chars", [Atom("user"), f"{line}\n".encode()])


def cli_logs(service: Service, *args: str) -> str:
    result = subprocess.run(
        [DEPLOYEX, "logs", *args, "--config", str(service.config_path)],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    return result.stdout


def history_has(service: Service, *texts: str, sname: str | None = None) -> bool:
    lines = service.client().logs(sname=sname, since_s=3600, limit=10000).lines
    found = {line.text for line in lines}
    return all(text in found for text in texts)


def started(tmp_path: Path, release_dist: ReleaseDist, replicas: int = 1, **top) -> Path:
    config = write_config(tmp_path, [app_entry(APP, replicas=replicas)], **top)
    publish(config, release_dist, APP, "0.1.0")
    return config


def test_a_killed_replicas_last_lines_and_node_down_are_in_deployex_logs(
    release_dist: ReleaseDist, tmp_path: Path
) -> None:
    config = started(tmp_path, release_dist, replicas=2)
    with running_service(config, tmp_path) as service:
        before = service.wait_app(APP, all_running(2), "2 replicas running")
        victim, other = before.replicas
        last = [f"{victim.sname} last words {i}" for i in range(3)]
        say(victim.node, *last)
        say(other.node, "the other one talks")
        os.kill(victim.pid, signal.SIGKILL)
        service.wait_app(APP, lambda a: any(r.sname == victim.sname and r.pid != victim.pid
                                            and r.status == "running" for r in a.replicas),
                         "the killed replica running again")  # fmt: skip
        node_down = f"DeployEx detected node down for node: {victim.node}"
        wait_until(lambda: history_has(service, *last, node_down), 30, "last lines kept")
        out = cli_logs(service, APP, victim.sname, "--since", "10m")
        rows = out.splitlines()
        texts = [row.split(" ", 4)[4] for row in rows]
        assert texts.index(last[0]) < texts.index(last[2]) < texts.index(node_down)
        assert f"{victim.sname} stderr {node_down}" in out  # TIME SNAME STREAM LINE
        assert "the other one talks" not in out  # only that sname
        assert f"{victim.sname} stdout {last[1]}" in cli_logs(service, APP)
        stderr_only = cli_logs(service, APP, "--stderr")
        assert node_down in stderr_only and last[0] not in stderr_only
        grep = cli_logs(service, APP, "--grep", "LAST WORDS 1")
        assert [r.split(" ", 4)[4] for r in grep.splitlines()] == [last[1]]
        follow_out = tmp_path / "follow.out"
        follower = subprocess.Popen(
            [DEPLOYEX, "logs", APP, "--follow", "--config", str(service.config_path)],
            stdout=follow_out.open("w"), stderr=subprocess.STDOUT,
        )  # fmt: skip
        try:
            wait_until(lambda: node_down in follow_out.read_text(), 30, "the history first")
            say(other.node, "said while followed")
            wait_until(lambda: "said while followed" in follow_out.read_text(), 30, "a new line")
            say(other.node, "and then this")  # a later poll: the first line is not printed again
            wait_until(lambda: "and then this" in follow_out.read_text(), 30, "another line")
        finally:
            follower.send_signal(signal.SIGINT)
            assert follower.wait(10) == 0  # Ctrl-C ends a follow quietly
        assert follow_out.read_text().count("said while followed") == 1


def test_a_deployex_restart_keeps_the_history_and_reads_nothing_twice(
    release_dist: ReleaseDist, tmp_path: Path
) -> None:
    config = started(tmp_path, release_dist)
    with running_service(config, tmp_path) as service:
        (replica,) = service.wait_app(APP, all_running(1), "running").replicas
        say(replica.node, "before the restart")
        wait_until(lambda: history_has(service, "before the restart"), 30, "first line kept")
        service.kill_deployex()  # kill -9: only the disk (offsets) is left
        say(replica.node, "while DeployEx was down")
        service.start()
        service.wait_app(APP, all_running(1), "adopted")
        say(replica.node, "after the restart")
        wanted = ("before the restart", "while DeployEx was down", "after the restart")
        wait_until(lambda: history_has(service, *wanted), 30, "all three lines kept")
        texts = [line.text for line in service.client().logs(APP, since_s=3600).lines]
        for text in wanted:
            assert texts.count(text) == 1, texts
        banner = [t for t in texts if "listening on 127.0.0.1" in t]
        assert len(banner) == 1, texts  # the replica's start line, read once over two lives


def test_lines_older_than_the_retention_are_pruned(
    release_dist: ReleaseDist, tmp_path: Path
) -> None:
    config = started(tmp_path, release_dist, logs_retention_time_ms=4000)
    with running_service(config, tmp_path) as service:
        (replica,) = service.wait_app(APP, all_running(1), "running").replicas
        say(replica.node, "soon forgotten")
        wait_until(lambda: history_has(service, "soon forgotten"), 30, "the line kept")
        wait_until(lambda: not history_has(service, "soon forgotten"), 30, "the line pruned")
        say(replica.node, "a fresh line")
        wait_until(lambda: history_has(service, "a fresh line"), 30, "new lines still kept")


@contextlib.contextmanager
def flooding(path: Path, seconds: float) -> Iterator[subprocess.Popen]:
    """Another process appending to `path` as fast as it can, for `seconds`."""
    script = (
        "import sys, time\n"
        "end = time.monotonic() + float(sys.argv[2])\n"
        "chunk = (b'f' * 99 + b'\\n') * 10000\n"
        "with open(sys.argv[1], 'ab', buffering=0) as out:\n"
        "    while time.monotonic() < end:\n"
        "        out.write(chunk)\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", script, str(path), str(seconds)])
    try:
        yield proc
    finally:
        proc.kill()
        proc.wait(10)


def stored_bytes(service: Service) -> int:
    uri = f"{service.catalog.logs_db.as_uri()}?mode=ro"
    with contextlib.closing(sqlite3.connect(uri, uri=True)) as db:
        return db.execute("SELECT coalesce(sum(bytes), 0) FROM lines").fetchone()[0]


def test_the_byte_cap_holds_under_a_flood_and_the_other_replica_is_still_heard(
    release_dist: ReleaseDist, tmp_path: Path
) -> None:
    cap = 2 * 1024 * 1024
    config = started(tmp_path, release_dist, replicas=2, logs_max_bytes=cap)
    with running_service(config, tmp_path) as service:
        flooded, quiet = service.wait_app(APP, all_running(2), "2 replicas running").replicas
        log = service.catalog.stdout_log(APP, flooded.sname)
        with flooding(log, 8) as writer:
            wait_until(lambda: log.stat().st_size > 20 * cap, 30, "the flood under way")
            for i in range(3):
                started_at = time.monotonic()
                say(quiet.node, f"quiet line {i}")
                heard = lambda i=i: history_has(service, f"quiet line {i}", sname=quiet.sname)  # noqa: E731
                wait_until(heard, 10,
                           "the quiet replica heard during the flood")  # fmt: skip
                assert time.monotonic() - started_at < 10
                assert stored_bytes(service) <= cap
            assert writer.poll() is None, "the flood ended before the checks"
        flood_size = log.stat().st_size
        wait_until(lambda: _skipped(service, flooded.sname), 30, "a skip marker")
        assert stored_bytes(service) <= cap < flood_size
        db_files = sum(p.stat().st_size for p in service.catalog.var_path.glob("logs.db*"))
        assert db_files < 4 * cap + 8 * 1024 * 1024, db_files


def _skipped(service: Service, sname: str) -> bool:
    lines = service.client().logs(sname=sname, since_s=3600, grep="bytes skipped").lines
    return bool(lines)


def test_the_history_page_shows_a_retired_snames_last_lines_and_downloads_them(
    release_dist: ReleaseDist, tmp_path: Path, page
) -> None:
    secrets = dashboard_secrets()
    config = started(tmp_path, release_dist, dashboard_enabled=True)
    env = {**os.environ, **secrets}
    with (
        running_service(config, tmp_path, env=env) as service,
        running_dashboard(config, tmp_path, secrets) as dashboard,
    ):
        (old,) = service.wait_app(APP, all_running(1), "running").replicas
        last = [f"retired {old.sname} said {i}" for i in range(3)]
        say(old.node, *last, cookie=secrets["DEPLOYEX_ERLANG_COOKIE"])
        os.kill(old.pid, signal.SIGKILL)
        node_down = f"DeployEx detected node down for node: {old.node}"
        wait_until(lambda: history_has(service, node_down), 30, "the node-down line")
        service.wait_app(APP, all_running(1), "crash-restarted")
        service.client().full_restart(APP, actor="test")  # a new sname: the old one is gone
        service.wait_app(APP, lambda a: all_running(1)(a) and a.replicas[0].sname != old.sname,
                         "replaced by a new sname", deadline_s=90)  # fmt: skip
        assert get(f"{dashboard.url}/history")[0] == 302  # behind the login
        log_in(page, dashboard, path=f"/history?sname={old.sname}")
        page.wait_for_url("**/history*")
        table = page.locator(".dx-history")
        for text in (*last, node_down):
            expect(table).to_contain_text(text, timeout=UI_DEADLINE_MS)
        expect(page.locator(".dx-history-services")).to_contain_text(old.sname)
        text = page.locator(".dx-history-text input")
        text.fill("SAID 1")
        text.press("Enter")
        expect(table.locator(".tabulator-row")).to_have_count(1, timeout=UI_DEADLINE_MS)
        expect(table).to_contain_text(last[1])
        text.fill("")
        text.press("Enter")
        expect(table).to_contain_text(node_down, timeout=UI_DEADLINE_MS)
        with page.expect_download() as download:
            page.locator(".dx-history-download").get_by_text("Download").click()
        body = Path(download.value.path()).read_text()
        assert f"{old.sname} stdout {last[0]}" in body
        assert body.index(last[2]) < body.index(f"{old.sname} stderr {node_down}")
