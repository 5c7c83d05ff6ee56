"""Monitor: owns one replica completely.

It starts the replica (pre-commands first) with its language's command, in its own session, with
stdout/stderr appended to the replica's log files, and records it in a pidfile; or adopts a live
replica from that pidfile. It learns of the exit at once through a pidfd, restarts after
`min(base x consecutive crashes, max)`, performs forced restarts and stops (SIGTERM to the process
group, SIGKILL after a grace period), and holds the replica's distribution link.

The replica outlives the Monitor: a Monitor that exits for any reason other than StopReplica
leaves it running for the next Monitor to adopt.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import subprocess
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from deployex_actors.actors.base import DeployexActor
from deployex_actors.actors.messages import (
    ForceRestart,
    Journal,
    ReplicaChanged,
    ReplicaSpec,
    ReplicaStopped,
    StartReplica,
    StopReplica,
    Timer,
)
from deployex_actors.beam import TlsOptions, connect
from deployex_actors.beam.launch import (
    Command,
    Replica,
    executable,
    pre_command,
    start_command,
)
from deployex_actors.beam.link import NodeLink
from deployex_actors.catalog import Catalog
from deployex_actors.core.backoff import next_crash_streak, replica_restart_delay_ms
from deployex_actors.core.status import ReplicaSnapshot
from deployex_actors.errors import BeamError, DeployexError
from deployex_actors.replica import pidfile, process, readiness
from deployex_actors.replica.sampler import ReplicaSampler

log = logging.getLogger(__name__)

STOP_GRACE_S = 10.0
LINK_RETRY_S = (0.2, 5.0)  # first retry, cap
PIDFILE_RETRY_S = 2.0  # a pidfile that could not be written (disk full) is tried again


class Monitor(DeployexActor):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.spec: ReplicaSpec | None = None
        self.deployer: Any = None
        self.status = "idle"
        self.proc: subprocess.Popen | None = None
        self.pid: int | None = None
        self.pidfd: int | None = None
        self.started_at: float | None = None
        self.adopted = False
        self.deployed_at = 0.0
        self.ready_once = False  # ready at least once since deployed: persisted in the pidfile
        self.crash_restarts = 0
        self.forced_restarts = 0
        self.streak = 0
        self.last_error: str | None = None
        self.restart_at: float | None = None
        self.restart_requested = False
        self.stopping = False
        self.pending_pre: list[str] = []
        self.pre_proc: subprocess.Popen | None = None
        self.pre_fd: int | None = None
        self.pre_failures = 0
        self.link: NodeLink | None = None
        self.link_signal: tuple[int, int] | None = None
        self.link_delay = LINK_RETRY_S[0]
        self.record: pidfile.ReplicaRecord | None = None  # what the pidfile must say
        self.pidfile_error: str | None = None
        self._replica: Replica | None = None
        self._start_command: Command | None = None  # the same for every restart: built once

    # -- setup -----------------------------------------------------------------------------------

    def receiveMsg_StartReplica(self, message: StartReplica, sender: Any) -> None:
        self.spec = message.spec
        self.deployer = sender
        self.crash_restarts = self.spec.crash_restarts
        self.forced_restarts = self.spec.forced_restarts
        config = self.spec.config
        self.app_config = config.application(self.spec.app)
        self.catalog = Catalog.from_config(config)
        self.tls = (
            TlsOptions.from_folder(config.otp_tls_certificates)
            if self.spec.tls_optfile and config.otp_tls_certificates
            else None
        )
        self.sampler = ReplicaSampler(
            self.catalog.samples_socket,
            self.spec.app,
            self.spec.sname,
            config.watchdog_interval_ms / 1000,
            self.app_config.ready_after_ms / 1000,
        )
        self.sampler.start(lambda: (self.pid, self.link))  # on its own thread (see sampler)
        record = pidfile.read(self.pidfile)
        self.deployed_at = self.spec.deployed_at or (
            record.deployment_started_at if record is not None else time.time()
        )
        # Even a dead replica's record says whether its deployment was ready once (our
        # predecessor may have died with it): a restart of it stays a restart.
        self.ready_once = self.spec.ready_once or (record is not None and record.ready_once)
        if record is not None and pidfile.is_alive(record):
            self._adopt(record)
        elif self.spec.adopt_only:
            self.last_error = "the recorded process is gone"
            self._stopped()
        else:
            self._begin_start()

    @property
    def sname(self) -> str:
        return self.spec.sname

    @property
    def pidfile(self) -> Path:
        return self.catalog.pidfile(self.spec.app, self.spec.sname)

    @property
    def replica(self) -> Replica:
        if self._replica is None or self._replica.sname != self.spec.sname:
            self._replica = self._make_replica()
            self._start_command = None
        return self._replica

    def _make_replica(self) -> Replica:
        spec = self.spec
        return Replica(
            app=spec.app,
            language=self.app_config.language,
            sname=spec.sname,
            release_dir=self.catalog.current_dir(spec.app, spec.sname),
            cookie=spec.cookie,
            ports=self.app_config.ports_of_slot(spec.slot),
            env={e.key: e.value for e in self.app_config.env},
            tls_optfile=Path(spec.tls_optfile) if spec.tls_optfile else None,
            passthrough=self.app_config.env_passthrough,
        )

    # -- starting --------------------------------------------------------------------------------

    def _begin_start(self) -> None:
        self.restart_at = None
        if not executable(self.replica).exists():
            self._start_failed(f"{executable(self.replica)} is missing after unpacking")
            return
        self.pending_pre = list(self.spec.pre_commands)
        self._next_pre_command() if self.pending_pre else self._spawn()

    def _next_pre_command(self) -> None:
        text = self.pending_pre[0]
        self.status = "pre_commands"
        try:
            command = pre_command(self.replica, text)
            self.pre_proc = process.spawn(command, *self._logs())
        except (DeployexError, OSError) as exc:
            self._pre_command_failed(f"pre-command {text!r} could not start: {exc}")
            return
        self.pre_fd = process.open_pidfd(self.pre_proc.pid)
        if self.pre_fd is not None:
            self.watch(self.pre_fd, self._pre_command_exited)
        self._changed()

    def _pre_command_exited(self) -> None:
        self.unwatch(self.pre_fd)
        self.pre_fd = None
        code = self.pre_proc.wait() if self.pre_proc else None
        self.pre_proc = None
        if self.stopping:
            self._stopped()
            return
        text = self.pending_pre.pop(0)
        if code != 0:
            self.pending_pre = []
            self._pre_command_failed(f"pre-command {text!r} exited with status {code}")
        elif self.pending_pre:
            self._next_pre_command()
        else:
            self.pre_failures = 0
            self._spawn()

    def _pre_command_failed(self, reason: str) -> None:
        self.pre_failures += 1
        self.last_error = reason
        self.status = "pre_commands"
        delay = self._backoff_s(self.pre_failures)
        self.restart_at = time.time() + delay
        self._journal("pre_command_failed", f"{reason}; retrying in {delay:g} s")
        self.after(delay, "start")
        self._changed()

    def _start_failed(self, reason: str) -> None:
        self.streak += 1
        self.last_error = reason
        self.status = "starting"
        delay = self._backoff_s(self.streak)
        self.restart_at = time.time() + delay
        self._journal("start_failed", f"{reason}; retrying in {delay:g} s")
        self.after(delay, "start")
        self._changed()

    def _spawn(self) -> None:
        try:
            if self._start_command is None or self._start_command.cwd != self.replica.release_dir:
                self._start_command = start_command(self.replica)
            self.proc = process.spawn(self._start_command, *self._logs())
        except (DeployexError, OSError) as exc:
            self._start_failed(f"cannot start: {exc}")
            return
        self.pid = self.proc.pid
        self.started_at = time.time()
        self.adopted = False
        self.last_error = None
        # Watched first: whatever fails after the spawn, its exit is seen and it is in status.
        self._watch_process()
        self.status = "starting"
        self._record(pidfile.process_start_ticks(self.pid) or 0)
        self._journal("started", f"{self.spec.version} started, pid {self.pid}")
        self.after(self.app_config.ready_after_ms / 1000, "ready")
        self._schedule_link(LINK_RETRY_S[0])
        self._changed()

    def _adopt(self, record: pidfile.ReplicaRecord) -> None:
        self.pid, self.proc, self.adopted = record.pid, None, True
        self.record = record
        self.started_at = record.started_at
        self._watch_process()
        ran_ms = (time.time() - record.started_at) * 1000
        remaining = max(0.0, self.app_config.ready_after_ms - ran_ms) / 1000
        self.status = "starting"
        self.after(remaining, "ready")
        self._journal("adopted", f"adopted running replica pid {record.pid}")
        self._schedule_link(0)
        self._changed()

    def _record(self, ticks: int) -> None:
        spec = self.spec
        record = pidfile.ReplicaRecord(
            app=spec.app,
            sname=spec.sname,
            version=spec.version,
            pid=self.pid,
            start_ticks=ticks,
            slot=spec.slot,
            ports=self.app_config.ports_of_slot(spec.slot),
            started_at=self.started_at or time.time(),
            deployed_at=self.deployed_at,
            ready_once=self.ready_once,
        )
        self.record = record
        self._persist()

    def _persist(self) -> None:
        """Write the pidfile; when that fails (disk full), say so on the replica and retry."""
        if self.record is None:
            return
        try:
            pidfile.write(self.pidfile, self.record)
        except (DeployexError, OSError) as exc:
            error = f"pidfile not written: {exc}"
            if self.pidfile_error is None:
                self._journal("pidfile_failed", f"{error}; retrying every {PIDFILE_RETRY_S:g} s")
            self.pidfile_error = self.last_error = error
            self.after(PIDFILE_RETRY_S, "pidfile")
            return
        if self.pidfile_error is not None:
            log.info("%s: pidfile written again", self)
            if self.last_error == self.pidfile_error:
                self.last_error = None
            self.pidfile_error = None
            self._changed()

    def _watch_process(self) -> None:
        self.pidfd = process.open_pidfd(self.pid)
        if self.pidfd is None:
            self._exited()
        else:
            self.watch(self.pidfd, self._exited)

    def _logs(self) -> tuple[Path, Path]:
        return (
            self.catalog.stdout_log(self.spec.app, self.sname),
            self.catalog.stderr_log(self.spec.app, self.sname),
        )

    # -- exits, restarts, stops ------------------------------------------------------------------

    def _exited(self) -> None:
        self.unwatch(self.pidfd)
        self.pidfd = None
        code = self.proc.wait() if self.proc is not None else None
        ran_s = time.time() - (self.started_at or time.time())
        self.proc, self.pid = None, None
        self.cancel("ready")
        self.cancel("kill")
        if self.stopping:
            self._stopped()
        elif self.restart_requested:
            self.restart_requested = False
            self._begin_start()
        else:
            self._crashed(code, ran_s)
        self._drop_link()  # after the restart: closing it is not on the fast path

    def _crashed(self, code: int | None, ran_s: float) -> None:
        self.crash_restarts += 1
        self.streak = next_crash_streak(self.streak, ran_s * 1000, self.app_config.ready_after_ms)
        delay = self._backoff_s(self.streak)
        status = "unknown status (adopted)" if code is None else f"status {code}"
        error = f"exited with {status} after {ran_s:.1f} s"
        if delay == 0:  # no backoff: start again before any bookkeeping
            self._begin_start()
        else:
            self.status = "starting"
            self.restart_at = time.time() + delay
            self.after(delay, "start")
        self.last_error = error
        self._journal("crash", f"{error}; restart #{self.crash_restarts} in {delay:g} s")
        self._changed()

    def _backoff_s(self, streak: int) -> float:
        app = self.app_config
        return (
            replica_restart_delay_ms(
                streak, app.restart_backoff_base_ms, app.restart_backoff_max_ms
            )
            / 1000
        )

    def receiveMsg_ForceRestart(self, message: ForceRestart, sender: Any) -> None:
        if self.stopping or self.spec is None:
            return
        self.forced_restarts += 1
        self._journal("forced_restart", message.reason, actor=message.actor)
        if self.pid is not None:
            self.restart_requested = True
            self._terminate()
        elif self.pre_proc is None:
            self.cancel("start")
            self._begin_start()

    def receiveMsg_StopReplica(self, message: StopReplica, sender: Any) -> None:
        self.stopping = True
        self.cancel("start")
        if self.pre_proc is not None:
            process.signal_group(self.pre_proc.pid, signal.SIGKILL)
        elif self.pid is not None:
            self._terminate()
        else:
            self._stopped()

    def _terminate(self) -> None:
        self.status = "stopping"
        if self.stopping and self.record is not None and self.record.pid == self.pid:
            # a stop for good survives our own end: the adopter finishes it
            self.record = replace(self.record, stopping=True)
            self._persist()
        process.signal_group(self.pid, signal.SIGTERM)
        self.after(STOP_GRACE_S, "kill")
        self._changed()

    def _stopped(self) -> None:
        if self.stopping:
            self._journal("stopped", "stopped on request")
        self.status = "idle"
        self._drop_link()
        self.record = None
        pidfile.remove(self.pidfile)
        self._changed()
        self.send(self.deployer, ReplicaStopped(self.sname))

    def on_timer(self, timer: Timer) -> None:
        if timer.kind == "start" and not self.stopping and self.pid is None:
            self._begin_start()
        elif timer.kind == "ready" and self.pid is not None and self.status == "starting":
            self._check_ready()
        elif timer.kind == "kill" and self.pid is not None:
            process.signal_group(self.pid, signal.SIGKILL)
        elif timer.kind == "link":
            self._try_link()
        elif timer.kind == "pidfile":
            self._persist()

    def _check_ready(self) -> None:
        """Ready = ran `ready_after_ms` and, when configured, the readiness check passes."""
        problem = readiness.check(self.app_config, self.spec.slot, self.link)
        if problem is None:
            self.status = "running"
            self.last_error = self.pidfile_error
            if not self.ready_once:
                self._mark_ready_once()
            self._journal("ready", f"{self.spec.version} ready, pid {self.pid}")
        else:
            self.last_error = problem
            self.after(self.app_config.readiness.interval_ms / 1000, "ready")
        self._changed()

    def _mark_ready_once(self) -> None:
        """The deployment succeeded: record it where a restarted DeployEx will read it."""
        self.ready_once = True  # our Deployer also learns it from the snapshot
        if self.record is not None and self.record.pid == self.pid:
            self.record = replace(self.record, ready_once=True)
            self._persist()

    # -- distribution link -----------------------------------------------------------------------

    def _schedule_link(self, delay: float) -> None:
        self.link_delay = delay or LINK_RETRY_S[0]
        self.after(delay, "link")

    def _try_link(self) -> None:
        if self.pid is None or self.link is not None:
            return
        read_fd, write_fd = os.pipe()
        try:
            self.link = connect(
                self.replica.node,
                self.spec.cookie,
                self.tls,
                timeout=2.0,
                on_down=lambda _error: _poke(write_fd),
            )
        except BeamError as exc:
            os.close(read_fd)
            os.close(write_fd)
            log.debug("%s: no link to %s yet: %s", self, self.replica.node, exc)
            self.link_delay = min(self.link_delay * 2, LINK_RETRY_S[1])
            self.after(self.link_delay, "link")
            return
        self.link_signal = (read_fd, write_fd)
        self.watch(read_fd, self._link_down)
        self._changed()

    def _link_down(self) -> None:
        self._drop_link()
        self._changed()
        if self.pid is not None:
            self._schedule_link(LINK_RETRY_S[0])

    def _drop_link(self) -> None:
        link, self.link = self.link, None
        if link is not None:
            link.close()
        if self.link_signal is not None:
            read_fd, write_fd = self.link_signal
            self.unwatch(read_fd)
            with contextlib.suppress(OSError):
                os.close(write_fd)
            self.link_signal = None

    # -- reporting -------------------------------------------------------------------------------

    def snapshot(self) -> ReplicaSnapshot:
        spec = self.spec
        return ReplicaSnapshot(
            app=spec.app,
            sname=spec.sname,
            node=self.replica.node,
            version=spec.version,
            status=self.status,
            slot=spec.slot,
            ports=self.app_config.ports_of_slot(spec.slot),
            pid=self.pid,
            started_at=self.started_at if self.pid else None,
            crash_restarts=self.crash_restarts,
            forced_restarts=self.forced_restarts,
            otp="connected" if self.link is not None and self.link.alive else "not_connected",
            adopted=self.adopted,
            last_error=self.last_error,
            restart_at=self.restart_at,
            ready_once=self.ready_once,
        )

    def _changed(self) -> None:
        if self.deployer is not None:
            self.send(self.deployer, ReplicaChanged(self.snapshot()))

    def _journal(self, kind: str, message: str, actor: str = "monitor") -> None:
        log.info("%s %s: %s", self.sname, kind, message)
        if self.deployer is not None:
            self.send(self.deployer, Journal(kind, message, actor, self.spec.app, self.sname))

    def receiveMsg_ActorExitRequest(self, message: Any, sender: Any) -> None:
        # Leaving: the replica keeps running for the next Monitor to adopt.
        self._drop_link()


def _poke(fd: int) -> None:
    with contextlib.suppress(OSError):
        os.write(fd, b"x")
