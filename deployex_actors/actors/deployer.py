"""Deployer: one per app. Keeps N replicas of the desired version running.

At start it adopts the replicas recorded in pidfiles that are still alive and removes the
folders of dead ones; then, every `deploy_schedule_interval_ms`, it reads current.json through
Storage and fills missing replicas on free port slots with fresh snames (download, unpack,
history, Monitor). Rolling updates to a new version, rollback and manual mode build on the
`plan` seam in a later step; today a different version in current.json is reported, not rolled.
"""

from __future__ import annotations

import logging
import shutil
from dataclasses import replace
from typing import Any

from deployex_actors.actors.messages import (
    AppChanged,
    CurrentRead,
    ForceRestart,
    Journal,
    PrepareRelease,
    ReadCurrent,
    RecordVersion,
    ReleasePrepared,
    ReplicaChanged,
    ReplicaSpec,
    ReplicaStopped,
    Reply,
    RestartCommand,
    StartDeployer,
    StartReplica,
    StopReplica,
    StopReplicas,
    StorageMoved,
    Timer,
)
from deployex_actors.actors.supervisor import ChildSpec, Supervisor
from deployex_actors.catalog import Catalog, new_sname
from deployex_actors.core.slots import free_slots
from deployex_actors.core.status import AppSnapshot, ReplicaSnapshot
from deployex_actors.replica import pidfile

log = logging.getLogger(__name__)
MONITOR = "deployex_actors.actors.monitor.Monitor"


class Deployer(Supervisor):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.start: StartDeployer | None = None
        self.parent: Any = None
        self.specs: dict[str, ReplicaSpec] = {}  # sname -> what its Monitor runs
        self.snapshots: dict[str, ReplicaSnapshot] = {}
        self.preparing: dict[str, int] = {}  # sname -> slot, while Storage prepares it
        self.desired: CurrentRead | None = None
        self.error: str | None = None
        self.stop_request: StopReplicas | None = None

    @property
    def app(self) -> str:
        return self.start.app

    # -- boot ------------------------------------------------------------------------------------

    def receiveMsg_StartDeployer(self, message: StartDeployer, sender: Any) -> None:
        self.start, self.parent = message, sender
        self.config = message.config.application(message.app)
        self.catalog = Catalog.from_config(message.config)
        for sname in self.catalog.snames_on_disk(self.app):
            record = pidfile.read(self.catalog.pidfile(self.app, sname))
            if record is not None and pidfile.is_alive(record):
                self._run_monitor(self._spec(sname, record.version, record.slot, adopt=True))
            else:
                self._forget(sname)
        self._report()
        self.after(0, "tick")

    def receiveMsg_StorageMoved(self, message: StorageMoved, sender: Any) -> None:
        self.start = replace(self.start, storage=message.storage)

    def _spec(
        self, sname: str, version: str, slot: int, adopt: bool = False, pre: tuple = ()
    ) -> ReplicaSpec:
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
        )

    def _run_monitor(self, spec: ReplicaSpec) -> None:
        self.specs[spec.sname] = spec
        self.start_child(ChildSpec(spec.sname, MONITOR))

    def init_message(self, name: str) -> Any:
        spec = self.specs.get(name)
        if spec is None:
            return None
        # A restarted Monitor adopts the replica if it still runs, or starts it again; the
        # counters its predecessor reported carry over.
        last = self.snapshots.get(name)
        counters = (last.crash_restarts, last.forced_restarts) if last else (0, 0)
        return StartReplica(
            replace(spec, adopt_only=False, crash_restarts=counters[0], forced_restarts=counters[1])
        )

    def _forget(self, sname: str) -> None:
        shutil.rmtree(self.catalog.sname_dir(self.app, sname), ignore_errors=True)
        pidfile.remove(self.catalog.pidfile(self.app, sname))

    # -- the schedule ----------------------------------------------------------------------------

    def on_timer(self, timer: Timer) -> None:
        if timer.kind == "tick" and self.stop_request is None:
            self.send(self.start.storage, ReadCurrent(self.app))
            self.after(self.config.deploy_schedule_interval_ms / 1000, "tick")
        else:
            super().on_timer(timer)

    def receiveMsg_CurrentRead(self, message: CurrentRead, sender: Any) -> None:
        if message.error:
            self._set_error(message.error)
            return
        self.desired = message
        self._set_error(None)
        self._fill()

    def _fill(self) -> None:
        """Start replicas on free slots until N run (or are being prepared)."""
        if self.desired is None or self.stop_request is not None:
            return
        occupied = [s.slot for s in self.specs.values()] + list(self.preparing.values())
        missing = self.config.replicas - len(self.specs) - len(self.preparing)
        for slot in free_slots(occupied, self.config.replicas, max(missing, 0)):
            sname = new_sname(self.app)
            self.preparing[sname] = slot
            self.send(self.start.storage, PrepareRelease(self.app, sname, self.desired.version))

    def receiveMsg_ReleasePrepared(self, message: ReleasePrepared, sender: Any) -> None:
        slot = self.preparing.pop(message.sname, None)
        if slot is None:
            return
        if message.error or self.desired is None or self.desired.version != message.version:
            self._forget(message.sname)
            if message.error:
                self._set_error(f"cannot deploy {message.version}: {message.error}")
            return
        desired = self.desired
        self.send(
            self.start.storage,
            RecordVersion(self.app, message.sname, desired.version, desired.hash,
                          desired.pre_commands),
        )  # fmt: skip
        self._journal("deploy", f"starting {message.sname} with {desired.version} (slot {slot})")
        self._run_monitor(
            self._spec(message.sname, desired.version, slot, pre=desired.pre_commands)
        )

    # -- replicas --------------------------------------------------------------------------------

    def receiveMsg_ReplicaChanged(self, message: ReplicaChanged, sender: Any) -> None:
        if message.snapshot.sname in self.specs:
            self.snapshots[message.snapshot.sname] = message.snapshot
            self._report()

    def receiveMsg_Journal(self, message: Journal, sender: Any) -> None:
        self.send(self.start.storage, message)

    def receiveMsg_RestartCommand(self, message: RestartCommand, sender: Any) -> None:
        targets = [message.sname] if message.sname else sorted(self.specs)
        unknown = [s for s in targets if s not in self.specs]
        if unknown:
            reply = Reply(message.request_id, error=f"{self.app} has no replica {unknown[0]}")
        else:
            for sname in targets:
                self.send(self.child(sname), ForceRestart(message.actor, "restart requested"))
            reply = Reply(message.request_id, targets)
        self.send(message.reply_to or sender, reply)

    def receiveMsg_StopReplicas(self, message: StopReplicas, sender: Any) -> None:
        self.stop_request = message
        for sname in self.specs:
            self.send(self.child(sname), StopReplica("DeployEx is stopping"))
        self._maybe_stopped()

    def receiveMsg_ReplicaStopped(self, message: ReplicaStopped, sender: Any) -> None:
        self.specs.pop(message.sname, None)
        self.snapshots.pop(message.sname, None)
        self.stop_child(message.sname)
        if self.stop_request is None:  # not a shutdown: the replica is gone for good
            self._forget(message.sname)
        self._report()
        self._maybe_stopped()
        self._fill()

    def _maybe_stopped(self) -> None:
        if self.stop_request is not None and not self.specs:
            request = self.stop_request
            self.send(request.reply_to or self.parent, Reply(request.request_id, self.app))

    def on_child_failed(self, name: str, delay_s: float) -> None:
        self._journal("monitor_restart", f"Monitor of {name} died; restarting it", sname=name)

    # -- reporting -------------------------------------------------------------------------------

    def _set_error(self, error: str | None) -> None:
        if error != self.error:
            self.error = error
            if error:  # one journal entry per distinct error, not one per tick
                self._journal("deploy_error", error)
            self._report()

    def _report(self) -> None:
        snapshot = AppSnapshot(
            app=self.app,
            language=self.config.language,
            replicas_wanted=self.config.replicas,
            desired_version=self.desired.version if self.desired else None,
            error=self.error,
            replicas=tuple(sorted(self.snapshots.values(), key=lambda r: r.slot)),
        )
        self.send(self.parent, AppChanged(snapshot))

    def _journal(self, kind: str, message: str, sname: str | None = None) -> None:
        self.send(self.start.storage, Journal(kind, message, "deployer", self.app, sname))
