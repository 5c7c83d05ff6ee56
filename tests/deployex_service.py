"""A real `deployex run` for the tests: its config, its bucket, its processes and their end.

Teardown kills everything the service started, by pid: the launcher, every process of the
actor system's session (admin, logger, actors) and every replica (from the status it reported
and from the pidfiles), then waits until epmd has forgotten the replicas.
"""

from __future__ import annotations

import contextlib
import os
import random
import signal
import socket
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil
import yaml

from deployex_actors.catalog import Catalog
from deployex_actors.client import DeployEx
from deployex_actors.config import load_config
from deployex_actors.core.status import AppSnapshot, DeployexSnapshot
from deployex_actors.releases import release_store
from deployex_actors.replica import pidfile
from tests.beam_fixtures import LANGUAGES, ReleaseDist, wait_until, wait_until_unregistered
from tests.servers import LOOPBACK, free_port

DEPLOYEX = str(Path(sys.executable).with_name("deployex"))


def free_port_range(count: int) -> int:
    """A base port with `count` free ports after it (for replica_ports slots), below the
    kernel's ephemeral range, so that no outgoing connection can take one meanwhile."""
    low, _high = map(int, Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split())
    for _ in range(200):
        base = random.randrange(10000, low - count)
        if all(_is_free(base + i) for i in range(count)):
            return base
    raise RuntimeError(f"no {count} consecutive free ports")


def _is_free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind((LOOPBACK, port))
        except OSError:
            return False
        return True


def app_entry(app: str, replicas: int = 3, **extra: Any) -> dict[str, Any]:
    entry = {
        "name": app,
        "language": LANGUAGES[app],
        "replicas": replicas,
        "deploy_schedule_interval_ms": 500,
        "ready_after_ms": 1000,
        "restart_backoff_base_ms": 300,
        "restart_backoff_max_ms": 3000,
        "replica_ports": [{"key": "PORT", "base": free_port_range(replicas + 1)}],
    }
    entry.update(extra)
    return entry


def write_config(tmp: Path, apps: list[dict[str, Any]], **top: Any) -> Path:
    document = {
        "account_name": "test",
        "release_adapter": "local",
        "release_bucket": str(tmp / "bucket"),
        "secrets_adapter": "env",
        "port": free_port(),
        "actor_system_port": free_port(),
        "var_path": str(tmp / "var"),
        "log_path": str(tmp / "log"),
        "monitored_app_log_path": str(tmp / "apps"),
        "applications": apps,
        "dashboard_enabled": False,  # the dashboard tests turn it on
        **top,
    }
    path = tmp / "deployex.yaml"
    path.write_text(yaml.safe_dump(document))
    return path


def publish(config_path: Path, dist: ReleaseDist, app: str, vsn: str, pre: tuple = ()) -> None:
    release_store(load_config(config_path)).publish(app, vsn, dist.tarball(app, vsn), list(pre))


@dataclass
class Service:
    config_path: Path
    tmp: Path
    procs: list[subprocess.Popen] = field(default_factory=list)
    seen_replicas: set[int] = field(default_factory=set)
    sessions: set[int] = field(default_factory=set)
    env: dict[str, str] | None = None  # `deployex run`'s environment; None: the test's own
    deployex: str = DEPLOYEX  # the `deployex` it runs (an installed one: test_installer)

    @property
    def config(self):
        return load_config(self.config_path)

    @property
    def catalog(self) -> Catalog:
        return Catalog.from_config(self.config)

    @property
    def proc(self) -> subprocess.Popen:
        return self.procs[-1]

    def start(self, *extra: str) -> subprocess.Popen:
        log = (self.tmp / "run.out").open("ab")
        proc = subprocess.Popen(
            [self.deployex, "run", "--config", str(self.config_path), *extra],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=self.env,
        )
        self.procs.append(proc)
        wait_until(self._answers, 60, "deployex run did not come up")
        self.sessions.add(os.getsid(self.admin_pid()))
        return proc

    def _answers(self) -> bool:
        if self.proc.poll() is not None:
            raise AssertionError(f"deployex run exited {self.proc.returncode}:\n{self.output()}")
        try:
            return DeployEx(self.config, timeout=3).ping()
        except Exception:
            return False

    def output(self) -> str:
        return (self.tmp / "run.out").read_text(errors="replace")

    def client(self) -> DeployEx:
        return DeployEx(self.config, timeout=10)

    def status(self) -> DeployexSnapshot:
        snapshot = self.client().status()
        for app in snapshot.apps:
            self.seen_replicas.update(r.pid for r in app.replicas if r.pid)
        return snapshot

    def app(self, name: str) -> AppSnapshot:
        app = self.status().app(name)
        assert app is not None
        return app

    def wait_app(self, name: str, condition: Callable[[AppSnapshot], bool], what: str,
                 deadline_s: float = 60) -> AppSnapshot:  # fmt: skip
        found: list[AppSnapshot] = []

        def check() -> bool:
            found[:] = [self.app(name)]
            return condition(found[0])

        try:
            wait_until(check, deadline_s, what, interval_s=0.1)
        except TimeoutError as exc:
            raise AssertionError(f"{exc}; last status: {found and found[0]}") from None
        return found[0]

    def wait_started(self, times: int, deadline_s: float = 60) -> None:
        """Wait until the journal shows DeployEx started `times` times (after a restart the
        actor system is briefly away), then track the new system's processes too."""

        def started() -> bool:
            try:
                return len(self.client().events(kind="deployex_started")) >= times
            except Exception:  # between its two lives
                return False

        wait_until(started, deadline_s, f"DeployEx started {times} times")
        self.sessions.add(os.getsid(self.admin_pid()))

    def admin_pid(self) -> int:
        port = self.config.actor_system_port
        for conn in psutil.net_connections("tcp"):
            if conn.status == psutil.CONN_LISTEN and conn.laddr.port == port and conn.pid:
                return conn.pid
        raise AssertionError(f"nothing listens on the admin port {port}")

    def system_processes(self) -> list[psutil.Process]:
        """Every live process of the actor system (its session), the launcher excluded."""
        found = []
        for proc in psutil.process_iter(["pid", "status"]):
            with contextlib.suppress(psutil.Error, ProcessLookupError):
                if os.getsid(proc.pid) in self.sessions and proc.status() != psutil.STATUS_ZOMBIE:
                    found.append(proc)
        return found

    def replica_pids_on_disk(self) -> set[int]:
        pids = set()
        for app in self.config.applications:
            for pid_path in self.catalog.app_service_dir(app.name).glob("*.pid"):
                record = pidfile.read(pid_path)
                if record is not None and pidfile.is_alive(record):
                    pids.add(record.pid)
        return pids

    def kill_deployex(self) -> None:
        """kill -9 of all of DeployEx, not its replicas: the next run knows only the disk."""
        for proc in self.system_processes():
            with contextlib.suppress(psutil.Error):
                proc.kill()
        self.proc.kill()
        self.proc.wait(10)
        wait_until(self._none_left_after_kill, 15, "DeployEx processes gone")

    def kill_everything(self) -> None:
        # The system on the admin port now may be one the test never waited for: a DeployEx
        # that re-executed itself (a restart, a self-upgrade) runs a new system in a new session.
        with contextlib.suppress(AssertionError, OSError, psutil.Error):
            self.sessions.add(os.getsid(self.admin_pid()))
        # Freeze DeployEx first, so that no Monitor starts a replica while we end them all.
        system = self.system_processes()
        for proc in [*self.procs, *system]:
            with contextlib.suppress(ProcessLookupError, psutil.Error):
                os.kill(proc.pid, signal.SIGSTOP)
        snames = [p.stem for app in self.config.applications
                  for p in self.catalog.app_service_dir(app.name).glob("*.pid")]  # fmt: skip
        for pid in self.seen_replicas | self.replica_pids_on_disk() | self._replicas_by_cwd():
            with contextlib.suppress(ProcessLookupError, PermissionError):
                if pidfile.process_start_ticks(pid) is not None:
                    os.killpg(pid, signal.SIGKILL)
        for proc in [*self.procs, *system]:
            with contextlib.suppress(ProcessLookupError, psutil.Error):
                os.kill(proc.pid, signal.SIGKILL)
        for proc in self.procs:
            proc.wait(10)
        wait_until(self._none_left_after_kill, 15, "actor processes still alive")
        wait_until_unregistered(snames)

    def _none_left_after_kill(self) -> bool:
        """True once the session is empty; else SIGKILL what is there. An actor forked between
        the listing above and its SIGSTOP (a Deployer starting a Monitor) was never signalled,
        and an actor outlives its parent."""
        left = self.system_processes()
        for proc in left:
            with contextlib.suppress(ProcessLookupError, psutil.Error):
                os.kill(proc.pid, signal.SIGKILL)
        return not left

    def _replicas_by_cwd(self) -> set[int]:
        """Processes working in one of our replica folders (started by any of our Monitors)."""
        service = str(self.catalog.var_path / "service")
        found = set()
        for proc in psutil.process_iter(["pid", "cwd"]):
            cwd = proc.info.get("cwd") or ""
            if cwd.startswith(service):
                found.add(proc.pid)
        return found


@contextlib.contextmanager
def running_service(
    config_path: Path,
    tmp: Path,
    *extra: str,
    env: dict[str, str] | None = None,
    deployex: str = DEPLOYEX,
) -> Iterator[Service]:
    service = Service(config_path, tmp, env=env, deployex=deployex)
    try:
        service.start(*extra)
        yield service
    finally:
        service.kill_everything()


def banner(port: int, timeout_s: float = 2.0) -> str:
    with socket.create_connection((LOOPBACK, port), timeout_s) as conn:
        data = b""
        while chunk := conn.recv(1024):
            data += chunk
    return data.decode()


def wait_banner(port: int, expected: str, deadline_s: float = 20) -> None:
    """Until the replica on `port` answers `expected`: "ready" means it ran `ready_after_ms`,
    which on a loaded machine can come before its listener is up."""

    def answers() -> bool:
        try:
            return banner(port) == expected
        except OSError:
            return False

    wait_until(answers, deadline_s, f"{expected.strip()!r} on port {port}")


def process_alive(pid: int) -> bool:
    return pidfile.process_start_ticks(pid) is not None


def wait_gone(pid: int, deadline_s: float = 15) -> None:
    wait_until(lambda: not process_alive(pid), deadline_s, f"process {pid} still alive")


def actor_children(pid: int, actor: str, exclude: tuple[int, ...] = ()) -> list[int]:
    """The pids of `pid`'s children that run actor class `actor` (each actor names its process
    `dx-CLASS`), leaving out `exclude`; [] when `pid` is gone."""
    with contextlib.suppress(psutil.Error):
        children = psutil.Process(pid).children()
        return [c.pid for c in children if c.name() == f"dx-{actor}" and c.pid not in exclude]
    return []
