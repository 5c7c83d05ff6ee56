"""`deployex run`: the actor system as a foreground service.

A small launcher: it imports no dashboard code (every actor is forked from this process), starts
the multiprocTCPBase system bound to 127.0.0.1, creates the root supervisor and stays in the
foreground until SIGTERM/SIGINT. A deliberate stop stops the replicas first, unless
`keep_replicas` (the systemd unit uses that, so a DeployEx restart never restarts the apps);
SIGUSR2 stops them in any case (the unit's ExecStop on `systemctl stop`). Under systemd it
reports READY=1, WATCHDOG=1 and STOPPING=1 (sd_notify.py; ops/systemd/deployex.service).
"""

from __future__ import annotations

import fcntl
import logging
import os
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Any

from deployex_actors.actors import messages, system, wire
from deployex_actors.actors.root import GLOBAL_NAME
from deployex_actors.beam.tls import TlsOptions
from deployex_actors.catalog import Catalog, tls_dist_optfile
from deployex_actors.config import Config, load_config
from deployex_actors.errors import DeployexError
from deployex_actors.private_paths import private_folder
from deployex_actors.replica.pidfile import process_start_ticks
from deployex_actors.sd_notify import READY, STOPPING, WATCHDOG, notify
from deployex_actors.secrets import load_secrets

log = logging.getLogger("deployex")
# A wedged root is noticed within HEALTH_PERIOD_S x HEALTH_FAILURES (plus the asks' 5 s): each
# ask crosses four processes (launcher, admin, root and back), 3-8 ms of CPU here, so it is not
# asked more often. A restart request does not wait for it: the root wakes the launcher (SIGUSR1).
HEALTH_PERIOD_S = 10.0
HEALTH_FAILURES = 3
STOP_TIMEOUT_S = 60.0
RESTART = -1  # _serve's answer when an operator asked for a restart
RESTART_ENV = "DEPLOYEX_RESTARTING"  # set across the re-exec: wait for the old system to leave
RESTART_WAIT_S = 20.0


def run(config_path: str | None = None, keep_replicas: bool = False) -> int:
    config = load_config(config_path)
    catalog = Catalog.from_config(config)
    for folder in catalog.private_folders:
        private_folder(folder)
    lock_path = catalog.var_path / "deployex.lock"
    if os.environ.pop(RESTART_ENV, None):
        _wait_for_predecessor(lock_path, config.actor_system_port)
    else:
        _end_orphaned_system(lock_path, config, catalog)
    lock = _exclusive(lock_path, config)
    secrets = load_secrets(config)
    optfile = _write_tls_optfile(config, catalog)
    if system.is_listening(config.actor_system_port):
        raise DeployexError(
            f"DeployEx is already running (an actor system listens on "
            f"127.0.0.1:{config.actor_system_port})"
        )
    asys = system.start(
        config.actor_system_port,
        catalog.deployex_stdout_log,
        catalog.thespian_log,
        wire.make_key(catalog.actor_key),
        catalog.samples_socket,
        config.multi_host,
    )
    stop, wake, with_replicas = threading.Event(), threading.Event(), threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: (stop.set(), wake.set()))
    signal.signal(signal.SIGUSR1, lambda *_: wake.set())
    signal.signal(signal.SIGUSR2, lambda *_: (with_replicas.set(), stop.set(), wake.set()))
    try:
        root = asys.createActor("deployex_actors.actors.root.Root", globalName=GLOBAL_NAME)
        boot = messages.Boot(
            system.request_id(),
            config,
            secrets.erlang_cookie,
            optfile,
            secrets.admin_hashed_password,
            secrets.secret_key_base,
            launcher_pid=os.getpid(),
        )
        system.request(asys, root, boot, 30)
        print(
            f"DeployEx running: {len(config.applications)} app(s), actor system on "
            f"127.0.0.1:{config.actor_system_port}, logs in {catalog.log_path}",
            flush=True,
        )
        notify(READY, WATCHDOG)  # the Boot was answered: the tree is up
        code = _serve(asys, root, stop, wake)
        if code != RESTART:
            notify(STOPPING)
        if code == 0 and (with_replicas.is_set() or not keep_replicas):
            _stop_replicas(asys, root)
    finally:
        system.shutdown(asys)
        lock.close()
    if code == RESTART:
        print("DeployEx restarting (replicas keep running)", flush=True)
        os.environ[RESTART_ENV] = "1"
        os.execv(sys.executable, [sys.executable, *sys.argv])  # noqa: S606 - the same command
    return code


def _serve(asys: Any, root: Any, stop: threading.Event, wake: threading.Event) -> int:
    failures = 0
    while True:
        wake.wait(HEALTH_PERIOD_S)
        wake.clear()
        if stop.is_set():
            return 0
        try:
            answer = system.request(asys, root, messages.Ping(system.request_id()), 5)
            failures = 0
            notify(WATCHDOG)  # only an answer feeds systemd's watchdog
            if answer.value == "restart":
                return RESTART
        except DeployexError:
            failures += 1
            log.error("the root supervisor did not answer (%d/%d)", failures, HEALTH_FAILURES)
            if failures >= HEALTH_FAILURES:
                return 1


def _stop_replicas(asys: Any, root: Any) -> None:
    print("DeployEx stopping: stopping the replicas", flush=True)
    try:
        system.request(asys, root, messages.Ping(system.request_id()), 5)
        system.request(asys, root, messages.StopReplicas(system.request_id()), STOP_TIMEOUT_S)
    except DeployexError as exc:
        log.error("replicas may still run (the next `deployex run` adopts them): %s", exc)


def _wait_for_predecessor(lock: Path, port: int) -> None:
    """After a restart, the previous system's processes may take a moment to leave."""
    deadline = time.monotonic() + RESTART_WAIT_S
    while time.monotonic() < deadline:
        with open(lock, "a") as probe:
            try:
                fcntl.flock(probe, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                pass
            else:
                fcntl.flock(probe, fcntl.LOCK_UN)
                if not system.is_listening(port):
                    return
        time.sleep(0.1)  # a bounded wait for other processes to exit, checked each round


def _end_orphaned_system(lock: Path, config: Config, catalog: Catalog) -> None:
    """A launcher that died (kill -9, systemd's watchdog) leaves its actor system running: it
    still holds the lock and the port, and still supervises the replicas. Shut it down like a
    `--keep-replicas` stop, so that this run adopts the replicas (same pids)."""
    with open(lock, "a+") as probe:
        try:
            fcntl.flock(probe, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            probe.seek(0)
            pids = [int(line) for line in probe.read().split() if line.isdigit()]
        else:
            return  # nobody holds it
    if not pids or process_start_ticks(pids[-1]) is not None:
        return  # its launcher lives: _exclusive says DeployEx is already running
    print(
        f"DeployEx's previous launcher (pid {pids[-1]}) is gone but its actor system still "
        "runs: shutting it down; the replicas keep running and are adopted",
        flush=True,
    )
    try:
        system.shutdown(system.attach(config.actor_system_port, catalog.actor_key))
    except DeployexError as exc:
        log.warning("could not attach to the orphaned actor system: %s", exc)
    _wait_for_predecessor(lock, config.actor_system_port)


def _exclusive(path: Path, config: Config) -> Any:
    handle = open(path, "a")  # noqa: SIM115 - held for the life of the service
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.close()
        raise DeployexError(
            f"DeployEx is already running on this host ({path} is locked; actor system on "
            f"127.0.0.1:{config.actor_system_port})"
        ) from None
    handle.write(f"{os.getpid()}\n")
    handle.flush()
    return handle


def _write_tls_optfile(config: Config, catalog: Catalog) -> str | None:
    if not config.otp_tls_certificates:
        return None
    path = tls_dist_optfile(catalog.var_path)
    path.write_text(TlsOptions.from_folder(config.otp_tls_certificates).ssl_dist_optfile())
    path.chmod(0o600)
    return str(path)
