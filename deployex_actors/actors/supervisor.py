"""Supervision that mirrors OTP, written once for every level of the tree.

A supervisor starts children from specs, notices a dead child (`ChildActorExited`), restarts it
after a backoff that grows with consecutive failures and resets after a healthy period, and
escalates (exits, so that its own parent restarts it) when a child fails too often in a window.
A child stopped on purpose with `stop_child` is not restarted.

Thespian reports no `ChildActorExited` for a child that dies before it connected back (it cannot
name it: "cannot translate address"), so such a child would never be restarted. Every child
therefore answers its first message with `ChildUp`; one that has not within `CHILD_START_S`, and
of which no unaccounted process of ours is left, died starting and goes the failure path.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Any

import psutil
from thespian.actors import ActorExitRequest, ChildActorExited

from deployex_actors.actors.base import DeployexActor
from deployex_actors.actors.messages import ChildUp, Timer
from deployex_actors.core.backoff import (
    SupervisorPolicy,
    actor_restart_delay_s,
    next_failure_streak,
    should_escalate,
)

log = logging.getLogger(__name__)
CHILD_START_S = 3.0  # a child that has not said ChildUp by then is looked for among our processes


@dataclass(frozen=True)
class ChildSpec:
    name: str  # unique among the supervisor's children
    actor_class: str  # import path, e.g. "deployex_actors.actors.storage.Storage"


@dataclass
class _Child:
    spec: ChildSpec
    address: Any = None
    started_at: float = 0.0
    streak: int = 0
    failures: list[float] = field(default_factory=list)
    stopping: bool = False
    pid: int | None = None  # from its ChildUp; None while it starts


class Supervisor(DeployexActor):
    policy = SupervisorPolicy()

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._children: dict[str, _Child] = {}
        self._exiting = False

    # -- override points -------------------------------------------------------------------------

    def init_message(self, name: str) -> Any:
        """The message a (re)started child gets first; None sends nothing."""
        return None

    def on_child_started(self, name: str, address: Any, restarted: bool) -> None:
        """A child was created (first time or after a failure)."""

    def on_child_up(self, name: str) -> None:
        """A child answered its first message (ChildUp): its address can be handed on now."""

    def on_child_failed(self, name: str, delay_s: float) -> None:
        """A child died unexpectedly; it restarts after `delay_s`."""

    def on_child_stopped(self, name: str) -> None:
        """A child stopped with `stop_child` is gone."""

    # -- API -------------------------------------------------------------------------------------

    def start_child(self, spec: ChildSpec) -> Any:
        child = self._children.get(spec.name) or _Child(spec)
        self._children[spec.name] = child
        restarted = child.address is None and child.started_at > 0
        child.address = self.createActor(spec.actor_class)
        child.started_at = time.monotonic()
        child.stopping = False
        child.pid = None
        self.after(CHILD_START_S, "child-up", spec.name)
        first = self.init_message(spec.name)
        if first is not None:
            self.send(child.address, first)
        self.on_child_started(spec.name, child.address, restarted)
        return child.address

    def stop_child(self, name: str) -> None:
        child = self._children.get(name)
        if child is None:
            return
        self.cancel("restart-child", name)
        if child.address is None:  # waiting for a restart: just forget it
            del self._children[name]
            self.on_child_stopped(name)
            return
        child.stopping = True
        self.send(child.address, ActorExitRequest())

    def child(self, name: str) -> Any:
        entry = self._children.get(name)
        return entry.address if entry else None

    def children(self) -> dict[str, Any]:
        return {name: c.address for name, c in self._children.items() if c.address is not None}

    # -- thespian events -------------------------------------------------------------------------

    def receiveMsg_ActorExitRequest(self, message: ActorExitRequest, sender: Any) -> None:
        self._exiting = True  # our children are leaving with us: restart none of them

    def receiveMsg_ChildActorExited(self, message: ChildActorExited, sender: Any) -> None:
        if self._exiting:
            return
        name = next(
            (n for n, c in self._children.items() if c.address == message.childAddress), None
        )
        if name is not None:
            self._child_exited(name)

    def receiveMsg_ChildUp(self, message: ChildUp, sender: Any) -> None:
        child = next((c for c in self._children.values() if c.address == sender), None)
        if child is not None:
            child.pid = message.pid
            self.on_child_up(child.spec.name)

    def _check_started(self, name: str) -> None:
        child = self._children.get(name)
        if self._exiting or child is None or child.address is None:
            return
        if child.pid is not None or child.stopping:
            return
        up = {c.pid for c in self._children.values() if c.pid is not None}
        try:
            ours = {p.pid for p in psutil.Process().children()
                    if p.status() != psutil.STATUS_ZOMBIE}  # fmt: skip
        except psutil.Error:
            ours = set()
        if ours - up:  # a child still starting (slowly): look again later
            self.after(CHILD_START_S, "child-up", name)
            return
        log.warning("%s: child %s died while starting", self, name)
        self._child_exited(name)

    def _child_exited(self, name: str) -> None:
        child = self._children[name]
        child.address = None
        if child.stopping:
            del self._children[name]
            self.on_child_stopped(name)
            return
        now = time.monotonic()
        child.streak = next_failure_streak(child.streak, now - child.started_at, self.policy)
        child.failures = [t for t in child.failures if now - t <= self.policy.window_s] + [now]
        if should_escalate(child.failures, now, self.policy):
            self.escalate(f"child {name} failed {len(child.failures)} times in a window")
            return
        delay = actor_restart_delay_s(child.streak, self.policy)
        log.warning("%s: child %s died; restarting in %.1f s", self, name, delay)
        self.on_child_failed(name, delay)
        self.after(delay, "restart-child", name)

    def on_timer(self, timer: Timer) -> None:
        if timer.kind == "restart-child":
            child = self._children.get(timer.key)
            if child is not None and child.address is None:
                self.start_child(child.spec)
        elif timer.kind == "child-up":
            self._check_started(timer.key)

    def escalate(self, reason: str) -> None:
        """Too many failures: give up here and let our own parent decide."""
        log.error("%s: escalating: %s", self, reason)
        self.send(self.myAddress, ActorExitRequest())
