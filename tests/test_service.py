"""`deployex run` with real replicas: supervision, crash restarts, adoption, clean stops."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
from pathlib import Path

import psutil
import pytest

from deployex_actors.beam import connect
from deployex_actors.core.backoff import SupervisorPolicy
from deployex_actors.core.status import AppSnapshot, ReplicaSnapshot
from deployex_actors.errors import BeamError
from tests.beam_fixtures import LANGUAGES, ReleaseDist, wait_until
from tests.deployex_service import (
    DEPLOYEX,
    Service,
    actor_children,
    app_entry,
    banner,
    process_alive,
    publish,
    running_service,
    wait_gone,
    write_config,
)

pytestmark = pytest.mark.slow


def all_running(count: int, version: str = "0.1.0"):
    def check(app: AppSnapshot) -> bool:
        running = [r for r in app.replicas if r.status == "running" and r.version == version]
        return len(running) == count and all(r.otp == "connected" for r in running)

    return check


def pids(app: AppSnapshot) -> dict[str, int]:
    return {r.sname: r.pid for r in app.replicas}


@pytest.mark.parametrize("app", sorted(LANGUAGES))
def test_three_replicas_come_up_on_their_ports_and_answer_with_their_version(
    app: str, release_dist: ReleaseDist, tmp_path: Path
) -> None:
    entry = app_entry(app)
    config = write_config(tmp_path, [entry])
    publish(config, release_dist, app, "0.1.0")
    with running_service(config, tmp_path) as service:
        snapshot = service.wait_app(app, all_running(3), "3 replicas running")
        base = entry["replica_ports"][0]["base"]
        assert sorted(r.ports["PORT"] for r in snapshot.replicas) == [base, base + 1, base + 2]
        for replica in snapshot.replicas:
            assert banner(replica.ports["PORT"]) == f"{app} 0.1.0\n"
        history = service.client().versions(app)
        assert sorted(h.sname for h in history) == sorted(pids(snapshot))
        log = service.catalog.deployex_stdout_log  # the actors' log reaches DeployEx's log file
        wait_until(lambda: "deployex_started" in log.read_text(), 10, f"actor log lines in {log}")


def test_a_killed_replica_is_restarted_with_a_new_pid_and_counted(
    release_dist: ReleaseDist, tmp_path: Path
) -> None:
    config = write_config(tmp_path, [app_entry("mygleamapp", replicas=2)])
    publish(config, release_dist, "mygleamapp", "0.1.0")
    with running_service(config, tmp_path) as service:
        before = service.wait_app("mygleamapp", all_running(2), "2 replicas running")
        victim = before.replicas[0]
        os.kill(victim.pid, signal.SIGKILL)
        after = service.wait_app(
            "mygleamapp",
            lambda a: any(
                r.sname == victim.sname
                and r.pid not in (None, victim.pid)
                and r.status == "running"
                for r in a.replicas
            ),
            "the killed replica running again with a new pid",
        )
        again = next(r for r in after.replicas if r.sname == victim.sname)
        assert again.crash_restarts == 1
        assert banner(again.ports["PORT"]) == "mygleamapp 0.1.0\n"
        other = next(r for r in after.replicas if r.sname != victim.sname)
        assert other.pid == before.replicas[1].pid and other.crash_restarts == 0
        kinds = [e.kind for e in service.client().events(app="mygleamapp")]
        assert "crash" in kinds


def test_a_crashing_version_is_restarted_with_a_growing_backoff(
    release_dist: ReleaseDist, tmp_path: Path
) -> None:
    # ready_after_ms above the 2 s it lives, so each crash extends the streak
    config = write_config(tmp_path, [app_entry("mygleamapp", replicas=1, ready_after_ms=10_000)])
    publish(config, release_dist, "mygleamapp", "0.3.0")  # halts 2 s after boot
    with running_service(config, tmp_path) as service:
        service.wait_app(
            "mygleamapp",
            lambda a: a.replicas and a.replicas[0].crash_restarts >= 3,
            "three crash restarts",
            deadline_s=90,
        )
        crashes = [e for e in service.client().events(app="mygleamapp", kind="crash")][::-1]
        delays = [float(e.message.split(" in ")[1].split()[0]) for e in crashes[:3]]
        assert delays == sorted(delays) and delays[0] < delays[2]  # 0.3 s, 0.6 s, 0.9 s


def test_a_killed_monitor_leaves_its_replica_running_and_the_new_one_adopts_it(
    release_dist: ReleaseDist, tmp_path: Path
) -> None:
    config = write_config(tmp_path, [app_entry("myerlangapp", replicas=2)])
    publish(config, release_dist, "myerlangapp", "0.1.0")
    with running_service(config, tmp_path) as service:
        before = service.wait_app("myerlangapp", all_running(2), "2 replicas running")
        replica = before.replicas[0]
        monitor = psutil.Process(replica.pid).ppid()
        os.kill(monitor, signal.SIGKILL)
        wait_gone(monitor)
        after = service.wait_app(
            "myerlangapp",
            lambda a: any(
                r.sname == replica.sname and r.adopted and r.otp == "connected" for r in a.replicas
            ),
            "the replica adopted by a new Monitor",
        )
        assert pids(after) == pids(before)
        assert all(r.crash_restarts == 0 for r in after.replicas)
        assert banner(replica.ports["PORT"]) == "myerlangapp 0.1.0\n"


@pytest.mark.parametrize("victim", ["Deployer", "Storage"])
def test_a_killed_deployer_or_storage_is_restarted_and_replicas_are_untouched(
    victim: str, release_dist: ReleaseDist, tmp_path: Path
) -> None:
    config = write_config(tmp_path, [app_entry("mygleamapp", replicas=2)])
    publish(config, release_dist, "mygleamapp", "0.1.0")
    with running_service(config, tmp_path) as service:
        before = service.wait_app("mygleamapp", all_running(2), "2 replicas running")
        monitor = psutil.Process(before.replicas[0].pid).ppid()
        deployer = psutil.Process(monitor).ppid()
        root = psutil.Process(deployer).ppid()
        if victim == "Deployer":
            target = deployer
        else:  # Storage: the root's child that holds the state database open
            (target,) = [
                c.pid
                for c in psutil.Process(root).children()
                if any(f.path.endswith("deployex.db") for f in c.open_files())
            ]
        monitors = [psutil.Process(r.pid).ppid() for r in before.replicas]
        os.kill(target, signal.SIGKILL)
        if victim == "Deployer":  # its Monitors leave with it: no twin of a Monitor remains
            for pid in monitors:
                wait_gone(pid)

        name = "deployer:mygleamapp" if victim == "Deployer" else "storage"

        def restarted() -> bool:
            try:
                events = service.client().events(kind="actor_restart")
            except Exception:  # Storage itself may be restarting: "try again"
                return False
            return any(e.message.startswith(f"{name} restarted") for e in events)

        wait_until(restarted, 20, f"{victim} restarted by the root supervisor")
        if victim == "Deployer":  # the new Deployer's Monitors adopt the running replicas
            service.wait_app(
                "mygleamapp", lambda a: all(r.adopted for r in a.replicas), "replicas adopted"
            )
        after = service.wait_app("mygleamapp", all_running(2), "replicas reported again")
        assert pids(after) == pids(before)
        assert all(r.crash_restarts == 0 for r in after.replicas)
        assert target not in [c.pid for c in psutil.Process(root).children()]


def monitor_and_deployer(service: Service) -> tuple[ReplicaSnapshot, int, int]:
    """The one mygleamapp replica once running, its Monitor's pid and its Deployer's pid."""
    replica = service.wait_app("mygleamapp", all_running(1), "running").replicas[0]
    monitor = psutil.Process(replica.pid).ppid()
    return replica, monitor, psutil.Process(monitor).ppid()


def test_a_monitor_that_keeps_dying_makes_its_deployer_escalate_to_the_root(
    release_dist: ReleaseDist, tmp_path: Path
) -> None:
    config = write_config(tmp_path, [app_entry("mygleamapp", replicas=1)])
    publish(config, release_dist, "mygleamapp", "0.1.0")
    with running_service(config, tmp_path) as service:
        replica, _monitor, deployer = monitor_and_deployer(service)
        policy = SupervisorPolicy()
        killed: set[int] = set()
        for _ in range(policy.max_restarts + 1):  # one more failure than allowed, in seconds

            def new_monitor() -> list[int]:
                return actor_children(deployer, "Monitor", tuple(killed))

            def adoptions() -> int:
                return len(service.client().events(app="mygleamapp", kind="adopted"))

            # each Monitor took the replica over before it dies (one that dies while starting is
            # only noticed after CHILD_START_S: see the next test), so the failures come fast
            wait_until(lambda: adoptions() >= len(killed), 20, f"adoption {len(killed)}")
            wait_until(new_monitor, 20, "the Deployer started its Monitor again")
            (target,) = new_monitor()
            killed.add(target)
            os.kill(target, signal.SIGKILL)
        wait_gone(deployer)  # it gave up: escalated

        def deployer_restarted() -> bool:
            events = service.client().events(kind="actor_restart")
            return any(e.message.startswith("deployer:mygleamapp restarted") for e in events)

        wait_until(deployer_restarted, 30, "the root restarted the Deployer")
        adopted = lambda a: all_running(1)(a) and a.replicas[0].adopted  # noqa: E731
        after = service.wait_app("mygleamapp", adopted, "adopted by the new Deployer's Monitor")
        assert after.replicas[0].pid == replica.pid and after.replicas[0].crash_restarts == 0


def test_a_monitor_killed_while_it_starts_is_started_again(
    release_dist: ReleaseDist, tmp_path: Path
) -> None:
    config = write_config(tmp_path, [app_entry("mygleamapp", replicas=1)])
    publish(config, release_dist, "mygleamapp", "0.1.0")
    with running_service(config, tmp_path) as service:
        replica, first, deployer = monitor_and_deployer(service)

        def monitors_other_than(*gone: int) -> list[int]:
            return actor_children(deployer, "Monitor", gone)

        os.kill(first, signal.SIGKILL)
        wait_until(lambda: monitors_other_than(first), 20, "a new Monitor process")
        (starting,) = monitors_other_than(first)
        os.kill(starting, signal.SIGKILL)  # at once: before it could connect to its Deployer
        wait_until(lambda: monitors_other_than(first, starting), 30, "a third Monitor")
        after = service.wait_app(
            "mygleamapp", lambda a: all_running(1)(a) and a.replicas[0].adopted, "adopted again"
        )
        assert after.replicas[0].pid == replica.pid


def test_killing_all_of_deployex_leaves_replicas_serving_and_the_next_run_adopts_them(
    release_dist: ReleaseDist, tmp_path: Path
) -> None:
    config = write_config(tmp_path, [app_entry("myelixirapp", replicas=2)])
    publish(config, release_dist, "myelixirapp", "0.1.0")
    with running_service(config, tmp_path) as service:
        before = service.wait_app("myelixirapp", all_running(2), "2 replicas running")
        for proc in service.system_processes():
            proc.kill()
        service.proc.kill()
        service.proc.wait(10)
        wait_until(lambda: not service.system_processes(), 15, "DeployEx processes gone")
        for replica in before.replicas:
            assert banner(replica.ports["PORT"]) == "myelixirapp 0.1.0\n"
        service.start()
        after = service.wait_app("myelixirapp", all_running(2), "replicas adopted again")
        assert pids(after) == pids(before)
        assert all(r.adopted and r.crash_restarts == 0 for r in after.replicas)


def test_sigterm_stops_the_replicas_and_leaves_nothing_running(
    release_dist: ReleaseDist, tmp_path: Path
) -> None:
    config = write_config(tmp_path, [app_entry("mygleamapp", replicas=2)])
    publish(config, release_dist, "mygleamapp", "0.1.0")
    with running_service(config, tmp_path) as service:
        snapshot = service.wait_app("mygleamapp", all_running(2), "2 replicas running")
        service.proc.send_signal(signal.SIGTERM)
        assert service.proc.wait(60) == 0
        for replica in snapshot.replicas:
            wait_gone(replica.pid)
        wait_until(lambda: not service.system_processes(), 20, "actor processes gone")
        assert "stopping the replicas" in service.output()


def test_keep_replicas_leaves_them_running_on_sigterm(
    release_dist: ReleaseDist, tmp_path: Path
) -> None:
    config = write_config(tmp_path, [app_entry("mygleamapp", replicas=1)])
    publish(config, release_dist, "mygleamapp", "0.1.0")
    with running_service(config, tmp_path, "--keep-replicas") as service:
        snapshot = service.wait_app("mygleamapp", all_running(1), "1 replica running")
        service.proc.send_signal(signal.SIGTERM)
        assert service.proc.wait(60) == 0
        wait_until(lambda: not service.system_processes(), 20, "actor processes gone")
        assert process_alive(snapshot.replicas[0].pid)


def test_a_failing_pre_command_shows_pre_commands_and_is_retried(
    release_dist: ReleaseDist, tmp_path: Path
) -> None:
    config = write_config(tmp_path, [app_entry("mygleamapp", replicas=1)])
    publish(config, release_dist, "mygleamapp", "0.1.0", pre=("eval erlang:halt(3)",))
    with running_service(config, tmp_path) as service:
        snapshot = service.wait_app(
            "mygleamapp",
            lambda a: (
                a.replicas
                and a.replicas[0].status == "pre_commands"
                and "status 3" in (a.replicas[0].last_error or "")
            ),
            "status pre_commands with the failure",
        )
        assert snapshot.replicas[0].pid is None
        wait_until(
            lambda: len(service.client().events(app="mygleamapp", kind="pre_command_failed")) >= 2,
            30,
            "the pre-command retried",
        )


def test_a_passing_pre_command_runs_before_the_replica_starts(
    release_dist: ReleaseDist, tmp_path: Path
) -> None:
    marker = tmp_path / "migrated"
    config = write_config(tmp_path, [app_entry("mygleamapp", replicas=1)])
    pre = (f'eval file:write_file("{marker}", <<"ok">>)',)
    publish(config, release_dist, "mygleamapp", "0.1.0", pre=pre)
    with running_service(config, tmp_path) as service:
        service.wait_app("mygleamapp", all_running(1), "1 replica running")
        assert marker.read_text() == "ok"


def test_pre_commands_run_again_before_every_restart_and_an_exit_0_is_a_crash(
    release_dist: ReleaseDist, tmp_path: Path
) -> None:
    runs = tmp_path / "pre-command-runs"
    config = write_config(tmp_path, [app_entry("mygleamapp", replicas=1,
                                               restart_backoff_base_ms=0)])  # fmt: skip
    pre = (f'eval file:write_file("{runs}", <<"run\\n">>, [append])',)
    publish(config, release_dist, "mygleamapp", "0.1.0", pre=pre)

    def run_count() -> int:
        return len(runs.read_text().splitlines())

    def new_process(old_pid: int):
        return lambda a: all_running(1)(a) and a.replicas[0].pid != old_pid

    with running_service(config, tmp_path) as service:
        first = service.wait_app("mygleamapp", all_running(1), "running").replicas[0]
        assert run_count() == 1
        os.kill(first.pid, signal.SIGKILL)  # a crash restart
        second = service.wait_app("mygleamapp", new_process(first.pid), "crash-restarted")
        assert run_count() == 2
        service.client().restart("mygleamapp", actor="test")  # a forced restart
        third = service.wait_app("mygleamapp", new_process(second.replicas[0].pid), "forced")
        assert run_count() == 3
        node = third.replicas[0].node
        # the node halts under the call: no answer comes
        with connect(node, "cookie") as link, contextlib.suppress(BeamError):
            link.rpc("erlang", "halt", [0], timeout=2)
        after = service.wait_app("mygleamapp", new_process(third.replicas[0].pid), "exit 0")
        assert after.replicas[0].crash_restarts == 2  # the kill -9 and the exit with status 0
        assert run_count() == 4
        crashes = service.client().events(app="mygleamapp", kind="crash")
        assert any("status 0" in e.message for e in crashes), crashes


def test_no_socket_listens_beyond_loopback_or_in_the_abstract_namespace(
    release_dist: ReleaseDist, tmp_path: Path
) -> None:
    """Abstract UNIX sockets have no permissions: any local user could send to one, or take
    its name first; ours are files in the private var_path."""
    config = write_config(tmp_path, [app_entry("mygleamapp", replicas=1)])
    publish(config, release_dist, "mygleamapp", "0.1.0")
    with running_service(config, tmp_path) as service:
        service.wait_app("mygleamapp", all_running(1), "1 replica running")
        pids_of_system = {p.pid for p in service.system_processes()} | {service.proc.pid}
        listening = [
            c for c in psutil.net_connections("inet")
            if c.pid in pids_of_system and c.status == psutil.CONN_LISTEN
        ]  # fmt: skip
        assert listening, "the actor system should listen somewhere"
        assert {c.laddr.ip for c in listening} == {"127.0.0.1"}, listening
        unix = [c.laddr for c in psutil.net_connections("unix") if c.pid in pids_of_system]
        assert str(service.catalog.samples_socket) in unix
        assert not [name for name in unix if name.startswith(("\0", "@"))], unix


def test_a_second_run_refuses_to_start(release_dist: ReleaseDist, tmp_path: Path) -> None:
    config = write_config(tmp_path, [app_entry("mygleamapp", replicas=1)])
    publish(config, release_dist, "mygleamapp", "0.1.0")
    with running_service(config, tmp_path):
        second = subprocess.run(
            [DEPLOYEX, "run", "--config", str(config)], capture_output=True, text=True, timeout=60
        )
        assert second.returncode == 1
        assert "already running" in second.stderr


def test_cli_status_and_shell_report_what_the_facade_reports(
    release_dist: ReleaseDist, tmp_path: Path
) -> None:
    config = write_config(tmp_path, [app_entry("mygleamapp", replicas=1)])
    publish(config, release_dist, "mygleamapp", "0.1.0")
    with running_service(config, tmp_path) as service:
        app = service.wait_app("mygleamapp", all_running(1), "1 replica running")
        sname, pid = app.replicas[0].sname, app.replicas[0].pid
        cli = subprocess.run([DEPLOYEX, "status", "--config", str(config)],
                             capture_output=True, text=True, timeout=60)  # fmt: skip
        assert cli.returncode == 0, cli.stderr
        assert sname in cli.stdout and str(pid) in cli.stdout and "running" in cli.stdout
        shell = subprocess.run(
            [DEPLOYEX, "shell", "--config", str(config)],
            input="s = dx.status(); r = s.apps[0].replicas[0]; print('SHELL', r.sname, r.pid)\n",
            capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        assert f"SHELL {sname} {pid}" in shell.stdout + shell.stderr


def test_cli_says_in_one_line_when_deployex_is_not_running(tmp_path: Path) -> None:
    config = write_config(tmp_path, [])
    result = subprocess.run([DEPLOYEX, "status", "--config", str(config)],
                            capture_output=True, text=True, timeout=60)  # fmt: skip
    assert result.returncode == 1
    assert len(result.stderr.strip().splitlines()) == 1
    assert "not running" in result.stderr


def test_restart_deployex_keeps_the_replicas_and_comes_back_in_the_same_process(
    release_dist: ReleaseDist, tmp_path: Path
) -> None:
    config = write_config(tmp_path, [app_entry("mygleamapp", replicas=2)])
    publish(config, release_dist, "mygleamapp", "0.1.0")
    with running_service(config, tmp_path) as service:
        before = service.wait_app("mygleamapp", all_running(2), "2 replicas running")
        old_admin = service.admin_pid()
        assert service.client().restart_deployex(actor="test") == "restarting"
        service.wait_started(2)
        after = service.wait_app("mygleamapp", all_running(2), "replicas adopted again")
        assert pids(after) == pids(before)
        assert all(r.adopted and r.crash_restarts == 0 for r in after.replicas)
        assert service.proc.poll() is None  # the same `deployex run` process, re-executed
        assert service.admin_pid() != old_admin
        kinds = [e.kind for e in service.client().events()]
        assert "deployex_restart" in kinds
