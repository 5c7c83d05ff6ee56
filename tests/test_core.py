"""The functional core: backoff, escalation, port slots, pidfiles — pure and fast."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from deployex_actors.core.backoff import (
    SupervisorPolicy,
    actor_restart_delay_s,
    next_crash_streak,
    next_failure_streak,
    prepare_retry_delay_s,
    replica_restart_delay_ms,
    should_escalate,
)
from deployex_actors.core.slots import free_slots
from deployex_actors.replica import pidfile


def test_replica_backoff_is_upstreams_linear_two_seconds_capped_at_five_minutes() -> None:
    delays = [replica_restart_delay_ms(n, 2_000, 300_000) for n in (1, 2, 3, 149, 150, 1000)]
    assert delays == [2_000, 4_000, 6_000, 298_000, 300_000, 300_000]
    assert replica_restart_delay_ms(5, 0, 0) == 0  # backoff off


def test_crash_streak_resets_once_the_replica_had_been_ready() -> None:
    assert next_crash_streak(3, ran_for_ms=1_000, ready_after_ms=30_000) == 4
    assert next_crash_streak(3, ran_for_ms=30_000, ready_after_ms=30_000) == 1


def test_a_failed_release_preparation_is_retried_after_1_2_4_s_up_to_a_minute() -> None:
    assert [prepare_retry_delay_s(n) for n in (1, 2, 3, 7, 100)] == [1, 2, 4, 60, 60]


def test_actor_backoff_doubles_from_its_base_up_to_the_cap() -> None:
    policy = SupervisorPolicy(base_s=0.2, cap_s=1.0)
    assert [actor_restart_delay_s(n, policy) for n in (1, 2, 3, 4, 10)] == [0.2, 0.4, 0.8, 1.0, 1.0]
    assert next_failure_streak(5, ran_for_s=policy.healthy_after_s, policy=policy) == 1
    assert next_failure_streak(5, ran_for_s=1, policy=policy) == 6


def test_escalation_counts_only_failures_inside_the_window() -> None:
    policy = SupervisorPolicy(max_restarts=3, window_s=10)
    assert not should_escalate([1, 2, 3], now=5, policy=policy)
    assert should_escalate([1, 2, 3, 4], now=5, policy=policy)
    assert not should_escalate([1, 2, 3, 4], now=13, policy=policy)  # two fell out


def test_free_slots_are_the_lowest_of_n_plus_one() -> None:
    assert free_slots([], replicas=3, wanted=3) == [0, 1, 2]
    assert free_slots([0, 2], replicas=3, wanted=2) == [1, 3]
    assert free_slots([0, 1, 2, 3], replicas=3, wanted=1) == []


def test_pidfile_round_trips_and_recognises_the_same_process(tmp_path: Path) -> None:
    path = tmp_path / "a-000001.pid"
    ticks = pidfile.process_start_ticks(os.getpid())
    me = pidfile.ReplicaRecord("a", "a-000001", "1.0", os.getpid(), ticks, 2, {"PORT": 4002}, 1.5)
    pidfile.write(path, me)
    assert pidfile.read(path) == me
    assert pidfile.is_alive(me)


def test_a_recycled_pid_is_not_taken_for_the_replica(tmp_path: Path) -> None:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    ticks = pidfile.process_start_ticks(proc.pid)
    proc.wait()
    gone = pidfile.ReplicaRecord("a", "a-000001", "1.0", proc.pid, ticks or 0, 0)
    assert not pidfile.is_alive(gone)
    other_start = pidfile.ReplicaRecord("a", "a-000001", "1.0", os.getpid(), 1, 0)
    assert not pidfile.is_alive(other_start)  # same pid, different start time


def test_a_damaged_pidfile_reads_as_none(tmp_path: Path) -> None:
    path = tmp_path / "x.pid"
    path.write_text("{not json")
    assert pidfile.read(path) is None
    assert pidfile.read(tmp_path / "missing.pid") is None


def test_a_stop_in_progress_is_recorded_for_whoever_adopts_the_replica(tmp_path: Path) -> None:
    path = tmp_path / "a-000002.pid"
    record = pidfile.ReplicaRecord("a", "a-000002", "1.0", os.getpid(), 1, 0, stopping=True)
    pidfile.write(path, record)
    assert pidfile.read(path).stopping is True
    older = tmp_path / "old.pid"  # files written before the field existed still read
    older.write_text('{"app": "a", "sname": "a-1", "version": "1", "pid": 1, "start_ticks": 1,'
                     ' "slot": 0}')  # fmt: skip
    assert pidfile.read(older).stopping is False
