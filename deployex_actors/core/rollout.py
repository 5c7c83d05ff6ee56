"""Rollout decisions: which replica to start, retire or roll back next. Pure functions.

The plan is derived from what exists (the live replicas, their versions and readiness, and the
ones being prepared), not from remembered progress, so a Deployer restarted mid-rollout resumes
where the replicas say it is: a new replica that is already serving is never rolled back, and
there are never more than N+1 replicas.

Rolling full deployment, one replica at a time with overlap: while a replica runs another
version (or is queued for a full restart), start one replica of the target version on a free
slot; when it is ready, retire one old replica; repeat. When the new version turns out to be a
hot upgrade of the replica it was to replace (the Fetcher's judgement, core.hot_upgrade), no
replica is started: the running one is upgraded in place, and nothing else happens until that
ends (`upgrading`); then it runs the target version and the plan moves to the next.

The rollback timer belongs to a deployment, not to a process: it runs from the moment a replica
is deployed until it is ready for the first time (`ready_once`), and never again for that
replica. A deployed replica that is not ready within `rollback_timeout_s` is stopped, and its
version ghosted unless that version has proven itself on another replica. After its first
ready, a replica that is down (a forced, crash or watchdog restart, an adoption) is only being
restarted in place by its Monitor: never rolled back, never a reason to ghost.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from deployex_actors.core.slots import free_slots

FULL_DEPLOYMENT = "full_deployment"
HOT_UPGRADE = "hot_upgrade"


@dataclass(frozen=True)
class ReplicaView:
    sname: str
    version: str
    slot: int
    ready: bool
    started_at: float  # wall clock of the replica's deployment (its first start)
    stopping: bool = False
    ready_once: bool = False  # this deployment was ready at least once: restarts are restarts


@dataclass(frozen=True)
class AppView:
    replicas_wanted: int
    target: str | None  # the version to run: desired, unless ghosted
    replicas: tuple[ReplicaView, ...] = ()
    preparing: tuple[tuple[str, int], ...] = ()  # (version, slot) being downloaded/unpacked
    replace: frozenset[str] = frozenset()  # snames queued for a full restart
    upgrading: frozenset[str] = frozenset()  # snames being hot-upgraded in place
    rollback_timeout_s: float = 600.0
    now: float = 0.0


@dataclass(frozen=True)
class Start:
    version: str
    slot: int
    replaces: str | None = None


@dataclass(frozen=True)
class Retire:
    sname: str


@dataclass(frozen=True)
class RollBack:
    sname: str
    version: str
    ghost: bool


@dataclass(frozen=True)
class Plan:
    actions: tuple[Start | Retire | RollBack, ...] = ()
    note: str = ""
    in_flight: tuple[str, ...] = field(default=())


def target_version(
    desired: str | None, ghosts: frozenset[str], running: list[str], last_good: str | None = None
) -> str | None:
    """The version to converge on: the desired one unless ghosted; else what already serves;
    else the newest deployed version that is not ghosted (e.g. after a stop of everything)."""
    if desired is not None and desired not in ghosts:
        return desired
    if running:
        return Counter(running).most_common(1)[0][0]
    return last_good if last_good not in ghosts else None


def plan(view: AppView) -> Plan:
    live = [r for r in view.replicas if not r.stopping]
    if view.target is None:
        return Plan(note="no version to deploy")
    if view.upgrading:  # one replica at a time, hot or not
        return Plan(note="hot upgrade under way", in_flight=tuple(sorted(view.upgrading)))
    fresh = [r for r in live if r.version == view.target and r.sname not in view.replace]
    stale = [r for r in live if r not in fresh]
    proven = {r.version for r in live if r.ready or r.ready_once}

    pending = [r for r in fresh if not r.ready]
    overdue = [r for r in pending if _overdue(r, view)]
    if overdue:
        return Plan(tuple(RollBack(r.sname, r.version, r.version not in proven) for r in overdue))
    if view.preparing or (pending and stale):
        return Plan(note="waiting for the new replica", in_flight=tuple(r.sname for r in pending))

    ready_fresh = [r for r in fresh if r.ready]
    total = len(live)
    if stale and ready_fresh and total > view.replicas_wanted:
        return Plan((Retire(_oldest_first(stale)[0].sname),), note="retiring a replaced replica")

    occupied = [r.slot for r in view.replicas] + [slot for _, slot in view.preparing]
    missing = view.replicas_wanted - total
    if missing > 0:
        # Bring-up (or a replica lost for good): fill every missing replica at once.
        slots = free_slots(occupied, view.replicas_wanted, missing)
        return Plan(tuple(Start(view.target, slot) for slot in slots), note="filling replicas")
    if stale and total == view.replicas_wanted:
        victim = _oldest_first(stale)[0]
        (slot,) = free_slots(occupied, view.replicas_wanted, 1) or (None,)
        if slot is not None:
            return Plan((Start(view.target, slot, victim.sname),), note="rolling one replica")
    if total > view.replicas_wanted:  # e.g. replicas lowered in the YAML
        extra = sorted(live, key=lambda r: (r.ready, -r.slot))[0]
        return Plan((Retire(extra.sname),), note="too many replicas")
    return Plan(note="converged" if not stale else "waiting")


def _overdue(replica: ReplicaView, view: AppView) -> bool:
    """A deployment that has not become ready in time. Once ready, never again."""
    return not replica.ready_once and view.now - replica.started_at > view.rollback_timeout_s


def _oldest_first(replicas: list[ReplicaView]) -> list[ReplicaView]:
    # Replicas that are not serving go first: replacing them costs no capacity.
    return sorted(replicas, key=lambda r: (r.ready, r.slot))
