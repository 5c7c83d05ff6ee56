"""The fast set's touch of the actor code: a real actor system with one Gleam-shipment replica.

Not marked slow on purpose: `-m "not slow"` runs it, so a developer's quick loop starts the real
tree (root, Storage, Watchdog, Deployer, Monitor) and a real BEAM node in a few seconds.
"""

from __future__ import annotations

import os
import signal
from pathlib import Path

from deployex_actors.core.status import AppSnapshot
from tests.beam_fixtures import ReleaseDist
from tests.deployex_service import (
    app_entry,
    process_alive,
    publish,
    running_service,
    wait_banner,
    wait_gone,
    write_config,
)

APP = "mygleamapp"  # the quickest fixture to start: no release scripts


def running(app: AppSnapshot) -> bool:
    return len(app.replicas) == 1 and app.replicas[0].status == "running"


def test_a_replica_starts_is_restarted_after_a_crash_and_stops_with_deployex(
    release_dist: ReleaseDist, tmp_path: Path
) -> None:
    entry = app_entry(APP, replicas=1, ready_after_ms=300, restart_backoff_base_ms=0)
    config = write_config(tmp_path, [entry])
    publish(config, release_dist, APP, "0.1.0")
    with running_service(config, tmp_path) as service:
        first = service.wait_app(APP, running, "one replica running").replicas[0]
        wait_banner(first.ports["PORT"], f"{APP} 0.1.0\n")
        os.kill(first.pid, signal.SIGKILL)
        again = service.wait_app(
            APP, lambda a: running(a) and a.replicas[0].pid != first.pid, "restarted"
        ).replicas[0]
        assert (again.sname, again.crash_restarts) == (first.sname, 1)
        service.proc.send_signal(signal.SIGTERM)
        assert service.proc.wait(30) == 0
        wait_gone(again.pid)
        assert not process_alive(first.pid)
