"""Log history decisions, without I/O: how bytes read from a log file become lines (a line may
arrive in pieces across reads; one longer than 16 KiB is cut and says so), how much of a file one
pass reads (a file that outruns its budget skips ahead and says how much), where a file is taken
up again after a restart, what pruning drops, and the durations the front ends accept.

The Logs actor (actors/logs.py) reads the files and writes the store; everything it decides is
here, so it is tested without files, processes or SQLite.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime

from deployex_actors.catalog import app_of_sname

MAX_LINE_BYTES = 16 * 1024
CUT_MARK = " [… line cut at 16 KiB]"
# Per file per pass (a pass runs at most every PASS_INTERVAL_S while files change): a burst is
# read over several passes, in turns with the other files, so no file starves the others.
READ_BUDGET = 256 * 1024
# A file further behind than this is not caught up with: its newest READ_BUDGET bytes are read
# and the rest is skipped (one marker line says how much). 8 MiB is what a restarted DeployEx
# may find unread in a busy file; a flood (50 MB/s) passes it within a fraction of a second.
MAX_BACKLOG = 8 * 1024 * 1024
PASS_INTERVAL_S = 0.1
# what a stored line costs beyond its text (row, the two index entries), counted in the cap
ROW_OVERHEAD = 64
PRUNE_LOW_WATER = 0.9  # over the cap, drop the oldest down to 90 %: not one delete per pass
DEFAULT_LIMIT = 1000
MAX_LIMIT = 10_000
STREAMS = ("stdout", "stderr")
DEPLOYEX_SERVICE = "deployex"  # the sname under which DeployEx's own lines are kept
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhd]?)\s*$")
_UNIT_S = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}


@dataclass(frozen=True)
class HistoryLine:
    """One kept line; `id` grows with each line stored (a cursor for `--follow`)."""

    id: int
    at_ms: int  # when DeployEx read it (ms since the epoch)
    app: str  # "deployex" for DeployEx's own lines
    sname: str
    stream: str  # stdout | stderr
    text: str


@dataclass(frozen=True)
class HistoryResult:
    """Lines in chronological order; `capped`: more matched than `limit` (the newest are here,
    or with a cursor the oldest after it)."""

    lines: tuple[HistoryLine, ...]
    capped: bool
    limit: int


@dataclass(frozen=True)
class LogService:
    """A service with kept lines: a replica's sname (running or gone) or "deployex"."""

    app: str
    sname: str
    first_ms: int
    last_ms: int


# -- lines ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Split:
    lines: tuple[str, ...]
    partial: bytes  # the start of a line whose end has not been read yet
    dropping: bool  # inside a line already cut (or skipped into): drop up to its newline


def split_lines(partial: bytes, data: bytes, dropping: bool = False) -> Split:
    """Complete lines of `partial + data`; a line over MAX_LINE_BYTES is cut, and a partial line
    that grew past it is cut at once (its rest, up to the newline, is dropped)."""
    *complete, rest = (partial + data).split(b"\n")
    lines = []
    for piece in complete:
        if dropping:  # the tail of a line cut (or skipped into) earlier
            dropping = False
            continue
        lines.append(decode_line(piece))
    if dropping:
        rest = b""
    elif len(rest) > MAX_LINE_BYTES:
        lines.append(decode_line(rest))
        rest, dropping = b"", True
    return Split(tuple(lines), rest, dropping)


def decode_line(raw: bytes) -> str:
    """Text of one line: UTF-8 (invalid bytes replaced), at most MAX_LINE_BYTES, cut marked."""
    raw = raw.removesuffix(b"\r")
    if len(raw) <= MAX_LINE_BYTES:
        return raw.decode("utf-8", errors="replace")
    # "ignore": a character split by the cut is dropped, not shown as a replacement mark
    return raw[:MAX_LINE_BYTES].decode("utf-8", errors="ignore") + CUT_MARK


def stored_bytes(text: str) -> int:
    """What one line counts against `logs_max_bytes`."""
    return len(text.encode("utf-8", errors="replace")) + ROW_OVERHEAD


# -- reading -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ReadPlan:
    start: int  # offset to read from
    length: int  # bytes to read now
    skipped: int  # bytes passed over unread (a file that outran the budget)
    more: bool  # bytes are left for the next pass


def plan_read(
    offset: int, size: int, budget: int = READ_BUDGET, max_backlog: int = MAX_BACKLOG
) -> ReadPlan:
    """What one pass reads of a file of `size` bytes read up to `offset`."""
    if size < offset:  # truncated (copytruncate rotation): the new content from its start
        offset = 0
    backlog = size - offset
    if backlog > max_backlog:
        start = size - budget
        return ReadPlan(start, budget, start - offset, False)
    length = min(backlog, budget)
    return ReadPlan(offset, length, 0, backlog > length)


def skipped_line(skipped: int) -> str:
    return (
        f"[DeployEx: {skipped} bytes skipped: this log grew faster than the history reads it "
        f"({READ_BUDGET // 1024} KiB per file every {PASS_INTERVAL_S:g} s at most)]"
    )


@dataclass(frozen=True)
class FileMark:
    """Where a file was read up to, and which file it was (a rotated file is another inode)."""

    dev: int
    ino: int
    offset: int


def initial_offset(
    saved: FileMark | None,
    dev: int,
    ino: int,
    size: int,
    mtime_s: float,
    now_s: float,
    retention_ms: int | None,
) -> int:
    """Where to take up a file found at start (or created while DeployEx was down).

    The same file: where it was left (from its start if it shrank). Another file at that path
    (rotated): from its start. A file never read: from its start if it changed within the
    retention (written while DeployEx was down), else from its end (nothing of it is kept)."""
    if saved is not None:
        if (saved.dev, saved.ino) == (dev, ino):
            return saved.offset if saved.offset <= size else 0
        return 0
    if retention_ms and mtime_s * 1000 >= now_s * 1000 - retention_ms:
        return 0
    return size


# -- pruning -------------------------------------------------------------------------------------


def retention_cutoff_ms(now_ms: int, retention_ms: int | None) -> int:
    """Lines older than this go; with no retention (null) every line goes."""
    return now_ms + 1 if not retention_ms else now_ms - retention_ms


def prune_every_s(retention_ms: int | None) -> float:
    """Every minute, as upstream; a retention shorter than a few minutes is held to within a
    quarter of itself (at most one prune a second)."""
    if not retention_ms:
        return 60.0
    return min(60.0, max(1.0, retention_ms / 4000))


def bytes_to_drop(total: int, cap: int) -> int:
    """Over the cap: drop the oldest down to PRUNE_LOW_WATER of it; else nothing."""
    return 0 if total <= cap else total - int(cap * PRUNE_LOW_WATER)


# -- queries -------------------------------------------------------------------------------------


def clamp_limit(limit: int | None) -> int:
    return DEFAULT_LIMIT if not limit or limit < 1 else min(limit, MAX_LIMIT)


def parse_duration_s(text: str) -> float:
    """ "90s", "15m", "2h", "1d" or plain seconds, as seconds."""
    match = _DURATION.match(text or "")
    if match is None:
        raise ValueError(f"{text!r} is not a duration: write e.g. 90s, 15m, 2h or 1d")
    return float(match[1]) * _UNIT_S[match[2]]


RANGES = (("1 min", 60), ("5 min", 300), ("15 min", 900), ("1 hour", 3600), ("6 hours", 21600),
          ("1 day", 86400), ("1 week", 604800))  # fmt: skip


def range_choices(retention_ms: int | None) -> list[tuple[str, int]]:
    """The History page's ranges that the retention can fill (the shortest one at least)."""
    fits = [(label, s) for label, s in RANGES if retention_ms and s * 1000 <= retention_ms]
    return fits or [RANGES[0]]


def line_time(at_ms: int) -> str:
    """A line's time as UTC "2026-01-31 12:00:05.123" (the CLI, the page, the download)."""
    at = datetime.fromtimestamp(at_ms / 1000, UTC)
    return f"{at:%Y-%m-%d %H:%M:%S}.{at_ms % 1000:03d}"


def line_row(line: HistoryLine) -> str:
    """`TIME SNAME STREAM LINE`, as `deployex logs` prints and the page downloads."""
    return f"{line_time(line.at_ms)} {line.sname} {line.stream} {line.text}"


def node_down_line(node: str) -> str:
    """Upstream's synthetic stderr line when a replica's node goes down."""
    return f"DeployEx detected node down for node: {node}"


def log_file_service(name: str, app: str | None) -> tuple[str, str] | None:
    """(sname, stream) of a log file name in an app's log folder (`app`), or in DeployEx's own
    (`app` None); None for any other file (thespian.log, a rotated `...log.1`)."""
    for stream in STREAMS:
        sname = name.removesuffix(f"-{stream}.log")
        if sname == name:
            continue
        if app is None:
            return (DEPLOYEX_SERVICE, stream) if sname == DEPLOYEX_SERVICE else None
        return (sname, stream) if app_of_sname(sname) == app else None
    return None
