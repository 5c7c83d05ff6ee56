"""Following the log files of every replica and of DeployEx: which exist (inotify on their
folders finds new snames), and reading what was appended, in passes.

A pass reads each changed file in turn, at most `READ_BUDGET` bytes of each (core.log_history
decides), starting with a different file each pass, so one replica printing 50 MB/s is read in
turns with the others and never stalls the actor. Each file is read through a descriptor kept
open while it is active: a file renamed away (rotation) or deleted is still read to its end.
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

from deployex_actors.catalog import Catalog, is_app_name
from deployex_actors.core.log_history import (
    DEPLOYEX_SERVICE,
    FileMark,
    decode_line,
    initial_offset,
    log_file_service,
    plan_read,
    skipped_line,
    split_lines,
)
from deployex_actors.logfiles.inotify import (
    IN_CREATE,
    IN_IGNORED,
    IN_ISDIR,
    IN_MOVED_TO,
    IN_Q_OVERFLOW,
    Event,
    Inotify,
)
from deployex_actors.state.log_store import NewLine

log = logging.getLogger(__name__)
IDLE_CLOSE_S = 600.0  # a file unchanged this long has its descriptor closed (retired snames)


@dataclass
class FollowedFile:
    path: Path
    app: str
    sname: str
    stream: str
    dev: int = 0
    ino: int = 0
    offset: int = 0  # bytes consumed
    fd: int | None = None
    partial: bytes = b""
    dropping: bool = False
    read_at: float = field(default_factory=time.monotonic)

    @property
    def mark(self) -> FileMark:
        # the partial line is read again after a restart: it is not stored yet
        return FileMark(self.dev, self.ino, self.offset - len(self.partial))

    def close(self) -> None:
        if self.fd is not None:
            with contextlib.suppress(OSError):
                os.close(self.fd)
            self.fd = None


@dataclass(frozen=True)
class PassResult:
    lines: list[NewLine]
    marks: dict[str, FileMark]
    more: bool  # some file has bytes left for the next pass


class Follower:
    def __init__(self, catalog: Catalog, saved: dict[str, FileMark]) -> None:
        self.catalog = catalog
        self.saved = saved
        self.inotify = Inotify()
        self.files: dict[str, FollowedFile] = {}
        self.folders: dict[int, str | None] = {}  # wd -> app of the folder (None: DeployEx's)
        self.root_wd: int | None = None  # the folder of the apps' folders
        self.dirty: set[str] = set()
        self._turn = 0

    @property
    def fd(self) -> int:
        return self.inotify.fd

    # -- which files -----------------------------------------------------------------------------

    def start(self, retention_ms: int | None) -> None:
        """Watch the folders and take up every log file found (from its saved offset)."""
        root = self.catalog.monitored_app_log_path
        with contextlib.suppress(OSError):
            self.root_wd = self.inotify.add_watch(root, IN_CREATE | IN_MOVED_TO)
        self._add_folder(self.catalog.log_path, None, retention_ms)
        with contextlib.suppress(OSError):
            for folder in sorted(root.iterdir()):
                if folder.is_dir() and is_app_name(folder.name):
                    self._add_folder(folder, folder.name, retention_ms)

    def _add_folder(self, folder: Path, app: str | None, retention_ms: int | None) -> None:
        try:
            wd = self.inotify.add_watch(folder)
        except OSError as exc:
            log.warning("log history: cannot watch %s: %s", folder, exc)
            return
        self.folders[wd] = app
        with contextlib.suppress(OSError):
            for entry in sorted(folder.iterdir()):
                self._add_file(folder, entry.name, app, retention_ms)

    def _add_file(self, folder: Path, name: str, app: str | None, retention_ms: int | None) -> None:
        path = folder / name
        if str(path) in self.files:
            return
        service = log_file_service(name, app)
        if service is None:
            return
        try:
            info = path.stat()
        except OSError:
            return
        saved = self.saved.get(str(path))
        offset = initial_offset(saved, info.st_dev, info.st_ino, info.st_size, info.st_mtime,
                                time.time(), retention_ms)  # fmt: skip
        sname, stream = service
        self.files[str(path)] = FollowedFile(
            path, app or DEPLOYEX_SERVICE, sname, stream, info.st_dev, info.st_ino, offset
        )
        self.dirty.add(str(path))

    def on_events(self, events: list[Event], retention_ms: int | None) -> None:
        for event in events:
            if event.mask & IN_Q_OVERFLOW:  # events were lost: look at everything
                self.rescan(retention_ms)
            elif event.mask & IN_IGNORED:
                self.folders.pop(event.wd, None)
            elif event.wd == self.root_wd:
                if event.mask & IN_ISDIR and is_app_name(event.name):
                    folder = self.catalog.monitored_app_log_path / event.name
                    self._add_folder(folder, event.name, retention_ms)
            elif event.wd in self.folders and event.name:
                app = self.folders[event.wd]
                folder = self.catalog.app_log_dir(app) if app else self.catalog.log_path
                path = str(folder / event.name)
                if path in self.files:
                    self.dirty.add(path)
                else:
                    self._add_file(folder, event.name, app, retention_ms)

    def mark_changed(self, sname: str) -> None:
        """Read the files of `sname` in the next pass, whatever inotify said so far."""
        self.dirty.update(key for key, f in self.files.items() if f.sname == sname)

    def rescan(self, retention_ms: int | None) -> None:
        """Every file again (a lost event, the minute's check): a change missed is read."""
        for wd in list(self.folders):
            app = self.folders[wd]
            folder = self.catalog.app_log_dir(app) if app else self.catalog.log_path
            with contextlib.suppress(OSError):
                for entry in folder.iterdir():
                    self._add_file(folder, entry.name, app, retention_ms)
        self.dirty.update(self.files)

    # -- reading ---------------------------------------------------------------------------------

    def read_pass(self, now_ms: int, keep: bool) -> PassResult:
        """One turn over the changed files; `keep` False (no retention) only moves past them."""
        order = sorted(self.dirty)
        if order:
            self._turn = (self._turn + 1) % len(order)
            order = order[self._turn :] + order[: self._turn]
        lines: list[NewLine] = []
        marks: dict[str, FileMark] = {}
        for key in order:
            followed = self.files.get(key)
            if followed is None or not self._read(followed, now_ms, keep, lines):
                self.dirty.discard(key)
            if followed is not None:
                marks[key] = followed.mark
        return PassResult(lines, marks, bool(self.dirty))

    def _read(self, f: FollowedFile, now_ms: int, keep: bool, out: list[NewLine]) -> bool:
        """Read one budget of `f` into `out`; True when bytes are left for another pass."""
        if f.fd is None and not self._open(f):
            return False
        size = os.fstat(f.fd).st_size
        plan = plan_read(f.offset, size)
        texts: list[str] = []
        if not keep:
            plan = plan_read(size, size)
            f.partial, f.dropping = b"", False
        elif plan.skipped:
            texts.append(skipped_line(plan.skipped + len(f.partial)))
            f.partial, f.dropping = b"", True  # the read starts inside a line: drop up to its end
        elif plan.start < f.offset:  # truncated
            f.partial, f.dropping = b"", False
        data = os.pread(f.fd, plan.length, plan.start) if plan.length else b""
        f.offset = plan.start + len(data)
        if data:
            f.read_at = time.monotonic()
            split = split_lines(f.partial, data, f.dropping)
            texts += split.lines
            f.partial, f.dropping = split.partial, split.dropping
        out += [NewLine(now_ms, f.app, f.sname, f.stream, text) for text in texts]
        if plan.more:
            return True
        return self._moved_on(f, out, now_ms)

    def _open(self, f: FollowedFile) -> bool:
        try:
            f.fd = os.open(f.path, os.O_RDONLY | os.O_CLOEXEC)
        except OSError:
            return False
        info = os.fstat(f.fd)
        if (info.st_dev, info.st_ino) != (f.dev, f.ino):  # replaced since: a new file
            f.dev, f.ino, f.offset, f.partial, f.dropping = info.st_dev, info.st_ino, 0, b"", False
        return True

    def _moved_on(self, f: FollowedFile, out: list[NewLine], now_ms: int) -> bool:
        """At the end of a file that was renamed away or deleted: its last partial line is kept,
        and the file now at the path (if any) is read from its start."""
        try:
            info = f.path.stat()
            same = (info.st_dev, info.st_ino) == (f.dev, f.ino)
        except OSError:
            info, same = None, False
        if same:
            return False
        if f.partial and not f.dropping:
            out.append(NewLine(now_ms, f.app, f.sname, f.stream, decode_line(f.partial)))
        f.close()
        f.partial, f.dropping = b"", False
        if info is None:
            f.offset = 0  # deleted: the entry stays, for a file created again at the path
            return False
        f.dev, f.ino, f.offset = info.st_dev, info.st_ino, 0
        return True

    def close_idle(self) -> None:
        now = time.monotonic()
        for followed in self.files.values():
            if followed.fd is not None and now - followed.read_at > IDLE_CLOSE_S:
                followed.close()

    def close(self) -> None:
        for followed in self.files.values():
            followed.close()
        self.inotify.close()
