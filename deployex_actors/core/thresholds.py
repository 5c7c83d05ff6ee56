"""Threshold levels and the decisions they lead to, as upstream DeployEx's watchdog makes them.

percent = truncate(current / limit x 100); `ok` below the warning threshold, `warning` from it,
`critical` from the restart threshold. Journal and log only when the level changes. At critical
with `enable_restart`, restart (a replica: itself; host memory: the replica using the most
memory), but never the same replica twice within one ready period (no restart storm).
"""

from __future__ import annotations

from dataclasses import dataclass

from deployex_actors.config import Monitoring

OK, WARNING, CRITICAL = "ok", "warning", "critical"


def percent(current: float | None, limit: float | None) -> int | None:
    if current is None or not limit:
        return None
    return int(current * 100 // limit)


def level(value_percent: int, monitoring: Monitoring) -> str:
    if value_percent >= monitoring.restart_threshold_percent:
        return CRITICAL
    if value_percent >= monitoring.warning_threshold_percent:
        return WARNING
    return OK


@dataclass(frozen=True)
class Verdict:
    level: str
    changed: bool  # journal and log this reading
    restart: bool  # ask for a forced restart now


def judge(
    value_percent: int | None,
    monitoring: Monitoring,
    previous_level: str,
    last_restart_at: float | None,
    now: float,
    ready_period_s: float,
) -> Verdict:
    """What one reading of one watched resource leads to."""
    if value_percent is None:  # a gap: nothing is known, nothing changes
        return Verdict(previous_level, False, False)
    current = level(value_percent, monitoring)
    cooled_down = last_restart_at is None or now - last_restart_at >= ready_period_s
    restart = current == CRITICAL and monitoring.enable_restart and cooled_down
    return Verdict(current, current != previous_level, restart)


def biggest_replica(memory_by_sname: dict[str, float | None]) -> str | None:
    """The replica using the most memory (host memory critical), ignoring gaps."""
    known = {sname: m for sname, m in memory_by_sname.items() if m is not None}
    return max(known, key=known.__getitem__) if known else None
