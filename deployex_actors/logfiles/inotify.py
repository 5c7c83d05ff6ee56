"""Linux inotify through ctypes: which file of a watched folder changed, with no polling.

The descriptor is non-blocking; the Logs actor has its actor loop select on it (a thespian
watch), so an idle DeployEx spends nothing here: no thread, no timer.
"""

from __future__ import annotations

import ctypes
import errno
import os
import struct
from dataclasses import dataclass
from pathlib import Path

IN_MODIFY = 0x00000002
IN_CLOSE_WRITE = 0x00000008
IN_MOVED_TO = 0x00000080
IN_CREATE = 0x00000100
IN_DELETE_SELF = 0x00000400
IN_MOVE_SELF = 0x00000800
IN_Q_OVERFLOW = 0x00004000
IN_IGNORED = 0x00008000
IN_ISDIR = 0x40000000
IN_ONLYDIR = 0x01000000
IN_NONBLOCK = os.O_NONBLOCK
IN_CLOEXEC = os.O_CLOEXEC
FOLDER_EVENTS = IN_MODIFY | IN_CLOSE_WRITE | IN_MOVED_TO | IN_CREATE | IN_DELETE_SELF
_HEADER = struct.Struct("iIII")  # wd, mask, cookie, len
_READ_SIZE = 64 * 1024

_libc = ctypes.CDLL(None, use_errno=True)


@dataclass(frozen=True)
class Event:
    wd: int
    mask: int
    name: str  # "" for an event about the watched folder itself


class Inotify:
    def __init__(self) -> None:
        fd = _libc.inotify_init1(IN_NONBLOCK | IN_CLOEXEC)
        if fd < 0:
            err = ctypes.get_errno()
            raise OSError(err, f"inotify_init1: {os.strerror(err)}")
        self.fd = fd

    def add_watch(self, path: Path, mask: int = FOLDER_EVENTS) -> int:
        wd = _libc.inotify_add_watch(self.fd, os.fsencode(path), mask | IN_ONLYDIR)
        if wd < 0:
            err = ctypes.get_errno()
            raise OSError(err, f"inotify_add_watch {path}: {os.strerror(err)}", str(path))
        return wd

    def read_events(self) -> list[Event]:
        """Every queued event (none when nothing happened)."""
        events: list[Event] = []
        while True:
            try:
                data = os.read(self.fd, _READ_SIZE)
            except BlockingIOError:
                return events
            except OSError as exc:
                if exc.errno == errno.EINTR:
                    continue
                raise
            events += parse_events(data)

    def close(self) -> None:
        os.close(self.fd)


def parse_events(data: bytes) -> list[Event]:
    events, at = [], 0
    while at + _HEADER.size <= len(data):
        wd, mask, _cookie, length = _HEADER.unpack_from(data, at)
        at += _HEADER.size
        name = data[at : at + length].rstrip(b"\0").decode("utf-8", errors="surrogateescape")
        at += length
        events.append(Event(wd, mask, name))
    return events
