"""Storage: the only writer of the durable state, and the gateway to the release bucket.

Deployers ask it to read current.json and to prepare a release (download + safe unpack + promote
to the sname's current/ folder); slow bucket work happens here, off the Deployers' path. Front
ends query it for history and the journal. Every failure becomes an `error` string in the reply.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
from pathlib import Path
from typing import Any

from deployex_actors.actors.base import DeployexActor
from deployex_actors.actors.messages import (
    CurrentRead,
    EventsQuery,
    Journal,
    PrepareRelease,
    ReadCurrent,
    RecordVersion,
    ReleasePrepared,
    Reply,
    StartStorage,
    VersionsQuery,
)
from deployex_actors.catalog import Catalog
from deployex_actors.config import Config
from deployex_actors.errors import DeployexError
from deployex_actors.state import StateStore

log = logging.getLogger(__name__)


class Storage(DeployexActor):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.config: Config | None = None
        self.catalog: Catalog | None = None
        self.state: StateStore | None = None
        self._releases: Any = None

    def receiveMsg_StartStorage(self, message: StartStorage, sender: Any) -> None:
        self.config = message.config
        self.catalog = Catalog.from_config(message.config)
        self.state = StateStore(self.catalog.state_db)

    @property
    def releases(self) -> Any:
        if self._releases is None:
            from deployex_actors.releases import release_store  # the SDKs load on first use

            self._releases = release_store(self.config)
        return self._releases

    # -- bucket ----------------------------------------------------------------------------------

    def receiveMsg_ReadCurrent(self, message: ReadCurrent, sender: Any) -> None:
        try:
            release = self.releases.read_current(message.app)
        except DeployexError as exc:
            self.send(sender, CurrentRead(message.app, error=str(exc)))
            return
        self.send(
            sender,
            CurrentRead(message.app, release.version, release.hash, tuple(release.pre_commands)),
        )

    def receiveMsg_PrepareRelease(self, message: PrepareRelease, sender: Any) -> None:
        error = None
        try:
            self._prepare(message.app, message.sname, message.version)
        except DeployexError as exc:
            error = str(exc)
        except OSError as exc:
            error = f"cannot prepare {message.sname}: {exc}"
        self.send(sender, ReleasePrepared(message.app, message.sname, message.version, error))

    def _prepare(self, app: str, sname: str, version: str) -> None:
        from deployex_actors.releases import safe_unpack

        new = self.catalog.new_dir(app, sname)
        current = self.catalog.current_dir(app, sname)
        shutil.rmtree(new, ignore_errors=True)
        new.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=new.parent, prefix=".download-") as scratch:
            tarball = self.releases.download(app, version, Path(scratch))
            safe_unpack(tarball.path, new)
        previous = self.catalog.previous_dir(app, sname)
        if current.exists():
            shutil.rmtree(previous, ignore_errors=True)
            current.rename(previous)
        new.rename(current)

    # -- durable state ---------------------------------------------------------------------------

    def receiveMsg_RecordVersion(self, message: RecordVersion, sender: Any) -> None:
        self.state.add_version(
            message.app,
            message.sname,
            message.version,
            hash=message.hash,
            pre_commands=message.pre_commands,
            kind=message.kind,
        )

    def receiveMsg_Journal(self, message: Journal, sender: Any) -> None:
        log.info("[%s] %s %s: %s", message.kind, message.app or "deployex", message.sname or "",
                 message.message)  # fmt: skip
        self.state.journal(
            message.kind, message.message, actor=message.actor, app=message.app,
            sname=message.sname,
        )  # fmt: skip

    def receiveMsg_VersionsQuery(self, message: VersionsQuery, sender: Any) -> None:
        records = self.state.versions(message.app)
        self.send(message.reply_to or sender, Reply(message.request_id, records))

    def receiveMsg_EventsQuery(self, message: EventsQuery, sender: Any) -> None:
        events = self.state.events(app=message.app, kind=message.kind, limit=message.limit)
        self.send(message.reply_to or sender, Reply(message.request_id, events))

    def receiveMsg_ActorExitRequest(self, message: Any, sender: Any) -> None:
        if self.state is not None:
            self.state.close()
