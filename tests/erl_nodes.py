"""Plain `erl` nodes for the distribution tests, started and ended by the tests."""

from __future__ import annotations

import contextlib
import os
import secrets
import signal
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from deployex_actors.beam import epmd
from deployex_actors.catalog import node_name


def unique_sname(prefix: str = "t") -> str:
    return f"{prefix}{os.getpid()}x{secrets.token_hex(3)}"


def wait_registered(
    sname: str, deadline_s: float = 20.0, proc: subprocess.Popen | None = None
) -> None:
    end = time.monotonic() + deadline_s
    while time.monotonic() < end:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"node {sname} exited with {proc.returncode} before registering")
        with contextlib.suppress(Exception):
            if sname in epmd.names():
                return
        time.sleep(0.02)
    raise TimeoutError(f"node {sname} did not register with EPMD within {deadline_s} s")


def wait_unregistered(sname: str, deadline_s: float = 10.0) -> None:
    end = time.monotonic() + deadline_s
    while time.monotonic() < end:
        with contextlib.suppress(Exception):
            if sname not in epmd.names():
                return
        time.sleep(0.02)
    raise TimeoutError(f"node {sname} is still registered with EPMD after {deadline_s} s")


@dataclass
class ErlNode:
    sname: str
    cookie: str
    proc: subprocess.Popen

    @property
    def node(self) -> str:
        return node_name(self.sname)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def kill(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(10)


@contextlib.contextmanager
def erl_node(log_dir: Path, *extra: str, cookie: str | None = None) -> Iterator[ErlNode]:
    """A plain `erl -sname` node in its own session; killed (whole group) at exit."""
    sname = unique_sname()
    cookie = cookie or secrets.token_hex(8)
    argv = ["erl", "-sname", sname, "-setcookie", cookie, "-noshell", "-noinput", *extra]
    with (log_dir / f"{sname}.log").open("ab") as log:
        proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    node = ErlNode(sname, cookie, proc)
    try:
        wait_registered(sname, proc=proc)
        yield node
    finally:
        if proc.poll() is None:
            node.kill()
        wait_unregistered(sname)
