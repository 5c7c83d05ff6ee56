"""Rollout decisions as pure functions: one replica at a time, overlap, rollback, resumption."""

from __future__ import annotations

from deployex_actors.core.rollout import (
    AppView,
    Plan,
    ReplicaView,
    Retire,
    RollBack,
    Start,
    plan,
    target_version,
)

NOW = 10_000.0


def replica(sname: str, version: str, slot: int, ready: bool = True, age: float = 100.0,
            stopping: bool = False, ready_once: bool | None = None) -> ReplicaView:  # fmt: skip
    """`age`: seconds since its deployment; a ready replica has been ready once, of course."""
    once = ready if ready_once is None else ready_once
    return ReplicaView(sname, version, slot, ready, NOW - age, stopping, once)


def view(*replicas: ReplicaView, target: str | None = "2", **kw) -> AppView:
    return AppView(replicas_wanted=3, target=target, replicas=replicas, now=NOW,
                   rollback_timeout_s=60, **kw)  # fmt: skip


OLD = [replica("a-1", "1", 0), replica("a-2", "1", 1), replica("a-3", "1", 2)]


def test_bring_up_starts_every_missing_replica_at_once_on_the_lowest_slots() -> None:
    assert plan(view()).actions == (Start("2", 0), Start("2", 1), Start("2", 2))


def test_a_new_version_starts_one_replica_on_the_spare_slot_replacing_one_old() -> None:
    assert plan(view(*OLD)).actions == (Start("2", 3, "a-1"),)


def test_nothing_more_happens_while_the_new_replica_is_prepared_or_not_ready() -> None:
    assert plan(view(*OLD, preparing=(("2", 3),))).actions == ()
    booting = replica("a-4", "2", 3, ready=False, age=5)
    assert plan(view(*OLD, booting)).actions == ()


def test_the_old_replica_is_retired_only_once_its_successor_is_ready() -> None:
    assert plan(view(*OLD, replica("a-4", "2", 3))).actions == (Retire("a-1"),)


def test_the_next_replica_rolls_after_the_retired_one_is_gone() -> None:
    retiring = replica("a-1", "1", 0, stopping=True)
    after_retire = view(retiring, *OLD[1:], replica("a-4", "2", 3))
    assert plan(after_retire).actions == ()  # its slot is still taken until it stops
    rolled = view(*OLD[1:], replica("a-4", "2", 3))
    assert plan(rolled).actions == (Start("2", 0, "a-2"),)


def test_a_rollout_converges_with_n_replicas_of_the_new_version() -> None:
    done = view(replica("a-4", "2", 3), replica("a-5", "2", 0), replica("a-6", "2", 1))
    assert plan(done) == Plan(note="converged")


def test_a_new_replica_not_ready_in_time_is_rolled_back_and_its_version_ghosted() -> None:
    stuck = replica("a-4", "2", 3, ready=False, age=61)
    assert plan(view(*OLD, stuck)).actions == (RollBack("a-4", "2", ghost=True),)


def test_a_version_that_already_serves_is_never_ghosted() -> None:
    serving = [replica("a-1", "2", 0), replica("a-2", "2", 1)]
    crashing = replica("a-3", "2", 2, ready=False, age=61)
    assert plan(view(*serving, crashing)).actions == (RollBack("a-3", "2", ghost=False),)


def test_replicas_restarting_long_after_their_deployment_are_never_rolled_back() -> None:
    # `deployex restart`, a kill -9 of every replica, a watchdog restart: all down at once,
    # deployed an hour ago, each ready once. Their Monitors restart them; the plan waits.
    down = [replica(f"a-{i}", "2", i, ready=False, age=3600, ready_once=True) for i in range(3)]
    assert plan(view(*down)) == Plan(note="converged")


def test_a_version_ready_once_on_a_replica_that_is_down_now_is_not_ghosted() -> None:
    restarting = replica("a-1", "2", 0, ready=False, age=3600, ready_once=True)
    stuck = replica("a-4", "2", 3, ready=False, age=61)
    assert plan(view(*OLD[1:], restarting, stuck)).actions == (RollBack("a-4", "2", ghost=False),)


def test_a_new_replica_that_was_ready_then_crashed_mid_rollout_holds_the_rollout() -> None:
    crashed = replica("a-4", "2", 3, ready=False, age=3600, ready_once=True)
    assert plan(view(*OLD, crashed)).actions == ()


def test_resuming_mid_rollout_retires_instead_of_rolling_back_a_serving_new_replica() -> None:
    # A restarted Deployer finds N+1 replicas: the new one already serves (started long ago).
    resumed = view(*OLD, replica("a-4", "2", 3, ready=True, age=3600))
    assert plan(resumed).actions == (Retire("a-1"),)


def test_never_more_than_n_plus_one_replicas() -> None:
    for extra in ([], [replica("a-4", "2", 3, ready=False, age=1)], [replica("a-4", "2", 3)]):
        for action in plan(view(*OLD, *extra)).actions:
            if isinstance(action, Start):
                assert len(OLD) + len(extra) < 4


def test_a_full_restart_replaces_replicas_of_the_same_version_one_by_one() -> None:
    same = [replica("a-1", "2", 0), replica("a-2", "2", 1), replica("a-3", "2", 2)]
    queued = frozenset({"a-1", "a-2", "a-3"})
    assert plan(view(*same, replace=queued)).actions == (Start("2", 3, "a-1"),)


def test_target_is_desired_unless_ghosted_then_what_serves() -> None:
    assert target_version("2", frozenset(), ["1", "1"]) == "2"
    assert target_version("2", frozenset({"2"}), ["1", "1", "3"]) == "1"
    assert target_version("2", frozenset({"2"}), []) is None
    assert target_version(None, frozenset(), []) is None
    # nothing runs (all stopped) and the desired version is ghosted: the last good one returns
    assert target_version("3", frozenset({"3"}), [], last_good="2") == "2"
    assert target_version("3", frozenset({"3", "2"}), [], last_good="2") is None


def test_too_many_replicas_retires_the_extra_one() -> None:
    four = [*OLD, replica("a-4", "1", 3)]
    assert plan(view(*four, target="1")).actions == (Retire("a-4"),)


def test_nothing_else_happens_while_a_replica_is_hot_upgraded_in_place() -> None:
    upgrading = [replica("a-1", "1", 0), replica("a-2", "1", 1), replica("a-3", "1", 2)]
    decision = plan(view(*upgrading, upgrading=frozenset({"a-1"})))
    assert decision.actions == () and decision.in_flight == ("a-1",)
    # once it runs the new version, the next old replica is replaced
    done = [replica("a-1", "2", 0), *upgrading[1:]]
    assert plan(view(*done)).actions == (Start("2", 3, "a-2"),)
