"""How long to wait before restarting something that failed, and when to give up.

Two policies, both pure:
- replicas (upstream DeployEx): linear, `min(base x consecutive crashes, max)`, the streak reset
  once the replica has run for its ready period;
- actors (OTP-like supervision): exponential from `base`, capped, reset after a healthy period,
  and escalation when a child fails more than `max_restarts` times within `window_s`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


def replica_restart_delay_ms(consecutive_crashes: int, base_ms: int, max_ms: int) -> int:
    """Upstream's crash backoff: 2 s, 4 s, 6 s ... capped at 5 min with the defaults."""
    return min(base_ms * max(consecutive_crashes, 1), max_ms)


def prepare_retry_delay_s(failures: int, first_s: float = 1.0, cap_s: float = 60.0) -> float:
    """After a failed download or unpack: 1 s, 2 s, 4 s ... capped at a minute."""
    return min(first_s * 2 ** min(max(failures - 1, 0), 30), cap_s)


def next_crash_streak(streak: int, ran_for_ms: float, ready_after_ms: int) -> int:
    """The consecutive-crash count after a crash: a replica that had become ready starts over."""
    return 1 if ran_for_ms >= ready_after_ms else streak + 1


@dataclass(frozen=True)
class SupervisorPolicy:
    base_s: float = 0.2
    cap_s: float = 30.0
    healthy_after_s: float = 30.0
    # With the backoff doubling from 0.2 s, a child failing at once after each start fails for
    # the 6th time 6.2 s after the first, and could never fail 11 times in a minute (the 9th
    # comes after 51 s, the 10th after 81 s): 5 is what makes escalation reachable.
    max_restarts: int = 5
    window_s: float = 60.0


def actor_restart_delay_s(consecutive_failures: int, policy: SupervisorPolicy) -> float:
    """0.2 s, 0.4 s, 0.8 s ... capped: quick for a one-off crash, calm for a crash loop."""
    exponent = max(consecutive_failures - 1, 0)
    return min(policy.base_s * 2 ** min(exponent, 30), policy.cap_s)


def next_failure_streak(streak: int, ran_for_s: float, policy: SupervisorPolicy) -> int:
    return 1 if ran_for_s >= policy.healthy_after_s else streak + 1


def should_escalate(failure_times: Sequence[float], now: float, policy: SupervisorPolicy) -> bool:
    """True when more than `max_restarts` failures fall within the last `window_s`."""
    recent = [t for t in failure_times if now - t <= policy.window_s]
    return len(recent) > policy.max_restarts
