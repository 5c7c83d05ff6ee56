"""Folders and files that only DeployEx's user may read or change.

DeployEx keeps in `var_path` what decides which processes it signals and what it runs (pidfiles,
releases, the state database), the actor system's key and its sockets; its logs may hold what the
apps print. All of it is private to DeployEx's user: folders 0700, files 0600 (DeployEx runs with
umask 077). A folder that another user could change, directly or by renaming one of its parents,
is refused at start with the reason, like ssh's StrictModes: root-owned or own parents only, and
a parent that others may write (such as /tmp) must be sticky, so they cannot rename our entries.
"""

from __future__ import annotations

import logging
import os
import stat
from pathlib import Path

from deployex_actors.errors import DeployexError

log = logging.getLogger(__name__)
PRIVATE_UMASK = 0o077


class NotPrivate(DeployexError):
    """A folder or file of DeployEx could be read or changed by another local user."""


def private_folder(path: Path) -> Path:
    """Create `path` (0700) or check an existing one; narrow the mode of a folder we own."""
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    real = path.resolve()
    uid = os.geteuid()
    info = real.stat()
    if info.st_uid != uid:
        raise NotPrivate(
            f"{path} belongs to uid {info.st_uid}, not to DeployEx's user (uid {uid}): another "
            "user could change what DeployEx runs; give it to DeployEx's user or pick another"
        )
    if info.st_mode & 0o077:
        real.chmod(0o700)
        log.warning("%s was open to other users (mode %o); now 0700", path, info.st_mode & 0o777)
    for parent in real.parents:
        _check_parent(path, parent, uid)
    return path


def _check_parent(path: Path, parent: Path, uid: int) -> None:
    info = parent.stat()
    if info.st_uid not in (0, uid):
        raise NotPrivate(
            f"{path} lies in {parent}, which belongs to uid {info.st_uid}: that user could "
            "rename it and put other files in its place; pick a folder under root's or "
            "DeployEx's own folders"
        )
    if info.st_mode & 0o022 and not info.st_mode & stat.S_ISVTX:
        raise NotPrivate(
            f"{path} lies in {parent}, which other users may write (mode "
            f"{info.st_mode & 0o777:o}) without the sticky bit: they could replace it"
        )


def check_private_file(path: Path, fd: int) -> None:
    """`fd` (open on `path`) is DeployEx's user's (or we are root) and private to it."""
    info = os.fstat(fd)
    uid = os.geteuid()
    if uid != 0 and info.st_uid != uid:
        raise NotPrivate(f"{path} belongs to uid {info.st_uid}, not to this user (uid {uid})")
    if info.st_mode & 0o077:
        raise NotPrivate(
            f"{path} is open to other users (mode {info.st_mode & 0o777:o}); it must be 0600"
        )


def write_whole(path: Path, data: bytes, mode: int) -> Path:
    """`data` at `path` all at once (temporary file, then rename: a reader sees the old file or
    the new one), with `mode` from the moment the file exists, whatever the umask."""
    tmp = path.with_name(f".{path.name}.partial")
    try:
        tmp.unlink(missing_ok=True)
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
        try:
            os.fchmod(fd, mode)
            os.write(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)
        tmp.replace(path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise DeployexError(f"cannot write {path}: {exc.strerror or exc}") from None
    return path
