"""Starting and signalling replica processes (and their pre-commands).

A replica runs in its own session, so it outlives DeployEx and a signal to its process group
reaches whatever its start script started. Its stdout and stderr are the replica's log files,
opened for append (file descriptors, not pipes: nothing blocks if DeployEx is gone).
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
from pathlib import Path

from deployex_actors.beam.launch import Command


def spawn(command: Command, stdout_log: Path, stderr_log: Path) -> subprocess.Popen:
    stdout_log.parent.mkdir(parents=True, exist_ok=True)
    flags = os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC
    out = os.open(stdout_log, flags, 0o600)
    err = os.open(stderr_log, flags, 0o600)
    try:
        return subprocess.Popen(
            command.argv,
            env=command.env,
            cwd=command.cwd,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=err,
            start_new_session=True,
            close_fds=True,
        )
    finally:
        os.close(out)
        os.close(err)


def open_pidfd(pid: int) -> int | None:
    """A descriptor that becomes readable when `pid` exits (child or not); None if gone."""
    try:
        return os.pidfd_open(pid)
    except ProcessLookupError:
        return None


def signal_group(pid: int, sig: signal.Signals) -> bool:
    """Signal the replica's whole process group; False when nothing was there to signal."""
    try:
        os.killpg(pid, sig)
        return True
    except ProcessLookupError:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, sig)
            return True
        return False
