"""What status looks like: snapshots of replicas and apps, plain frozen data for every front end."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from enum import StrEnum


class ReplicaStatus(StrEnum):
    """Where a replica is in its life (see core.lifecycle); compares equal to its text."""

    IDLE = "idle"  # no process: not started yet, stopped, or waiting to be started again
    STARTING = "starting"  # a process runs, not ready yet (or a restart is scheduled)
    PRE_COMMANDS = "pre_commands"  # the release's pre-commands run before the start
    RUNNING = "running"  # ready: ran `ready_after_ms` and its readiness check passes
    STOPPING = "stopping"  # SIGTERM sent; SIGKILL after the grace period


@dataclass(frozen=True)
class ReplicaSnapshot:
    app: str
    sname: str
    node: str
    version: str
    status: ReplicaStatus
    slot: int
    ports: dict[str, int] = field(default_factory=dict)
    pid: int | None = None
    started_at: float | None = None  # wall clock of the current OS process start
    crash_restarts: int = 0
    forced_restarts: int = 0
    otp: str = "not_connected"  # connected | not_connected
    # Distribution over mutual TLS: started with `-proto_dist inet_tls`, and DeployEx links to it
    # over TLS only, so `otp == "connected"` means the certificates were accepted both ways.
    mtls: bool = False
    adopted: bool = False
    last_error: str | None = None
    restart_at: float | None = None  # when a restart is scheduled (crash backoff)
    ready_once: bool = False  # ready at least once since its deployment (see core.rollout)
    upgrade: str | None = None  # a hot upgrade under way: "hot upgrade step 3 of 5: ..."

    def uptime_s(self, now: float | None = None) -> float | None:
        if self.started_at is None or self.pid is None:
            return None
        return max(0.0, (now or time.time()) - self.started_at)


@dataclass(frozen=True)
class AppSnapshot:
    app: str
    language: str
    replicas_wanted: int
    desired_version: str | None = None
    error: str | None = None
    replicas: tuple[ReplicaSnapshot, ...] = ()
    mode: str = "automatic"  # automatic | manual
    pinned_version: str | None = None
    ghosts: tuple[str, ...] = ()
    rollout: str = ""  # what the rollout is doing now, in words


@dataclass(frozen=True)
class DeployexSnapshot:
    version: str
    pid: int
    started_at: float
    host: str
    apps: tuple[AppSnapshot, ...] = ()
    state_error: str | None = None  # e.g. "state database: disk full", while it lasts

    def app(self, name: str) -> AppSnapshot | None:
        return next((a for a in self.apps if a.app == name), None)
