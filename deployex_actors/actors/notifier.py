"""Notifier: tells the configured channels (webhook, Slack, PagerDuty) what happened.

It hears every journal entry from Storage (`Journaled`), turns it into notifications
(core.notifications: events, payloads, crash folding) and hands each to the worker of every
channel that wants it (notifications.worker: one bounded queue and one thread per channel), so a
hanging endpoint delays neither a deployment nor another channel. Threads inside this one
process rather than a process per channel: a delivery is a blocking HTTP POST that needs no
isolation beyond its own thread, and a channel costs ~100 KB instead of a forked interpreter.

What a worker thread has to say (a channel started failing, or delivers again; a test's answer)
comes back through a pipe this actor watches, so only the actor talks to other actors.
"""

from __future__ import annotations

import contextlib
import logging
import os
import queue
import threading
import time
from typing import Any

from deployex_actors.actors.base import DeployexActor
from deployex_actors.actors.messages import (
    ChannelTested,
    ConfigChanged,
    Journal,
    Journaled,
    NotifyTest,
    Reply,
    StartNotifier,
    StorageMoved,
    Timer,
)
from deployex_actors.catalog import short_hostname
from deployex_actors.config import Config
from deployex_actors.core.notifications import CrashFolding, Entry, Notice, notices_of, probe_notice
from deployex_actors.notifications import channels_of
from deployex_actors.notifications.channel import Channel
from deployex_actors.notifications.worker import ChannelTurned, ChannelWorker, send
from deployex_actors.secrets.references import NamedSecrets

log = logging.getLogger(__name__)
DRAIN_S = 10.0  # a replaced channel's worker delivers what it holds for at most this long


class Notifier(DeployexActor):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.storage: Any = None
        self.secrets = NamedSecrets()
        self.host = short_hostname()
        self.channels: tuple[Channel, ...] = ()
        self.workers: list[ChannelWorker] = []
        self.folding = CrashFolding()
        self.outbox: queue.SimpleQueue[Any] = queue.SimpleQueue()  # from the worker threads
        self.tests: dict[str, tuple[Any, int, list[ChannelTested]]] = {}
        self._wake_r: int | None = None
        self._wake_w: int | None = None

    def receiveMsg_StartNotifier(self, message: StartNotifier, sender: Any) -> None:
        self.storage, self.secrets = message.storage, message.secrets
        self._wake_r, self._wake_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        self.watch(self._wake_r, self._drain_outbox)
        self._adopt(message.config)

    def receiveMsg_StorageMoved(self, message: StorageMoved, sender: Any) -> None:
        self.storage = message.storage

    def receiveMsg_ConfigChanged(self, message: ConfigChanged, sender: Any) -> None:
        """New channels: the old workers deliver what they hold (at most DRAIN_S), new ones
        start at once; crash folding keeps its windows."""
        for worker in self.workers:
            worker.close(DRAIN_S)
        self._adopt(message.config)
        log.info("notifications: %d channel(s) after a configuration change", len(self.workers))

    def _adopt(self, config: Config) -> None:
        self.channels = channels_of(config, self.secrets)
        self.workers = [ChannelWorker(c, self._tell).start() for c in self.channels if c.enabled]
        self.folding = CrashFolding(config.notification_crash_interval_ms / 1000,
                                    self.folding.windows)  # fmt: skip
        for channel in self.channels:
            if channel.problem:
                log.warning("notifications %s: %s", channel.label, channel.problem)

    # -- journal entries -> notifications ------------------------------------------------------

    def receiveMsg_Journaled(self, message: Journaled, sender: Any) -> None:
        if not self.workers:
            return
        e = message.entry
        entry = Entry(e.kind, e.message, e.app, e.sname, e.details)
        for notice in notices_of(entry, message.at, self.host):
            if notice.event == "crash_restart":
                self.folding, notice = self.folding.on_crash(notice, time.time())
                self._arm_folding()
            if notice is not None:
                self._hand_out(notice)

    def _hand_out(self, notice: Notice) -> None:
        for worker in self.workers:
            if worker.channel.wants(notice.event):
                worker.put(notice)

    def _arm_folding(self) -> None:
        due = self.folding.next_due()
        if due is not None:
            self.after(due - time.time(), "crash_window")

    def on_timer(self, timer: Timer) -> None:
        if timer.kind == "crash_window":
            self.folding, summaries = self.folding.due(time.time())
            for notice in summaries:
                self._hand_out(notice)
            self._arm_folding()

    # -- notify test -----------------------------------------------------------------------------

    def receiveMsg_NotifyTest(self, message: NotifyTest, sender: Any) -> None:
        reply_to = message.reply_to or sender
        chosen, error = self._chosen(message.channel)
        if error:
            self.send(reply_to, Reply(message.request_id, error=error))
            return
        self.tests[message.request_id] = (reply_to, len(chosen), [])
        notice = probe_notice(self.host, time.time())
        for channel in chosen:
            threading.Thread(target=self._test, args=(message.request_id, channel, notice),
                             name=f"notify test {channel.label}", daemon=True).start()  # fmt: skip

    def _chosen(self, wanted: str | None) -> tuple[tuple[Channel, ...], str | None]:
        known = ", ".join(c.label for c in self.channels) or "none configured"
        if wanted is None:
            chosen = tuple(c for c in self.channels if c.enabled)
        elif wanted.lstrip("#").isdigit():
            chosen = tuple(c for c in self.channels if c.index == int(wanted.lstrip("#")))
        else:
            chosen = tuple(c for c in self.channels if c.adapter == wanted and c.enabled)
        if not chosen:
            return (), f"no enabled notification channel {wanted or ''} (channels: {known})"
        return chosen, None

    def _test(self, request_id: str, channel: Channel, notice: Notice) -> None:
        """On a thread of its own: one try, so the answer is what the endpoint says now."""
        answer = send(channel, notice)
        self._tell((request_id, ChannelTested(channel.label, answer.ok, answer.detail)))

    # -- what the threads say --------------------------------------------------------------------

    def _tell(self, item: Any) -> None:
        """Called on a worker thread: queue it and wake the actor."""
        self.outbox.put(item)
        with contextlib.suppress(OSError):  # full: the actor is woken already
            os.write(self._wake_w, b"x")

    def _drain_outbox(self) -> None:
        with contextlib.suppress(OSError):
            while os.read(self._wake_r, 4096):
                pass
        while True:
            try:
                item = self.outbox.get_nowait()
            except queue.Empty:
                return
            if isinstance(item, ChannelTurned):
                self._journal_turn(item)
            else:
                self._test_answered(*item)

    def _test_answered(self, request_id: str, result: ChannelTested) -> None:
        reply_to, expected, results = self.tests[request_id]
        results.append(result)
        if len(results) == expected:
            del self.tests[request_id]
            ordered = tuple(sorted(results, key=lambda r: int(r.label.split()[0][1:])))
            self.send(reply_to, Reply(request_id, ordered))

    def _journal_turn(self, turn: ChannelTurned) -> None:
        """Once per channel per condition; these kinds make no notification (no loop)."""
        if turn.failing:
            kind, text = (
                "notification_failed",
                (
                    f"notifications to channel {turn.label} fail ({turn.detail}); further failures "
                    "are not journaled until it delivers again"
                ),
            )
        else:
            kind = "notification_recovered"
            text = f"channel {turn.label} delivers again ({turn.lost} notification(s) lost)"
        if self.storage is not None:
            self.send(self.storage, Journal(kind, text, "notifier"))

    def receiveMsg_ActorExitRequest(self, message: Any, sender: Any) -> None:
        for worker in self.workers:
            worker.close(0)
