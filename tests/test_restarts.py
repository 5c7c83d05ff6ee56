"""Restarts long after a deployment are restarts: same snames, same version, never a rollback.

The rollback timer belongs to a deployment and stops at its first ready. Each test here lets
that timer run out first (a short `deploy_rollback_timeout_ms`), then restarts replicas the way
an operator, a crash, the watchdog or a restarted DeployEx would, and checks that the app comes
back whole: N replicas serving the version they served, under the same snames, nothing ghosted.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from deployex_actors.beam import connect
from deployex_actors.core.status import AppSnapshot
from tests.beam_fixtures import ReleaseDist, wait_until
from tests.deployex_service import (
    DEPLOYEX,
    Service,
    app_entry,
    publish,
    running_service,
    wait_banner,
    write_config,
)

pytestmark = pytest.mark.slow
ROLLBACK_TIMEOUT_MS = 3000
REPLICAS = 3


def serving(version: str, count: int = REPLICAS):
    def check(app: AppSnapshot) -> bool:
        ready = [r for r in app.replicas if r.status == "running" and r.version == version]
        return len(ready) == count == len(app.replicas)

    return check


def back_with_new_pids(before: AppSnapshot, victims: set[str]):
    """Every replica serves again under its old sname; each victim with a new OS process."""
    old = {r.sname: r.pid for r in before.replicas}

    def check(app: AppSnapshot) -> bool:
        now = {r.sname: r.pid for r in app.replicas}
        return (
            serving("0.1.0")(app)
            and set(now) == set(old)
            and all(now[s] not in (None, old[s]) for s in victims)
        )

    return check


def kill_replica(pid: int) -> None:
    os.killpg(pid, signal.SIGKILL)  # the whole replica: it runs in its own session


def cli(config: Path, *args: str) -> str:
    result = subprocess.run([DEPLOYEX, *args, "--config", str(config)],
                            capture_output=True, text=True, timeout=60)  # fmt: skip
    assert result.returncode == 0, result.stderr
    return result.stdout


def assert_whole(service: Service, app: str, before: AppSnapshot) -> None:
    after = service.app(app)
    assert {r.sname for r in after.replicas} == {r.sname for r in before.replicas}
    for replica in after.replicas:
        wait_banner(replica.ports["PORT"], f"{app} 0.1.0\n")
    dx = service.client()
    assert dx.ghosts(app) == [] and after.ghosts == ()
    assert dx.events(app=app, kind="rollback") == []
    assert dx.events(app=app, kind="retire") == []
    assert len(dx.events(app=app, kind="deploy")) == REPLICAS  # the first deployment only


def deployed_long_ago(service: Service, app: str) -> AppSnapshot:
    before = service.wait_app(app, serving("0.1.0"), f"{REPLICAS} replicas of 0.1.0")
    ready_at = time.time()
    # Past the rollback timeout of the deployment: the condition the outage needed.
    wait_until(lambda: time.time() - ready_at > ROLLBACK_TIMEOUT_MS / 1000 + 0.5, 10,
               "the rollback timeout passed")  # fmt: skip
    return before


def configured(tmp_path: Path, release_dist: ReleaseDist, app: str, **extra: object) -> Path:
    entry = app_entry(app, replicas=REPLICAS, ready_after_ms=1000,
                      deploy_rollback_timeout_ms=ROLLBACK_TIMEOUT_MS, **extra)  # fmt: skip
    top = {"watchdog_interval_ms": 300} if "monitoring" in extra else {}
    config = write_config(tmp_path, [entry], **top)
    publish(config, release_dist, app, "0.1.0")
    return config


@pytest.mark.parametrize("scope", ["app", "sname"])
def test_deployex_restart_command_restarts_in_place_long_after_the_deployment(
    scope: str, release_dist: ReleaseDist, tmp_path: Path
) -> None:
    app = "myerlangapp"
    config = configured(tmp_path, release_dist, app)
    with running_service(config, tmp_path) as service:
        before = deployed_long_ago(service, app)
        if scope == "app":
            victims = {r.sname for r in before.replicas}
            cli(config, "restart", app)
        else:
            victims = {before.replicas[1].sname}
            cli(config, "restart", app, before.replicas[1].sname)
        after = service.wait_app(app, back_with_new_pids(before, victims), "restarted in place")
        assert all(r.forced_restarts == (r.sname in victims) for r in after.replicas)
        assert_whole(service, app, before)


@pytest.mark.parametrize("how_many", ["one", "all"])
def test_kill_9_long_after_the_deployment_is_a_crash_restart_in_place(
    how_many: str, release_dist: ReleaseDist, tmp_path: Path
) -> None:
    app = "myerlangapp"
    config = configured(tmp_path, release_dist, app)
    with running_service(config, tmp_path) as service:
        before = deployed_long_ago(service, app)
        targets = before.replicas[:1] if how_many == "one" else before.replicas
        for replica in targets:
            kill_replica(replica.pid)
        victims = {r.sname for r in targets}
        after = service.wait_app(app, back_with_new_pids(before, victims), "crash-restarted")
        assert all(r.crash_restarts == (r.sname in victims) for r in after.replicas)
        assert_whole(service, app, before)


def test_a_watchdog_restart_long_after_the_deployment_restarts_in_place(
    release_dist: ReleaseDist, tmp_path: Path
) -> None:
    app = "mygleamapp"
    watch = {"type": "process", "enable_restart": True,
             "warning_threshold_percent": 30, "restart_threshold_percent": 60}  # fmt: skip
    # +P 1024: a process limit small enough to cross from the test
    config = configured(tmp_path, release_dist, app, monitoring=[watch],
                        env=[{"key": "ERL_FLAGS", "value": "+P 1024"}])  # fmt: skip
    with running_service(config, tmp_path) as service:
        before = deployed_long_ago(service, app)
        victim = before.replicas[0]
        linked = lambda a: any(r.sname == victim.sname and r.otp == "connected" for r in a.replicas)  # noqa: E731
        service.wait_app(app, linked, "linked")
        with connect(victim.node, "cookie") as link:  # local mode: the development cookie
            link.rpc("mygleamapp", "spawn_idle", [800])  # ~80 % of 1024: critical
        service.wait_app(app, back_with_new_pids(before, {victim.sname}), "watchdog restarted")
        assert service.client().events(app=app, kind="watchdog_restart")
        assert_whole(service, app, before)


def test_a_crash_after_deployex_restarted_is_a_restart_not_a_rollback(
    release_dist: ReleaseDist, tmp_path: Path
) -> None:
    app = "myerlangapp"
    config = configured(tmp_path, release_dist, app)
    with running_service(config, tmp_path) as service:
        before = deployed_long_ago(service, app)
        service.kill_deployex()
        service.start()
        adopted = service.wait_app(app, serving("0.1.0"), "replicas adopted")
        assert {r.sname: r.pid for r in adopted.replicas} == {
            r.sname: r.pid for r in before.replicas
        }
        kill_replica(before.replicas[2].pid)
        service.wait_app(app, back_with_new_pids(before, {before.replicas[2].sname}),
                         "crash-restarted after the DeployEx restart")  # fmt: skip
        # and once more with every replica down at the same moment
        now = service.app(app)
        for replica in now.replicas:
            kill_replica(replica.pid)
        service.wait_app(app, back_with_new_pids(now, {r.sname for r in now.replicas}),
                         "all crash-restarted after the DeployEx restart")  # fmt: skip
        assert_whole(service, app, before)


def test_replicas_that_died_while_deployex_was_down_come_back_under_their_snames(
    release_dist: ReleaseDist, tmp_path: Path
) -> None:
    """A host reboot, as DeployEx sees it: it and every replica gone, then DeployEx starts."""
    app = "myerlangapp"
    config = configured(tmp_path, release_dist, app)
    with running_service(config, tmp_path) as service:
        before = deployed_long_ago(service, app)
        service.kill_deployex()
        for replica in before.replicas:
            kill_replica(replica.pid)
        service.start()
        service.wait_app(app, back_with_new_pids(before, {r.sname for r in before.replicas}),
                         "started again under their snames")  # fmt: skip
        assert_whole(service, app, before)
