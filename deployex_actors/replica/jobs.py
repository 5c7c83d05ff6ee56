"""Blocking work of a Monitor (a hot-upgrade step, an observer call on the node) on a thread of
its own, so that the actor keeps hearing its replica's exit, a stop or a timer meanwhile. Each
job's thread writes a byte to a pipe that the Monitor watches, like the link's node-down (see
link_upkeep); `collect()` then hands over the finished jobs' results, in the actor's thread.
"""

from __future__ import annotations

import contextlib
import logging
import os
import queue
import threading
from collections.abc import Callable
from typing import Any

log = logging.getLogger(__name__)


class Failed(str):
    """A job that raised: what went wrong, in one line."""


class Jobs:
    def __init__(self) -> None:
        self.fd, self._write_fd = os.pipe()
        self._done: queue.SimpleQueue[tuple[Any, Any]] = queue.SimpleQueue()

    def run(self, key: Any, job: Callable[[], Any]) -> None:
        """Start `job`; (key, its result, or Failed) comes out of `collect()` once it ends."""

        def work() -> None:
            try:
                result = job()
            except Exception as exc:  # whatever it was, the job failed
                log.exception("job %s", key)
                result = Failed(f"{type(exc).__name__}: {exc}")
            self._done.put((key, result))
            with contextlib.suppress(OSError):
                os.write(self._write_fd, b"x")

        threading.Thread(target=work, name=f"job {key}", daemon=True).start()

    def collect(self) -> list[tuple[Any, Any]]:
        with contextlib.suppress(OSError):
            os.read(self.fd, 4096)
        found = []
        while not self._done.empty():
            found.append(self._done.get())
        return found

    def close(self) -> None:
        for fd in (self.fd, self._write_fd):
            with contextlib.suppress(OSError):
                os.close(fd)
