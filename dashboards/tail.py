"""Following log files by offset: one reader per file for the whole process, however many viewers.

`FileTail` reads what was appended to one file since its last read (starting with the last
`backlog_bytes`), and copes with truncation and rotation. `LogFollower` keeps the files some
viewer watches, reads them all from one periodic callback, and keeps the newest lines of each
with a sequence number, so every viewer asks "what is new since n" without touching the disk.
"""

from __future__ import annotations

import contextlib
import itertools
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

BACKLOG_BYTES = 64 * 1024
MAX_READ_BYTES = 1024 * 1024  # per file per tick: a burst is spread over several ticks
MAX_PARTIAL_BYTES = 64 * 1024  # a "line" longer than this is cut and shown anyway
KEEP_LINES = 2000


@dataclass(frozen=True)
class LogSource:
    """One log file a viewer can pick: a replica's (or DeployEx's) stdout or stderr."""

    key: str  # e.g. "myapp-abc123:stdout"
    label: str
    service: str  # sname, or "deployex"
    stream: str  # stdout | stderr
    path: Path


@dataclass(frozen=True)
class LogLine:
    seq: int
    source: str  # LogSource.key
    service: str
    stream: str
    text: str


class FileTail:
    def __init__(self, path: Path, backlog_bytes: int = BACKLOG_BYTES) -> None:
        self.path = path
        self.backlog_bytes = backlog_bytes
        self._offset: int | None = None  # None: not opened yet
        self._inode: int | None = None
        self._partial = b""

    def read_new(self) -> list[str]:
        """Complete lines appended since the last call (the backlog on the first)."""
        try:
            stat = self.path.stat()
        except FileNotFoundError:
            return []
        if self._offset is None or stat.st_ino != self._inode:
            first = self._offset is None
            self._inode, self._partial = stat.st_ino, b""
            self._offset = max(stat.st_size - self.backlog_bytes, 0) if first else 0
            skip_partial_line = first and self._offset > 0
        else:
            skip_partial_line = False
            if stat.st_size < self._offset:  # truncated (copytruncate rotation)
                self._offset, self._partial = 0, b""
        if stat.st_size == self._offset:
            return []
        data = self._read(min(stat.st_size - self._offset, MAX_READ_BYTES))
        if skip_partial_line:
            data = data.split(b"\n", 1)[1] if b"\n" in data else b""
        return self._lines(data)

    def _read(self, size: int) -> bytes:
        with contextlib.suppress(FileNotFoundError), open(self.path, "rb") as handle:
            handle.seek(self._offset)
            data = handle.read(size)
            self._offset += len(data)
            return data
        return b""

    def _lines(self, data: bytes) -> list[str]:
        buffered = self._partial + data
        *complete, self._partial = buffered.split(b"\n")
        if len(self._partial) > MAX_PARTIAL_BYTES:
            complete.append(self._partial)
            self._partial = b""
        return [line.rstrip(b"\r").decode("utf-8", errors="replace") for line in complete]


class LogFollower:
    """The files some viewer watches, each read by one `FileTail`, newest lines kept in memory."""

    def __init__(self, keep: int = KEEP_LINES, tail: Callable[[Path], FileTail] = FileTail) -> None:
        self.keep = keep
        self._make_tail = tail
        self._seq = itertools.count(1)
        self._watched: dict[
            str, tuple[LogSource, FileTail, int]
        ] = {}  # key -> (source, tail, refs)
        self._lines: dict[str, deque[LogLine]] = {}

    def watch(self, source: LogSource) -> Callable[[], None]:
        """Start following `source` (or count one more viewer); returns the unwatch function."""
        known = self._watched.get(source.key)
        if known is None:
            self._watched[source.key] = (source, self._make_tail(source.path), 1)
            self._lines[source.key] = deque(maxlen=self.keep)
            self._read(source.key)
        else:
            self._watched[source.key] = (known[0], known[1], known[2] + 1)
        done = False

        def unwatch() -> None:
            nonlocal done
            if not done:
                done = True
                self._release(source.key)

        return unwatch

    def _release(self, key: str) -> None:
        source, tail, refs = self._watched[key]
        if refs > 1:
            self._watched[key] = (source, tail, refs - 1)
        else:
            del self._watched[key]
            del self._lines[key]

    def tick(self) -> int:
        """Read every watched file once; returns how many new lines arrived."""
        return sum(self._read(key) for key in list(self._watched))

    def _read(self, key: str) -> int:
        source, tail, _ = self._watched[key]
        try:
            texts = tail.read_new()
        except OSError:  # unreadable for now (permissions, a vanished folder): try next tick
            return 0
        lines = self._lines[key]
        for text in texts:
            lines.append(LogLine(next(self._seq), key, source.service, source.stream, text))
        return len(texts)

    def since(self, keys: list[str], seq: int) -> list[LogLine]:
        """Lines of `keys` newer than `seq`, in arrival order."""
        found = [line for key in keys for line in self._lines.get(key, ()) if line.seq > seq]
        return sorted(found, key=lambda line: line.seq)

    @property
    def watched(self) -> list[str]:
        return sorted(self._watched)
