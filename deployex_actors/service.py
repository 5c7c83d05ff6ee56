"""`deployex run`: the actor system as a foreground service.

A small launcher: it imports no dashboard code (every actor is forked from this process), starts
the multiprocTCPBase system bound to 127.0.0.1, creates the root supervisor and stays in the
foreground until SIGTERM/SIGINT. SIGHUP has the configuration file read again at once (passed on
to the ConfigWatcher through the root; docs/config-watcher.md). A deliberate stop stops the
replicas first, unless `keep_replicas` (the systemd unit uses that, so a DeployEx restart never
restarts the apps); SIGUSR2 stops them in any case (the unit's ExecStop on `systemctl stop`).
Under systemd it reports READY=1, WATCHDOG=1 and STOPPING=1 (sd_notify.py;
ops/systemd/deployex.service).
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
from deployex_actors.private_paths import private_folder, write_whole
from deployex_actors.replica.pidfile import process_start_ticks
from deployex_actors.sd_notify import READY, STOPPING, WATCHDOG, notify
from deployex_actors.secrets import load_secrets
from deployex_actors.secrets.references import named_secrets

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
    channel_secrets = named_secrets(config, secrets.extra)
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
    stop, wake, reread = threading.Event(), threading.Event(), threading.Event()
    with_replicas = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: (stop.set(), wake.set()))
    signal.signal(signal.SIGUSR1, lambda *_: wake.set())
    signal.signal(signal.SIGUSR2, lambda *_: (with_replicas.set(), stop.set(), wake.set()))
    signal.signal(signal.SIGHUP, lambda *_: (reread.set(), wake.set()))
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
            channel_secrets=channel_secrets,
        )
        system.request(asys, root, boot, 30)
        print(
            f"DeployEx running: {len(config.applications)} app(s), actor system on "
            f"127.0.0.1:{config.actor_system_port}, logs in {catalog.log_path}",
            flush=True,
        )
        notify(READY, WATCHDOG)  # the Boot was answered: the tree is up
        code = _serve(asys, root, stop, wake, reread)
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
        argv = _same_command()
        os.execv(argv[0], argv)  # noqa: S606 - the same command
    return code


def _same_command() -> list[str]:
    """This command again. Through the `deployex` script when it started us: its first line names
    the interpreter of the version it belongs to, so after a self-upgrade switched
    `{install_path}/current`, `current/bin/deployex` runs the new version."""
    script = Path(sys.argv[0])
    if script.name == "deployex" and os.access(script, os.X_OK):
        return [str(script), *sys.argv[1:]]
    return [sys.executable, *sys.argv]


def _serve(
    asys: Any, root: Any, stop: threading.Event, wake: threading.Event, reread: threading.Event
) -> int:
    failures = 0
    while True:
        wake.wait(HEALTH_PERIOD_S)
        wake.clear()
        if stop.is_set():
            return 0
        if reread.is_set():
            reread.clear()
            _reread_config(asys, root)
            continue
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


def _reread_config(asys: Any, root: Any) -> None:
    """SIGHUP: the ConfigWatcher reads the YAML file now; what it found is logged."""
    try:
        reply = system.request(asys, root, messages.ReloadConfig(system.request_id()), 10)
    except DeployexError as exc:
        log.error("SIGHUP: the configuration was not read again: %s", exc)
        return
    pending = reply.value
    print(f"SIGHUP: configuration file read again: {pending.state}", flush=True)


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
    """Check the certificates and write the `-ssl_dist_optfile` shared by DeployEx's replicas.

    Written afresh at each start (a changed folder is picked up), whole (temporary file, then
    rename: a replica booting meanwhile reads the old file or the new one) and 0400 from its
    first byte: it names the private key, and nothing but DeployEx should ever change it.
    """
    if not config.otp_tls_certificates:
        return None
    from deployex_actors.certs import check_folder  # cryptography: only when TLS is on

    folder = Path(config.otp_tls_certificates).absolute()  # replicas run in other folders
    for warning in check_folder(folder):
        log.warning("%s", warning)
    optfile = TlsOptions.from_folder(folder).ssl_dist_optfile().encode()
    return str(write_whole(tls_dist_optfile(catalog.var_path), optfile, 0o400))
