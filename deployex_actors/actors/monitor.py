"""Monitor: owns one replica completely.

Its decisions are `core.lifecycle`'s table; this actor feeds it events and performs the effects:
it starts the replica (pre-commands first) with its language's command, in its own session, with
stdout/stderr appended to the replica's log files, and records it in a pidfile; or adopts a live
replica from that pidfile. It learns of the exit at once through a pidfd, sends SIGTERM to the
process group and SIGKILL after the grace period, and holds the replica's distribution link
(`replica.link_upkeep`) and its sampling (`replica.sampler`). It runs hot upgrades on the
replica over that link (`replica.hot_upgrade`, the steps in `core.hot_upgrade_steps`).

The replica outlives the Monitor: a Monitor that exits for any reason other than StopReplica
leaves it running for the next Monitor to adopt.
"""

from __future__ import annotations

import logging
import shutil
import signal
import subprocess
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from deployex_actors.actors.base import DeployexActor
from deployex_actors.actors.messages import (
    ForceRestart,
    HotUpgrade,
    HotUpgradeEnded,
    Journal,
    ObserverCall,
    ReplicaChanged,
    ReplicaSpec,
    ReplicaStopped,
    Reply,
    ShellCommandQuery,
    StartReplica,
    StopReplica,
    Timer,
)
from deployex_actors.beam import TlsOptions
from deployex_actors.beam.launch import (
    Command,
    Replica,
    executable,
    pre_command,
    remote_shell_command,
    start_command,
)
from deployex_actors.beam.observer import CALLS, Observer, describe_call
from deployex_actors.catalog import Catalog
from deployex_actors.core import hot_upgrade_steps as upgrade_steps
from deployex_actors.core import lifecycle as lc
from deployex_actors.core.status import ReplicaSnapshot, ReplicaStatus
from deployex_actors.errors import DeployexError
from deployex_actors.replica import hot_upgrade, pidfile, process, readiness
from deployex_actors.replica.jobs import Failed, Jobs
from deployex_actors.replica.link_upkeep import LinkUpkeep
from deployex_actors.replica.sampler import ReplicaSampler

log = logging.getLogger(__name__)

STOP_GRACE_S = lc.STOP_GRACE_S
PIDFILE_RETRY_S = 2.0  # a pidfile that could not be written (disk full) is tried again


class Monitor(DeployexActor):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.spec: ReplicaSpec | None = None
        self.deployer: Any = None
        self.life = lc.Life()
        self.proc: subprocess.Popen | None = None
        self.pid: int | None = None
        self.pidfd: int | None = None
        self.started_at: float | None = None
        self.adopted = False
        self.deployed_at = 0.0
        self.ready_once = False  # ready at least once since deployed: persisted in the pidfile
        self.newly_ready = False
        self.pre_proc: subprocess.Popen | None = None
        self.pre_fd: int | None = None
        self.record: pidfile.ReplicaRecord | None = None  # what the pidfile must say
        self.pidfile_error: str | None = None
        self.links: LinkUpkeep | None = None
        self.sampler: ReplicaSampler | None = None
        self._reported: ReplicaSnapshot | None = None
        self._replica: Replica | None = None
        self._start_command: Command | None = None  # the same for every restart: built once
        self.jobs: Jobs | None = None  # hot-upgrade steps and observer calls (replica/jobs.py)
        self.observer: Observer | None = None  # of the current link, made on first use

    # -- setup -----------------------------------------------------------------------------------

    def receiveMsg_StartReplica(self, message: StartReplica, sender: Any) -> None:
        spec = self.spec = message.spec
        self.deployer = sender
        config = spec.config
        app = self.app_config = config.application(spec.app)
        self.catalog = Catalog.from_config(config)
        self.policy = lc.Policy(app.ready_after_ms, app.restart_backoff_base_ms,
                                app.restart_backoff_max_ms)  # fmt: skip
        self.life = lc.Life(pre_commands=tuple(spec.pre_commands),
                            crash_restarts=spec.crash_restarts,
                            forced_restarts=spec.forced_restarts)  # fmt: skip
        tls = None
        if spec.tls_optfile and config.otp_tls_certificates:
            tls = TlsOptions.from_folder(config.otp_tls_certificates)
        self.links = LinkUpkeep(spec.cookie, tls)
        self.sampler = ReplicaSampler(self.catalog.samples_socket, spec.app, spec.sname,
                                      config.watchdog_interval_ms / 1000,
                                      app.ready_after_ms / 1000)  # fmt: skip
        self.sampler.start(lambda: (self.pid, self.links.link))  # on its own thread (see sampler)
        record = pidfile.read(self.pidfile)
        self.deployed_at = spec.deployed_at or (
            record.deployment_started_at if record is not None else time.time()
        )
        # Even a dead replica's record says whether its deployment was ready once (our
        # predecessor may have died with it): a restart of it stays a restart.
        self.ready_once = spec.ready_once or (record is not None and record.ready_once)
        if record is not None and pidfile.is_alive(record):
            self._adopt(record)
        elif spec.adopt_only:
            self._on(lc.Gone())
        else:
            self._on(self._start_event())

    @property
    def sname(self) -> str:
        return self.spec.sname

    @property
    def pidfile(self) -> Path:
        return self.catalog.pidfile(self.spec.app, self.spec.sname)

    @property
    def replica(self) -> Replica:
        if self._replica is None or self._replica.sname != self.spec.sname:
            spec = self.spec
            self._replica = Replica(
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
            self._start_command = None
        return self._replica

    # -- the lifecycle ---------------------------------------------------------------------------

    def _on(self, event: lc.Event) -> None:
        """One event through the table; perform what it says, in order; report the result."""
        self.life, effects = lc.step(self.life, event, self.policy, time.time())
        for effect in effects:
            self._perform(effect)
        self._report()

    def _perform(self, effect: lc.Effect) -> None:
        match effect:
            case lc.Schedule(kind, delay_s):
                self.after(delay_s, kind)
            case lc.Cancel(kind):
                self.cancel(kind)
            case lc.Journal(kind, message, actor, details):
                self._journal(kind, message, actor, details)
            case lc.BeginStart():
                self._on(self._start_event())
            case lc.Spawn():
                self._spawn()
            case lc.RunPre(command):
                self._run_pre_command(command)
            case lc.KillPre():
                if self.pre_proc is not None:
                    process.signal_group(self.pre_proc.pid, signal.SIGKILL)
            case lc.Terminate(for_good):
                self._terminate(for_good)
            case lc.Kill():
                if self.pid is not None:
                    process.signal_group(self.pid, signal.SIGKILL)
            case lc.Link(delay_s):
                self.links.reset_backoff(delay_s)
                self.after(delay_s, "link")
            case lc.MarkReadyOnce():
                self._mark_ready_once()
            case lc.Stopped():
                self._stopped()
            case lc.RunUpgradeStep(target, index):
                self._run_upgrade_step(target, index)
            case lc.UndoUnpack(target):
                problem = hot_upgrade.undo_unpack(self.links.link, self.replica.release_dir, target)
                if problem is not None:
                    log.warning("%s: unpacked %s not forgotten: %s", self, target.to_version,
                                problem)  # fmt: skip
            case lc.UpgradeEnded(target, ok, text, ghost):
                self._upgrade_ended(target, ok, text, ghost)

    def _start_event(self) -> lc.Start:
        path = executable(self.replica)
        return lc.Start(missing=None if path.exists() else str(path))

    def on_timer(self, timer: Timer) -> None:
        if timer.kind == "start":
            self._on(self._start_event())
        elif timer.kind == "ready" and self.life.phase == lc.Phase.STARTING:
            self._check_ready()
        elif timer.kind == "kill":
            self._on(lc.KillDue())
        elif timer.kind == "link":
            self._try_link()
        elif timer.kind == "pidfile":
            self._persist()

    def receiveMsg_ForceRestart(self, message: ForceRestart, sender: Any) -> None:
        if self.spec is not None:
            self._on(lc.ForceRestart(message.actor, message.reason))

    def receiveMsg_ShellCommandQuery(self, message: ShellCommandQuery, sender: Any) -> None:
        to = message.reply_to or sender
        if self.spec is None or self.life.status != ReplicaStatus.RUNNING:
            status = self.life.status if self.spec is not None else "starting"
            self.send(to, Reply(message.request_id, error=f"{self.sname} is {status}"))
            return
        command = remote_shell_command(self.replica)
        self.send(to, Reply(message.request_id, (command.argv, command.env, str(command.cwd))))

    # -- the observer ----------------------------------------------------------------------------

    def receiveMsg_ObserverCall(self, message: ObserverCall, sender: Any) -> None:
        message = replace(message, reply_to=message.reply_to or sender)
        link = self.links.link
        problem = None
        if message.call not in CALLS:
            problem = f"no observer call {message.call!r}"
        elif self.spec is None or link is None or not link.alive:
            problem = f"{self.sname} has no distribution link now ({self.life.status})"
        if problem is not None:
            self.send(message.reply_to, Reply(message.request_id, error=problem))
            return
        if self.observer is None or self.observer.link is not link:
            self.observer = Observer(link, self.catalog.var_path / "erlang")
        observer = self.observer
        call = getattr(observer, message.call)
        self._job(("observer", message), lambda: call(*message.args))
        if (what := describe_call(message.call, message.args)) is not None:
            self._journal("observer", what, message.actor)

    def _observed(self, request: ObserverCall, result: Any) -> None:
        if isinstance(result, Failed):
            reply = Reply(request.request_id, error=f"{request.call} on {self.sname}: {result}")
        else:
            reply = Reply(request.request_id, result)
            ended = request.call in ("trace_fetch", "trace_stop") and isinstance(result, dict)
            if ended and result.get("status") == "stopped":
                self._journal("trace_ended", f"trace {request.args[0]} stopped: "
                              f"{result.get('reason')}, {result.get('count')} message(s)",
                              request.actor)  # fmt: skip
        self.send(request.reply_to, reply)

    def receiveMsg_StopReplica(self, message: StopReplica, sender: Any) -> None:
        if self.spec is not None:
            self._on(lc.Stop())

    # -- hot upgrades ----------------------------------------------------------------------------

    def receiveMsg_HotUpgrade(self, message: HotUpgrade, sender: Any) -> None:
        if self.spec is not None:
            self._on(lc.UpgradeAsked(message.target, self.links.connected))

    def _job(self, key: Any, job: Any) -> None:
        if self.jobs is None:
            self.jobs = Jobs()
            self.watch(self.jobs.fd, self._jobs_done)
        self.jobs.run(key, job)

    def _jobs_done(self) -> None:
        for key, result in self.jobs.collect():
            match key:
                case ("upgrade", index):
                    self._on(lc.UpgradeStepDone(index, result))
                case ("observer", request):
                    self._observed(request, result)

    def _run_upgrade_step(self, target: Any, index: int) -> None:
        link, root = self.links.link, self.replica.release_dir
        if upgrade_steps.steps_of(target)[index] is upgrade_steps.PRE_COMMANDS:
            new = replace(self.replica, release_dir=self.catalog.new_dir(self.spec.app, self.sname))
            logs = self._logs()
            job = lambda: hot_upgrade.run_pre_commands(new, target.pre_commands, logs)  # noqa: E731
        else:
            job = lambda: hot_upgrade.perform(link, root, target, index)  # noqa: E731
        self._job(("upgrade", index), job)

    def _upgrade_ended(self, target: Any, ok: bool, text: str, ghost: bool) -> None:
        if target.pre_commands:  # B's copy they ran from (see Fetcher._prepare)
            shutil.rmtree(self.catalog.new_dir(self.spec.app, self.sname), ignore_errors=True)
        if ok:  # the same process now runs the new version: say so wherever the version shows
            self.spec = replace(self.spec, version=target.to_version,
                                pre_commands=target.pre_commands)  # fmt: skip
            if self.record is not None and self.record.pid == self.pid:
                self.record = replace(self.record, version=target.to_version)
                self._persist()
        if self.deployer is not None:
            self.send(self.deployer, HotUpgradeEnded(self.sname, target, ok, text, ghost))

    # -- effects: processes ----------------------------------------------------------------------

    def _run_pre_command(self, text: str) -> None:
        try:
            self.pre_proc = process.spawn(pre_command(self.replica, text), *self._logs())
        except (DeployexError, OSError) as exc:
            self._on(lc.PreFailed(str(exc)))
            return
        self.pre_fd = process.open_pidfd(self.pre_proc.pid)
        if self.pre_fd is None:
            self._pre_command_exited()
        else:
            self.watch(self.pre_fd, self._pre_command_exited)

    def _pre_command_exited(self) -> None:
        self.unwatch(self.pre_fd)
        self.pre_fd = None
        code = self.pre_proc.wait() if self.pre_proc else None
        self.pre_proc = None
        self._on(lc.PreExited(code))

    def _spawn(self) -> None:
        try:
            if self._start_command is None or self._start_command.cwd != self.replica.release_dir:
                self._start_command = start_command(self.replica)
            self.proc = process.spawn(self._start_command, *self._logs())
        except (DeployexError, OSError) as exc:
            self._on(lc.SpawnFailed(str(exc)))
            return
        self.pid = self.proc.pid
        self.started_at = time.time()
        self.adopted = False
        self.pidfd = process.open_pidfd(self.pid)
        self._record(pidfile.process_start_ticks(self.pid) or 0)
        self._on(lc.Spawned(self.spec.version, self.pid))
        self._watch_process()

    def _adopt(self, record: pidfile.ReplicaRecord) -> None:
        self.pid, self.proc, self.adopted = record.pid, None, True
        self.record = record
        self.started_at = record.started_at
        self.pidfd = process.open_pidfd(self.pid)
        ran_ms = (time.time() - record.started_at) * 1000
        self._on(lc.Adopted(record.pid, max(0.0, self.app_config.ready_after_ms - ran_ms) / 1000))
        self._watch_process()

    def _watch_process(self) -> None:
        if self.pidfd is None:  # gone before it could be watched
            self._exited()
        else:
            self.watch(self.pidfd, self._exited)

    def _exited(self) -> None:
        self.unwatch(self.pidfd)
        self.pidfd = None
        code = self.proc.wait() if self.proc is not None else None
        ran_s = time.time() - (self.started_at or time.time())
        self.proc, self.pid = None, None
        self._on(lc.Exited(code, ran_s))
        self._drop_link()  # after a restart: closing it is not on the fast path

    def _terminate(self, for_good: bool) -> None:
        if for_good and self.record is not None and self.record.pid == self.pid:
            # a stop for good survives our own end: the adopter finishes it
            self.record = replace(self.record, stopping=True)
            self._persist()
        process.signal_group(self.pid, signal.SIGTERM)

    def _stopped(self) -> None:
        self._drop_link()
        self.record = None
        pidfile.remove(self.pidfile)
        self._report()
        self.send(self.deployer, ReplicaStopped(self.sname))

    def _check_ready(self) -> None:
        """Ready = ran `ready_after_ms` and, when configured, the readiness check passes."""
        check = self.app_config.readiness
        interval_s = check.interval_ms / 1000 if check is not None else 1.0
        problem = readiness.check(self.app_config, self.spec.slot, self.links.link)
        self._on(lc.ReadyChecked(self.spec.version, self.pid, problem, interval_s))

    def _logs(self) -> tuple[Path, Path]:
        return (
            self.catalog.stdout_log(self.spec.app, self.sname),
            self.catalog.stderr_log(self.spec.app, self.sname),
        )

    # -- effects: the pidfile --------------------------------------------------------------------

    def _record(self, ticks: int) -> None:
        spec = self.spec
        self.record = pidfile.ReplicaRecord(
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
            self.pidfile_error = error
            self.after(PIDFILE_RETRY_S, "pidfile")
        else:
            if self.pidfile_error is not None:
                log.info("%s: pidfile written again", self)
            self.pidfile_error = None
        self._report()

    def _mark_ready_once(self) -> None:
        """The deployment succeeded: record it where a restarted DeployEx will read it."""
        if self.ready_once:
            return
        self.ready_once = True  # our Deployer also learns it from the snapshot
        self.newly_ready = True  # the "ready" journaled next completes a deployment
        if self.record is not None and self.record.pid == self.pid:
            self.record = replace(self.record, ready_once=True)
            self._persist()

    # -- the distribution link ---------------------------------------------------

    def _try_link(self) -> None:
        if self.pid is None or self.links.link is not None:
            return
        fd = self.links.connect(self.replica.node)
        if fd is None:
            self.after(self.links.backoff(), "link")
            return
        self.watch(fd, self._link_down)
        self._report()

    def _link_down(self) -> None:
        self._drop_link()
        self._report()
        if self.pid is not None:
            self.links.reset_backoff(0)
            self.after(self.links.retry_s, "link")

    def _drop_link(self) -> None:
        if self.links is not None:
            self.unwatch(self.links.drop())

    # -- reporting -------------------------------------------------------------------------------

    def snapshot(self) -> ReplicaSnapshot:
        spec, life = self.spec, self.life
        return ReplicaSnapshot(
            app=spec.app,
            sname=spec.sname,
            node=self.replica.node,
            version=spec.version,
            status=life.status,
            slot=spec.slot,
            ports=self.app_config.ports_of_slot(spec.slot),
            pid=self.pid,
            started_at=self.started_at if self.pid else None,
            crash_restarts=life.crash_restarts,
            forced_restarts=life.forced_restarts,
            otp="connected" if self.links.connected else "not_connected",
            mtls=self.links.tls is not None,
            adopted=self.adopted,
            last_error=life.last_error or self.pidfile_error,
            restart_at=life.restart_at,
            ready_once=self.ready_once,
            upgrade=life.upgrade_progress,
        )

    def _report(self) -> None:
        """Tell the Deployer, when something it shows has changed."""
        if self.deployer is None or self.spec is None:
            return
        snapshot = self.snapshot()
        if snapshot != self._reported:
            self._reported = snapshot
            self.send(self.deployer, ReplicaChanged(snapshot))

    def _journal(
        self, kind: str, message: str, actor: str = "monitor", details: dict | None = None
    ) -> None:
        log.info("%s %s: %s", self.sname, kind, message)
        if self.deployer is not None:
            details = {**self._notice_details(kind), **(details or {})}
            self.send(self.deployer, Journal(kind, message, actor, self.spec.app, self.sname,
                                             details))  # fmt: skip

    def _notice_details(self, kind: str) -> dict:
        """What a notification about this replica needs beyond the text (its payload)."""
        details = {
            "version": self.spec.version,
            "language": self.app_config.language,
            "crash_restart_count": self.life.crash_restarts,
        }
        if kind == "ready":  # the first ready of a deployment completes it
            details["first_ready"], self.newly_ready = self.newly_ready, False
        return details

    def receiveMsg_ActorExitRequest(self, message: Any, sender: Any) -> None:
        # Leaving: the replica keeps running for the next Monitor to adopt.
        self._drop_link()
