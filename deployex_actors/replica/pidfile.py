"""Pidfiles: how a replica is found again after DeployEx (or its Monitor) restarted.

A pidfile records the pid *and* the process start time (clock ticks since boot, from
/proc/PID/stat), so a recycled pid is never taken for the replica. It is written atomically
(temp file + rename), next to the replica's service folder (see the catalog).
"""

from __future__ import annotations

import contextlib
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

from deployex_actors.releases.atomicfile import atomic_write


@dataclass(frozen=True)
class ReplicaRecord:
    app: str
    sname: str
    version: str
    pid: int
    start_ticks: int
    slot: int
    ports: dict[str, int] = field(default_factory=dict)
    started_at: float = 0.0  # wall clock of this OS process's start, for uptime
    stopping: bool = False  # asked to stop: whoever adopts it finishes the stop
    deployed_at: float = 0.0  # wall clock of the deployment that created this sname
    # Ready at least once in this deployment: from then on it is restarted, never rolled back.
    # A pidfile from before this field existed belongs to a replica an older DeployEx already
    # ran, hence True: ghosting a version that serves is the worse mistake.
    ready_once: bool = True

    @property
    def deployment_started_at(self) -> float:
        return self.deployed_at or self.started_at


def process_start_ticks(pid: int) -> int | None:
    """Start time of `pid` in clock ticks since boot; None if there is no such process."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    # The command name (field 2) may hold spaces and parentheses: split after the last ')'.
    fields = stat[stat.rindex(")") + 2 :].split()
    if fields[0] in ("Z", "X"):  # exited, not yet reaped
        return None
    return int(fields[19])


def write(path: Path, record: ReplicaRecord) -> None:
    with atomic_write(path) as out:
        out.write(json.dumps(asdict(record)).encode())


def read(path: Path) -> ReplicaRecord | None:
    """The record, or None when the file is missing or unreadable (never an exception)."""
    try:
        data = json.loads(path.read_text())
        data["ports"] = {str(k): int(v) for k, v in data.get("ports", {}).items()}
        return ReplicaRecord(**data)
    except (OSError, ValueError, TypeError):
        return None


def remove(path: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        path.unlink()


def is_alive(record: ReplicaRecord) -> bool:
    """The recorded process still runs: same pid and same start time."""
    return process_start_ticks(record.pid) == record.start_ticks
