"""Storage: the only writer of the durable state (SQLite: history, ghosts, modes, journal).

Deployers read their app's mode and ghosts here and record versions and ghosts; every actor
journals through it; front ends query history and the journal. It never touches the bucket (each
Deployer's Fetcher does), so a slow bucket never delays a journal write or a query. Every failure
becomes an `error` string in the reply.

When the database cannot be written (a full disk), journal entries, version records and ghosts
wait in a bounded memory buffer, in order, with the time they happened, and are written as soon
as it can be written again (tried every `FLUSH_RETRY_S`); one warning per condition, and the
condition is in DeployEx's status meanwhile ("state database: disk full").
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from deployex_actors import __version__
from deployex_actors.actors.base import DeployexActor
from deployex_actors.actors.messages import (
    DesiredRead,
    EventsQuery,
    Ghost,
    GhostsQuery,
    Journal,
    Journaled,
    JournalSubscribers,
    ReadDesired,
    Reconsider,
    Record,
    RecordVersion,
    Reply,
    SetMode,
    StartStorage,
    StateProblem,
    Timer,
    Unghost,
    VersionsQuery,
)
from deployex_actors.catalog import Catalog, tarball_key
from deployex_actors.config import Config
from deployex_actors.errors import DeployexError, StateDiskFull, StateError
from deployex_actors.state import AppMode, StateStore
from deployex_actors.state.timestamps import now

log = logging.getLogger(__name__)
DEPLOYEX = "deployex"  # DeployEx's own name in the version history
HELD_WRITES = 10_000  # journal entries (and records) kept while the database cannot be written
FLUSH_RETRY_S = 2.0


class Storage(DeployexActor):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.config: Config | None = None
        self.catalog: Catalog | None = None
        self.state: StateStore | None = None
        self._releases: Any = None
        self.root: Any = None
        self.held: deque[Callable[[], Any]] = deque()
        self.dropped = 0  # held writes lost because the buffer was full
        self.problem: str | None = None
        self.subscribers: tuple[Any, ...] = ()

    def receiveMsg_StartStorage(self, message: StartStorage, sender: Any) -> None:
        self.root = sender
        self.config = message.config
        self.catalog = Catalog.from_config(message.config)
        self.state = StateStore(self.catalog.state_db)
        self._record_own_version()

    def _record_own_version(self) -> None:
        """DeployEx's own versions are in the history as app `deployex`, like upstream's: its
        first start a `full_deployment`, a start as another version (a self-upgrade, which keeps
        the replicas) a `hot_upgrade`."""
        latest = self.state.latest_version(DEPLOYEX)
        if latest is None or latest.version != __version__:
            kind, at = ("full_deployment" if latest is None else "hot_upgrade"), now()
            self._write(lambda: self.state.add_version(DEPLOYEX, DEPLOYEX, __version__,
                                                       kind=kind, at=at))  # fmt: skip

    # -- what a Deployer should run ------------------------------------------------------------

    def receiveMsg_ReadDesired(self, message: ReadDesired, sender: Any) -> None:
        app = message.app
        mode = self.state.mode(app)
        ghosts = tuple(g.version for g in self.state.ghosts(app))
        history = self.state.versions(app)
        last_good = next((v.version for v in history if v.version not in ghosts), None)
        reply = DesiredRead(app, mode="automatic", ghosts=ghosts, last_good=last_good)
        if mode.mode == "manual":
            record = next((v for v in history if v.version == mode.pinned_version), None)
            reply = replace(
                reply,
                version=mode.pinned_version,
                hash=record.hash if record else None,
                pre_commands=tuple(record.pre_commands) if record else (),
                mode="manual",
            )
        self.send(sender, reply)

    # -- durable state ---------------------------------------------------------------------------

    def receiveMsg_RecordVersion(self, message: RecordVersion, sender: Any) -> None:
        at = now()
        self._write(
            lambda: self.state.add_version(
                message.app,
                message.sname,
                message.version,
                hash=message.hash,
                pre_commands=message.pre_commands,
                kind=message.kind,
                at=at,
            )
        )

    def receiveMsg_JournalSubscribers(self, message: JournalSubscribers, sender: Any) -> None:
        self.subscribers = message.addresses

    def receiveMsg_Journal(self, message: Journal, sender: Any) -> None:
        log.info("[%s] %s %s: %s", message.kind, message.app or "deployex", message.sname or "",
                 message.message)  # fmt: skip
        at = now()
        for subscriber in self.subscribers:  # before the write: a full disk delays no one
            self.send(subscriber, Journaled(message, at.timestamp()))
        self._write(
            lambda: self.state.journal(
                message.kind,
                message.message,
                actor=message.actor,
                app=message.app,
                sname=message.sname,
                at=at,
            )
        )

    def receiveMsg_Record(self, message: Record, sender: Any) -> None:
        """A front end's entry, through the root: journaled like our own, and acknowledged."""
        self.receiveMsg_Journal(message.entry, sender)
        self.send(message.reply_to or sender, Reply(message.request_id, "recorded"))

    def receiveMsg_Ghost(self, message: Ghost, sender: Any) -> None:
        at = now()
        self._write(lambda: self.state.ghost(message.app, message.version, message.reason, at))
        self._journal("ghosted", f"{message.version} ghosted: {message.reason}", "deployer",
                      message.app, message.sname,
                      {"version": message.version, "reason": message.reason})  # fmt: skip

    # -- writes that must not be lost ------------------------------------------------------------

    def _write(self, write: Callable[[], Any]) -> None:
        """Write now, or hold it (behind what is held already, to keep the order)."""
        if not self.held:
            try:
                write()
                return
            except StateError as exc:
                self._cannot_write(exc)
        if len(self.held) >= HELD_WRITES:
            self.held.popleft()
            self.dropped += 1
        self.held.append(write)

    def _cannot_write(self, exc: StateError) -> None:
        problem = "state database: disk full" if isinstance(exc, StateDiskFull) else str(exc)
        if problem != self.problem:
            self.problem = problem
            log.warning("%s; holding up to %d journal entries in memory until it can be "
                        "written (%s)", problem, HELD_WRITES, exc)  # fmt: skip
            self.send(self.root, StateProblem(problem))
        self.after(FLUSH_RETRY_S, "flush")

    def on_timer(self, timer: Timer) -> None:
        if timer.kind == "flush":
            self._flush()

    def _flush(self) -> None:
        written = 0
        while self.held:
            try:
                self.held[0]()
            except StateError as exc:
                self._cannot_write(exc)
                return
            self.held.popleft()
            written += 1
        dropped, self.dropped = self.dropped, 0
        log.warning("state database writable again: %d held entries written, %d lost", written,
                    dropped)  # fmt: skip
        self.problem = None
        self.send(self.root, StateProblem(None))
        if dropped:
            self._journal("journal_lost", f"{dropped} journal entries were lost while the state "
                          f"database could not be written (the buffer holds {HELD_WRITES})",
                          "storage")  # fmt: skip

    def receiveMsg_GhostsQuery(self, message: GhostsQuery, sender: Any) -> None:
        ghosts = self.state.ghosts(message.app)
        self.send(message.reply_to or sender, Reply(message.request_id, ghosts))

    def receiveMsg_Unghost(self, message: Unghost, sender: Any) -> None:
        try:
            removed = self.state.unghost(message.app, message.version)
        except StateError as exc:
            self.send(message.reply_to or sender, Reply(message.request_id, error=str(exc)))
            return
        what = message.version or "all ghosts"
        self._journal("unghosted", f"{what} removed from the ghost list ({removed})",
                      message.actor, message.app)  # fmt: skip
        self.send(message.reply_to or sender, Reply(message.request_id, removed))
        if message.deployer is not None:
            self.send(message.deployer, Reconsider())

    def receiveMsg_SetMode(self, message: SetMode, sender: Any) -> None:
        try:
            self._set_mode(message)
        except DeployexError as exc:
            self.send(message.reply_to or sender, Reply(message.request_id, error=str(exc)))
            return
        self.send(message.reply_to or sender, Reply(message.request_id, message.version or "auto"))
        if message.deployer is not None:
            self.send(message.deployer, Reconsider())

    def _set_mode(self, message: SetMode) -> None:
        app, version = message.app, message.version
        if version is None:
            self.state.set_mode(app, AppMode("automatic"))
            self._journal("mode", "automatic: following current.json", message.actor, app)
            return
        if self.state.is_ghosted(app, version):
            raise DeployexError(f"{app} {version} is ghosted; remove it from the ghosts first")
        known = {v.version for v in self.state.versions(app)}
        if version not in known and not message.in_bucket:
            where = message.bucket_error or f"{tarball_key(app, version)} is missing"
            raise DeployexError(f"{app} {version} is neither in the history nor in the bucket "
                                f"({where})")  # fmt: skip
        self.state.set_mode(app, AppMode("manual", version))
        self._journal("mode", f"manual: pinned to {version}", message.actor, app)

    def _journal(
        self,
        kind: str,
        text: str,
        actor: str,
        app: str | None = None,
        sname: str | None = None,
        details: dict | None = None,
    ) -> None:
        self.receiveMsg_Journal(Journal(kind, text, actor, app, sname, details or {}), None)

    def receiveMsg_VersionsQuery(self, message: VersionsQuery, sender: Any) -> None:
        records = self.state.versions(message.app)
        self.send(message.reply_to or sender, Reply(message.request_id, records))

    def receiveMsg_EventsQuery(self, message: EventsQuery, sender: Any) -> None:
        events = self.state.events(app=message.app, kind=message.kind, limit=message.limit)
        self.send(message.reply_to or sender, Reply(message.request_id, events))

    def receiveMsg_ActorExitRequest(self, message: Any, sender: Any) -> None:
        if self.state is not None:
            self.state.close()
