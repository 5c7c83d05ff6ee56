"""What every DeployEx actor shares: file-descriptor watches, timers, and dying with its parent.

- thespian keeps a `ThespianWatch` only if *every* handler returns it; `receiveMessage` here
  returns the current set of watched descriptors after each message, so handlers never forget.
- A thespian child actor survives the `kill -9` of its parent (measured). Each actor therefore
  watches its parent's pidfd and exits when the parent is gone, so a restarted parent never
  finds a stale twin of its child still at work (e.g. two Monitors for one replica).
- Each actor's process is named after its class (`dx-Monitor`, `dx-Fetcher`...): thespian's
  forks all share one command line, and `ps -o pid,comm`, `top` and the tests tell them apart.
- Timers are `wakeupAfter` messages carrying a `Timer`; `generation` makes stale ones harmless
  (thespian cannot cancel a wakeup).
- What an actor inherited from the process it was forked from is frozen (`system.freeze`), so
  that its cyclic collections do not copy its inheritance into private memory.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

from thespian.actors import (
    ActorExitRequest,
    ActorTypeDispatcher,
    ThespianWatch,
    WakeupMessage,
    WatchMessage,
)

from deployex_actors.actors.messages import ChildUp, Timer
from deployex_actors.actors.system import CycleCollector, freeze

log = logging.getLogger(__name__)


class DeployexActor(ActorTypeDispatcher):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        freeze()  # what this process inherited stays shared (see system.freeze)
        self._watches: dict[int, Callable[[], None]] = {}
        self._parent_fd: int | None = None
        self._generations: dict[str, int] = {}
        self._cycles = CycleCollector()

    # -- thespian entry point --------------------------------------------------------------------

    def receiveMessage(self, message: Any, sender: Any) -> ThespianWatch:
        self._cycles.tick()
        if self._parent_fd is None:
            name_process(f"dx-{type(self).__name__}")
            self._watch_parent()
            # The first message comes from our supervisor: tell it we are up (see Supervisor).
            self.send(sender, ChildUp(os.getpid()))
        if isinstance(message, WatchMessage):
            for fd in list(message.ready):
                callback = self._watches.get(fd)
                if callback is not None:
                    callback()
        elif isinstance(message, WakeupMessage):
            if isinstance(message.payload, Timer) and self._current(message.payload):
                self.on_timer(message.payload)
        else:
            super().receiveMessage(message, sender)
        return ThespianWatch(list(self._watches))

    # -- watches ---------------------------------------------------------------------------------

    def watch(self, fd: int, callback: Callable[[], None]) -> None:
        self._watches[fd] = callback

    def pause_watch(self, fd: int) -> None:
        """Stop selecting on `fd` (kept open) until `watch` again: a busy source is then read
        once per pass instead of waking the actor on every change."""
        self._watches.pop(fd, None)

    def unwatch(self, fd: int | None) -> None:
        if fd is not None and self._watches.pop(fd, None) is not None:
            os.close(fd)

    def _watch_parent(self) -> None:
        parent = os.getppid()
        try:
            self._parent_fd = os.pidfd_open(parent) if parent != 1 else -1
        except ProcessLookupError:
            self._parent_fd = -1
        if self._parent_fd == -1:
            self._orphaned()
        else:
            self.watch(self._parent_fd, self._orphaned)

    def _orphaned(self) -> None:
        log.warning("%s: parent process is gone; exiting so a fresh one takes over", self)
        self.unwatch(self._parent_fd)
        self.send(self.myAddress, ActorExitRequest())

    # -- timers ----------------------------------------------------------------------------------

    def after(self, seconds: float, kind: str, key: str = "") -> None:
        """Schedule `on_timer(Timer(kind, key))`; re-scheduling the same kind/key replaces it."""
        slot = f"{kind}:{key}"
        generation = self._generations.get(slot, 0) + 1
        self._generations[slot] = generation
        self.wakeupAfter(timedelta(seconds=max(seconds, 0)), Timer(kind, key, generation))

    def cancel(self, kind: str, key: str = "") -> None:
        slot = f"{kind}:{key}"
        self._generations[slot] = self._generations.get(slot, 0) + 1

    def _current(self, timer: Timer) -> bool:
        return self._generations.get(f"{timer.kind}:{timer.key}") == timer.generation

    def on_timer(self, timer: Timer) -> None:
        """Override: a scheduled timer fired."""

    def __str__(self) -> str:
        return f"{type(self).__name__}[{os.getpid()}]"


def name_process(name: str) -> None:
    """Set this process's name as `ps` and `top` show it (the kernel keeps 15 bytes)."""
    with contextlib.suppress(OSError):
        Path("/proc/self/comm").write_bytes(name.encode()[:15])
