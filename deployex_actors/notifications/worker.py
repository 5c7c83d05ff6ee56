"""One delivery worker per channel: a bounded queue and a thread, so that a slow or dead
endpoint delays nothing but its own channel (not a deployment, not another channel).

- The queue holds `QUEUE_SIZE` notices; when it is full the oldest is dropped, and the count of
  dropped ones is logged when the queue has room again.
- A notice is tried up to `TRIES` times, `BACKOFF_S` apart, each try with `post.TIMEOUT_S`: a
  non-2xx answer or a transport error is a failed try.
- A notice that failed every try is logged once when the channel starts failing, and once when
  it delivers again with how many were lost meanwhile (not once per notice); both are also told
  to `report` (the Notifier journals them).
- `close` lets the worker deliver what is queued for at most `drain_s`, then drops the rest.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from deployex_actors.core.notifications import Notice
from deployex_actors.notifications import adapter_for
from deployex_actors.notifications.channel import Channel
from deployex_actors.notifications.post import TIMEOUT_S, Answer, post_json

log = logging.getLogger(__name__)
QUEUE_SIZE = 200
TRIES = 3
BACKOFF_S = (1.0, 2.0)  # before the 2nd and the 3rd try


@dataclass(frozen=True)
class ChannelTurned:
    """A channel started failing (`failing`, with why), or delivers again (with `lost`)."""

    label: str
    failing: bool
    detail: str
    lost: int = 0


def send(channel: Channel, notice: Notice, timeout_s: float = TIMEOUT_S) -> Answer:
    """One try of one notice on one channel; the answer never carries the channel's secrets."""
    if channel.problem:
        return Answer(False, channel.problem)
    answer = post_json(channel.url, adapter_for(channel.adapter).body(channel, notice), timeout_s)
    return Answer(answer.ok, channel.scrub(answer.detail))


class ChannelWorker:
    def __init__(
        self,
        channel: Channel,
        report: Callable[[ChannelTurned], None],
        tries: int = TRIES,
        backoff_s: tuple[float, ...] = BACKOFF_S,
        queue_size: int = QUEUE_SIZE,
    ) -> None:
        self.channel = channel
        self._report = report
        self._tries, self._backoff_s = tries, backoff_s
        self._queue: deque[Notice] = deque(maxlen=queue_size)
        self._ready = threading.Condition()
        self._dropped = 0
        self._drain_until: float | None = None  # set by close()
        self._failing: str | None = None
        self._lost = 0
        self._thread = threading.Thread(target=self._run, name=f"notify {channel.label}",
                                        daemon=True)  # fmt: skip

    def start(self) -> ChannelWorker:
        self._thread.start()
        return self

    def put(self, notice: Notice) -> None:
        with self._ready:
            if self._drain_until is not None:
                return
            if len(self._queue) == self._queue.maxlen:
                if not self._dropped:
                    log.warning("notifications %s: queue full (%d); dropping the oldest",
                                self.channel.label, self._queue.maxlen)  # fmt: skip
                self._dropped += 1
            self._queue.append(notice)
            self._ready.notify()

    def close(self, drain_s: float) -> None:
        """Deliver what is queued within `drain_s`, then stop (returns at once)."""
        with self._ready:
            self._drain_until = time.monotonic() + drain_s
            self._ready.notify()

    def join(self, timeout_s: float) -> bool:
        self._thread.join(timeout_s)
        return not self._thread.is_alive()

    @property
    def queued(self) -> int:
        return len(self._queue)

    # -- the thread ------------------------------------------------------------------------------

    def _next(self) -> Notice | None:
        with self._ready:
            while not self._queue and self._drain_until is None:
                self._ready.wait()
            if self._dropped and len(self._queue) < self._queue.maxlen:
                log.warning("notifications %s: %d dropped while the queue was full",
                            self.channel.label, self._dropped)  # fmt: skip
                self._dropped = 0
            if not self._queue or self._past_drain():
                if self._queue:
                    log.warning("notifications %s: %d not delivered before the channel was "
                                "replaced", self.channel.label, len(self._queue))  # fmt: skip
                return None
            return self._queue.popleft()

    def _past_drain(self) -> bool:
        return self._drain_until is not None and time.monotonic() >= self._drain_until

    def _run(self) -> None:
        while (notice := self._next()) is not None:
            try:
                self._deliver(notice)
            except Exception:  # a bug must not end the channel's thread
                log.exception("notifications %s: %s not delivered", self.channel.label,
                              notice.event)  # fmt: skip

    def _deliver(self, notice: Notice) -> None:
        answer = Answer(False, "not tried")
        for attempt in range(self._tries):
            if attempt:
                time.sleep(self._backoff_s[min(attempt, len(self._backoff_s)) - 1])
                if self._past_drain():
                    break
            answer = send(self.channel, notice)
            log.debug("notifications %s: %s try %d: %s", self.channel.label, notice.event,
                      attempt + 1, answer.detail)  # fmt: skip
            if answer.ok:
                self._delivered()
                return
        self._failed(notice, answer.detail)

    def _delivered(self) -> None:
        if self._failing is None:
            return
        lost, self._failing, self._lost = self._lost, None, 0
        log.warning("notifications %s: delivers again (%d notification(s) lost meanwhile)",
                    self.channel.label, lost)  # fmt: skip
        self._report(ChannelTurned(self.channel.label, False, "delivers again", lost))

    def _failed(self, notice: Notice, detail: str) -> None:
        self._lost += 1
        if self._failing is not None:
            return
        self._failing = detail
        log.warning("notifications %s: %s not delivered after %d tries (%s); further failures "
                    "are not logged until it delivers again", self.channel.label, notice.event,
                    self._tries, detail)  # fmt: skip
        self._report(ChannelTurned(self.channel.label, True, detail))
