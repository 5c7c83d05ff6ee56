"""The `deployex` command against a running DeployEx: what an operator types, what it prints."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from deployex_actors.core.status import AppSnapshot
from tests.beam_fixtures import ReleaseDist
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
# The documented schema of `deployex status --json` (docs/cli.md).
TOP_KEYS = {"version", "pid", "started_at", "host", "apps", "state_error"}
APP_KEYS = {"app", "language", "replicas_wanted", "desired_version", "error", "replicas", "mode",
            "pinned_version", "ghosts", "rollout"}  # fmt: skip
REPLICA_KEYS = {"app", "sname", "node", "version", "status", "slot", "ports", "pid", "started_at",
                "crash_restarts", "forced_restarts", "otp", "mtls", "adopted", "last_error",
                "restart_at", "ready_once", "upgrade"}  # fmt: skip


def cli(service: Service, *args: str) -> str:
    result = subprocess.run([DEPLOYEX, *args, "--config", str(service.config_path)],
                            capture_output=True, text=True, timeout=60)  # fmt: skip
    assert result.returncode == 0, result.stderr
    return result.stdout


def serving(count: int):
    def check(app: AppSnapshot) -> bool:
        return sum(r.status == "running" for r in app.replicas) == count == len(app.replicas)

    return check


def test_status_versions_and_events_print_what_deployex_knows(
    release_dist: ReleaseDist, tmp_path: Path
) -> None:
    config = write_config(tmp_path, [app_entry(APP, replicas=2)])
    publish(config, release_dist, APP, "0.1.0")
    with running_service(config, tmp_path) as service:
        app = service.wait_app(APP, serving(2), "two replicas")
        status = json.loads(cli(service, "status", "--json"))
        assert set(status) == TOP_KEYS and status["state_error"] is None
        (shown,) = status["apps"]
        assert set(shown) == APP_KEYS
        assert (shown["app"], shown["desired_version"], shown["mode"]) == (
            APP,
            "0.1.0",
            "automatic",
        )
        assert {r["sname"]: r["pid"] for r in shown["replicas"]} == {
            r.sname: r.pid for r in app.replicas
        }
        assert all(set(r) == REPLICA_KEYS for r in shown["replicas"])
        text = cli(service, "status")
        assert all(r.sname in text and str(r.pid) in text for r in app.replicas)

        history = cli(service, "versions", APP).splitlines()
        assert sorted(line.split()[3] for line in history) == sorted(r.sname for r in app.replicas)
        assert all(line.split()[2] == "0.1.0" for line in history)

        ready = cli(service, "events", "--app", APP, "--kind", "ready").splitlines()
        assert len(ready) == 2 and all(" ready " in line and APP in line for line in ready)
        assert len(cli(service, "events", "--kind", "ready", "--limit", "1").splitlines()) == 1
        everything = cli(service, "events", "--limit", "500")
        assert "deployex_started" in everything  # DeployEx's own events have no app...
        assert "deployex_started" not in cli(service, "events", "--app", APP, "--limit", "500")
