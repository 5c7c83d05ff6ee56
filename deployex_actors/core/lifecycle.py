"""A replica's lifecycle as a table: (phase, event) -> new state + effects. Pure.

The Monitor (actors/monitor.py) owns one replica. It turns what happens (a pidfd says the
process exited, a timer fired, the Deployer asks for a restart) into an event, calls `step`,
and performs the effects it gets back (start a process, send a signal, arm a timer, journal).
What an effect finds out (a process could not start, a readiness check failed) comes back as
the next event. Every decision is here and tested without processes; nothing here does I/O.

    phase          event                 -> phase          effects
    IDLE/WAITING   Start                 -> PRE_COMMANDS   RunPre(first)        (pre-commands)
                                         -> (spawning)     Spawn                (none)
                                         -> WAITING        Schedule(start)      (no executable)
    PRE_COMMANDS   PreExited(0)          -> PRE_COMMANDS   RunPre(next) | Spawn
                   PreExited(!=0)/PreFailed -> WAITING     Schedule(start), Journal
    (spawning)     Spawned               -> STARTING       Schedule(ready), Link, Journal
                   SpawnFailed           -> WAITING        Schedule(start), Journal
    IDLE           Adopted               -> STARTING       Schedule(ready rest), Link, Journal
    STARTING       ReadyChecked(ok)      -> RUNNING        MarkReadyOnce, Journal
                   ReadyChecked(problem) -> STARTING       Schedule(ready)
    alive          Exited                -> WAITING/Start  crash: Journal, backoff (0: at once)
    alive          ForceRestart          -> STOPPING       Terminate (then: start again)
    alive          Stop                  -> STOPPING       Terminate (then: Stopped)
    STOPPING       Exited                -> IDLE + Stopped | Start again
    PRE_COMMANDS   Stop                  -> PRE_COMMANDS   KillPre (its exit ends in Stopped)
    IDLE/WAITING   Stop                  -> IDLE           Stopped
    STOPPING       KillDue               ->                Kill (SIGKILL after the grace)
    RUNNING        UpgradeAsked          -> UPGRADING      RunUpgradeStep(0), Journal
    other          UpgradeAsked          ->                UpgradeEnded(refused, no ghost)
    UPGRADING      UpgradeStepDone(ok)   -> UPGRADING      RunUpgradeStep(next), Journal
                   UpgradeStepDone(last) -> RUNNING        UpgradeEnded(ok), Journal
                   UpgradeStepDone(fail before install) -> RUNNING  UndoUnpack, UpgradeEnded
                   UpgradeStepDone(fail after)  -> RUNNING  Terminate (its exit is a crash)
                   Exited                -> crash path     UpgradeEnded(failed)
                   Stop                  -> UPGRADING      (stops once the upgrade ends)
                   ForceRestart          -> UPGRADING      Journal (refused)

"alive" is STARTING, RUNNING, UPGRADING or STOPPING: a replica process exists. A stop for good
is sticky: once asked, nothing starts again.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from enum import StrEnum

from deployex_actors.core import hot_upgrade_steps as upgrade
from deployex_actors.core.backoff import next_crash_streak, replica_restart_delay_ms
from deployex_actors.core.status import ReplicaStatus


class Phase(StrEnum):
    IDLE = "idle"  # no process, nothing scheduled (before the first start, or stopped)
    WAITING = "waiting"  # no process; a start is scheduled after a backoff
    PRE_COMMANDS = "pre_commands"  # a pre-command runs
    SPAWNING = "spawning"  # the replica's process is being started (an effect under way)
    STARTING = "starting"  # the process runs, not ready yet
    RUNNING = "running"  # ready
    STOPPING = "stopping"  # SIGTERM sent; `restart` says what follows its exit
    UPGRADING = "upgrading"  # ready, and a hot upgrade runs on it (status shows "running")


ALIVE = frozenset({Phase.STARTING, Phase.RUNNING, Phase.UPGRADING, Phase.STOPPING})


@dataclass(frozen=True)
class Policy:
    """What the app's configuration says about restarts (milliseconds, as in the YAML)."""

    ready_after_ms: int
    backoff_base_ms: int
    backoff_max_ms: int

    def backoff_s(self, streak: int) -> float:
        return replica_restart_delay_ms(streak, self.backoff_base_ms, self.backoff_max_ms) / 1000


@dataclass(frozen=True)
class Upgrading:
    target: upgrade.Target
    step: int = 0  # index in hot_upgrade_steps.steps_of(target) of the step under way


@dataclass(frozen=True)
class Life:
    phase: Phase = Phase.IDLE
    pre_commands: tuple[str, ...] = ()  # the release's, run before every start
    pending_pre: tuple[str, ...] = ()  # those still to run in this start
    stop_requested: bool = False  # a stop for good: sticky
    restart: bool = False  # in STOPPING: start again once the process is gone
    retrying_pre: bool = False  # in WAITING: after a failed pre-command
    crash_restarts: int = 0
    forced_restarts: int = 0
    streak: int = 0  # consecutive crashes (start failures count too)
    pre_failures: int = 0
    last_error: str | None = None
    restart_at: float | None = None  # wall clock of a scheduled start
    upgrade: Upgrading | None = None  # in UPGRADING: which upgrade, at which step

    @property
    def alive(self) -> bool:
        return self.phase in ALIVE

    @property
    def upgrade_progress(self) -> str | None:
        """ "hot upgrade step 3 of 5: install_release" while one runs, for the status."""
        run = self.upgrade
        return None if run is None else upgrade.progress(run.target, run.step)

    @property
    def status(self) -> ReplicaStatus:
        """What status shows: a scheduled start is "starting" (or "pre_commands" again)."""
        if self.phase == Phase.WAITING:
            return ReplicaStatus.PRE_COMMANDS if self.retrying_pre else ReplicaStatus.STARTING
        if self.phase == Phase.SPAWNING:
            return ReplicaStatus.STARTING
        if self.phase == Phase.UPGRADING:  # it serves all along
            return ReplicaStatus.RUNNING
        return ReplicaStatus(self.phase.value)


# -- events --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Start:
    """Start (again) now; `missing` names the executable when the release lacks it."""

    missing: str | None = None


@dataclass(frozen=True)
class Spawned:
    version: str
    pid: int


@dataclass(frozen=True)
class SpawnFailed:
    reason: str


@dataclass(frozen=True)
class Adopted:
    pid: int
    ready_in_s: float  # what is left of the ready period since the process started


@dataclass(frozen=True)
class Gone:
    """Asked to adopt, and the recorded process is gone."""


@dataclass(frozen=True)
class PreExited:
    code: int | None


@dataclass(frozen=True)
class PreFailed:
    reason: str  # the pre-command could not even start


@dataclass(frozen=True)
class ReadyChecked:
    version: str
    pid: int
    problem: str | None  # None: ready
    interval_s: float = 1.0  # when to check again if not


@dataclass(frozen=True)
class Exited:
    code: int | None  # None: not our child (adopted), the status is unknown
    ran_s: float


@dataclass(frozen=True)
class ForceRestart:
    actor: str
    reason: str


@dataclass(frozen=True)
class Stop:
    pass


@dataclass(frozen=True)
class KillDue:
    pass


@dataclass(frozen=True)
class UpgradeAsked:
    target: upgrade.Target
    linked: bool  # the distribution link is up: the steps can be called


@dataclass(frozen=True)
class UpgradeStepDone:
    step: int
    problem: str | None  # None: the step succeeded


Event = (
    Start | Spawned | SpawnFailed | Adopted | Gone | PreExited | PreFailed | ReadyChecked
    | Exited | ForceRestart | Stop | KillDue | UpgradeAsked | UpgradeStepDone
)  # fmt: skip

# -- effects -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RunPre:
    command: str


@dataclass(frozen=True)
class KillPre:
    pass


@dataclass(frozen=True)
class Spawn:
    pass


@dataclass(frozen=True)
class BeginStart:
    """Start again now: the Monitor answers with `Start` (it knows whether the release is whole)."""


@dataclass(frozen=True)
class Terminate:
    for_good: bool  # a stop, not a restart: the pidfile says so, for whoever adopts next


@dataclass(frozen=True)
class Kill:
    pass


@dataclass(frozen=True)
class Schedule:
    kind: str  # "start" | "ready" | "kill"
    delay_s: float


@dataclass(frozen=True)
class Cancel:
    kind: str


@dataclass(frozen=True)
class Journal:
    kind: str
    message: str
    actor: str = "monitor"
    details: dict = field(default_factory=dict, compare=False)  # for a notification's payload


@dataclass(frozen=True)
class Link:
    delay_s: float


@dataclass(frozen=True)
class MarkReadyOnce:
    pass


@dataclass(frozen=True)
class Stopped:
    """The replica is gone for good: drop the link, remove the pidfile, tell the Deployer."""


@dataclass(frozen=True)
class RunUpgradeStep:
    target: upgrade.Target
    step: int


@dataclass(frozen=True)
class UndoUnpack:
    """Forget the unpacked release on the node (and a tarball unpack_release left behind)."""

    target: upgrade.Target


@dataclass(frozen=True)
class UpgradeEnded:
    """Tell the Deployer how the hot upgrade ended; on success the replica now runs B."""

    target: upgrade.Target
    ok: bool
    message: str
    ghost: bool = False  # the version's fault: never try it again


Effect = (
    RunPre | KillPre | Spawn | BeginStart | Terminate | Kill | Schedule | Cancel | Journal | Link
    | MarkReadyOnce | Stopped | RunUpgradeStep | UndoUnpack | UpgradeEnded
)  # fmt: skip
STOP_GRACE_S = 10.0
LINK_FIRST_S = 0.2
STOPPED_JOURNAL = Journal("stopped", "stopped on request")


def step(life: Life, event: Event, policy: Policy, now: float) -> tuple[Life, tuple[Effect, ...]]:
    """The new state and what to do, for one event; an event that does not apply is ignored."""
    handler = _HANDLERS.get(type(event))
    if handler is None:
        return life, ()
    return handler(life, event, policy, now)


def _start(life: Life, event: Start, policy: Policy, now: float) -> tuple[Life, tuple]:
    if life.stop_requested or life.phase not in (Phase.IDLE, Phase.WAITING):
        return life, ()
    life = replace(life, restart_at=None, retrying_pre=False)
    if event.missing is not None:
        return _start_failed(life, f"{event.missing} is missing after unpacking", policy, now)
    if life.pre_commands:
        pending = life.pre_commands
        return replace(life, phase=Phase.PRE_COMMANDS, pending_pre=pending), (RunPre(pending[0]),)
    return replace(life, phase=Phase.SPAWNING), (Spawn(),)


def _spawned(life: Life, event: Spawned, policy: Policy, now: float) -> tuple[Life, tuple]:
    life = replace(life, phase=Phase.STARTING, last_error=None)
    return life, (
        Journal("started", f"{event.version} started, pid {event.pid}"),
        Schedule("ready", policy.ready_after_ms / 1000),
        Link(LINK_FIRST_S),
    )


def _spawn_failed(life: Life, event: SpawnFailed, policy: Policy, now: float) -> tuple[Life, tuple]:
    return _start_failed(life, f"cannot start: {event.reason}", policy, now)


def _start_failed(life: Life, reason: str, policy: Policy, now: float) -> tuple[Life, tuple]:
    streak = life.streak + 1
    delay = policy.backoff_s(streak)
    life = replace(life, phase=Phase.WAITING, streak=streak, last_error=reason,
                   restart_at=now + delay)  # fmt: skip
    return life, (
        Journal("start_failed", f"{reason}; retrying in {delay:g} s"),
        Schedule("start", delay),
    )


def _adopted(life: Life, event: Adopted, policy: Policy, now: float) -> tuple[Life, tuple]:
    life = replace(life, phase=Phase.STARTING)
    return life, (
        Journal("adopted", f"adopted running replica pid {event.pid}"),
        Schedule("ready", event.ready_in_s),
        Link(0.0),
    )


def _gone(life: Life, event: Gone, policy: Policy, now: float) -> tuple[Life, tuple]:
    return replace(life, phase=Phase.IDLE, last_error="the recorded process is gone"), (Stopped(),)


def _pre_exited(life: Life, event: PreExited, policy: Policy, now: float) -> tuple[Life, tuple]:
    if life.phase != Phase.PRE_COMMANDS:
        return life, ()
    if life.stop_requested:
        return replace(life, phase=Phase.IDLE, pending_pre=()), (STOPPED_JOURNAL, Stopped())
    text, rest = life.pending_pre[0], life.pending_pre[1:]
    if event.code != 0:
        return _pre_failed(life, f"pre-command {text!r} exited with status {event.code}", policy,
                           now)  # fmt: skip
    if rest:
        return replace(life, pending_pre=rest), (RunPre(rest[0]),)
    return replace(life, phase=Phase.SPAWNING, pending_pre=(), pre_failures=0), (Spawn(),)


def _pre_could_not_start(
    life: Life, event: PreFailed, policy: Policy, now: float
) -> tuple[Life, tuple]:
    if life.phase != Phase.PRE_COMMANDS:
        return life, ()
    text = life.pending_pre[0]
    return _pre_failed(life, f"pre-command {text!r} could not start: {event.reason}", policy, now)


def _pre_failed(life: Life, reason: str, policy: Policy, now: float) -> tuple[Life, tuple]:
    failures = life.pre_failures + 1
    delay = policy.backoff_s(failures)
    life = replace(life, phase=Phase.WAITING, pending_pre=(), pre_failures=failures,
                   retrying_pre=True, last_error=reason, restart_at=now + delay)  # fmt: skip
    return life, (
        Journal("pre_command_failed", f"{reason}; retrying in {delay:g} s"),
        Schedule("start", delay),
    )


def _ready_checked(
    life: Life, event: ReadyChecked, policy: Policy, now: float
) -> tuple[Life, tuple]:
    if life.phase != Phase.STARTING:
        return life, ()
    if event.problem is not None:
        return replace(life, last_error=event.problem), (Schedule("ready", event.interval_s),)
    return replace(life, phase=Phase.RUNNING, last_error=None), (
        MarkReadyOnce(),
        Journal("ready", f"{event.version} ready, pid {event.pid}"),
    )


def _exited(life: Life, event: Exited, policy: Policy, now: float) -> tuple[Life, tuple]:
    if not life.alive:
        return life, ()
    done: tuple = (Cancel("ready"), Cancel("kill"))
    if life.phase == Phase.UPGRADING:
        done = (*done, *_upgrade_lost(life))
        life = replace(life, upgrade=None)
    if life.stop_requested:
        idle = replace(life, phase=Phase.IDLE, restart=False)
        return idle, (*done, STOPPED_JOURNAL, Stopped())
    if life.phase == Phase.STOPPING and life.restart:
        return replace(life, phase=Phase.IDLE, restart=False), (*done, BeginStart())
    return _crashed(life, event, policy, now, done)


def _crashed(
    life: Life, event: Exited, policy: Policy, now: float, done: tuple
) -> tuple[Life, tuple]:
    crashes = life.crash_restarts + 1
    streak = next_crash_streak(life.streak, event.ran_s * 1000, policy.ready_after_ms)
    delay = policy.backoff_s(streak)
    status = "unknown status (adopted)" if event.code is None else f"status {event.code}"
    error = f"exited with {status} after {event.ran_s:.1f} s"
    journal = Journal("crash", f"{error}; restart #{crashes} in {delay:g} s")
    life = replace(life, crash_restarts=crashes, streak=streak, last_error=error)
    if delay == 0:  # no backoff: start again before any bookkeeping
        return replace(life, phase=Phase.IDLE), (*done, BeginStart(), journal)
    waiting = replace(life, phase=Phase.WAITING, restart_at=now + delay)
    return waiting, (*done, Schedule("start", delay), journal)


def _force_restart(
    life: Life, event: ForceRestart, policy: Policy, now: float
) -> tuple[Life, tuple]:
    if life.stop_requested:
        return life, ()
    if life.phase == Phase.UPGRADING:  # it takes about a second; a restart would break it
        return life, (Journal("forced_restart", f"not done, a hot upgrade runs: {event.reason}",
                              event.actor),)  # fmt: skip
    life = replace(life, forced_restarts=life.forced_restarts + 1)
    journal = Journal("forced_restart", event.reason, event.actor)
    if life.alive:
        stopping = replace(life, phase=Phase.STOPPING, restart=True)
        return stopping, (journal, *_terminate(for_good=False))
    if life.phase in (Phase.IDLE, Phase.WAITING):
        return life, (journal, Cancel("start"), BeginStart())
    return life, (journal,)  # pre-commands or a spawn under way: that start is the restart


def _stop(life: Life, event: Stop, policy: Policy, now: float) -> tuple[Life, tuple]:
    life = replace(life, stop_requested=True)
    if life.phase == Phase.UPGRADING:  # stopped when the upgrade ends, either way
        return life, (
            Cancel("start"),
            Journal("stop_deferred", "stopping once the hot upgrade ends"),
        )
    if life.phase == Phase.PRE_COMMANDS:
        return life, (Cancel("start"), KillPre())
    if life.alive:
        return replace(life, phase=Phase.STOPPING), (Cancel("start"), *_terminate(for_good=True))
    return replace(life, phase=Phase.IDLE), (Cancel("start"), STOPPED_JOURNAL, Stopped())


def _terminate(for_good: bool) -> tuple:
    return Terminate(for_good), Schedule("kill", STOP_GRACE_S)


def _kill_due(life: Life, event: KillDue, policy: Policy, now: float) -> tuple[Life, tuple]:
    return life, ((Kill(),) if life.alive else ())


# -- hot upgrades --------------------------------------------------------------------------------


def _upgrade_asked(
    life: Life, event: UpgradeAsked, policy: Policy, now: float
) -> tuple[Life, tuple]:
    target = event.target
    why = None
    if life.phase != Phase.RUNNING or life.stop_requested:
        why = "the replica is stopping" if life.stop_requested else f"the replica is {life.status}"
    elif not event.linked:
        why = "no distribution link to the replica"
    if why is not None:
        text = f"hot upgrade {target.from_version} -> {target.to_version} not started: {why}"
        return life, (UpgradeEnded(target, ok=False, message=text),)
    life = replace(life, phase=Phase.UPGRADING, upgrade=Upgrading(target))
    text = f"hot upgrade {target.from_version} -> {target.to_version} begins"
    return life, (Journal("hot_upgrade", text, details=_versions(target)), *_next_step(target, 0))


def _next_step(target: upgrade.Target, index: int) -> tuple:
    progress = upgrade.progress(target, index)
    return Journal("hot_upgrade_step", progress, details=_versions(target)), RunUpgradeStep(
        target, index
    )


def _versions(target: upgrade.Target) -> dict:
    return {"from_version": target.from_version, "to_version": target.to_version}


def _upgrade_step_done(
    life: Life, event: UpgradeStepDone, policy: Policy, now: float
) -> tuple[Life, tuple]:
    run = life.upgrade
    if life.phase != Phase.UPGRADING or run is None or run.step != event.step:
        return life, ()  # late: the replica exited meanwhile
    target = run.target
    steps = upgrade.steps_of(target)
    step = steps[event.step]
    if event.problem is None and event.step + 1 < len(steps):
        return replace(life, upgrade=replace(run, step=event.step + 1)), _next_step(
            target, event.step + 1
        )
    life = replace(life, phase=Phase.RUNNING, upgrade=None)
    then = _terminate(for_good=True) if life.stop_requested else ()
    versions = f"{target.from_version} -> {target.to_version}"
    failed_kind = "hot_upgrade_failed"
    if event.problem is None:
        # A later start runs B's pre-commands, as after a full deployment.
        life = replace(life, pre_commands=target.pre_commands, last_error=None)
        text = f"hot upgrade {versions} done: the replica runs {target.to_version}"
        done = Journal("hot_upgraded", text, details=_versions(target))
        return _after_stop(life), (UpgradeEnded(target, True, text), done, *then)
    at = upgrade.position(target, event.step)
    failed = f"hot upgrade {versions} failed at {at}: {event.problem}"
    life = replace(life, last_error=failed)
    if not step.installs:
        text = f"{failed}; it still runs {target.from_version}"
        ended = UpgradeEnded(target, False, text, ghost=True)
        journal = Journal(failed_kind, text, details=_versions(target))
        return _after_stop(life), (UndoUnpack(target), ended, journal, *then)
    text = f"{failed}; restarting it on its last permanent release"
    ended = UpgradeEnded(target, False, text, ghost=True)
    # Its exit goes the crash path (counted, with backoff), unless a stop was asked meanwhile.
    stop = then or _terminate(for_good=False)
    journal = Journal(failed_kind, text, details=_versions(target))
    return _after_stop(life), (ended, journal, *stop)


def _after_stop(life: Life) -> Life:
    return replace(life, phase=Phase.STOPPING) if life.stop_requested else life


def _upgrade_lost(life: Life) -> tuple:
    """The replica exited while upgrading: the crash path restarts it on its permanent release."""
    run = life.upgrade
    if run is None:
        return ()
    target = run.target
    text = (f"hot upgrade {target.from_version} -> {target.to_version}: the replica exited "
            f"during {upgrade.position(target, run.step)} "
            f"({upgrade.steps_of(target)[run.step].name})")  # fmt: skip
    journal = Journal("hot_upgrade_failed", text, details=_versions(target))
    return (UpgradeEnded(target, False, text, ghost=True), journal)


_HANDLERS = {
    Start: _start,
    Spawned: _spawned,
    SpawnFailed: _spawn_failed,
    Adopted: _adopted,
    Gone: _gone,
    PreExited: _pre_exited,
    PreFailed: _pre_could_not_start,
    ReadyChecked: _ready_checked,
    Exited: _exited,
    ForceRestart: _force_restart,
    Stop: _stop,
    KillDue: _kill_due,
    UpgradeAsked: _upgrade_asked,
    UpgradeStepDone: _upgrade_step_done,
}
