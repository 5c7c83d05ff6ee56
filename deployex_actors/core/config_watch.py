"""The config watcher's decisions: what a read of the YAML file means, and what an operator's
apply or discard does. Pure functions over `WatchState`; the ConfigWatcher actor only reads the
file, keeps the state and carries out what these return.

- The same content as the applied one (by SHA-256), or a file that parses to the running
  configuration, is no change: a pending change or refusal is cleared.
- A file the loader refuses is `refused` with its key-path errors; what runs is untouched.
- A valid file that differs is a `pending` change (core.config_diff) until it is applied or
  discarded. A discarded content is not offered again until the file changes, or until a forced
  read (SIGHUP, `ReloadConfig`).
- Each distinct content is journaled once (`config_changed` or `config_change_refused`), not at
  every periodic read.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from deployex_actors.config import Config
from deployex_actors.core.config_diff import ConfigDiff, applicable, diff

NONE = "none"
PENDING = "pending"
REFUSED = "refused"
REMEMBERED = 64  # contents already journaled, kept to journal each once


@dataclass(frozen=True)
class PendingConfig:
    """What the front ends are shown: no change, a pending change, or a refused file."""

    state: str = NONE
    source: str = ""
    checksum: str | None = None  # of the file content shown (pending or refused)
    diff: ConfigDiff | None = None
    errors: tuple[str, ...] = ()
    read_at: float = 0.0


@dataclass(frozen=True)
class Notice:
    """A journal entry the watcher is to write."""

    kind: str
    message: str
    details: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class WatchState:
    applied: Config
    applied_checksum: str | None = None
    view: PendingConfig = PendingConfig()
    candidate: Config | None = None  # the pending file's configuration
    discarded: str | None = None
    journaled: tuple[str, ...] = ()


def on_read(
    state: WatchState,
    checksum: str,
    read: Config | list[str],
    now: float,
    forced: bool = False,
) -> tuple[WatchState, Notice | None]:
    """The file was read: `read` is its configuration, or the loader's problems."""
    source = str(state.applied.source or "")
    if forced:
        state = replace(state, discarded=None)
    if checksum in (state.applied_checksum, state.discarded):
        return _cleared(state, source, now), None
    if not isinstance(read, Config):
        view = PendingConfig(REFUSED, source, checksum, errors=tuple(read), read_at=now)
        notice = Notice(
            "config_change_refused",
            f"configuration file refused, the running configuration is kept: {'; '.join(read)}",
            {"errors": list(read)},
        )
        return _journal_once(replace(state, view=view, candidate=None), checksum, notice)
    change = diff(state.applied, read)
    if change.empty:  # e.g. only comments or spacing changed: this content is what runs
        return _cleared(replace(state, applied_checksum=checksum), source, now), None
    view = PendingConfig(PENDING, source, checksum, change, read_at=now)
    needs = len(change.restart_needed)
    restart = f"; {needs} key(s) need a DeployEx restart" if needs else ""
    notice = Notice(
        "config_changed",
        f"configuration change pending approval: {', '.join(change.fields) or 'none'}{restart}",
        {"changes_count": change.changes_count, "fields": list(change.fields)},
    )
    return _journal_once(replace(state, view=view, candidate=read), checksum, notice)


def approve(
    state: WatchState, checksum: str | None = None
) -> tuple[WatchState, Config, ConfigDiff] | str:
    """Apply the pending change: the new state, the configuration to run and what changed; or
    why not. `checksum`, when given, is the content the operator looked at."""
    problem = _not_pending(state, checksum)
    if problem:
        return problem
    config = applicable(state.applied, state.candidate)
    change = state.view.diff
    cleared = PendingConfig(NONE, state.view.source, read_at=state.view.read_at)
    after = replace(
        state, applied=config, applied_checksum=state.view.checksum, view=cleared, candidate=None
    )
    return after, config, change


def discard(state: WatchState, checksum: str | None = None) -> WatchState | str:
    """Drop the pending change; the same content is not offered again (see the module)."""
    problem = _not_pending(state, checksum)
    if problem:
        return problem
    cleared = PendingConfig(NONE, state.view.source, read_at=state.view.read_at)
    return replace(state, view=cleared, candidate=None, discarded=state.view.checksum)


def _not_pending(state: WatchState, checksum: str | None) -> str | None:
    if state.view.state != PENDING or state.candidate is None:
        refused = " (the file was refused: fix it first)" if state.view.state == REFUSED else ""
        return f"no pending configuration change{refused}"
    if checksum is not None and checksum != state.view.checksum:
        return "the configuration file changed since it was shown: look at the pending change again"
    return None


def _cleared(state: WatchState, source: str, now: float) -> WatchState:
    return replace(state, view=PendingConfig(NONE, source, read_at=now), candidate=None)


def _journal_once(
    state: WatchState, checksum: str, notice: Notice
) -> tuple[WatchState, Notice | None]:
    if checksum in state.journaled:
        return state, None
    journaled = (*state.journaled, checksum)[-REMEMBERED:]
    return replace(state, journaled=journaled), notice
