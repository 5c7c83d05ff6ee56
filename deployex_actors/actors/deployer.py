"""Deployer: one per app. Converges the app's replicas on the desired version.

At start it adopts the replicas recorded in pidfiles that are still alive, starts again under
their snames those that had been ready but died while DeployEx was away, and removes the folders
of the others. Every `deploy_schedule_interval_ms` (and whenever a replica changes) it
asks `core.rollout.plan` what to do next and does it: start a replica of the target version on a
free slot with a fresh sname (its Fetcher downloads and unpacks it), retire a replaced replica once
its successor is ready, or roll back a new replica that was not ready in time and ghost its
version. Errors (bucket, tarball, unpack) are shown in status, journaled once, and retried with
a capped backoff; the running replicas keep serving.

The desired version comes in two steps: Storage says the mode, ghosts and last good version (a
pinned version in manual mode); in automatic mode the Fetcher then reads current.json. The
Fetcher (a child, restarted like a Monitor) does all bucket work, one request at a time, so at
most one current.json read is asked for at once however long the bucket takes. Once both are
known, neither is asked again while nothing changes: Storage's part is read again after this
Deployer wrote to it or when Storage says Reconsider (an operator's pin, unghost), and the
Fetcher reads current.json on its own schedule and tells only what changed.
"""

from __future__ import annotations

import logging
import shutil
import time
from dataclasses import replace
from typing import Any

from deployex_actors.actors.messages import (
    AppChanged,
    ConfigChanged,
    CurrentRead,
    DesiredRead,
    ForceRestart,
    FullRestart,
    Ghost,
    HotUpgradeEnded,
    Journal,
    ObserverCall,
    PrepareRelease,
    ReadCurrent,
    ReadDesired,
    Reconsider,
    RecordVersion,
    ReleasePrepared,
    ReplicaChanged,
    ReplicaSpec,
    ReplicaStopped,
    Reply,
    RestartCommand,
    SetMode,
    ShellCommandQuery,
    StartDeployer,
    StartFetcher,
    StartReplica,
    StopReplica,
    StopReplicas,
    StorageMoved,
    Timer,
)
from deployex_actors.actors.supervisor import ChildSpec, Supervisor
from deployex_actors.catalog import Catalog, new_sname
from deployex_actors.core import rollout
from deployex_actors.core.backoff import prepare_retry_delay_s
from deployex_actors.core.config_diff import full_deploy_needed
from deployex_actors.core.status import AppSnapshot, ReplicaSnapshot, ReplicaStatus
from deployex_actors.replica import pidfile

log = logging.getLogger(__name__)
MONITOR = "deployex_actors.actors.monitor.Monitor"
FETCHER = ChildSpec("fetcher", "deployex_actors.actors.fetcher.Fetcher")  # no sname: no clash


class Deployer(Supervisor):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.start: StartDeployer | None = None
        self.parent: Any = None
        self.specs: dict[str, ReplicaSpec] = {}  # sname -> what its Monitor runs
        self.snapshots: dict[str, ReplicaSnapshot] = {}
        self.retiring: set[str] = set()
        self.preparing: dict[str, tuple[str, int]] = {}  # sname -> (version, slot)
        self.upgrading: dict[str, RecordVersion] = {}  # sname -> its record, once upgraded
        self.replace_queue: set[str] = set()  # full restart: snames still to replace
        self.desired: DesiredRead | None = None
        self.state_read: DesiredRead | None = None  # Storage's part (automatic mode)
        self.state_stale = True  # read Storage's part again at the next tick (see on_timer)
        self.reading_current = False
        self.kind_reason: str | None = None  # the last hot-or-full judgement journaled
        self.error: str | None = None
        self.note = ""
        self.prepare_failures = 0
        self.prepare_blocked_until = 0.0
        # While a version keeps failing to prepare the same way, its retries are not journaled
        # as new deployments: (version, error) of the last failure, and the held entries.
        self.failing: tuple[str, str] | None = None
        self.quiet: dict[str, str] = {}  # sname -> its `deploy` entry, journaled if it matters
        self.stop_request: StopReplicas | None = None

    @property
    def app(self) -> str:
        return self.start.app

    # -- boot ------------------------------------------------------------------------------------

    def receiveMsg_StartDeployer(self, message: StartDeployer, sender: Any) -> None:
        self.start, self.parent = message, sender
        self.config = message.config.application(message.app)
        self.catalog = Catalog.from_config(message.config)
        self.start_child(FETCHER)
        for sname in self.catalog.snames_on_disk(self.app):
            record = pidfile.read(self.catalog.pidfile(self.app, sname))
            alive = record is not None and pidfile.is_alive(record)
            if record is None or not (alive or (record.ready_once and not record.stopping)):
                self._forget(sname)
                continue
            # The deployment's own start and first ready, as recorded: a restarted DeployEx
            # neither re-arms the rollback timer of a replica that was ready nor forgets it.
            # One that was ready once but died while DeployEx was away (a host reboot) is
            # started again under its sname: a restart, not a new deployment.
            deployed = (record.deployment_started_at, record.ready_once)
            self._run_monitor(self._spec(sname, record.version, record.slot, deployed, alive))
            if record.stopping:  # our predecessor was stopping it: finish that, count it out
                self._retire(sname, "a stop begun before DeployEx restarted")
        self._report()
        self.after(0, "tick")

    def receiveMsg_StorageMoved(self, message: StorageMoved, sender: Any) -> None:
        self.start = replace(self.start, storage=message.storage)
        self.state_stale = True  # what was sent to its predecessor may be lost

    def receiveMsg_ConfigChanged(self, message: ConfigChanged, sender: Any) -> None:
        """An approved change of this app (core.config_diff): replicas, timings and monitoring
        count from now on; replicas deployed from now on start with the new language, env and
        ports; a changed `replica_ports` replaces every replica now (a full deployment)."""
        before = self.config
        self.start = replace(self.start, config=message.config)
        self.config = message.config.application(self.app)
        fetcher = self.child(FETCHER.name)
        if fetcher is not None:  # its polling period and hot-upgrade switch
            self.send(fetcher, message)
        if full_deploy_needed(before, self.config):
            self.replace_queue = {s for s in self.specs if s not in self.retiring}
            self._journal("full_restart", f"replacing {len(self.replace_queue)} replica(s) one "
                          "at a time: replica_ports changed")  # fmt: skip
        self.after(0, "tick")  # the schedule at its new period, and the new replica count now

    def _spec(
        self,
        sname: str,
        version: str,
        slot: int,
        deployed: tuple[float, bool],
        adopt: bool = False,
        pre: tuple = (),
    ) -> ReplicaSpec:
        deployed_at, ready_once = deployed
        return ReplicaSpec(
            config=self.start.config,
            app=self.app,
            sname=sname,
            version=version,
            slot=slot,
            cookie=self.start.cookie,
            pre_commands=pre,
            tls_optfile=self.start.tls_optfile,
            adopt_only=adopt,
            deployed_at=deployed_at,
            ready_once=ready_once,
        )

    def _run_monitor(self, spec: ReplicaSpec) -> None:
        self.specs[spec.sname] = spec
        self.start_child(ChildSpec(spec.sname, MONITOR))

    def init_message(self, name: str) -> Any:
        if name == FETCHER.name:
            return StartFetcher(self.start.config, self.app)
        spec = self.specs.get(name)
        if spec is None:
            return None
        # A restarted Monitor adopts the replica if it still runs, or starts it again; the
        # counters its predecessor reported carry over, and so does a first ready.
        last = self.snapshots.get(name)
        counters = (last.crash_restarts, last.forced_restarts) if last else (0, 0)
        return StartReplica(
            replace(
                spec,
                adopt_only=False,
                crash_restarts=counters[0],
                forced_restarts=counters[1],
                ready_once=self._ready_once(name),
            )
        )

    def _ready_once(self, sname: str) -> bool:
        snapshot = self.snapshots.get(sname)
        return self.specs[sname].ready_once or (snapshot is not None and snapshot.ready_once)

    def _forget(self, sname: str) -> None:
        shutil.rmtree(self.catalog.sname_dir(self.app, sname), ignore_errors=True)
        pidfile.remove(self.catalog.pidfile(self.app, sname))
        for table in (self.specs, self.snapshots):
            table.pop(sname, None)
        self.retiring.discard(sname)
        self.replace_queue.discard(sname)
        self.upgrading.pop(sname, None)

    # -- the schedule ----------------------------------------------------------------------------

    def on_timer(self, timer: Timer) -> None:
        if timer.kind == "tick" and self.stop_request is None:
            # Storage's part changes when this Deployer writes it (stale), or by an operator,
            # which Storage answers with Reconsider; current.json changes come from the
            # Fetcher's own polling. An idle tick sends nothing.
            if self.state_stale:
                self.send(self.start.storage, ReadDesired(self.app))
            else:
                self._advance()
            self.after(self.config.deploy_schedule_interval_ms / 1000, "tick")
        elif timer.kind == "advance":
            self._advance()
        else:
            super().on_timer(timer)

    def receiveMsg_Reconsider(self, message: Reconsider, sender: Any) -> None:
        self.send(self.start.storage, ReadDesired(self.app))

    def receiveMsg_DesiredRead(self, message: DesiredRead, sender: Any) -> None:
        self.state_stale = False
        if message.mode == "manual":
            self.state_read = None  # the Fetcher's news of current.json do not apply
            self._desired(message)
            return
        self.state_read = message
        fetcher = self.child(FETCHER.name)
        if not self.reading_current and fetcher is not None:
            self.reading_current = True
            self.send(fetcher, ReadCurrent(self.app))

    def receiveMsg_CurrentRead(self, message: CurrentRead, sender: Any) -> None:
        self.reading_current = False
        if self.state_read is not None:
            self._desired(
                replace(
                    self.state_read,
                    version=message.version,
                    hash=message.hash,
                    pre_commands=message.pre_commands,
                    error=message.error,
                )
            )

    def _desired(self, message: DesiredRead) -> None:
        if message.error:
            previous = self.desired
            self.desired = (
                replace(previous, ghosts=message.ghosts, last_good=message.last_good)
                if previous
                else replace(message, error=None)  # no version known: last_good may still run
            )
            self._set_error(message.error)
        else:
            self.desired = message
            if not self.preparing and self.prepare_failures == 0:
                self._set_error(None)
        self._advance()

    def _target(self) -> str | None:
        if self.desired is None:
            running = [s.version for s in self.specs.values()]
            return rollout.target_version(None, frozenset(), running)
        running = [s.version for n, s in self.specs.items() if n not in self.retiring]
        ghosts = frozenset(self.desired.ghosts)
        desired = self.desired
        return rollout.target_version(desired.version, ghosts, running, desired.last_good)

    def _view(self) -> rollout.AppView:
        replicas = []
        for sname, spec in self.specs.items():
            snapshot = self.snapshots.get(sname)
            replicas.append(
                rollout.ReplicaView(
                    sname=sname,
                    version=spec.version,
                    slot=spec.slot,
                    ready=snapshot is not None and snapshot.status == ReplicaStatus.RUNNING,
                    started_at=spec.deployed_at,
                    stopping=sname in self.retiring,
                    ready_once=self._ready_once(sname),
                )
            )
        return rollout.AppView(
            replicas_wanted=self.config.replicas,
            target=self._target(),
            replicas=tuple(replicas),
            preparing=tuple(self.preparing.values()),
            replace=frozenset(self.replace_queue),
            upgrading=frozenset(self.upgrading),
            rollback_timeout_s=self.config.deploy_rollback_timeout_ms / 1000,
            now=time.time(),
        )

    def _advance(self) -> None:
        if self.stop_request is not None:
            return
        decision = rollout.plan(self._view())
        self.note = decision.note
        for action in decision.actions:
            if isinstance(action, rollout.Start):
                self._start_new(action)
            elif isinstance(action, rollout.Retire):
                self._retire(action.sname, "replaced by a ready replica")
            elif isinstance(action, rollout.RollBack):
                self._roll_back(action)
        self._report()

    # -- actions ---------------------------------------------------------------------------------

    def _start_new(self, action: rollout.Start) -> None:
        if time.time() < self.prepare_blocked_until:
            self.note = f"retrying the deployment of {action.version} after an error"
            return
        fetcher = self.child(FETCHER.name)
        if fetcher is None:
            self.note = "waiting for the release fetcher to restart"
            return
        sname = new_sname(self.app)
        self.preparing[sname] = (action.version, action.slot)
        replaces = f", replacing {action.replaces}" if action.replaces else ""
        text = f"deploying {action.version} as {sname} (slot {action.slot}{replaces})"
        if self.failing is not None and self.failing[0] == action.version:
            self.quiet[sname] = text  # a retry: journaled only if it ends another way
        else:
            self._journal("deploy", text, sname, {"version": action.version})
        replaced = self.specs.get(action.replaces) if action.replaces else None
        running = replaced.version if replaced is not None else None
        desired = self.desired
        pre = desired.pre_commands if desired and desired.version == action.version else ()
        prepare = PrepareRelease(self.app, sname, action.version, action.replaces, running, pre)
        self.send(fetcher, prepare)

    def _retire(self, sname: str, reason: str) -> None:
        if sname in self.retiring or self.child(sname) is None:
            return
        self.retiring.add(sname)
        self._journal("retire", f"stopping {sname}: {reason}", sname)
        self.send(self.child(sname), StopReplica(reason))

    def _roll_back(self, action: rollout.RollBack) -> None:
        timeout_s = self.config.deploy_rollback_timeout_ms / 1000
        reason = f"{action.sname} not ready within {timeout_s:g} s"
        if action.ghost:
            self._write(Ghost(self.app, action.version, reason, action.sname))
            if self.desired is not None:
                ghosts = (*self.desired.ghosts, action.version)
                self.desired = replace(self.desired, ghosts=ghosts)
        self._journal("rollback", f"rolling back {action.version}: {reason}", action.sname,
                      {"version": action.version})  # fmt: skip
        self._retire(action.sname, "rolled back")

    def receiveMsg_ReleasePrepared(self, message: ReleasePrepared, sender: Any) -> None:
        entry = self.preparing.pop(message.sname, None)
        if entry is None:
            return
        version, slot = entry
        held = self.quiet.pop(message.sname, None)
        if message.error:
            if held is not None and self.failing != (version, message.error):
                self._journal("deploy", held, message.sname, {"version": version})  # it counts
            self.failing = (version, message.error)
            self._forget(message.sname)
            self.prepare_failures += 1
            delay = prepare_retry_delay_s(self.prepare_failures)
            self.prepare_blocked_until = time.time() + delay
            self._set_error(f"cannot deploy {version}: {message.error}")
            self.after(delay, "advance")
            return
        if held is not None:
            self._journal("deploy", f"{held}, after {self.prepare_failures} failed attempt(s)",
                          message.sname, {"version": version})  # fmt: skip
        if message.kind_reason and message.kind_reason != self.kind_reason:
            self.kind_reason = message.kind_reason  # once per rollout, not once per replica
            self._journal("deployment_kind", message.kind_reason, message.sname)
        self.failing = None
        self.prepare_failures = 0
        self._set_error(None)
        desired = self.desired
        same = desired is not None and desired.version == version
        pre = desired.pre_commands if same else ()
        record = RecordVersion(self.app, message.sname, version, desired.hash if same else None,
                               pre)  # fmt: skip
        if message.hot_upgrade is not None:
            self._hot_upgrade(message, record)
            return
        self._write(record)
        # The rollback timer starts now, once per deployment: it stops at the first ready.
        deployed = (time.time(), False)
        self._run_monitor(self._spec(message.sname, version, slot, deployed, pre=pre))
        self._advance()

    def _hot_upgrade(self, message: ReleasePrepared, record: RecordVersion) -> None:
        """No new replica: the one it was to replace is upgraded in place by its Monitor."""
        self._forget(message.sname)  # only its folder was made
        order = message.hot_upgrade
        monitor = self.child(order.sname)
        if monitor is None or order.sname not in self.specs or order.sname in self.retiring:
            self.note = f"{order.sname} went away before its hot upgrade"
            self.after(0, "advance")
            return
        self.upgrading[order.sname] = replace(record, sname=order.sname, kind=rollout.HOT_UPGRADE)
        self.send(monitor, order)
        self._advance()

    def receiveMsg_HotUpgradeEnded(self, message: HotUpgradeEnded, sender: Any) -> None:
        record = self.upgrading.pop(message.sname, None)
        spec = self.specs.get(message.sname)
        if record is None or spec is None:
            return
        version = message.target.to_version
        if message.ok:
            pre = message.target.pre_commands
            self.specs[message.sname] = replace(spec, version=version, pre_commands=pre)
            self._write(record)
        elif message.ghost:
            self._write(Ghost(self.app, version, message.message, message.sname))
            if self.desired is not None:
                self.desired = replace(self.desired, ghosts=(*self.desired.ghosts, version))
        else:  # not the version's fault (the replica was restarting): try again a bit later
            self.prepare_blocked_until = time.time() + prepare_retry_delay_s(1)
            self.after(prepare_retry_delay_s(1), "advance")
        self._advance()

    # -- replicas --------------------------------------------------------------------------------

    def receiveMsg_ReplicaChanged(self, message: ReplicaChanged, sender: Any) -> None:
        snapshot = message.snapshot
        if snapshot.sname not in self.specs:
            return
        before = self.snapshots.get(snapshot.sname)
        self.snapshots[snapshot.sname] = snapshot
        running = ReplicaStatus.RUNNING
        if snapshot.status == running and (before is None or before.status != running):
            self._advance()  # a replica became ready: the rollout may take its next step
        else:
            self._report()

    def receiveMsg_ReplicaStopped(self, message: ReplicaStopped, sender: Any) -> None:
        self.stop_child(message.sname)
        if self.stop_request is not None:  # shutdown: keep the folder, forget the Monitor
            self.specs.pop(message.sname, None)
            self.snapshots.pop(message.sname, None)
            self._report()
            self._maybe_stopped()
            return
        self._forget(message.sname)
        self._advance()

    def receiveMsg_Journal(self, message: Journal, sender: Any) -> None:
        self.send(self.start.storage, message)

    def on_child_failed(self, name: str, delay_s: float) -> None:
        if name != FETCHER.name:
            self._journal("monitor_restart", f"Monitor of {name} died; restarting it", sname=name)
            if self.upgrading.pop(name, None) is not None:
                self.after(0, "advance")  # its successor adopts the replica; plan again then
            return
        self._journal("fetcher_restart", f"the release fetcher died; restarting it in "
                      f"{delay_s:.1f} s")  # fmt: skip
        self.reading_current = False
        for sname, (version, _slot) in list(self.preparing.items()):
            failed = ReleasePrepared(self.app, sname, version, "the release fetcher died")
            self.receiveMsg_ReleasePrepared(failed, None)

    # -- commands --------------------------------------------------------------------------------

    def receiveMsg_RestartCommand(self, message: RestartCommand, sender: Any) -> None:
        targets = [message.sname] if message.sname else sorted(self.specs)
        unknown = [s for s in targets if s not in self.specs]
        if unknown:
            reply = Reply(message.request_id, error=f"{self.app} has no replica {unknown[0]}")
        else:
            for sname in targets:
                self.send(self.child(sname), ForceRestart(message.actor, message.reason))
            reply = Reply(message.request_id, targets)
        self.send(message.reply_to or sender, reply)

    def receiveMsg_ShellCommandQuery(self, message: ShellCommandQuery, sender: Any) -> None:
        self._to_monitor(message, sender)

    def receiveMsg_ObserverCall(self, message: ObserverCall, sender: Any) -> None:
        self._to_monitor(message, sender)

    def _to_monitor(self, message: ShellCommandQuery | ObserverCall, sender: Any) -> None:
        """A request about one replica, answered by its Monitor."""
        monitor = self.child(message.sname) if message.sname in self.specs else None
        if monitor is None:
            error = f"{self.app} has no replica {message.sname}"
            self.send(message.reply_to or sender, Reply(message.request_id, error=error))
            return
        self.send(monitor, replace(message, reply_to=message.reply_to or sender))

    def receiveMsg_SetMode(self, message: SetMode, sender: Any) -> None:
        """A pin is checked against the bucket by the Fetcher first, then stored by Storage,
        which answers the operator and tells us to read the desired version again."""
        fetcher = self.child(FETCHER.name)
        if message.version is not None and not message.bucket_checked:
            if fetcher is not None:
                self.send(fetcher, message)
                return
            message = replace(message, bucket_error="the release fetcher is restarting")
        self.send(self.start.storage, replace(message, deployer=self.myAddress))

    def receiveMsg_FullRestart(self, message: FullRestart, sender: Any) -> None:
        self.replace_queue = {s for s in self.specs if s not in self.retiring}
        self._journal("full_restart", f"replacing {len(self.replace_queue)} replica(s) one at "
                      f"a time (requested by {message.actor})")  # fmt: skip
        self.send(message.reply_to or sender, Reply(message.request_id, sorted(self.replace_queue)))
        self._advance()

    def receiveMsg_StopReplicas(self, message: StopReplicas, sender: Any) -> None:
        self.stop_request = message
        for sname in self.specs:
            self.send(self.child(sname), StopReplica("DeployEx is stopping"))
        self._maybe_stopped()

    def _maybe_stopped(self) -> None:
        if self.stop_request is not None and not self.specs:
            request = self.stop_request
            self.send(request.reply_to or self.parent, Reply(request.request_id, self.app))

    # -- reporting -------------------------------------------------------------------------------

    def _set_error(self, error: str | None) -> None:
        if error != self.error:
            self.error = error
            if error:  # one journal entry per distinct error, not one per tick
                self._journal("deploy_error", error)
            self._report()

    def _report(self) -> None:
        desired = self.desired
        snapshot = AppSnapshot(
            app=self.app,
            language=self.config.language,
            replicas_wanted=self.config.replicas,
            desired_version=desired.version if desired else None,
            error=self.error,
            replicas=tuple(sorted(self.snapshots.values(), key=lambda r: r.slot)),
            mode=desired.mode if desired else "automatic",
            pinned_version=desired.version if desired and desired.mode == "manual" else None,
            ghosts=tuple(desired.ghosts) if desired else (),
            rollout=self.note,
        )
        self.send(self.parent, AppChanged(snapshot))

    def _write(self, message: Ghost | RecordVersion) -> None:
        """A write to Storage's part of what to run (ghosts, history: last_good)."""
        self.send(self.start.storage, message)
        self.state_stale = True

    def _journal(
        self, kind: str, message: str, sname: str | None = None, details: dict | None = None
    ) -> None:
        self.send(self.start.storage, Journal(kind, message, "deployer", self.app, sname,
                                              details or {}))  # fmt: skip
