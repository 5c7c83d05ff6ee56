"""Logs: the log history. Follows the stdout/stderr files of every replica and of DeployEx
(logfiles.follower, woken by inotify: nothing runs while nothing is written), keeps their lines
with the time they were read in `{var_path}/logs.db` (state.log_store) for
`logs_retention_time_ms` and within `logs_max_bytes`, and answers the front ends' queries.

- Passes: a change wakes the actor, which stops listening to inotify and reads the changed files
  at most every PASS_INTERVAL_S (a budget per file each), then listens again; a flood costs ten
  passes a second, not a wakeup per write.
- A crash (a `Journaled` entry from Storage) first reads what the replica wrote last, then adds
  upstream's synthetic stderr line "DeployEx detected node down for node: {node}".
- Pruning every minute (core.log_history.prune_every_s), on `ConfigChanged` (which may change
  the retention or the cap), and after a pass that took the store over its cap.
- This actor logs nothing per pass: its log file is DeployEx's stdout log, which it follows.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from deployex_actors.actors.base import DeployexActor
from deployex_actors.actors.messages import (
    ConfigChanged,
    Journaled,
    LogServicesQuery,
    LogsQuery,
    Reply,
    StartLogs,
    Timer,
)
from deployex_actors.catalog import Catalog, node_name
from deployex_actors.config import Config
from deployex_actors.core.log_history import (
    PASS_INTERVAL_S,
    clamp_limit,
    node_down_line,
    prune_every_s,
    retention_cutoff_ms,
)
from deployex_actors.errors import StateError
from deployex_actors.logfiles.follower import Follower
from deployex_actors.state.log_store import LogStore, NewLine

log = logging.getLogger(__name__)


class Logs(DeployexActor):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.config: Config | None = None
        self.store: LogStore | None = None
        self.follower: Follower | None = None
        self.problem: str | None = None  # why there is no history (the store cannot be used)
        self.last_pass = 0.0
        self.pass_due = False

    def receiveMsg_StartLogs(self, message: StartLogs, sender: Any) -> None:
        self.config = message.config
        catalog = Catalog.from_config(message.config)
        try:
            self.store = LogStore(catalog.logs_db)
            self.follower = Follower(catalog, self.store.offsets())
            self.follower.start(self.config.logs_retention_time_ms)
        except (StateError, OSError) as exc:
            self.problem = f"log history unavailable: {exc}"
            log.error("%s", self.problem)
            return
        self.watch(self.follower.fd, self._changed)
        self._prune()
        self._pass()

    # -- following -------------------------------------------------------------------------------

    def _changed(self) -> None:
        events = self.follower.inotify.read_events()
        self.follower.on_events(events, self.config.logs_retention_time_ms)
        self.pause_watch(self.follower.fd)  # until the pass: one wakeup per pass, not per write
        self._schedule_pass()

    def _schedule_pass(self) -> None:
        if not self.pass_due:
            self.pass_due = True
            self.after(self.last_pass + PASS_INTERVAL_S - time.monotonic(), "pass")

    def _pass(self) -> None:
        self.pass_due = False
        self.last_pass = time.monotonic()
        keep = self.config.logs_retention_time_ms is not None
        result = self.follower.read_pass(int(time.time() * 1000), keep)
        if result.lines or result.marks:
            self._store(result.lines, result.marks)
            if self.store.total_bytes > self.config.logs_max_bytes:  # the cap holds between prunes
                self._prune()
        if result.more:
            self._schedule_pass()
        else:
            self.watch(self.follower.fd, self._changed)

    def _store(self, lines: list[NewLine], marks: dict) -> None:
        try:
            self.store.append(lines, marks)
        except StateError as exc:  # a full disk: these lines are lost, the next ones may not be
            log.warning("log history: %d lines not stored: %s", len(lines), exc)

    def on_timer(self, timer: Timer) -> None:
        if self.follower is None:
            return
        if timer.kind == "pass":
            self._pass()
        elif timer.kind == "prune":
            self.follower.rescan(self.config.logs_retention_time_ms)
            self.follower.close_idle()
            self._prune()
            self._schedule_pass()

    def _prune(self) -> None:
        now_ms = int(time.time() * 1000)
        cutoff = retention_cutoff_ms(now_ms, self.config.logs_retention_time_ms)
        try:
            self.store.prune(cutoff, self.config.logs_max_bytes)
        except StateError as exc:
            log.warning("log history: pruning failed: %s", exc)
        self.after(prune_every_s(self.config.logs_retention_time_ms), "prune")

    # -- what the rest of DeployEx tells us ------------------------------------------------------

    def receiveMsg_Journaled(self, message: Journaled, sender: Any) -> None:
        entry = message.entry
        if entry.kind != "crash" or not entry.sname or self.follower is None:
            return
        if self.config.logs_retention_time_ms is None:
            return
        # the replica's last lines come before the node-down line, even if their inotify events
        # are still queued (the actor may hear of the crash first)
        self.follower.on_events(
            self.follower.inotify.read_events(), self.config.logs_retention_time_ms
        )
        self.follower.mark_changed(entry.sname)
        self._pass()
        text = node_down_line(node_name(entry.sname))
        at_ms = max(int(message.at * 1000), int(time.time() * 1000))
        self._store([NewLine(at_ms, entry.app or "", entry.sname, "stderr", text)], {})

    def receiveMsg_ConfigChanged(self, message: ConfigChanged, sender: Any) -> None:
        self.config = message.config
        if self.store is not None:
            self._prune()

    # -- queries ---------------------------------------------------------------------------------

    def receiveMsg_LogsQuery(self, message: LogsQuery, sender: Any) -> None:
        self._answer(message, sender, lambda: self.store.query(
            int(message.since * 1000),
            None if message.until is None else int(message.until * 1000),
            message.snames,
            message.app,
            message.streams,
            message.grep,
            clamp_limit(message.limit),
            message.after_id,
        ))  # fmt: skip

    def receiveMsg_LogServicesQuery(self, message: LogServicesQuery, sender: Any) -> None:
        self._answer(message, sender, lambda: self.store.services())

    def _answer(self, message: Any, sender: Any, query: Any) -> None:
        to = message.reply_to or sender
        if self.store is None:
            self.send(to, Reply(message.request_id, error=self.problem or "log history starting"))
            return
        try:
            self.send(to, Reply(message.request_id, query()))
        except StateError as exc:
            self.send(to, Reply(message.request_id, error=str(exc)))

    def receiveMsg_ActorExitRequest(self, message: Any, sender: Any) -> None:
        if self.follower is not None:
            self.follower.close()
        if self.store is not None:
            self.store.close()
