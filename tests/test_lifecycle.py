"""The replica lifecycle table (core.lifecycle), without processes: each row of its docstring."""

from __future__ import annotations

from deployex_actors.core import lifecycle as lc
from deployex_actors.core.status import ReplicaStatus

POLICY = lc.Policy(ready_after_ms=1000, backoff_base_ms=2000, backoff_max_ms=5000)
NOW = 1000.0


def run(life: lc.Life, *events: lc.Event) -> tuple[lc.Life, list]:
    """Feed events in order; the effects of all of them, as the Monitor would perform them
    (BeginStart answered with a Start, Spawn with a Spawned, as a healthy machine does)."""
    done: list = []
    queue = list(events)
    while queue:
        life, effects = lc.step(life, queue.pop(0), POLICY, NOW)
        done += effects
        for effect in effects:
            if isinstance(effect, lc.BeginStart):
                queue.insert(0, lc.Start())
            elif isinstance(effect, lc.Spawn):
                queue.insert(0, lc.Spawned("1.0.0", 42))
    return life, done


def kinds(effects: list) -> list[str]:
    return [e.kind for e in effects if isinstance(e, lc.Journal)]


def running(**fields: object) -> lc.Life:
    life, _ = run(lc.Life(**fields), lc.Start(), lc.ReadyChecked("1.0.0", 42, None))
    assert life.phase == lc.Phase.RUNNING
    return life


def test_a_start_spawns_and_the_replica_is_running_once_ready() -> None:
    life, effects = run(lc.Life(), lc.Start())
    assert life.status == ReplicaStatus.STARTING
    assert lc.Spawn() in effects and lc.Schedule("ready", 1.0) in effects
    assert lc.Link(lc.LINK_FIRST_S) in effects and kinds(effects) == ["started"]
    life, effects = run(life, lc.ReadyChecked("1.0.0", 42, None))
    assert life.status == ReplicaStatus.RUNNING and lc.MarkReadyOnce() in effects


def test_a_readiness_problem_is_shown_and_checked_again() -> None:
    life, _ = run(lc.Life(), lc.Start())
    life, effects = run(life, lc.ReadyChecked("1.0.0", 42, "port closed", interval_s=0.5))
    assert life.phase == lc.Phase.STARTING and life.last_error == "port closed"
    assert effects == [lc.Schedule("ready", 0.5)]


def test_pre_commands_run_in_order_before_the_start() -> None:
    life, effects = run(lc.Life(pre_commands=("a", "b")), lc.Start())
    assert life.status == ReplicaStatus.PRE_COMMANDS and effects == [lc.RunPre("a")]
    life, effects = run(life, lc.PreExited(0))
    assert effects == [lc.RunPre("b")]
    life, effects = run(life, lc.PreExited(0))
    assert life.phase == lc.Phase.STARTING and lc.Spawn() in effects


def test_a_failed_pre_command_waits_with_backoff_and_shows_pre_commands() -> None:
    life, _ = run(lc.Life(pre_commands=("migrate",)), lc.Start())
    life, effects = run(life, lc.PreExited(3))
    assert life.phase == lc.Phase.WAITING and life.status == ReplicaStatus.PRE_COMMANDS
    assert life.restart_at == NOW + 2 and lc.Schedule("start", 2.0) in effects
    assert kinds(effects) == ["pre_command_failed"] and "status 3" in life.last_error
    life, effects = run(life, lc.PreFailed("no such file"))  # not in PRE_COMMANDS: ignored
    assert effects == []
    life, effects = run(life, lc.Start())
    assert effects == [lc.RunPre("migrate")]  # and the whole list runs again


def test_a_missing_executable_or_a_failed_spawn_is_retried_with_a_growing_backoff() -> None:
    life, effects = run(lc.Life(), lc.Start(missing="/srv/bin/app"))
    assert life.phase == lc.Phase.WAITING and "missing" in life.last_error
    assert lc.Schedule("start", 2.0) in effects and kinds(effects) == ["start_failed"]
    life, effects = lc.step(life, lc.Start(), POLICY, NOW)
    life, effects = lc.step(life, lc.SpawnFailed("EACCES"), POLICY, NOW)
    assert lc.Schedule("start", 4.0) in effects and life.streak == 2


def test_a_crash_restarts_after_the_backoff_and_counts() -> None:
    life = running()
    life, effects = run(life, lc.Exited(1, ran_s=0.1))
    assert life.phase == lc.Phase.WAITING and life.crash_restarts == 1
    assert effects[:2] == [lc.Cancel("ready"), lc.Cancel("kill")]
    assert lc.Schedule("start", 2.0) in effects and kinds(effects) == ["crash"]
    assert life.last_error == "exited with status 1 after 0.1 s"
    life, effects = run(life, lc.Start())
    assert life.phase == lc.Phase.STARTING


def test_a_replica_that_had_been_ready_starts_its_backoff_over() -> None:
    life = running(streak=4)
    life, effects = run(life, lc.Exited(None, ran_s=60))  # ran longer than ready_after
    assert life.streak == 1 and lc.Schedule("start", 2.0) in effects
    assert "unknown status (adopted)" in life.last_error


def test_without_backoff_a_crash_starts_again_at_once_and_the_new_ready_timer_survives() -> None:
    policy = lc.Policy(1000, 0, 0)
    life, effects = lc.step(lc.Life(phase=lc.Phase.RUNNING), lc.Exited(9, 5.0), policy, NOW)
    assert effects.index(lc.Cancel("ready")) < effects.index(lc.BeginStart())
    assert life.phase == lc.Phase.IDLE and life.crash_restarts == 1


def test_a_forced_restart_terminates_then_starts_again_without_a_crash() -> None:
    life = running()
    life, effects = run(life, lc.ForceRestart("admin@h", "from the dashboard"))
    assert life.status == ReplicaStatus.STOPPING and life.forced_restarts == 1
    assert lc.Terminate(for_good=False) in effects
    assert lc.Schedule("kill", lc.STOP_GRACE_S) in effects
    assert lc.Journal("forced_restart", "from the dashboard", "admin@h") in effects
    life, effects = run(life, lc.Exited(-15, ran_s=30))
    assert life.phase == lc.Phase.STARTING and life.crash_restarts == 0
    assert "crash" not in kinds(effects)


def test_a_forced_restart_while_waiting_starts_now() -> None:
    life, _ = run(running(), lc.Exited(1, 0.1))
    life, effects = run(life, lc.ForceRestart("operator", "now"))
    assert lc.Cancel("start") in effects and life.phase == lc.Phase.STARTING


def test_a_stop_is_for_good_and_a_late_timer_or_restart_changes_nothing() -> None:
    life, effects = run(running(), lc.Stop())
    assert life.phase == lc.Phase.STOPPING and lc.Terminate(for_good=True) in effects
    life, effects = run(life, lc.Exited(-15, 3.0))
    assert life.phase == lc.Phase.IDLE and effects[-1] == lc.Stopped()
    assert kinds(effects) == ["stopped"]
    for late in (lc.Start(), lc.ForceRestart("operator", "x"), lc.KillDue()):
        assert lc.step(life, late, POLICY, NOW) == (life, ())


def test_a_stop_during_a_restart_wins() -> None:
    life, _ = run(running(), lc.ForceRestart("operator", "x"))
    life, _ = run(life, lc.Stop())
    life, effects = run(life, lc.Exited(-15, 1.0))
    assert life.phase == lc.Phase.IDLE and lc.Stopped() in effects and lc.Spawn() not in effects


def test_a_stop_during_pre_commands_kills_them_and_ends_stopped() -> None:
    life, _ = run(lc.Life(pre_commands=("migrate",)), lc.Start())
    life, effects = run(life, lc.Stop())
    assert lc.KillPre() in effects and life.phase == lc.Phase.PRE_COMMANDS
    life, effects = run(life, lc.PreExited(-9))
    assert life.phase == lc.Phase.IDLE and effects[-1] == lc.Stopped()


def test_a_stop_with_no_process_is_stopped_at_once() -> None:
    life, _ = run(running(), lc.Exited(1, 0.1))
    life, effects = run(life, lc.Stop())
    assert life.phase == lc.Phase.IDLE and lc.Cancel("start") in effects
    assert effects[-1] == lc.Stopped()


def test_the_kill_comes_only_while_a_process_is_alive() -> None:
    life, _ = run(running(), lc.Stop())
    assert lc.step(life, lc.KillDue(), POLICY, NOW)[1] == (lc.Kill(),)
    idle = lc.Life()
    assert lc.step(idle, lc.KillDue(), POLICY, NOW)[1] == ()


def test_an_adopted_replica_waits_for_the_rest_of_its_ready_period() -> None:
    life, effects = run(lc.Life(), lc.Adopted(77, ready_in_s=0.25))
    assert life.phase == lc.Phase.STARTING and lc.Schedule("ready", 0.25) in effects
    assert lc.Link(0.0) in effects and kinds(effects) == ["adopted"]
    life, effects = run(lc.Life(), lc.Gone())
    assert effects == [lc.Stopped()] and life.last_error == "the recorded process is gone"


def test_events_that_do_not_apply_are_ignored() -> None:
    idle = lc.Life()
    for event in (lc.Exited(0, 1.0), lc.PreExited(0), lc.ReadyChecked("1", 1, None)):
        assert lc.step(idle, event, POLICY, NOW) == (idle, ())
