"""ConfigWatcher (root child): reads the YAML file again every `config_watch_interval_ms` and on
SIGHUP (`ReloadConfig`, passed on by the launcher through the root), and holds a change until an
operator applies or discards it. What a read means, and what apply and discard do, is decided in
core.config_watch; applying is carried out by the root (`ApplyConfigChange`).
"""

from __future__ import annotations

import hashlib
import logging
import os
import time
from pathlib import Path
from typing import Any

from deployex_actors.actors.base import DeployexActor
from deployex_actors.actors.messages import (
    ApplyConfig,
    ApplyConfigChange,
    ConfigChanged,
    DiscardConfig,
    Journal,
    PendingConfigQuery,
    ReloadConfig,
    Reply,
    StartConfigWatcher,
    StorageMoved,
    Timer,
)
from deployex_actors.config import Config, parse_config
from deployex_actors.config.loader import with_environment
from deployex_actors.core import config_watch
from deployex_actors.core.config_watch import Notice, WatchState
from deployex_actors.errors import ConfigError

log = logging.getLogger(__name__)


class ConfigWatcher(DeployexActor):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.state: WatchState | None = None
        self.storage: Any = None
        self.root: Any = None

    def receiveMsg_StartConfigWatcher(self, message: StartConfigWatcher, sender: Any) -> None:
        self.state = WatchState(message.config)
        self.storage, self.root = message.storage, sender
        self.after(0, "read")

    def receiveMsg_StorageMoved(self, message: StorageMoved, sender: Any) -> None:
        self.storage = message.storage

    def receiveMsg_ConfigChanged(self, message: ConfigChanged, sender: Any) -> None:
        """Our own applied change comes back like every child's: only the period is ours."""
        self.after(self._period_s(), "read")

    def on_timer(self, timer: Timer) -> None:
        if timer.kind == "read" and self.state is not None:
            self._read(forced=False)
            self.after(self._period_s(), "read")

    def _period_s(self) -> float:
        return self.state.applied.config_watch_interval_ms / 1000

    # -- reading the file ------------------------------------------------------------------------

    def _read(self, forced: bool) -> None:
        source = self.state.applied.source
        if source is None:  # a configuration not read from a file (tests of parts)
            return
        checksum, read = read_file(Path(source))
        self.state, notice = config_watch.on_read(self.state, checksum, read, time.time(), forced)
        self._journal(notice)

    def receiveMsg_ReloadConfig(self, message: ReloadConfig, sender: Any) -> None:
        log.info("configuration file read again on request (%s)", message.actor)
        self._read(forced=True)
        self.send(message.reply_to or sender, Reply(message.request_id, self.state.view))

    # -- requests --------------------------------------------------------------------------------

    def receiveMsg_PendingConfigQuery(self, message: PendingConfigQuery, sender: Any) -> None:
        self.send(message.reply_to or sender, Reply(message.request_id, self.state.view))

    def receiveMsg_ApplyConfig(self, message: ApplyConfig, sender: Any) -> None:
        outcome = config_watch.approve(self.state, message.checksum)
        if isinstance(outcome, str):
            self.send(message.reply_to or sender, Reply(message.request_id, error=outcome))
            return
        self.state, config, change = outcome
        self.send(self.root, ApplyConfigChange(config, change))
        details = {
            "changes_count": change.changes_count,
            "fields": list(change.fields),
            "restart_needed": [c.key for c in change.restart_needed],
        }
        text = f"configuration change applied: {', '.join(change.fields) or 'nothing to apply'}"
        self._journal(Notice("config_change_applied", text, details), message.actor)
        self.send(message.reply_to or sender, Reply(message.request_id, change))

    def receiveMsg_DiscardConfig(self, message: DiscardConfig, sender: Any) -> None:
        outcome = config_watch.discard(self.state, message.checksum)
        if isinstance(outcome, str):
            self.send(message.reply_to or sender, Reply(message.request_id, error=outcome))
            return
        self.state = outcome
        text = "pending configuration change discarded; the running configuration is kept"
        self._journal(Notice("config_change_discarded", text), message.actor)
        self.send(message.reply_to or sender, Reply(message.request_id, "discarded"))

    def _journal(self, notice: Notice | None, actor: str = "config_watcher") -> None:
        if notice is None:
            return
        log.warning("%s: %s", notice.kind, notice.message)
        if self.storage is not None:
            self.send(self.storage, Journal(notice.kind, notice.message, actor,
                                            details=notice.details))  # fmt: skip


def read_file(path: Path) -> tuple[str, Config | list[str]]:
    """The SHA-256 of the file's content, and its configuration or the loader's problems."""
    try:
        content = path.read_bytes()
    except OSError as exc:
        return f"unreadable:{exc.errno}", [f"{path}: cannot read the configuration: {exc}"]
    checksum = hashlib.sha256(content).hexdigest()
    try:
        # as `deployex run` read it: DEPLOYEX_OTP_TLS_CERT_PATH is not a change of the file
        config = parse_config(content.decode("utf-8"), source=path)
        return checksum, with_environment(config, os.environ)
    except UnicodeDecodeError as exc:
        return checksum, [f"{path}: not UTF-8 text: {exc}"]
    except ConfigError as exc:
        return checksum, exc.problems
