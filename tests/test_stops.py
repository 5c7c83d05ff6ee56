"""A replica that ignores SIGTERM is killed after the grace period: in a forced restart, in a
rollout (the retired replica) and when DeployEx stops.

The fixture ignores SIGTERM through its own environment (`os:set_signal(sigterm, ignore)` given
to the VM in ERL_AFLAGS), the way a stuck application would.
"""

from __future__ import annotations

import signal
import time
from pathlib import Path

import pytest

from deployex_actors.actors.monitor import STOP_GRACE_S
from deployex_actors.core.status import AppSnapshot
from tests.beam_fixtures import ReleaseDist, wait_until
from tests.deployex_service import app_entry, process_alive, publish, running_service, write_config

pytestmark = pytest.mark.slow
APP = "mygleamapp"
# ERL_AFLAGS comes first on the VM's command line: before the app's own -eval, which never returns
DEAF = {"key": "ERL_AFLAGS", "value": "-eval os:set_signal(sigterm,ignore)"}


def running(version: str):
    def check(app: AppSnapshot) -> bool:
        return [(r.status, r.version) for r in app.replicas] == [("running", version)]

    return check


def killed_after_the_grace(pid: int, asked_at: float) -> None:
    """The process outlived SIGTERM for the grace period, then died (SIGKILL)."""
    wait_until(lambda: not process_alive(pid), STOP_GRACE_S + 20, f"replica {pid} gone")
    assert time.monotonic() - asked_at >= STOP_GRACE_S - 0.5, "it did not wait for the grace"


def test_a_replica_deaf_to_sigterm_is_killed_after_the_grace_period(
    release_dist: ReleaseDist, tmp_path: Path
) -> None:
    config = write_config(tmp_path, [app_entry(APP, replicas=1, env=[DEAF])])
    publish(config, release_dist, APP, "0.1.0")
    with running_service(config, tmp_path) as service:
        first = service.wait_app(APP, running("0.1.0"), "running").replicas[0]
        asked = time.monotonic()
        service.client().restart(APP, actor="test")
        killed_after_the_grace(first.pid, asked)
        again = service.wait_app(
            APP, lambda a: running("0.1.0")(a) and a.replicas[0].pid != first.pid, "restarted"
        )
        second = again.replicas[0]

        asked = time.monotonic()
        publish(config, release_dist, APP, "0.2.0")  # the 0.1.0 replica is retired
        killed_after_the_grace(second.pid, asked)
        third = service.wait_app(APP, running("0.2.0"), "rolled to 0.2.0").replicas[0]

        asked = time.monotonic()
        service.proc.send_signal(signal.SIGTERM)
        killed_after_the_grace(third.pid, asked)
        assert service.proc.wait(30) == 0
