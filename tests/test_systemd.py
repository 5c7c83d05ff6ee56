"""ops/systemd/deployex.service: what the unit declares, run against a real `deployex run`.

systemd cannot be PID 1 here. So: `systemd-analyze verify` checks the unit; the tests start
`deployex run` with the unit's ExecStart arguments and Environment, receive its sd_notify
datagrams on a socket they bind (NOTIFY_SOCKET), run the unit's ExecStop helper with $MAINPID as
systemd sets it, and signal the main pid only (KillMode=process). What systemd itself would add
(the cgroup, the watchdog's SIGABRT, the job types' real output) is listed in docs/operations.md.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from deployex_actors import service
from deployex_actors.sd_notify import NOTIFY_SOCKET_ENV, READY, STOPPING, WATCHDOG, notify
from tests.beam_fixtures import ReleaseDist, wait_until
from tests.deployex_service import (
    DEPLOYEX,
    Service,
    app_entry,
    banner,
    process_alive,
    publish,
    wait_gone,
    write_config,
)
from tests.systemd_unit import (
    STOP_HELPER,
    UNIT,
    NotifyListener,
    exec_start,
    fake_systemctl,
    notify_listener,
    run_stop_helper,
    seconds,
    service_value,
    unit_environment,
)

INSTALLED_DEPLOYEX = "/opt/deployex/current/bin/deployex"
INSTALLED_STOP_HELPER = "/usr/local/lib/deployex/deployex-stop"
ASK_TIMEOUT_S = 5  # the health loop's ask (service._serve)


# -- the unit file -------------------------------------------------------------------------------


def verify_copy(tmp_path: Path, unit_text: str) -> subprocess.CompletedProcess:
    """`systemd-analyze verify` on a copy of the unit whose commands exist under tmp_path."""
    for installed, source in ((INSTALLED_DEPLOYEX, DEPLOYEX), (INSTALLED_STOP_HELPER, STOP_HELPER)):
        target = tmp_path / installed.lstrip("/")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.symlink_to(source)
        unit_text = unit_text.replace(installed, str(target))
    copy = tmp_path / "deployex.service"
    copy.write_text(unit_text)
    return subprocess.run(
        ["systemd-analyze", "verify", str(copy)], capture_output=True, text=True, timeout=60
    )


@pytest.mark.skipif(not shutil.which("systemd-analyze"), reason="no systemd-analyze here")
def test_the_unit_passes_systemd_analyze_verify(tmp_path: Path) -> None:
    text = UNIT.read_text()
    assert INSTALLED_DEPLOYEX in text and INSTALLED_STOP_HELPER in text
    result = verify_copy(tmp_path, text)
    assert result.returncode == 0 and not (result.stdout + result.stderr).strip(), result


def test_the_unit_runs_deployex_as_a_notify_service_that_keeps_replicas_on_sigterm() -> None:
    assert service_value("Type") == "notify"
    assert service_value("NotifyAccess") == "main"  # the actors are not the service's voice
    assert service_value("KillMode") == "process"  # the replicas live in the unit's cgroup
    assert exec_start() == [INSTALLED_DEPLOYEX, "run", "--keep-replicas"]
    assert service_value("ExecStop") == f"+{INSTALLED_STOP_HELPER}"
    assert service_value("User") == service_value("Group") == "deployex"
    assert service_value("Restart") == "on-failure"
    for limit in ("LimitNPROC", "LimitCORE", "LimitNOFILE"):
        assert service_value(limit) == "infinity"
    assert unit_environment()["DEPLOYEX_CONFIG_YAML_PATH"] == "/etc/deployex/deployex.yaml"


def test_the_unit_waits_longer_than_deployex_takes() -> None:
    # A root that does not answer makes the launcher exit by itself after HEALTH_FAILURES
    # misses; systemd's watchdog is for a launcher that hangs, so it must wait longer than that,
    # and than an in-place `deployex restart` (the old system leaving, then the boot's 30 s).
    noticed_by_launcher = service.HEALTH_FAILURES * (service.HEALTH_PERIOD_S + ASK_TIMEOUT_S)
    watchdog = seconds(service_value("WatchdogSec"))
    assert watchdog >= 2 * noticed_by_launcher
    assert watchdog > service.RESTART_WAIT_S + 30 + service.HEALTH_PERIOD_S
    assert seconds(service_value("TimeoutStopSec")) > service.STOP_TIMEOUT_S


# -- sd_notify -----------------------------------------------------------------------------------


def test_notify_reaches_a_path_socket_and_an_abstract_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for folder in (tmp_path, None):
        with notify_listener(folder) as listener:
            monkeypatch.setenv(NOTIFY_SOCKET_ENV, listener.address)
            assert notify(READY, WATCHDOG)
            listener.wait_for(WATCHDOG, deadline_s=5)
            assert listener.states() == ["READY=1\nWATCHDOG=1"]


def test_notify_does_nothing_outside_systemd_and_survives_a_gone_socket(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(NOTIFY_SOCKET_ENV, raising=False)
    assert notify(READY) is False
    monkeypatch.setenv(NOTIFY_SOCKET_ENV, str(tmp_path / "gone.sock"))
    assert notify(STOPPING) is False


# -- the ExecStop helper with a plain process as the main pid ------------------------------------


@pytest.fixture
def main_process() -> Iterator[subprocess.Popen]:
    """Stands in for the launcher: takes a second to leave after SIGUSR2, exiting 7."""
    script = 'trap "sleep 1; exit 7" USR2; while true; do sleep 0.1; done'
    proc = subprocess.Popen(["sh", "-c", script])
    yield proc
    proc.kill()
    proc.wait()


def test_stop_helper_on_a_stop_job_signals_the_main_pid_and_waits_for_it(
    tmp_path: Path, main_process: subprocess.Popen
) -> None:
    env = fake_systemctl(tmp_path, "41 deployex.service stop running")
    result = run_stop_helper(main_process.pid, env)
    assert result.returncode == 0, result
    assert main_process.poll() == 7  # it got SIGUSR2, and the helper waited until it left
    assert (tmp_path / "systemctl.args").read_text() == "list-jobs --no-legend deployex.service\n"


@pytest.mark.parametrize(
    "jobs_line", ["42 deployex.service restart running", "43 deployex.service try-restart running"]
)
def test_stop_helper_on_a_restart_job_leaves_the_main_pid_alone(
    tmp_path: Path, main_process: subprocess.Popen, jobs_line: str
) -> None:
    result = run_stop_helper(main_process.pid, fake_systemctl(tmp_path, jobs_line))
    assert result.returncode == 0 and "keep running" in result.stdout, result
    assert main_process.poll() is None


def test_stop_helper_keeps_the_replicas_when_systemd_cannot_say_or_nothing_runs(
    tmp_path: Path, main_process: subprocess.Popen
) -> None:
    result = run_stop_helper(main_process.pid, fake_systemctl(tmp_path, None))
    assert result.returncode == 0 and "cannot ask systemd" in result.stderr, result
    assert main_process.poll() is None
    crashed = run_stop_helper(None, fake_systemctl(tmp_path / "crash", "1 x stop running"))
    assert crashed.returncode == 0 and "no main process" in crashed.stdout, crashed
    assert not (tmp_path / "crash" / "systemctl.args").exists()


# -- a real `deployex run` started as the unit starts it -----------------------------------------


def unit_service(tmp_path: Path, config: Path, notify_address: str) -> Service:
    """A Service whose `deployex run` gets the unit's arguments and environment (the YAML path
    pointed at the test's), and NOTIFY_SOCKET like systemd sets it."""
    env = {**os.environ, **unit_environment(), NOTIFY_SOCKET_ENV: notify_address}
    env["DEPLOYEX_CONFIG_YAML_PATH"] = str(config)
    return Service(config, tmp_path, env=env)


@contextlib.contextmanager
def running_like_the_unit(
    release_dist: ReleaseDist, tmp_path: Path, replicas: int, abstract: bool = False
) -> Iterator[tuple[Service, subprocess.Popen, NotifyListener]]:
    """`deployex run` started as the unit starts it, `replicas` of mygleamapp 0.1.0 published;
    the notify socket is abstract (as systemd's own is) or a path in tmp_path."""
    config = write_config(tmp_path, [app_entry("mygleamapp", replicas=replicas)])
    publish(config, release_dist, "mygleamapp", "0.1.0")
    with notify_listener(None if abstract else tmp_path) as listener:
        svc = unit_service(tmp_path, config, listener.address)
        try:
            yield svc, start_like_the_unit(svc), listener
        finally:
            svc.kill_everything()


def start_like_the_unit(svc: Service) -> subprocess.Popen:
    binary, command, *options = exec_start()
    assert binary == INSTALLED_DEPLOYEX and command == "run"
    return svc.start(*options)


def running(count: int):
    def check(app) -> bool:
        return sum(r.status == "running" and r.otp == "connected" for r in app.replicas) == count

    return check


def root_actor(svc: Service) -> psutil.Process:
    found = [p for p in svc.system_processes() if p.name() == "dx-Root"]
    assert len(found) == 1, found
    return found[0]


@pytest.mark.slow
def test_ready_once_the_tree_answers_and_watchdog_only_while_the_root_answers(
    release_dist: ReleaseDist, tmp_path: Path
) -> None:
    with running_like_the_unit(release_dist, tmp_path, 1, abstract=True) as (svc, _, listener):
        listener.wait_for(READY)
        assert svc.client().ping()
        listener.wait_for(WATCHDOG, times=2, deadline_s=3 * service.HEALTH_PERIOD_S)
        root = root_actor(svc)
        root.suspend()  # a wedged root: the launcher's ping goes unanswered
        try:
            frozen_at = time.monotonic() + ASK_TIMEOUT_S  # a ping may be on its way
            time.sleep(2 * service.HEALTH_PERIOD_S + ASK_TIMEOUT_S)  # the silence itself
            assert listener.since(frozen_at, WATCHDOG) == 0, listener.received
        finally:
            root.resume()
        before = listener.count(WATCHDOG)
        listener.wait_for(WATCHDOG, before + 1, deadline_s=3 * service.HEALTH_PERIOD_S)
        assert svc.proc.poll() is None


@pytest.mark.slow
def test_the_stop_path_stops_the_replicas_cleanly(
    release_dist: ReleaseDist, tmp_path: Path
) -> None:
    with running_like_the_unit(release_dist, tmp_path, 2) as (svc, launcher, listener):
        snapshot = svc.wait_app("mygleamapp", running(2), "2 replicas running")
        env = fake_systemctl(tmp_path / "bin", "7 deployex.service stop running")
        result = run_stop_helper(launcher.pid, env)
        assert result.returncode == 0, result
        assert launcher.wait(10) == 0
        for replica in snapshot.replicas:
            wait_gone(replica.pid)
        wait_until(lambda: not svc.system_processes(), 20, "actor processes gone")
        assert "stopping the replicas" in svc.output()
        listener.wait_for(STOPPING, deadline_s=5)


@pytest.mark.slow
def test_restart_and_crash_keep_the_replicas_and_the_next_start_adopts_them(
    release_dist: ReleaseDist, tmp_path: Path
) -> None:
    with running_like_the_unit(release_dist, tmp_path, 2) as (svc, launcher, listener):
        before = svc.wait_app("mygleamapp", running(2), "2 replicas running")
        pids = {r.sname: r.pid for r in before.replicas}

        # systemctl restart: ExecStop on a restart job, then SIGTERM to the main pid only
        env = fake_systemctl(tmp_path / "bin", "8 deployex.service restart running")
        assert run_stop_helper(launcher.pid, env).returncode == 0
        assert launcher.poll() is None
        launcher.send_signal(signal.SIGTERM)
        assert launcher.wait(60) == 0
        wait_until(lambda: not svc.system_processes(), 20, "actor processes gone")
        for replica in before.replicas:
            assert banner(replica.ports["PORT"]) == "mygleamapp 0.1.0\n"
        launcher = start_like_the_unit(svc)
        svc.wait_started(2)
        after = svc.wait_app("mygleamapp", running(2), "replicas adopted after a restart")
        assert {r.sname: r.pid for r in after.replicas} == pids
        assert all(r.adopted for r in after.replicas)

        # a crash: the main pid dies (kill -9, or systemd's watchdog SIGABRT); its actor
        # system lives on; ExecStop runs without $MAINPID, then Restart=on-failure starts it
        launcher.kill()
        launcher.wait(10)
        assert run_stop_helper(None, env).returncode == 0
        assert svc.system_processes(), "the crashed launcher's actor system is still there"
        start_like_the_unit(svc)
        svc.wait_started(3)
        after = svc.wait_app("mygleamapp", running(2), "replicas adopted after a crash")
        assert {r.sname: r.pid for r in after.replicas} == pids
        assert all(process_alive(pid) for pid in pids.values())
        assert "previous launcher" in svc.output()
        listener.wait_for(READY, times=3)
