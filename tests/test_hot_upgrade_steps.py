"""A hot upgrade's steps and the replica lifecycle around them, without nodes (core only)."""

from __future__ import annotations

from deployex_actors.beam.terms import Atom
from deployex_actors.core import hot_upgrade_steps as steps
from deployex_actors.core import lifecycle as lc
from deployex_actors.core.status import ReplicaStatus
from tests.test_lifecycle import kinds, run, running

TARGET = steps.Target("myapp", "0.1.0", "0.2.0")
OK = Atom("ok")
LAST = len(steps.STEPS) - 1


def s(text: str) -> list[int]:
    return list(text.encode())


def test_the_calls_are_release_handlers_with_erlang_strings() -> None:
    unpack, check, install, permanent, _script = steps.STEPS
    assert steps.call(unpack, TARGET) == ("release_handler", "unpack_release", [s("0.2.0/myapp")])
    assert steps.call(check, TARGET)[2] == [s("0.2.0")]
    assert steps.call(install, TARGET)[2] == [s("0.2.0"), [(Atom("update_paths"), True)]]
    assert steps.call(permanent, TARGET)[1:] == ("make_permanent", [s("0.2.0")])
    assert TARGET.tarball == "releases/0.2.0/myapp.tar.gz"
    assert steps.start_script(TARGET) == ("bin/myapp-0.2.0", "bin/myapp")


def test_each_answer_is_judged_and_a_failure_reads_as_erlang() -> None:
    unpack, check, install, permanent, _script = steps.STEPS
    assert steps.problem(unpack, (OK, s("0.2.0")), TARGET) is None
    assert steps.problem(check, (OK, s("0.1.0"), []), TARGET) is None
    assert steps.problem(install, (OK, s("0.1.0"), []), TARGET) is None
    assert steps.problem(permanent, OK, TARGET) is None
    refused = (Atom("error"), (Atom("existing_release"), s("0.2.0")))
    assert steps.problem(unpack, refused, TARGET) == (
        'unpack_release answered {error,{existing_release,"0.2.0"}}'
    )
    assert steps.progress(TARGET, 2) == "hot upgrade step 3 of 5: install_release"


def upgrading(life: lc.Life | None = None) -> tuple[lc.Life, list]:
    return run(life or running(), lc.UpgradeAsked(TARGET, linked=True))


def through(life: lc.Life, last: int) -> tuple[lc.Life, list]:
    effects: list = []
    for index in range(last + 1):
        life, done = run(life, lc.UpgradeStepDone(index, None))
        effects += done
    return life, effects


def test_a_running_replica_is_upgraded_step_by_step_and_keeps_serving() -> None:
    life, effects = upgrading()
    assert life.phase == lc.Phase.UPGRADING and life.status == ReplicaStatus.RUNNING
    assert effects[-1] == lc.RunUpgradeStep(TARGET, 0)
    assert kinds(effects) == ["hot_upgrade", "hot_upgrade_step"]
    life, effects = through(life, LAST - 1)
    assert effects[-1] == lc.RunUpgradeStep(TARGET, LAST)
    life, effects = run(life, lc.UpgradeStepDone(LAST, None))
    assert life.phase == lc.Phase.RUNNING and life.upgrade is None
    ended = [e for e in effects if isinstance(e, lc.UpgradeEnded)]
    assert len(ended) == 1 and ended[0].ok and life.crash_restarts == 0


def test_an_upgrade_is_not_started_on_a_replica_that_is_not_running_or_not_linked() -> None:
    starting, _ = run(lc.Life(), lc.Start())
    for life, linked in ((starting, True), (running(), False)):
        after, effects = run(life, lc.UpgradeAsked(TARGET, linked))
        assert after.phase == life.phase
        (ended,) = effects
        assert not ended.ok and not ended.ghost and "not started" in ended.message


def test_a_failure_before_install_undoes_the_unpack_ghosts_and_keeps_the_replica() -> None:
    life, _ = upgrading()
    life, _ = through(life, 0)
    life, effects = run(life, lc.UpgradeStepDone(1, "check_install_release answered {error,x}"))
    assert life.phase == lc.Phase.RUNNING and lc.UndoUnpack(TARGET) in effects
    (ended,) = [e for e in effects if isinstance(e, lc.UpgradeEnded)]
    assert ended.ghost and not ended.ok and "it still runs 0.1.0" in ended.message
    assert not [e for e in effects if isinstance(e, lc.Terminate)]


def test_a_failure_after_install_restarts_the_replica_through_the_crash_path() -> None:
    life, _ = upgrading()
    life, _ = through(life, 1)
    life, effects = run(life, lc.UpgradeStepDone(2, "timeout"))
    assert lc.Terminate(for_good=False) in effects
    assert [e.ghost for e in effects if isinstance(e, lc.UpgradeEnded)] == [True]
    life, effects = run(life, lc.Exited(0, 5.0))
    assert life.crash_restarts == 1 and "crash" in kinds(effects)


def test_a_replica_that_exits_mid_upgrade_crashes_and_the_upgrade_ends() -> None:
    life, _ = upgrading()
    life, effects = run(life, lc.Exited(137, 5.0))
    assert life.crash_restarts == 1 and life.upgrade is None
    (ended,) = [e for e in effects if isinstance(e, lc.UpgradeEnded)]
    assert ended.ghost and "exited during step 1 of 5 (unpack_release)" in ended.message
    # the late answer of the step under way changes nothing
    assert run(life, lc.UpgradeStepDone(0, "node down"))[1] == []


def test_a_stop_waits_for_the_upgrade_and_a_forced_restart_is_refused() -> None:
    life, _ = upgrading()
    life, effects = run(life, lc.ForceRestart("watchdog", "memory"))
    assert life.phase == lc.Phase.UPGRADING and life.forced_restarts == 0
    life, effects = run(life, lc.Stop())
    assert life.phase == lc.Phase.UPGRADING and kinds(effects) == ["stop_deferred"]
    life, effects = through(life, LAST)
    assert life.phase == lc.Phase.STOPPING and lc.Terminate(for_good=True) in effects
    life, effects = run(life, lc.Exited(0, 9.0))
    assert lc.Stopped() in effects and life.crash_restarts == 0


MIGRATES = steps.Target("myapp", "0.1.0", "0.2.0", ("eval Migrate.run()",))


def test_pre_commands_are_a_first_step_only_when_there_are_some() -> None:
    assert steps.steps_of(TARGET) == steps.STEPS
    assert steps.steps_of(MIGRATES) == (steps.PRE_COMMANDS, *steps.STEPS)
    assert steps.progress(MIGRATES, 0) == "hot upgrade step 1 of 6: pre_commands"
    assert steps.progress(MIGRATES, 3) == "hot upgrade step 4 of 6: install_release"


def test_a_failed_pre_command_ghosts_the_version_and_keeps_the_replica() -> None:
    life, effects = run(running(), lc.UpgradeAsked(MIGRATES, linked=True))
    assert effects[-1] == lc.RunUpgradeStep(MIGRATES, 0)
    life, effects = run(life, lc.UpgradeStepDone(0, "pre-command 'eval Migrate.run()' exited 1"))
    assert life.phase == lc.Phase.RUNNING and lc.UndoUnpack(MIGRATES) in effects
    (ended,) = [e for e in effects if isinstance(e, lc.UpgradeEnded)]
    assert ended.ghost and "failed at step 1 of 6: pre-command" in ended.message
    assert not [e for e in effects if isinstance(e, lc.Terminate)]


def test_after_a_hot_upgrade_a_restart_runs_the_new_versions_pre_commands() -> None:
    life, _ = run(running(), lc.UpgradeAsked(MIGRATES, linked=True))
    life, _ = through(life, len(steps.steps_of(MIGRATES)) - 1)
    assert life.pre_commands == MIGRATES.pre_commands and life.phase == lc.Phase.RUNNING


def which(status: str) -> list:
    """A which_releases answer with A permanent and B in `status`."""
    libs = [s("kernel-8.5.3")]
    both = (("0.2.0", status), ("0.1.0", "old"))
    return [(s("myapp"), s(vsn), libs, Atom(st)) for vsn, st in both]


def test_a_step_an_earlier_attempt_did_on_the_node_is_not_asked_again() -> None:
    unpack, check, install, permanent, script = steps.STEPS
    done = {
        status: [st.name for st in steps.STEPS
                 if steps.already_done(st, steps.release_status(which(status), "0.2.0"))]
        for status in ("unpacked", "current", "permanent")
    }  # fmt: skip
    assert done == {
        "unpacked": ["unpack_release"],
        "current": ["unpack_release", "check_install_release", "install_release"],
        "permanent": [unpack.name, check.name, install.name, permanent.name],
    }
    assert steps.release_status(which("current")[1:], "0.2.0") is None
    assert not steps.already_done(script, "permanent")  # the local fix-up is always done
    assert steps.release_status(Atom("badrpc"), "0.2.0") is None


def test_only_a_release_unpacked_and_never_installed_is_forgotten() -> None:
    # release_handler:set_removed answers ok for the release the node runs, too
    assert steps.may_undo(None) and steps.may_undo("unpacked")
    assert not any(steps.may_undo(status) for status in ("current", "permanent", "old"))
