"""The Watchdog with real replicas: samples, thresholds that warn and restart, gaps, `top`."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from pathlib import Path

import psutil
import pytest

from deployex_actors.beam import connect
from deployex_actors.core.metrics import HOST
from deployex_actors.core.status import AppSnapshot
from deployex_actors.errors import BeamError
from tests.beam_fixtures import ReleaseDist, wait_until
from tests.deployex_service import DEPLOYEX, app_entry, publish, running_service, write_config

pytestmark = pytest.mark.slow
APP = "mygleamapp"
PERIOD_MS = 300


WINDOW_SAMPLES = 8  # readings of the replica to watch after an event, for what comes late


def samples_after(dx, sname: str, count: int) -> None:
    """Wait until the Watchdog took `count` more readings of `sname` (a window of its work)."""
    since = time.time()
    wait_until(lambda: len(dx.metrics(sname, since)) >= count,
               count * PERIOD_MS / 1000 + 10, f"{count} more readings of {sname}")  # fmt: skip


def running(count: int):
    def check(app: AppSnapshot) -> bool:
        ready = [r for r in app.replicas if r.status == "running" and r.otp == "connected"]
        return len(ready) == count

    return check


def test_real_replicas_stats_appear_in_the_series(
    release_dist: ReleaseDist, tmp_path: Path
) -> None:
    config = write_config(tmp_path, [app_entry(APP, replicas=2)], watchdog_interval_ms=PERIOD_MS)
    publish(config, release_dist, APP, "0.1.0")
    with running_service(config, tmp_path) as service:
        app = service.wait_app(APP, running(2), "2 replicas connected")
        dx = service.client()
        since = time.time()
        # (how soon they come is bench_watchdog's figure; here only that they come)
        wait_until(lambda: all(dx.metrics(r.sname, since) for r in app.replicas), 15,
                   "samples of both replicas")  # fmt: skip
        for replica in app.replicas:
            values = dx.metrics(replica.sname, since)[-1].values
            assert 0 < values["process_count"] < values["process_limit"]
            assert 0 < values["port_count"] < values["port_limit"]
            assert 0 < values["atom_count"] < values["atom_limit"]
            assert values["beam_memory"] > 1_000_000
            assert values["rss"] > 1_000_000
        host = dx.metrics(HOST)[-1].values
        assert 0 < host["memory_percent"] < 100 and host["memory_total"] > 0
        assert dx.metrics("deployex")[-1].values["actors"] >= 5
        top = subprocess.run([DEPLOYEX, "top", "--once", "--config", str(config)],
                             capture_output=True, text=True, timeout=60)  # fmt: skip
        assert top.returncode == 0, top.stderr
        assert all(r.sname in top.stdout for r in app.replicas)
        assert "PROC" in top.stdout and "%" in top.stdout


@pytest.mark.parametrize("enable_restart", [True, False])
def test_a_process_threshold_warns_then_force_restarts_once(
    enable_restart: bool, release_dist: ReleaseDist, tmp_path: Path
) -> None:
    watch = {"type": "process", "enable_restart": enable_restart,
             "warning_threshold_percent": 30, "restart_threshold_percent": 60}  # fmt: skip
    # +P 1024: a process limit small enough to cross from the test
    entry = app_entry(APP, replicas=1, ready_after_ms=1000, monitoring=[watch],
                      env=[{"key": "ERL_FLAGS", "value": "+P 1024"}])  # fmt: skip
    config = write_config(tmp_path, [entry], watchdog_interval_ms=PERIOD_MS)
    publish(config, release_dist, APP, "0.1.0")
    with running_service(config, tmp_path) as service:
        replica = service.wait_app(APP, running(1), "1 replica connected").replicas[0]
        dx = service.client()
        with connect(replica.node, "cookie") as link:  # local mode: the development cookie
            link.rpc("mygleamapp", "spawn_idle", [300])  # ~34 % of 1024: warning
            wait_until(lambda: dx.events(app=APP, kind="threshold_warning"), 10, "a warning")
            if enable_restart:
                link.rpc("mygleamapp", "spawn_idle", [400])  # ~73 %: critical
        if enable_restart:
            after = service.wait_app(
                APP, lambda a: a.replicas and a.replicas[0].forced_restarts == 1
                and a.replicas[0].pid != replica.pid, "one forced restart", 20,
            )  # fmt: skip
            assert after.replicas[0].sname == replica.sname
            wait_until(lambda: dx.events(app=APP, kind="watchdog_restart"), 10, "journaled")
            samples_after(dx, replica.sname, WINDOW_SAMPLES)  # a storm would come now
            assert len(dx.events(app=APP, kind="watchdog_restart")) == 1
            assert service.app(APP).replicas[0].pid == after.replicas[0].pid
        else:
            with connect(replica.node, "cookie") as link:
                link.rpc("mygleamapp", "spawn_idle", [400])
            wait_until(lambda: dx.events(app=APP, kind="threshold_critical"), 10, "critical")
            samples_after(dx, replica.sname, WINDOW_SAMPLES)  # a late restart would come now
            assert dx.events(app=APP, kind="watchdog_restart") == []
            assert service.app(APP).replicas[0].pid == replica.pid


def test_a_replica_killed_between_samples_is_a_gap_and_the_watchdog_lives_on(
    release_dist: ReleaseDist, tmp_path: Path
) -> None:
    entry = app_entry(APP, replicas=1, restart_backoff_base_ms=3000)
    config = write_config(tmp_path, [entry], watchdog_interval_ms=PERIOD_MS)
    publish(config, release_dist, APP, "0.1.0")
    with running_service(config, tmp_path) as service:
        replica = service.wait_app(APP, running(1), "1 replica connected").replicas[0]
        dx = service.client()
        wait_until(lambda: dx.metrics(replica.sname), 5, "first samples")
        killed_at = time.time()
        os.kill(replica.pid, signal.SIGKILL)

        def gap_seen() -> bool:
            later = dx.metrics(replica.sname, killed_at + 0.05)
            return any(s.values["process_count"] is None for s in later)

        wait_until(gap_seen, 5, "a gap in the replica's series")
        gap = next(s for s in dx.metrics(replica.sname, killed_at + 0.05)
                   if s.values["process_count"] is None)  # fmt: skip
        assert all(gap.values[k] is None for k in ("process_count", "beam_memory", "rss"))
        last = dx.metrics(HOST)[-1].at
        wait_until(lambda: dx.metrics(HOST)[-1].at > last, 5, "the watchdog keeps sampling")


def test_host_memory_critical_restarts_the_replica_using_the_most_memory_and_only_it(
    release_dist: ReleaseDist, tmp_path: Path
) -> None:
    memory = psutil.virtual_memory()
    used = int((memory.total - memory.available) * 100 // memory.total)
    # The restart threshold a little above today's use; one replica then takes ~6 % of the
    # host in idle processes (~2.6 kB each), which crosses it.
    watch = {"type": "memory", "enable_restart": True, "warning_threshold_percent": used + 1,
             "restart_threshold_percent": used + 3}  # fmt: skip
    processes = int(memory.total * 0.06 / 2600)
    entry = app_entry(APP, replicas=2, ready_after_ms=1000,
                      env=[{"key": "ERL_AFLAGS", "value": f"+P {2 * processes}"}])  # fmt: skip
    config = write_config(tmp_path, [entry], watchdog_interval_ms=PERIOD_MS, monitoring=[watch])
    publish(config, release_dist, APP, "0.1.0")
    with running_service(config, tmp_path) as service:
        before = service.wait_app(APP, running(2), "2 replicas connected")
        big, small = before.replicas
        dx = service.client()
        assert dx.events(app=APP, kind="watchdog_restart") == []
        # local mode: the development cookie; the restart may come before the call returns
        with connect(big.node, "cookie") as link, contextlib.suppress(BeamError):
            link.rpc("mygleamapp", "spawn_idle", [processes], timeout=120)
        after = service.wait_app(
            APP, lambda a: any(r.sname == big.sname and r.pid != big.pid and r.status == "running"
                               for r in a.replicas), "the biggest replica restarted", 60,
        )  # fmt: skip
        samples_after(dx, small.sname, WINDOW_SAMPLES)  # a second victim would come now
        restarts = dx.events(app=APP, kind="watchdog_restart")
        assert [e.sname for e in restarts] == [big.sname], restarts
        assert "memory of host" in restarts[0].message
        assert next(r.pid for r in service.app(APP).replicas if r.sname == small.sname) == small.pid
        assert after.replicas  # the app is whole again
