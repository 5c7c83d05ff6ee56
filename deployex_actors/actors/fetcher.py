"""Fetcher: one per Deployer, its app's only door to the release bucket.

It reads current.json (on its own schedule, telling its Deployer only what changed), lists the
bucket's versions for a pin, and prepares a release (download, safe unpack, promotion to the
sname's `current/` folder). A bucket can take its client's whole timeout to answer (S3 or GCS
slow or unreachable); that wait happens here, in a mailbox of its own, so it never holds up
Storage's journal writes, the front ends' queries, or another app. Every failure becomes an
`error` string in the reply.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
from dataclasses import replace
from pathlib import Path
from typing import Any

from deployex_actors.actors.base import DeployexActor, Timer
from deployex_actors.actors.messages import (
    ConfigChanged,
    CurrentRead,
    HotUpgrade,
    PrepareRelease,
    ReadCurrent,
    ReleasePrepared,
    SetMode,
    StartFetcher,
)
from deployex_actors.catalog import Catalog
from deployex_actors.config import Config
from deployex_actors.core.hot_upgrade_steps import Target
from deployex_actors.errors import DeployexError, ReleaseError

log = logging.getLogger(__name__)


class Fetcher(DeployexActor):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.config: Config | None = None
        self.catalog: Catalog | None = None
        self._releases: Any = None
        self.told: CurrentRead | None = None  # what the Deployer last heard about current.json

    def receiveMsg_StartFetcher(self, message: StartFetcher, sender: Any) -> None:
        self.config = message.config
        self.catalog = Catalog.from_config(message.config)
        self.deployer, self.app = sender, message.app
        if self.app:
            self._poll_later()

    def receiveMsg_ConfigChanged(self, message: ConfigChanged, sender: Any) -> None:
        self.config = message.config  # paths and the bucket need a restart: not changed here

    def _poll_later(self) -> None:
        self.after(self.config.application(self.app).deploy_schedule_interval_ms / 1000, "poll")

    def on_timer(self, timer: Timer) -> None:
        # Polled here, not asked for by the Deployer: an unchanged current.json costs no
        # message between processes (a round trip is 3-8 ms of CPU on a small host).
        if timer.kind == "poll":
            read = self._read_current(self.app)
            if read != self.told:
                self.told = read
                self.send(self.deployer, read)
            self._poll_later()

    @property
    def releases(self) -> Any:
        if self._releases is None:
            from deployex_actors.releases import release_store  # the SDKs load on first use

            self._releases = release_store(self.config)
        return self._releases

    def receiveMsg_ReadCurrent(self, message: ReadCurrent, sender: Any) -> None:
        self.told = self._read_current(message.app)
        self.send(sender, self.told)

    def _read_current(self, app: str) -> CurrentRead:
        try:
            release = self.releases.read_current(app)
        except DeployexError as exc:
            return CurrentRead(app, error=str(exc))
        return CurrentRead(app, release.version, release.hash, tuple(release.pre_commands))

    def receiveMsg_SetMode(self, message: SetMode, sender: Any) -> None:
        """A pin is checked against the bucket too: a version never deployed here may be there."""
        try:
            in_bucket = message.version in self.releases.list_versions(message.app)
        except DeployexError as exc:
            self.send(sender, replace(message, bucket_checked=True, bucket_error=str(exc)))
            return
        self.send(sender, replace(message, bucket_checked=True, in_bucket=in_bucket))

    def receiveMsg_PrepareRelease(self, message: PrepareRelease, sender: Any) -> None:
        error = reason = hot = None
        try:
            reason, hot = self._prepare(message)
        except DeployexError as exc:
            error = str(exc)
        except OSError as exc:
            error = f"cannot prepare {message.sname}: {exc}"
        reply = ReleasePrepared(message.app, message.sname, message.version, error, reason, hot)
        self.send(sender, reply)

    def _prepare(self, message: PrepareRelease) -> tuple[str | None, HotUpgrade | None]:
        """Download and unpack into `new/`, judge it against the replica it replaces. A hot
        upgrade: the tarball goes where the running replica's release_handler reads it, and
        `new/` stays only for its pre-commands. Otherwise `new/` becomes `current/`. Returns the
        judgement's one line (None when it replaces nothing) and the hot upgrade to run, if any."""
        app, sname, version = message.app, message.sname, message.version
        from deployex_actors.releases import safe_unpack

        new = self.catalog.new_dir(app, sname)
        current = self.catalog.current_dir(app, sname)
        shutil.rmtree(new, ignore_errors=True)
        new.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=new.parent, prefix=".download-") as scratch:
            tarball = self.releases.download(app, version, Path(scratch))
            safe_unpack(tarball.path, new)
            reason, hot = self._judge(message, new)
            if hot is not None:
                self._place(tarball.path, hot)
        if hot is not None:
            if hot.target.pre_commands:  # they run from it, as `new/` of the upgraded sname
                beside = self.catalog.new_dir(app, hot.sname)
                shutil.rmtree(beside, ignore_errors=True)
                new.rename(beside)  # the Monitor removes it once the upgrade ends
            if sname != hot.sname:  # the new sname, not needed after all
                shutil.rmtree(new.parent, ignore_errors=True)
            return reason, hot
        previous = self.catalog.previous_dir(app, sname)
        if current.exists():
            shutil.rmtree(previous, ignore_errors=True)
            current.rename(previous)
        new.rename(current)
        return reason, None

    def _judge(self, message: PrepareRelease, new: Path) -> tuple[str | None, HotUpgrade | None]:
        """Can the new release hot-upgrade the running one? The journal line, and the upgrade."""
        from deployex_actors.core.hot_upgrade import decide
        from deployex_actors.releases import read_release

        if message.replaces is None or message.replaces_version is None:
            return None, None
        running_dir = self.catalog.current_dir(message.app, message.replaces)
        try:
            contents = read_release(new, message.version)
        except ReleaseError as exc:
            return f"{exc}: full deployment", None
        try:
            running = read_release(running_dir, message.replaces_version)
        except ReleaseError:
            running = None  # judged from the relup and Jellyfish's metadata alone
        enabled = self.config.application(message.app).hot_upgrade
        decision = decide(message.replaces_version, contents, enabled, running)
        if not decision.hot or not contents.name:
            return decision.reason, None
        pre_commands = tuple(message.pre_commands)
        target = Target(contents.name, message.replaces_version, message.version, pre_commands)
        return decision.reason, HotUpgrade(message.app, message.replaces, target)

    def _place(self, tarball: Path, hot: HotUpgrade) -> None:
        """Where `release_handler:unpack_release("B/{release}")` reads it on the running node."""
        dest = self.catalog.current_dir(hot.app, hot.sname) / hot.target.tarball
        dest.parent.mkdir(parents=True, exist_ok=True)
        scratch = dest.with_name(f".{dest.name}.part")
        shutil.copyfile(tarball, scratch)
        scratch.replace(dest)
